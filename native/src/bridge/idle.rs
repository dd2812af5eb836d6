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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::bytes::{Buf, BytesMut};

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
            read: 0,
            held: None,
            ahead: None,
        }
    }
}

/// An I/O object whose progress is counted in an [`Activity`], with the bytes read through it.
#[derive(Debug)]
pub struct Watched<I> {
    io: I,
    activity: Activity,
    read: u64,
    /// A byte read ahead by [`Watched::poll_next_byte`], for the next read (counted already).
    held: Option<u8>,
    /// Bytes read (and counted) by the bridge's direct path past the frame it handed out (see
    /// [`super::park`]); boxed, so that a bridge without any holds one pointer.
    ahead: Option<Box<Ahead>>,
}

/// Bytes read ahead by the direct path: every read returns them before the socket's.
#[derive(Debug)]
struct Ahead {
    bytes: BytesMut,
    /// Given back, or read in part: no longer the direct path's to hand out.
    for_codec: bool,
}

impl<I> Watched<I> {
    /// The I/O object itself, no longer counted.
    pub fn into_inner(self) -> I {
        self.io
    }

    /// The bytes read through it (what a parked codec is checked against, see
    /// [`super::park`]).
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The bytes the direct path read ahead and has not handed out or given back.
    pub fn ahead(&mut self) -> Option<&mut BytesMut> {
        match &mut self.ahead {
            Some(ahead) if !ahead.for_codec => Some(&mut ahead.bytes),
            _ => None,
        }
    }

    /// Keeps `bytes` (read through it: counted already) for the direct path, after those it
    /// keeps already.
    pub fn keep_ahead(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let ahead = self.ahead.get_or_insert_with(|| {
            Box::new(Ahead {
                bytes: BytesMut::with_capacity(bytes.len()),
                for_codec: false,
            })
        });
        ahead.bytes.extend_from_slice(bytes);
    }

    /// Lets the bytes kept ahead go once the direct path has handed them all out.
    pub fn drop_ahead_if_empty(&mut self) {
        if self.ahead.as_ref().is_some_and(|a| a.bytes.is_empty()) {
            self.ahead = None;
        }
    }

    /// Gives the bytes kept ahead to the codec (its next reads return them first): the direct
    /// path hands none of them out any more.
    pub fn give_back(&mut self) {
        if let Some(ahead) = &mut self.ahead {
            ahead.for_codec = true;
        }
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

impl<I: AsyncRead + Unpin> Watched<I> {
    /// Waits until the stream has a byte or its end, without a buffer: a byte it reads is held
    /// for the next read (see [`super::park`]).
    pub fn poll_next_byte(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.held.is_some() {
            return Poll::Ready(Ok(()));
        }
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        if !buf.filled().is_empty() {
            self.held = Some(byte[0]);
            self.read += 1;
            self.activity.moved();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(byte) = this.held {
            if buf.remaining() > 0 {
                this.held = None;
                buf.put_slice(&[byte]);
                return Poll::Ready(Ok(()));
            }
        }
        if let Some(ahead) = &mut this.ahead {
            // Whoever reads gets them first: the direct path never reads while it keeps bytes,
            // so this is the codec, given them or not (its closing handshake reads on its own),
            // and they are its from now on.
            if buf.remaining() > 0 {
                ahead.for_codec = true;
                let n = ahead.bytes.len().min(buf.remaining());
                buf.put_slice(&ahead.bytes[..n]);
                ahead.bytes.advance(n);
                this.drop_ahead_if_empty();
                return Poll::Ready(Ok(()));
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let after = buf.filled().len();
        this.read += (after - before) as u64;
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

/// How long the bridge is quiet before its codec is parked (between this and twice this).
pub(super) const PARK_AFTER: Duration = Duration::from_millis(250);

/// A codec that could not be parked (a frame half read, a Pong not yet written) is tried again
/// after [`PARK_AFTER`], then after twice as long each time; past this, it waits for bytes to
/// move (a client that sent a message in fragments can never be parked: no timer for it).
const PARK_RETRY_MAX: Duration = Duration::from_secs(8);

/// What parks a bridge's codec (see [`super::park`]).
pub(super) trait Parks {
    /// Parks it if it holds nothing now; `unparked` is woken when it is made anew. Whether it
    /// did.
    fn park(&mut self, unparked: &std::task::Waker) -> bool;
    /// Whether it is parked now.
    fn is_parked(&self) -> bool;
}

/// What the idle watch does next about parking the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Try at this time.
    At(Instant),
    /// Parked: nothing until it is made anew (which wakes the watch) or bytes move.
    Parked,
    /// Tried until [`PARK_RETRY_MAX`] in vain: nothing until bytes move.
    Waiting,
}

/// When the codec is to be parked next, as the idle watch keeps it.
struct Parking {
    plan: Plan,
    /// The moves seen by the last tick.
    seen: u64,
    /// The wait before the next try, if this one finds the codec not parkable.
    retry: Duration,
}

impl Parking {
    fn new(now: Instant, moves: u64) -> Self {
        Parking {
            plan: Plan::At(now + PARK_AFTER),
            seen: moves,
            retry: PARK_AFTER,
        }
    }

    /// The next try, if one is planned.
    fn at(&self) -> Option<Instant> {
        match self.plan {
            Plan::At(at) => Some(at),
            Plan::Parked | Plan::Waiting => None,
        }
    }

    /// Tries again [`PARK_AFTER`] from `now`.
    fn rearm(&mut self, now: Instant, moves: u64) {
        self.seen = moves;
        self.plan = Plan::At(now + PARK_AFTER);
        self.retry = PARK_AFTER;
    }

    /// At a wake-up at `now`, with `moves` counted: parks with `park` if the bridge has been
    /// quiet since the last try, and decides the next. `pinged`: the heartbeat has just asked
    /// for a Ping, which makes the codec anew.
    fn tick(&mut self, now: Instant, moves: u64, pinged: bool, park: impl FnOnce() -> bool) {
        let moved = moves != self.seen;
        self.seen = moves;
        match self.plan {
            _ if moved || pinged => self.rearm(now, moves),
            Plan::At(at) if now >= at => {
                if park() {
                    self.plan = Plan::Parked;
                } else if self.retry >= PARK_RETRY_MAX {
                    self.plan = Plan::Waiting;
                } else {
                    self.retry = (self.retry * 2).min(PARK_RETRY_MAX);
                    self.plan = Plan::At(now + self.retry);
                }
            }
            _ => {}
        }
    }
}

pin_project_lite::pin_project! {
    /// Ends as [`Ending::Idle`] once no byte has moved on either socket for the timeout (plus
    /// at most a quarter of it), or as [`Ending::PingTimeout`] when the heartbeat says so;
    /// never ends otherwise. Also gives back the splicer's pipe while the target is quiet, and
    /// the codec's buffers with `park` once nothing has moved for [`PARK_AFTER`] (see
    /// [`super::park`]). The heartbeat's timekeeping shares its one timer.
    ///
    /// A future of its own rather than an `async fn`: it lives as long as its bridge, and an
    /// `async fn` would keep its arguments and their copies both (see BENCHMARKS.md).
    pub(super) struct Idle<'a, P> {
        activity: &'a Activity,
        splicer: Option<&'a Splicer>,
        shared: &'a Shared,
        beat: Beat<'a>,
        park: P,
        // Idle once IDLE_CHECKS checks in a row, `period` apart, saw no byte move on either
        // socket. Moves are counted, not timed: a clock read per read or write would cost
        // more than the count.
        period: Duration,
        next_check: Instant,
        seen: u64,
        quiet: u32,
        seen_down: u64,
        parking: Parking,
        #[pin]
        timer: tokio::time::Sleep,
    }
}

/// The idle watch of a bridge: `activity` counts the client's socket and the target's,
/// `splicer` the spliced frames (see [`Idle`]).
pub(super) fn idle<'a, P: Parks>(
    timeout: Duration,
    activity: &'a Activity,
    splicer: Option<&'a Splicer>,
    shared: &'a Shared,
    beat: Beat<'a>,
    park: P,
) -> Idle<'a, P> {
    let start = Instant::now();
    let period = timeout / IDLE_CHECKS;
    let next_check = start + period;
    let parking = Parking::new(start, 0);
    let first = beat.next_wake().map_or(next_check, |b| b.min(next_check));
    let first = parking.at().map_or(first, |at| at.min(first));
    let mut idle = Idle {
        activity,
        splicer,
        shared,
        beat,
        park,
        period,
        next_check,
        seen: 0,
        quiet: 0,
        seen_down: shared.down.load(Relaxed),
        parking,
        timer: tokio::time::sleep_until(first),
    };
    idle.seen = idle.progress();
    idle.parking.seen = idle.moves();
    idle
}

impl<P> Idle<'_, P> {
    fn spliced(&self) -> u64 {
        self.splicer.map_or(0, Splicer::moved)
    }

    /// What the idle timeout looks at: the heartbeat's moves do not count.
    fn progress(&self) -> u64 {
        self.activity.count().wrapping_add(self.spliced())
    }

    /// What parking looks at: every move, the heartbeat's included.
    fn moves(&self) -> u64 {
        self.activity.moves().wrapping_add(self.spliced())
    }

    /// When the timer must fire next.
    fn next_wake(&self) -> Instant {
        let mut wake = self
            .beat
            .next_wake()
            .map_or(self.next_check, |b| b.min(self.next_check));
        if let Some(at) = self.parking.at() {
            wake = wake.min(at);
        }
        wake
    }
}

impl<P: Parks> Future for Idle<'_, P> {
    type Output = Ending;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ending> {
        loop {
            if self.parking.plan == Plan::Parked && !self.park.is_parked() {
                // The codec was made anew (it wakes this future then): parked again once the
                // bridge is quiet.
                let (now, moves) = (Instant::now(), self.moves());
                self.as_mut().project().parking.rearm(now, moves);
                let wake = self.next_wake();
                self.as_mut().project().timer.reset(wake);
            }
            std::task::ready!(self.as_mut().project().timer.poll(cx));
            let now = Instant::now();
            if now >= self.next_check {
                let (progress, down) = (self.progress(), self.shared.down.load(Relaxed));
                let this = self.as_mut().project();
                *this.next_check = now + *this.period;
                // A target quiet for a whole check period gives its pipe back (2 descriptors
                // and the pipe's share of the kernel's per-user limit), even while the client
                // still sends; the next bulk read makes a new one.
                if down == *this.seen_down {
                    if let Some(splicer) = this.splicer {
                        splicer.release_pipe();
                    }
                }
                *this.seen_down = down;
                if progress == *this.seen {
                    *this.quiet += 1;
                    if *this.quiet == IDLE_CHECKS {
                        return Poll::Ready(Ending::Idle);
                    }
                } else {
                    (*this.seen, *this.quiet) = (progress, 0);
                }
            }
            let (moves, progress) = (self.moves(), self.progress());
            let this = self.as_mut().project();
            // A Ping asked for wakes the upstream pump, whose poll of the stream sends it. The
            // heartbeat judges by the progress the idle timeout counts: spliced frames to a
            // slow reader are progress too.
            let pinged = match this.beat.check(now, progress) {
                Ok(pinged) => pinged,
                Err(ending) => return Poll::Ready(ending),
            };
            let park = this.park;
            this.parking
                .tick(now, moves, pinged, || park.park(cx.waker()));
            let wake = self.next_wake();
            self.as_mut().project().timer.reset(wake);
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

#[cfg(test)]
mod parking_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parks_after_a_quiet_spell_backs_off_when_it_cannot_and_rearms_on_moves() {
        let start = Instant::now();
        let mut parking = Parking::new(start, 0);
        let mut tries = 0;
        // Bytes moved since the last try: not yet.
        parking.tick(start + PARK_AFTER, 1, false, || {
            panic!("parked while moving")
        });
        assert_eq!(parking.plan, Plan::At(start + 2 * PARK_AFTER));
        // Quiet, but the codec holds a frame in part: tried again after 2x, 4x, ... 8 s, then
        // no more until bytes move.
        let mut now = start + 2 * PARK_AFTER;
        let mut waits = Vec::new();
        while let Plan::At(at) = parking.plan {
            now = now.max(at);
            parking.tick(now, 1, false, || {
                tries += 1;
                false
            });
            if let Plan::At(next) = parking.plan {
                waits.push(next - now);
            }
        }
        assert_eq!(parking.plan, Plan::Waiting);
        assert_eq!(waits[0], 2 * PARK_AFTER);
        assert_eq!(waits[1], 4 * PARK_AFTER);
        assert_eq!(*waits.last().unwrap(), PARK_RETRY_MAX);
        assert_eq!(tries, waits.len() + 1);
        parking.tick(now + 100 * PARK_RETRY_MAX, 1, false, || {
            panic!("tried while waiting")
        });
        assert_eq!(parking.plan, Plan::Waiting);
        // The rest of the frame comes: tried again after a quiet spell, and parked.
        now += 100 * PARK_RETRY_MAX;
        parking.tick(now, 2, false, || panic!("parked while moving"));
        assert_eq!(parking.plan, Plan::At(now + PARK_AFTER));
        parking.tick(now + PARK_AFTER, 2, false, || true);
        assert_eq!(parking.plan, Plan::Parked);
        // Parked: no more tries until something moves or a Ping goes out.
        parking.tick(now + PARK_RETRY_MAX, 2, false, || {
            panic!("tried while parked")
        });
        assert_eq!(parking.plan, Plan::Parked);
        parking.tick(now + PARK_RETRY_MAX, 2, true, || {
            panic!("a Ping is not quiet")
        });
        assert_eq!(parking.plan, Plan::At(now + PARK_RETRY_MAX + PARK_AFTER));
    }
}
