//! The pump from the target to the client: target bytes read into a reusable buffer and sent
//! as binary frames without copying, or, for bulk data to a plain TCP client, spliced (see
//! [`crate::splice`]).
//!
//! Target bytes are read only after the previous frame was written to the client, so a slow
//! client slows the target down. The read buffer starts small and grows only while reads fill
//! it, so an idle bridge costs a few KiB.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::Poll;

use futures_util::{Sink, SinkExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio_util::bytes::{BufMut, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tokio_websockets::{Error as WsError, Message};

use super::ending::{classify_ws_error, close_message, codes, target_failed, Ending};
use super::idle::Activity;
use super::{Shared, Target};
use crate::metrics::{Direction, Metrics};
use crate::readsize::ReadSize;
use crate::splice::{CopyIn, SpliceIn, Splicer};

/// First read size from the target, and what a bridge with small traffic keeps.
pub(super) const TARGET_READ_MIN: usize = ReadSize::MIN;

/// Largest chunk read from the target at once, and so the largest frame the bridge copies to
/// the client (spliced frames go up to [`crate::splice::MAX_FRAME`]). Reads grow to this size
/// only while they fill the buffer (bulk traffic).
pub const TARGET_READ_MAX: usize = ReadSize::MAX;

/// Bulk reads of at least this size are followed by spliced frames, where the bridge can
/// splice (see [`crate::splice`]); smaller ones cost less copied than spliced.
const SPLICE_MIN: usize = 16 * 1024;

/// Moves the target's bytes to the client until the target's EOF (then Close 1000 goes after
/// the last byte), a failure, or the client's Close. `splicer` where the client is a plain TCP
/// connection.
pub(super) async fn target_to_client<T, S>(
    target: &mut T::Read,
    sink: &mut S,
    splicer: Option<&Splicer>,
    shared: &Shared,
    activity: &Activity,
    metrics: &Metrics,
    cancel: &CancellationToken,
) -> Ending
where
    T: Target,
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut buf = TargetBuf::default();
    // Whether the splicer holds a pipe, as far as this loop knows (no lock to ask).
    let mut piped = false;
    // Set when the next read must copy (see `SpliceIn::Copy`).
    let mut copy_next = false;
    loop {
        let socket = T::socket(target);
        let n = match (splicer, socket) {
            (Some(client), Some(_)) if !buf.splices() || copy_next => {
                copy_next = false;
                let frame = copied_frame(client, target, buf.size.get(), sink, shared, cancel);
                match frame.await {
                    Spliced::Frame(n) => {
                        buf.record_copied(n);
                        n
                    }
                    Spliced::Eof => 0,
                    Spliced::ClientDone => break,
                    Spliced::Failed(ending) => return ending,
                    // Not an outcome of a copied frame.
                    Spliced::Copy => continue,
                }
            }
            (Some(client), Some(socket)) => {
                piped = true;
                let frame = spliced_frame(client, socket, sink, &shared.client_done, cancel);
                match frame.await {
                    Spliced::Frame(n) => {
                        buf.record_spliced(n);
                        shared.spliced.fetch_add(n as u64, Relaxed);
                        metrics.spliced(n);
                        n
                    }
                    Spliced::Copy => {
                        copy_next = true;
                        continue;
                    }
                    Spliced::Eof => 0,
                    Spliced::ClientDone => break,
                    Spliced::Failed(ending) => return ending,
                }
            }
            _ => {
                copy_next = false;
                let read = poll_fn(|cx| buf.poll_read(target, cx));
                let n = match read.await {
                    Ok(n) => n,
                    Err(e) => return target_failed(e, cancel),
                };
                if n > 0 {
                    // No copy: the frame is written from the buffer itself, and the
                    // buffer is reused once the frame has been written and dropped
                    // (before `send` completes).
                    match sink.send(Message::binary(buf.take(n))).await {
                        Ok(()) => {}
                        Err(WsError::AlreadyClosed) => break,
                        Err(e) => return classify_ws_error(e),
                    }
                }
                n
            }
        };
        if piped && !buf.is_bulk() {
            // Back to small reads: the pipe's descriptors go.
            if let Some(client) = splicer {
                client.release_pipe();
            }
            piped = false;
        }
        if n == 0 {
            if cancel.is_cancelled() {
                // The relay is stopping, and its own services (the echo) close their
                // connections as it does: the client hears that, not "target closed".
                return Ending::Shutdown;
            }
            // Every byte the target sent is already on its way to the client: the
            // Close goes after it.
            let close = close_message(codes::NORMAL, "target closed");
            return match sink.send(close).await {
                Ok(()) => Ending::TargetClosed,
                // The client closed first (its Close is being handled): that ends
                // the bridge, once what it sent before it is written.
                Err(WsError::AlreadyClosed) => std::future::pending().await,
                Err(e) => classify_ws_error(e),
            };
        }
        activity.moved();
        shared.down.fetch_add(n as u64, Relaxed);
        metrics.bytes(Direction::TargetToClient, n);
    }
    // `client_to_target` has read the client's Close while it still writes the
    // messages before it to the target. Nothing more can go to the client, but the
    // target is read on (what it sends is dropped) so that it keeps taking those
    // messages; `client_to_target` then ends the bridge as ClientClosed. On the heap:
    // an array would add its size to every bridge's task.
    let mut scratch = vec![0u8; 4096];
    while let Ok(1..) = target.read(&mut scratch).await {}
    std::future::pending().await
}

/// How one spliced frame went.
pub(super) enum Spliced {
    /// A frame of this many bytes was written to the client.
    Frame(usize),
    /// Nothing was spliced: the next read copies.
    Copy,
    /// The target's EOF.
    Eof,
    /// The client's Close has been read: no more frames may go to it.
    ClientDone,
    Failed(Ending),
}

/// Moves the next bytes of the target to the client in one spliced frame (see
/// [`crate::splice`]), after what the codec has queued.
pub(super) async fn spliced_frame<S>(
    splicer: &Splicer,
    socket: &TcpStream,
    sink: &mut S,
    client_done: &AtomicBool,
    cancel: &CancellationToken,
) -> Spliced
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let started = own_frame(splicer, sink, client_done, cancel, |cx| {
        splicer.poll_splice_in(socket, crate::splice::MAX_FRAME, cx)
    });
    match started.await {
        Ok(SpliceIn::Eof) => Spliced::Eof,
        Ok(SpliceIn::Copy) => Spliced::Copy,
        Ok(SpliceIn::Frame(n)) => match finish_frame(splicer).await {
            Ok(()) => Spliced::Frame(n),
            Err(spliced) => spliced,
        },
        Err(spliced) => spliced,
    }
}

/// Moves the target's next bytes (at most `max`) to the client in one frame copied through the
/// runtime thread's scratch buffer (see [`Splicer::poll_copy_in`]), after what the codec has
/// written and the rest of the frame before.
pub(super) async fn copied_frame<R, S>(
    splicer: &Splicer,
    target: &mut R,
    max: usize,
    sink: &mut S,
    shared: &Shared,
    cancel: &CancellationToken,
) -> Spliced
where
    R: AsyncRead + Unpin,
    S: Sink<Message, Error = WsError> + Unpin,
{
    let started = own_frame(splicer, sink, &shared.client_done, cancel, |cx| {
        splicer.poll_copy_in(target, max, cx)
    });
    // Counted as sent now: what the socket did not take is held, and goes before the next
    // frame or the codec's next byte (the Close included), even once this pump has stopped.
    match started.await {
        Ok(CopyIn::Eof) => Spliced::Eof,
        Ok(CopyIn::Frame(n)) => Spliced::Frame(n),
        Err(spliced) => spliced,
    }
}

/// Starts a frame of the bridge's own with `start` (a target read, copied or spliced), once
/// the rest of the frame before is written and the codec is not in the middle of one; an
/// error of `start`'s is the target's.
async fn own_frame<S, T>(
    splicer: &Splicer,
    sink: &mut S,
    client_done: &AtomicBool,
    cancel: &CancellationToken,
    mut start: impl FnMut(&mut std::task::Context<'_>) -> Poll<io::Result<T>>,
) -> Result<T, Spliced>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    // The frame before, if the client's socket did not take all of it at once.
    finish_frame(splicer).await?;
    poll_fn(|cx| {
        if client_done.load(Relaxed) {
            return Poll::Ready(Err(Spliced::ClientDone));
        }
        std::task::ready!(poll_codec_idle(splicer, sink, cx))?;
        start(cx).map_err(|e| Spliced::Failed(target_failed(e, cancel)))
    })
    .await
}

/// Writes the rest of the bridge's frame in progress, if any; an error is the client's.
async fn finish_frame(splicer: &Splicer) -> Result<(), Spliced> {
    poll_fn(|cx| splicer.poll_frame(cx))
        .await
        .map_err(|e| Spliced::Failed(classify_ws_error(WsError::Io(e))))
}

/// Ready once the codec cannot be in the middle of a frame on the client's socket, so a frame
/// of the bridge's own may start: at once unless the codec has written since it was last seen
/// idle, else once its flush finishes. The caller starts its frame in the same poll, so
/// nothing of the codec's can begin in between.
fn poll_codec_idle<S>(
    splicer: &Splicer,
    sink: &mut S,
    cx: &mut std::task::Context<'_>,
) -> Poll<Result<(), Spliced>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if splicer.codec_wrote() {
        match std::task::ready!(sink.poll_flush_unpin(cx)) {
            Ok(()) => splicer.codec_idle(),
            Err(e) => return Poll::Ready(Err(Spliced::Failed(classify_ws_error(e)))),
        }
    }
    Poll::Ready(Ok(()))
}

/// The buffer target bytes are read into, sized by [`ReadSize`]: bulk transfers use few large
/// frames while quiet bridges hold little memory. Frames are split off without copying; the
/// allocation is reused once the frame has been dropped.
#[derive(Default)]
pub(super) struct TargetBuf {
    pub(super) buf: BytesMut,
    pub(super) size: ReadSize,
    /// The size of the last read, copied or spliced.
    last: usize,
}

impl TargetBuf {
    /// Reads once from `reader`, at most the current read size. A grown buffer is let go
    /// while the read waits: a bridge that falls quiet after a bulk transfer holds nothing
    /// large (the next read allocates it again).
    pub(super) fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<usize>> {
        let size = self.size.get();
        self.buf.reserve(size);
        let mut limited = (&mut self.buf).limit(size);
        let read = tokio_util::io::poll_read_buf(std::pin::Pin::new(reader), cx, &mut limited);
        if read.is_pending() && size > TARGET_READ_MIN && self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        read
    }

    /// Whether reads have grown to their largest size: the target sends in bulk.
    pub(super) fn is_bulk(&self) -> bool {
        self.size.get() == TARGET_READ_MAX
    }

    /// Whether the next frame should be spliced: the target sends in bulk, in reads large
    /// enough that saving their copies outweighs a spliced frame's extra syscall.
    pub(super) fn splices(&self) -> bool {
        self.is_bulk() && self.last >= SPLICE_MIN
    }

    /// Records a copied frame of `n` bytes, which took no buffer of the bridge's.
    pub(super) fn record_copied(&mut self, n: usize) {
        self.size.record(n);
        self.last = n;
    }

    /// Records a spliced frame of `n` bytes, which took no buffer (the one from before goes).
    pub(super) fn record_spliced(&mut self, n: usize) {
        self.buf = BytesMut::new();
        self.size.record(n);
        self.last = n;
    }

    /// The `n` bytes just read, as a frame payload; adapts the size of the next read.
    pub(super) fn take(&mut self, n: usize) -> Bytes {
        let before = self.size.get();
        self.size.record(n);
        self.last = n;
        let frame = self.buf.split().freeze();
        if self.size.get() < before {
            // The large allocation goes when the frame does.
            self.buf = BytesMut::new();
        }
        frame
    }
}
