//! [`Woken`]: a future that a `select!` polls only after it was woken.
//!
//! A bridge's task wakes for every message, and `select!` then polls each of its branches: the
//! two pumps, which may have work, but also the idle watch (a timer) and the relay's shutdown
//! (a cancellation token), which almost never have. Polling those two costs a timer check and a
//! lock-free queue check on every message (about a tenth of the relay's instructions per 64 B
//! message, `make instructions`). Wrapped in [`Woken`], each is polled once, and then only when
//! its own waker fired; the other wake-ups cost one atomic swap.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

/// Polls `F` only on its first poll and after `F` itself asked to be woken.
pub struct Woken<F> {
    future: Pin<Box<F>>,
    /// Polls `F` on every poll (see [`Woken::only_if`]).
    always: bool,
    signal: Arc<Signal>,
    /// `signal` as a waker, made once.
    waker: Waker,
    /// The task waker `signal` passes wake-ups on to, as last registered.
    task: Option<Waker>,
}

/// Set by `F`'s wake-ups, cleared by the poll that follows.
struct Signal {
    woken: AtomicBool,
    /// The task to wake. Locked only when the task's waker changes (never, within one tokio
    /// task) and when `F` wakes, not on the polls in between.
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // By reference: no clone of the task's waker per wake-up.
        if let Some(task) = &*self.task.lock() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future> Woken<F> {
    pub fn new(future: F) -> Self {
        let signal = Arc::new(Signal {
            // The first poll must reach `F`, which registers its wake-ups then.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Woken {
            future: Box::pin(future),
            always: false,
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }
}

impl<F: Future> Woken<F> {
    /// A [`Woken`] when `filter` holds, else one that polls `F` whenever it is polled: for a
    /// future that shares a waker slot (a socket's direction) with another, which must then be
    /// polled on the other's wake-ups too.
    pub fn only_if(filter: bool, future: F) -> Self {
        let mut woken = Woken::new(future);
        woken.always = !filter;
        woken
    }
}

impl<F: Future> Future for Woken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.always {
            return this.future.as_mut().poll(cx);
        }
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            // Before the swap below: a wake-up after it must reach this task.
            let task = cx.waker().clone();
            *this.signal.task.lock() = Some(task.clone());
            this.task = Some(task);
        }
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.future
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Pending until `ready` is set; counts its polls.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Counts the wake-ups of the task.
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn polls_the_future_only_after_its_own_wake_ups() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None::<Waker>));
        let mut woken = Woken::new(Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: waker.clone(),
        });
        let task = Arc::new(Task(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        // The task wakes for other reasons 100 times: the probe is polled once for all of them.
        for _ in 0..100 {
            assert!(Pin::new(&mut woken).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // The probe's own wake-up reaches the task, and the next poll reaches the probe.
        ready.store(true, Ordering::SeqCst);
        waker.lock().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut woken).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_new_task_waker_gets_the_wake_ups() {
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None::<Waker>));
        let mut woken = Woken::new(Probe {
            polls: Arc::new(AtomicUsize::new(0)),
            ready,
            waker: waker.clone(),
        });
        let (first, second) = (
            Arc::new(Task(AtomicUsize::new(0))),
            Arc::new(Task(AtomicUsize::new(0))),
        );
        let first_waker = Waker::from(first.clone());
        let second_waker = Waker::from(second.clone());
        assert!(Pin::new(&mut woken)
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending());
        // Moved to another task (or executor): it is the one woken now.
        assert!(Pin::new(&mut woken)
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending());
        waker.lock().take().unwrap().wake();
        assert_eq!(
            (
                first.0.load(Ordering::SeqCst),
                second.0.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_inside_still_fires() {
        let sleep = Woken::new(tokio::time::sleep(Duration::from_secs(30)));
        let started = tokio::time::Instant::now();
        sleep.await;
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_cancellation_inside_still_ends_it() {
        let token = tokio_util::sync::CancellationToken::new();
        let cancelled = Woken::new(token.clone().cancelled_owned());
        let canceller = tokio::spawn(async move {
            tokio::task::yield_now().await;
            token.cancel();
        });
        tokio::time::timeout(Duration::from_secs(10), cancelled)
            .await
            .expect("the cancellation was lost");
        canceller.await.unwrap();
    }
}
