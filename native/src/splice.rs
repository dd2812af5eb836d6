//! Bulk target-to-client frames without copying them through the relay (Linux, plain TCP).
//!
//! A bridge copies every byte twice per direction: from the kernel into its buffer, and back.
//! For bulk data from the target (downloads, screen updates), [`Splicer::poll_splice_in`] moves
//! the target's bytes into a pipe with `splice(2)` instead, and the frame goes out as a header
//! written with `MSG_MORE` followed by the pipe's pages, spliced into the client's socket: the
//! payload never enters user space (BENCHMARKS.md measures the saving).
//!
//! Small reads from the target go out as frames the bridge writes itself too
//! ([`Splicer::poll_copy_in`]): copied through a scratch buffer of the runtime thread, header
//! and payload in one `send`, without the codec's queue.
//!
//! The client's socket is shared by the WebSocket codec (through [`ClientIo`]) and the bridge's
//! own frames, and their bytes must never interleave. Two rules ensure it:
//! - a frame of the bridge's is started only when the codec is not in the middle of one: it
//!   has written nothing since it was last seen idle, or the bridge flushes it in the same poll
//!   (see `bridge::target_to_client`; a frame the codec has queued but not begun goes after,
//!   whole), and
//! - once started, the bridge's frame is finished before any byte of the codec is written:
//!   every write, flush and shutdown through [`ClientIo`] first drives the frame to its end. So
//!   a bridge that stops in the middle of a frame (its Close goes out next) still sends whole
//!   frames.
//!
//! Everything else (the codec's reads, its control and small data frames, TLS connections and
//! other systems) takes the ordinary path, and so does a read that cannot be spliced: when no
//! pipe can be had (out of descriptors or of pipe memory), or when the target's next bytes
//! follow TCP urgent data: `splice` stops at its mark, where a copying read that starts there
//! reads on (the relay keeps urgent data inline, see [`crate::tcp::keep_urgent_inline`]).
//!
//! Where TCP paces the client's connection (a congestion control such as bbr does, loopback
//! included), a spliced frame leaves faster than the pacing rate and its rest is sent from
//! timers, which can cost more than copying would; `--tcp-congestion` and `--no-splice` are the
//! ways out (BENCHMARKS.md, item 15).
//!
//! Splicing into a socket whose peer has gone raises SIGPIPE (`splice` has no
//! `MSG_NOSIGNAL`). Rust programs ignore SIGPIPE from the start, so the relay gets `EPIPE`; a
//! program that embeds this module and restores SIGPIPE's default must not splice.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};

use parking_lot::{Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::bytes::{Buf, Bytes};

/// The largest spliced frame. No user memory backs it, so it can be larger than the frames the
/// bridge copies: fewer syscalls per byte.
pub const MAX_FRAME: usize = 256 * 1024;

/// The pipe's size: twice the largest frame, so that a frame's payload fits whatever its
/// alignment in the pages it arrived in (a pipe holds a page, or part of one, per slot).
const PIPE_SIZE: usize = 2 * MAX_FRAME;

/// Below this size (the default) a pipe is not worth it: a user past the kernel's soft limit
/// on pipe memory gets pipes of two pages, and frames that small are cheaper copied.
const MIN_PIPE_SIZE: usize = 64 * 1024;

/// After a pipe could not be had, this many bulk reads are copied before the next attempt.
const PIPE_BACKOFF: u32 = 64;

/// Pipes the whole relay holds at most (2 descriptors each): past this many bridges splicing
/// at once, the others copy, so that pipes never take the descriptors new connections need.
pub const MAX_PIPES: usize = 1024;

/// Pipes that exist now.
static PIPES: AtomicUsize = AtomicUsize::new(0);

/// Room before a copied frame's payload in the scratch buffer, for its header.
const HEADROOM: usize = 10;

/// The largest payload a copied frame takes from the scratch buffer.
const SCRATCH_PAYLOAD: usize = crate::readsize::ReadSize::MAX;

thread_local! {
    /// Where copied frames are read and sent from: one buffer per runtime thread, not one per
    /// bridge. A frame goes out in the same poll as its read, so no bridge holds it across an
    /// await (what the socket does not take is copied out, see [`Splicer::poll_copy_in`]).
    static SCRATCH: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0; HEADROOM + SCRATCH_PAYLOAD]);
}

/// What [`Splicer::poll_copy_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyIn {
    /// A frame of this many payload bytes was started: finish it with [`Splicer::poll_frame`].
    Frame(usize),
    /// The target's end of the stream.
    Eof,
}

/// What [`Splicer::poll_splice_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceIn {
    /// A frame of this many bytes was started: finish it with [`Splicer::poll_frame`].
    Frame(usize),
    /// The target's end of the stream.
    Eof,
    /// Nothing was moved: read this time by copying (no pipe could be had, or the bytes
    /// waiting cannot be spliced).
    Copy,
}

/// The sending side of the client's TCP stream, shared by the codec and the bridge's own
/// frames (the codec reads without it: see [`ClientIo`]).
#[derive(Debug)]
struct Shared {
    stream: OwnedWriteHalf,
    /// The codec has written to the socket since its queue was last seen empty (see
    /// [`Splicer::codec_wrote`]).
    codec_wrote: bool,
    /// Created for the first spliced frame; 2 file descriptors while it exists.
    pipe: Option<Pipe>,
    /// A spliced frame not yet fully written.
    frame: Option<Frame>,
    /// Spliced frames written, and their payload bytes.
    frames: u64,
    bytes: u64,
    /// Sends and splices into the client's socket that moved bytes: a frame to a slow client
    /// is progress long before it is finished (the bridge's idle watch reads this).
    moved: u64,
    /// Bulk reads still to copy before trying to make a pipe again.
    backoff: u32,
    /// Who waits to write to the client, and the waker that wakes them all.
    writers: Arc<Writers>,
    writers_waker: Waker,
}

/// Everyone waiting to write to the client, woken together. tokio keeps one waker per direction
/// of a socket, and two of the bridge's pumps, each polled only after its own wake-up, may wait
/// to write at once: the downstream one with its frames, the upstream one with a Pong or Ping
/// the codec must send before it reads on. Every write through [`ClientIo`] and every finish
/// of a frame of the bridge's enlists its waker (a copied frame's one `send` does not).
#[derive(Debug, Default)]
struct Writers(Mutex<Vec<Waker>>);

impl Writers {
    fn waiting(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.0.lock()
    }
}

impl Wake for Writers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waiting = std::mem::take(&mut *self.waiting());
        for waker in waiting {
            waker.wake();
        }
    }
}

/// A pipe, counted in [`PIPES`] while it exists.
#[derive(Debug)]
struct Pipe {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        PIPES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The unwritten rest of a frame: a spliced one's header, then `payload` bytes from the pipe;
/// or the rest of a copied one (header and payload) in `held`.
#[derive(Debug)]
struct Frame {
    header: [u8; 10],
    header_len: u8,
    header_sent: u8,
    /// Payload bytes still in the pipe.
    payload: usize,
    /// The whole payload's length, when spliced (counted in `frames` and `bytes` once written).
    len: usize,
    /// Bytes of a copied frame that the socket did not take at once.
    held: Bytes,
}

impl Frame {
    /// A final binary frame (server to client: unmasked) of `len` payload bytes.
    fn binary(len: usize) -> Frame {
        let mut header = [0u8; 10];
        header[0] = 0x82;
        let header_len = match len {
            0..=125 => {
                header[1] = len as u8;
                2
            }
            126..=0xffff => {
                header[1] = 126;
                header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            _ => {
                header[1] = 127;
                header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        Frame {
            header,
            header_len,
            header_sent: 0,
            payload: len,
            len,
            held: Bytes::new(),
        }
    }

    /// The rest of a copied frame.
    fn held(rest: &[u8]) -> Frame {
        Frame {
            header: [0; 10],
            header_len: 0,
            header_sent: 0,
            payload: 0,
            len: 0,
            held: Bytes::copy_from_slice(rest),
        }
    }
}

/// The bridge's handle on the client's socket, for spliced frames.
#[derive(Debug, Clone)]
pub struct Splicer(Arc<Mutex<Shared>>);

/// The client's socket as the WebSocket codec sees it: reads (the upgrade's leftover bytes
/// first), and writes that wait for a frame of the bridge's in progress to end. Reads take no
/// lock: the codec is the socket's only reader.
#[derive(Debug)]
pub struct ClientIo {
    read: OwnedReadHalf,
    /// Bytes the HTTP server read past the upgrade request: the client's first frames.
    prefix: Bytes,
    shared: Arc<Mutex<Shared>>,
}

/// Shares `stream` (an upgraded connection, with the bytes read past its request in `prefix`)
/// between a codec ([`ClientIo`]) and the bridge's spliced frames ([`Splicer`]). SIGPIPE must
/// be ignored (see the module's documentation).
pub fn share(stream: TcpStream, prefix: Bytes) -> (ClientIo, Splicer) {
    // Even empty, the prefix may be a slice of hyper's read buffer (4 KiB or more), which it
    // would keep allocated for the bridge's life.
    let prefix = if prefix.is_empty() {
        Bytes::new()
    } else {
        prefix
    };
    let (read, write) = stream.into_split();
    let writers = Arc::new(Writers::default());
    let shared = Arc::new(Mutex::new(Shared {
        stream: write,
        codec_wrote: false,
        pipe: None,
        frame: None,
        frames: 0,
        bytes: 0,
        moved: 0,
        backoff: 0,
        writers_waker: Waker::from(writers.clone()),
        writers,
    }));
    let io = ClientIo {
        read,
        prefix,
        shared: shared.clone(),
    };
    (io, Splicer(shared))
}

/// Writes the rest of the frame in progress; ready at once if there is none.
fn poll_frame(shared: &Mutex<Shared>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut shared = lock(shared);
    if shared.frame.is_none() {
        return Poll::Ready(Ok(()));
    }
    let waker = shared.writer(cx.waker());
    shared.poll_frame(&mut Context::from_waker(&waker))
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Never held across an await or a call that may panic (and parking_lot's locks do not
    // poison).
    shared.lock()
}

impl Shared {
    /// The waker for a wait to write to the client by the one `waker` wakes: it wakes every
    /// writer waiting then.
    fn writer(&self, waker: &Waker) -> Waker {
        let mut waiting = self.writers.waiting();
        if !waiting.iter().any(|w| w.will_wake(waker)) {
            waiting.push(waker.clone());
        }
        self.writers_waker.clone()
    }

    /// Writes the rest of the spliced frame in progress, if there is one.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(frame) = &mut self.frame else {
            return Poll::Ready(Ok(()));
        };
        let stream: &TcpStream = self.stream.as_ref();
        while !frame.held.is_empty() {
            let n = ready!(poll_io(stream, Interest::WRITABLE, cx, || {
                rustix::net::send(stream, &frame.held, rustix::net::SendFlags::NOSIGNAL)
            }))?;
            frame.held.advance(n);
            self.moved += 1;
        }
        if frame.len == 0 {
            self.frame = None;
            return Poll::Ready(Ok(()));
        }
        while frame.header_sent < frame.header_len {
            let rest = &frame.header[usize::from(frame.header_sent)..usize::from(frame.header_len)];
            // MSG_MORE: the header waits for the payload and leaves in the same segment.
            let flags = rustix::net::SendFlags::MORE | rustix::net::SendFlags::NOSIGNAL;
            let n = ready!(poll_io(stream, Interest::WRITABLE, cx, || {
                rustix::net::send(stream, rest, flags)
            }))?;
            frame.header_sent += n as u8;
            self.moved += 1;
        }
        let Some(pipe) = &self.pipe else {
            return Poll::Ready(Err(io::Error::other("spliced frame without a pipe")));
        };
        let len = frame.len;
        while frame.payload > 0 {
            let n = ready!(poll_io(stream, Interest::WRITABLE, cx, || {
                splice(&pipe.read, stream, frame.payload)
            }))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            frame.payload -= n;
            self.moved += 1;
        }
        self.frame = None;
        self.frames += 1;
        self.bytes += len as u64;
        Poll::Ready(Ok(()))
    }
}

impl Splicer {
    /// Moves up to `max` bytes from `target` into the pipe and starts a binary frame of them to
    /// the client (making the pipe first if there is none). The caller must have flushed the
    /// codec in the same poll (nothing of its may be queued) and must finish the frame with
    /// [`Splicer::poll_frame`] before starting another.
    pub fn poll_splice_in(
        &self,
        target: &TcpStream,
        max: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<SpliceIn>> {
        let mut shared = lock(&self.0);
        if shared.frame.is_some() {
            return Poll::Ready(Err(io::Error::other(
                "a spliced frame is still being written",
            )));
        }
        // A pipe is made only once there is something to move: a quiet target's was let go
        // (`release_pipe`) and must not come back while its bridge waits.
        ready!(target.poll_read_ready(cx))?;
        if shared.pipe.is_none() {
            if shared.backoff > 0 {
                shared.backoff -= 1;
                return Poll::Ready(Ok(SpliceIn::Copy));
            }
            match make_pipe() {
                Ok(pipe) => shared.pipe = Some(pipe),
                Err(e) => {
                    tracing::debug!(error = %e, "no pipe to splice through: copying");
                    shared.backoff = PIPE_BACKOFF;
                    return Poll::Ready(Ok(SpliceIn::Copy));
                }
            }
        }
        let Some(pipe) = &shared.pipe else {
            return Poll::Ready(Ok(SpliceIn::Copy));
        };
        let moved = ready!(poll_io(target, Interest::READABLE, cx, || {
            match splice(target, &pipe.write, max) {
                Ok(0) => Ok(SpliceIn::Eof),
                Ok(n) => Ok(SpliceIn::Frame(n)),
                Err(rustix::io::Errno::AGAIN) => {
                    // Usually nothing to read: the readiness was from bytes already taken, and
                    // waiting is right. But splice also stops at TCP urgent data, which a
                    // copying read starting there reads on; if bytes are waiting, keep the
                    // readiness and copy.
                    match crate::tcp::byte_waiting(target) {
                        Some(_) => Ok(SpliceIn::Copy),
                        None => Err(rustix::io::Errno::AGAIN),
                    }
                }
                Err(e) => Err(e),
            }
        }))?;
        if let SpliceIn::Frame(n) = moved {
            shared.frame = Some(Frame::binary(n));
        }
        Poll::Ready(Ok(moved))
    }

    /// Moves what the target has, up to `max` bytes, to the client in one binary frame, copied
    /// through this thread's scratch buffer: an idle bridge holds no buffer, and the frame's
    /// header and payload leave in one `send`. The read goes through tokio's `poll_read`, which
    /// takes a short read as the socket drained (no second `recv` to learn it); what the
    /// client's socket does not take at once (it is full: rare outside bulk transfers, which
    /// splice) is kept, at most `max` bytes, and written by [`Splicer::poll_frame`], which the
    /// caller must finish before the next frame (the bridge does so when it next wants one, and
    /// the codec before its next byte). The caller must have seen the codec idle in
    /// the same poll ([`Splicer::codec_wrote`]).
    pub fn poll_copy_in<R: AsyncRead + Unpin>(
        &self,
        target: &mut R,
        max: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<CopyIn>> {
        let mut guard = lock(&self.0);
        // Fields borrowed apart: the stream is sent on while the counts change.
        let shared = &mut *guard;
        if shared.frame.is_some() {
            return Poll::Ready(Err(io::Error::other("a frame is still being written")));
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let max = max.min(SCRATCH_PAYLOAD);
            let mut read = ReadBuf::new(&mut scratch[HEADROOM..HEADROOM + max]);
            ready!(Pin::new(target).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(CopyIn::Eof));
            }
            let header = Frame::binary(n);
            let header = &header.header[..usize::from(header.header_len)];
            let start = HEADROOM - header.len();
            scratch[start..HEADROOM].copy_from_slice(header);
            let frame = &scratch[start..HEADROOM + n];
            let client: &TcpStream = shared.stream.as_ref();
            let flags = rustix::net::SendFlags::NOSIGNAL;
            // Would block, or failed: `poll_frame` waits, or reports the client's error.
            let sent = client
                .try_io(Interest::WRITABLE, || {
                    rustix::net::send(client, frame, flags).map_err(io::Error::from)
                })
                .unwrap_or(0);
            if sent > 0 {
                shared.moved += 1;
            }
            if sent < frame.len() {
                shared.frame = Some(Frame::held(&frame[sent..]));
            }
            Poll::Ready(Ok(CopyIn::Frame(n)))
        })
    }

    /// Whether the codec has written to the client since [`Splicer::codec_idle`] was last
    /// called: until it has, the codec cannot be in the middle of a frame (one it has queued
    /// and not begun to write may go after the bridge's frames, whole), and the bridge may
    /// start one of its own without flushing the codec first.
    pub fn codec_wrote(&self) -> bool {
        lock(&self.0).codec_wrote
    }

    /// Records that the codec's queue was just seen empty (its flush finished).
    pub fn codec_idle(&self) {
        lock(&self.0).codec_wrote = false;
    }

    /// Writes the rest of the spliced frame in progress; ready at once if there is none.
    pub fn poll_frame(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_frame(&self.0, cx)
    }

    /// How many spliced frames have been written.
    pub fn frames(&self) -> u64 {
        lock(&self.0).frames
    }

    /// How many payload bytes spliced frames have carried.
    pub fn bytes(&self) -> u64 {
        lock(&self.0).bytes
    }

    /// How many sends and splices into the client's socket moved bytes: equal to an earlier
    /// count when no spliced byte went out in between.
    pub fn moved(&self) -> u64 {
        lock(&self.0).moved
    }

    /// Whether a spliced frame has been started and not yet fully written.
    pub fn is_writing(&self) -> bool {
        lock(&self.0).frame.is_some()
    }

    /// Whether the pipe (2 file descriptors) exists.
    pub fn has_pipe(&self) -> bool {
        lock(&self.0).pipe.is_some()
    }

    /// Lets the pipe go (bulk traffic has stopped); the next spliced frame makes a new one.
    pub fn release_pipe(&self) {
        let mut shared = lock(&self.0);
        if shared.frame.is_none() {
            shared.pipe = None;
        }
    }
}

/// A pipe as large as two of the largest frames where the kernel allows it; an error where no
/// pipe can be had (the relay holds [`MAX_PIPES`], or the system has no descriptors left) or
/// the one made is too small to be worth splicing through.
fn make_pipe() -> io::Result<Pipe> {
    let counted = PIPES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        (n < MAX_PIPES).then_some(n + 1)
    });
    if counted.is_err() {
        return Err(io::Error::other("the relay holds its most pipes"));
    }
    let made = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    );
    let (read, write) = match made {
        Ok(ends) => ends,
        Err(e) => {
            PIPES.fetch_sub(1, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    // From here on, dropping `pipe` gives its place back.
    let pipe = Pipe { read, write };
    // Past the per-user limit on pipe memory the size stays as it was made: frames are then
    // smaller, not wrong, unless the pipe is too small to be worth it.
    let _ = rustix::pipe::fcntl_setpipe_size(&pipe.write, PIPE_SIZE);
    if rustix::pipe::fcntl_getpipe_size(&pipe.write)? < MIN_PIPE_SIZE {
        return Err(io::Error::other("pipe too small to splice through"));
    }
    Ok(pipe)
}

/// `splice(2)` of up to `len` bytes, neither end blocking (the sockets are non-blocking, and
/// the flag covers the pipe).
fn splice(
    from: impl std::os::fd::AsFd,
    to: impl std::os::fd::AsFd,
    len: usize,
) -> rustix::io::Result<usize> {
    use rustix::pipe::SpliceFlags;
    rustix::pipe::splice(
        from,
        None,
        to,
        None,
        len,
        SpliceFlags::NONBLOCK | SpliceFlags::MOVE,
    )
}

/// Runs `op` on `stream` once it is ready for `interest`, until it does not block.
fn poll_io<T>(
    stream: &TcpStream,
    interest: Interest,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> rustix::io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        if interest.is_readable() {
            ready!(stream.poll_read_ready(cx))?;
        } else {
            ready!(stream.poll_write_ready(cx))?;
        }
        // `try_io` clears the readiness when `op` would block; the next poll then waits.
        match stream.try_io(interest, || op().map_err(io::Error::from)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            if this.prefix.is_empty() {
                // Gives hyper's read buffer back (see `share`).
                this.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.read).poll_read(cx, buf)
    }
}

impl ClientIo {
    /// The shared sending side, noted as written to by the codec.
    fn writing(&self) -> MutexGuard<'_, Shared> {
        let mut shared = lock(&self.shared);
        shared.codec_wrote = true;
        shared
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.writing();
        let waker = shared.writer(cx.waker());
        let cx = &mut Context::from_waker(&waker);
        ready!(shared.poll_frame(cx))?;
        Pin::new(&mut shared.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.writing();
        let waker = shared.writer(cx.waker());
        let cx = &mut Context::from_waker(&waker);
        ready!(shared.poll_frame(cx))?;
        Pin::new(&mut shared.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_frame(&self.shared, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = self.writing();
        let waker = shared.writer(cx.waker());
        let cx = &mut Context::from_waker(&waker);
        ready!(shared.poll_frame(cx))?;
        Pin::new(&mut shared.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::bytes::BytesMut;

    #[tokio::test]
    async fn the_codec_reads_the_bytes_read_past_the_upgrade_first() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut far = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (near, _) = listener.accept().await.unwrap();
        let (mut io, splicer) = share(near, Bytes::from_static(b"early "));
        far.write_all(b"later").await.unwrap();
        far.shutdown().await.unwrap();
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"early later");
        assert_eq!((splicer.frames(), splicer.has_pipe()), (0, false));
    }

    /// Regression: the bytes hyper read past the request are a slice of its read buffer (4 KiB
    /// and more), and the bridge kept that buffer for its whole life, empty or consumed: 4 KiB
    /// of every idle bridge's 15.8 (`scripts/bench.sh --only memory`).
    #[tokio::test]
    async fn hypers_read_buffer_is_not_kept_once_its_bytes_are_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for early in [&b""[..], b"early"] {
            let _far = TcpStream::connect(addr).await.unwrap();
            let (near, _) = listener.accept().await.unwrap();
            let mut read_buffer = BytesMut::with_capacity(4096);
            read_buffer.extend_from_slice(early);
            let prefix = read_buffer.split().freeze();
            let (mut io, _splicer) = share(near, prefix);
            let mut got = vec![0u8; early.len()];
            io.read_exact(&mut got).await.unwrap();
            assert_eq!(got, early);
            // Unique again: nothing of the bridge's holds hyper's buffer any more.
            assert!(read_buffer.try_reclaim(4096), "{} early bytes", early.len());
        }
    }

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        let header = |len| {
            let f = Frame::binary(len);
            f.header[..usize::from(f.header_len)].to_vec()
        };
        assert_eq!(header(125), [0x82, 125]);
        assert_eq!(header(126), [0x82, 126, 0, 126]);
        assert_eq!(header(65_535), [0x82, 126, 0xff, 0xff]);
        assert_eq!(header(65_536), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
