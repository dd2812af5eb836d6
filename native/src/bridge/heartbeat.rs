//! The heartbeat of a bridge (`--ping-interval`, `--ping-timeout`): the relay sends the client
//! a Ping every interval, and a client that sends nothing at all (no Pong, no other frame) for
//! the timeout after a Ping is closed with 1001 "ping timeout", its target reset as for a
//! client that vanished. Pings keep a bridge alive through proxies that cut silent connections
//! (nginx's `proxy_read_timeout` is 60 s by default) and find peers that are gone without a
//! FIN or RST (a laptop closed, a network dropped).
//!
//! Two parts, in the bridge's one task: [`Beat`] keeps time on the idle watch's timer (so it runs
//! on a paused clock in tests) and decides, and [`Heartbeat`], a layer over the client's
//! WebSocket, sends the Pings it asks for and notes every frame the client sends. The sending
//! half of the socket belongs to the downstream pump, so the Ping goes out when the upstream
//! pump next polls the stream, which it does while it waits for the client: the timekeeper
//! wakes the upstream pump for that (each pump is polled only after its own wake-up).
//!
//! The heartbeat is not traffic: the bytes of the relay's Pings and of the Pongs that answer
//! them are discounted from the bridge's [`Activity`], so `--idle-timeout` still closes a bridge
//! on which nothing else moves.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_websockets::{Error as WsError, Message};

use super::ending::Ending;
use super::idle::Activity;
use super::Client;

/// What the timekeeper and the WebSocket layer of one heartbeat share. Only the bridge's task
/// writes (plain loads and stores, no read-modify-write); atomics because its future is Send.
#[derive(Debug, Default)]
pub(super) struct Pinged {
    /// A Ping is to be sent.
    due: AtomicBool,
    /// Frames read from the client, of any kind.
    frames: AtomicU64,
    /// What wakes the upstream pump, so that it sends a Ping that is due; set by the first poll
    /// of the stream (and again only if the waker changes).
    upstream: parking_lot::Mutex<Option<Waker>>,
}

impl Pinged {
    /// Asks for a Ping and wakes the upstream pump to send it.
    fn ask(&self) {
        self.due.store(true, Relaxed);
        let waker = self.upstream.lock().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The heartbeat's timekeeping, run by the bridge's idle watch on its one timer (a second timer
/// would be polled on every wake-up of the bridge, that is on every message): when the next
/// Ping is due, and the deadline of the oldest unanswered one.
pub(super) struct Beat<'a> {
    pinged: &'a Pinged,
    /// Zero: no heartbeat.
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// The deadline of the oldest unanswered Ping, and what had been heard when it went.
    waiting: Option<(Instant, (u64, u64))>,
}

impl<'a> Beat<'a> {
    /// A Ping every `interval` (none when it is zero); a client that sends nothing for
    /// `timeout` after a Ping, while nothing else moves on the bridge either, has timed out (a
    /// client whose messages wait for a slow target is not judged: the target's progress
    /// counts, and so do bytes a slow reader takes).
    pub(super) fn new(pinged: &'a Pinged, interval: Duration, timeout: Duration) -> Self {
        Beat {
            pinged,
            interval,
            timeout,
            next_ping: Instant::now() + interval,
            waiting: None,
        }
    }

    /// When [`Beat::check`] must run next; `None` without a heartbeat.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        if self.interval.is_zero() {
            return None;
        }
        let deadline = self.waiting.map(|(deadline, _)| deadline);
        Some(deadline.map_or(self.next_ping, |d| d.min(self.next_ping)))
    }

    /// At `now`, with `progress` the bridge's bytes moved so far as its idle watch counts them
    /// (every socket's, spliced frames included, the heartbeat's own discounted):
    /// [`Ending::PingTimeout`] if the client has been silent for the timeout after a Ping while
    /// nothing else moved; otherwise asks for a Ping when one is due (the upstream pump is
    /// woken to send it), and says whether it did.
    pub(super) fn check(&mut self, now: Instant, progress: u64) -> Result<bool, Ending> {
        if self.interval.is_zero() {
            return Ok(false);
        }
        let heard = (self.pinged.frames.load(Relaxed), progress);
        if let Some((deadline, seen)) = self.waiting {
            if heard != seen {
                self.waiting = None;
            } else if now >= deadline {
                return Err(Ending::PingTimeout);
            }
        }
        if now < self.next_ping {
            return Ok(false);
        }
        self.pinged.ask();
        if self.waiting.is_none() {
            self.waiting = Some((now + self.timeout, heard));
        }
        self.next_ping = now + self.interval;
        Ok(true)
    }
}

/// The client's WebSocket as the bridge reads it: the heartbeat's Pings sent into it and every
/// frame noted, and the client's own Pings answered before it is read on. One layer for both:
/// each layer is a call more per message.
///
/// The codec queues a Pong for every Ping it reads; a client that sends Pings and never reads
/// would grow that queue without bound. So after a client's Ping the next read waits until the
/// codec's queue (the Pong, and whatever was queued before it) has gone into the socket: such a
/// client is simply no longer read, as a client that does not read its data is not.
pub(super) struct Heartbeat<'a, W> {
    ws: W,
    pinged: &'a Pinged,
    activity: &'a Activity,
    /// The client sent a Ping: flush its Pong before reading on.
    flush_first: bool,
    /// A Ping of ours was queued and is not yet written out.
    flushing: bool,
    /// A Ping of ours was sent and no Pong has come since.
    unanswered: bool,
    /// The waker last given to [`Pinged::upstream`].
    registered: Option<Waker>,
}

impl<'a, W> Heartbeat<'a, W> {
    pub(super) fn new(ws: W, pinged: &'a Pinged, activity: &'a Activity) -> Self {
        Heartbeat {
            ws,
            pinged,
            activity,
            flush_first: false,
            flushing: false,
            unanswered: false,
            registered: None,
        }
    }
}

impl<W: Client> Heartbeat<'_, W> {
    /// Queues the Ping asked for, if the codec takes it now, and writes it out; the writes it
    /// takes are discounted from the activity.
    fn poll_ping(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        if !self.flushing && !self.pinged.due.load(Relaxed) {
            return Ok(());
        }
        if self.pinged.due.load(Relaxed) {
            match self.ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    self.ws.start_send_unpin(Message::ping(Bytes::new()))?;
                    self.pinged.due.store(false, Relaxed);
                    self.flushing = true;
                    self.unanswered = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {}
            }
        }
        if self.flushing {
            let before = self.activity.moves();
            let flushed = self.ws.poll_flush_unpin(cx);
            self.activity
                .discount(self.activity.moves().wrapping_sub(before));
            match flushed {
                Poll::Ready(Ok(())) => self.flushing = false,
                Poll::Ready(Err(e)) => {
                    self.flushing = false;
                    return Err(e);
                }
                Poll::Pending => {}
            }
        }
        Ok(())
    }
}

impl<W: Client> Client for Heartbeat<'_, W> {
    /// Not while a Ping of ours, or the Pong of the client's, waits to be written.
    fn park(&mut self, unparked: &Waker) -> bool {
        !self.flushing && !self.flush_first && self.ws.park(unparked)
    }

    fn is_parked(&self) -> bool {
        self.ws.is_parked()
    }
}

impl<W: Client> Stream for Heartbeat<'_, W> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let waker = cx.waker().clone();
            *this.pinged.upstream.lock() = Some(waker.clone());
            this.registered = Some(waker);
        }
        if let Err(e) = this.poll_ping(cx) {
            return Poll::Ready(Some(Err(e)));
        }
        if this.flush_first {
            match this.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => this.flush_first = false,
                Poll::Ready(Err(e)) => {
                    this.flush_first = false;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        let before = this.activity.moves();
        let item = std::task::ready!(this.ws.poll_next_unpin(cx));
        if let Some(Ok(message)) = &item {
            let frames = &this.pinged.frames;
            frames.store(frames.load(Relaxed).wrapping_add(1), Relaxed);
            this.flush_first = message.is_ping();
            if message.is_pong() && this.unanswered {
                // The read that brought the answer to our Ping is the heartbeat's.
                this.unanswered = false;
                this.activity
                    .discount(this.activity.moves().wrapping_sub(before));
            }
        }
        Poll::Ready(item)
    }
}

impl<W: Client> Sink<Message> for Heartbeat<'_, W> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().ws.poll_ready_unpin(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.get_mut().ws.start_send_unpin(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().ws.poll_flush_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.get_mut().ws.poll_close_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_after_a_ping_is_judged_only_while_nothing_moves() {
        let pinged = Pinged::default();
        let secs = Duration::from_secs;
        let mut beat = Beat::new(&pinged, secs(10), secs(5));
        let start = Instant::now();
        assert!(!beat.check(start, 0).unwrap());
        assert!(beat.check(start + secs(10), 0).unwrap(), "the first Ping");
        // No Pong, but bytes moved (a slow reader taking frames, spliced ones included, which
        // its idle watch counts): not judged.
        assert!(!beat.check(start + secs(15), 7).unwrap());
        assert!(beat.check(start + secs(20), 7).unwrap(), "the next Ping");
        // No Pong and nothing moved for the timeout after it.
        assert!(matches!(
            beat.check(start + secs(25), 7),
            Err(Ending::PingTimeout)
        ));
        // A frame from the client is heard too.
        let mut beat = Beat::new(&pinged, secs(10), secs(5));
        assert!(beat.check(start + secs(10), 7).unwrap());
        pinged.frames.store(1, Relaxed);
        assert!(!beat.check(start + secs(15), 7).unwrap());
    }
}
