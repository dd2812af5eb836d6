//! The idle watch of a bridge, and what it looks at: bytes moving on either of its sockets.
//!
//! A bridge is idle when no byte is read or written on the client's socket or the target's,
//! partial reads and writes included. Counting finished messages is not enough: a large message
//! to a slow target, or a large frame to a slow client, moves for seconds before it is done,
//! and such a transfer is not idle. The count covers whatever crosses the client's socket, so
//! a client's own Pings keep its bridge open as its data does. The relay's heartbeat is the
//! exception: the reads and writes of its Pings, and of the Pongs that answer them, are
//! discounted (see [`super::heartbeat`]), or a heartbeat would keep an idle bridge open forever.
//!
//! The count is bumped on every read and write that moved bytes, which is one relaxed load and
//! store (no read-modify-write: only the bridge's own task counts) against a syscall each.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::time::Instant;

use super::ending::Ending;
use super::heartbeat::Beat;
use super::Shared;
use crate::splice::Splicer;

/// The idle timeout is checked this many times per timeout period (see [`idle`]).
const IDLE_CHECKS: u32 = 4;

/// A count of the reads and writes that moved bytes on one bridge's sockets, less those of the
/// relay's heartbeat. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Activity(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    moved: AtomicU64,
    discounted: AtomicU64,
}

impl Activity {
    /// Records that bytes moved. Only one task counts (a bridge's); others may read.
    pub fn moved(&self) {
        let count = &self.0.moved;
        count.store(count.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Takes back `n` of the moves counted: they were the heartbeat's, not the bridge's.
    pub fn discount(&self, n: u64) {
        let count = &self.0.discounted;
        count.store(count.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Every move counted, the heartbeat's included: what [`Activity::discount`] is measured
    /// against.
    pub fn moves(&self) -> u64 {
        self.0.moved.load(Relaxed)
    }

    /// The count so far, net of the heartbeat's: equal to an earlier one when nothing but the
    /// heartbeat moved in between.
    pub fn count(&self) -> u64 {
        self.0
            .moved
            .load(Relaxed)
            .wrapping_sub(self.0.discounted.load(Relaxed))
    }

    /// `io` with every read and write that moves bytes counted here.
    pub fn watch<I>(&self, io: I) -> Watched<I> {
        Watched {
            io,
            activity: self.clone(),
        }
    }
}

/// An I/O object whose progress is counted in an [`Activity`].
#[derive(Debug)]
pub struct Watched<I> {
    io: I,
    activity: Activity,
}

impl<I> Watched<I> {
    /// The I/O object itself, no longer counted.
    pub fn into_inner(self) -> I {
        self.io
    }

    fn counted<T>(
        &self,
        result: Poll<io::Result<T>>,
        moved: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(Ok(value)) = &result {
            if moved(value) {
                self.activity.moved();
            }
        }
        result
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let after = buf.filled().len();
        this.counted(result, |()| after > before)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.counted(result, |&n| n > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.counted(result, |&n| n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Not counted: a flush moves no bytes of its own, except a spliced frame's rest, which
        // the splicer counts (see `crate::splice`).
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Ends as [`Ending::Idle`] once no byte has moved on either socket for `timeout` (plus at most
/// a quarter of it), or as [`Ending::PingTimeout`] when `beat` says so; never ends otherwise.
/// `activity` counts the client's socket and the target's, `splicer` the spliced frames. Also
/// gives back the splicer's pipe while the target is quiet. The heartbeat's timekeeping shares
/// this future's one timer.
pub(super) async fn idle(
    timeout: Duration,
    activity: &Activity,
    splicer: Option<&Splicer>,
    shared: &Shared,
    mut beat: Beat<'_>,
) -> Ending {
    // Idle once IDLE_CHECKS checks in a row, a fraction of the timeout apart, saw no byte move
    // on either socket. Moves are counted, not timed: a clock read per read or write would cost
    // more than the count.
    let progress = || {
        let spliced = splicer.map_or(0, Splicer::moved);
        activity.count().wrapping_add(spliced)
    };
    let period = timeout / IDLE_CHECKS;
    let mut seen = progress();
    let mut quiet = 0;
    let mut seen_down = shared.down.load(Relaxed);
    let mut next_check = Instant::now() + period;
    loop {
        let wake = beat.next_wake().map_or(next_check, |b| b.min(next_check));
        tokio::time::sleep_until(wake).await;
        let now = Instant::now();
        if now >= next_check {
            next_check = now + period;
            // A target quiet for a whole check period gives its pipe back (2 descriptors and
            // the pipe's share of the kernel's per-user limit), even while the client still
            // sends; the next bulk read makes a new one.
            let down = shared.down.load(Relaxed);
            if down == seen_down {
                if let Some(splicer) = splicer {
                    splicer.release_pipe();
                }
            }
            seen_down = down;
            let moved = progress();
            if moved == seen {
                quiet += 1;
                if quiet == IDLE_CHECKS {
                    return Ending::Idle;
                }
            } else {
                (seen, quiet) = (moved, 0);
            }
        }
        // A Ping asked for wakes the upstream pump, whose poll of the stream sends it.
        if let Err(ending) = beat.check(now) {
            return ending;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_that_move_bytes_are_counted() {
        let activity = Activity::default();
        let (near, mut far) = tokio::io::duplex(4);
        let mut watched = activity.watch(near);
        assert_eq!(activity.count(), 0);
        // A write larger than the pipe goes in parts: each part counts.
        let writer = tokio::spawn(async move {
            watched.write_all(b"0123456789").await.unwrap();
            watched
        });
        let mut got = [0u8; 10];
        far.read_exact(&mut got).await.unwrap();
        let mut watched = writer.await.unwrap();
        let after_writes = activity.count();
        assert!(after_writes >= 3, "{after_writes}");
        far.write_all(b"ab").await.unwrap();
        let mut two = [0u8; 2];
        watched.read_exact(&mut two).await.unwrap();
        assert!(activity.count() > after_writes);
        // An EOF moves nothing.
        drop(far);
        let before_eof = activity.count();
        assert_eq!(watched.read(&mut two).await.unwrap(), 0);
        assert_eq!(activity.count(), before_eof);
    }
}
