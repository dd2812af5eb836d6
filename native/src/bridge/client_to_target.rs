//! The pump from the client to the target: client messages, coalesced, written to the target.
//!
//! A client message is read only after the previous ones were written to the target, so a
//! slow target slows the client down and the bridge holds at most [`COALESCE_MAX`] bytes plus
//! one message. Messages that have already arrived go out in one write: pipelined small
//! messages then cost one syscall, not one each.

use std::future::{poll_fn, Future};
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{Error as WsError, Message};

use super::ending::{classify_ws_error, target_failed, Ending};
use super::Shared;
use crate::metrics::{Direction, Metrics};

/// Client messages already received are written to the target together, up to this many bytes.
pub(super) const COALESCE_MAX: usize = 16 * 1024;

/// Moves the client's messages to `target` until the client's Close (after which the target's
/// input is shut down, so it sees EOF as the client intended), its end, or a failure.
pub(super) async fn client_to_target<S, W>(
    stream: &mut S,
    target: &mut W,
    shared: &Shared,
    metrics: &Metrics,
    cancel: &CancellationToken,
) -> Ending
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
    W: AsyncWrite + Unpin,
{
    // A message that ended a batch, to handle before reading the next one.
    let mut pending: Option<Step> = None;
    // The stream's last poll said "not yet", with this pump's waker, and the pump has not
    // waited since: no wake-up can have been spent, so polling it again at once would only
    // say "not yet" again (a trip through the codec down to the socket, the dearest part of
    // a small message). The pump waits for that wake-up instead.
    let mut asked = false;
    loop {
        let step = match pending.take() {
            Some(step) => step,
            None => shared.step(next(stream, std::mem::take(&mut asked)).await),
        };
        let first = match step {
            Step::Data(data) => data,
            Step::Skip => continue,
            Step::Close(code) => {
                // Everything before the Close is already written; now end the target's
                // input so it sees EOF, as the client intended.
                let _ = target.shutdown().await;
                return Ending::ClientClosed(code);
            }
            Step::End(ending) => return ending,
        };
        // Polling never waits, and at most COALESCE_MAX bytes plus one message are held, so
        // buffering stays bounded and backpressure holds. It polls with this task's context,
        // not a no-op one: the codec may write (a pong) while it reads, and a write that waits
        // must leave a waker that wakes this task.
        let mut len = first.len();
        let mut batch: Option<Vec<u8>> = None;
        let mut drained = false;
        while len < COALESCE_MAX {
            let Some(next) = poll_fn(|cx| Poll::Ready(poll_now(stream, cx))).await else {
                drained = true;
                break;
            };
            match shared.step(next) {
                Step::Skip => {}
                Step::Data(data) if len + data.len() <= COALESCE_MAX => {
                    let batch = batch.get_or_insert_with(|| {
                        let mut b = Vec::with_capacity((4 * len).min(COALESCE_MAX));
                        b.extend_from_slice(&first);
                        b
                    });
                    batch.extend_from_slice(&data);
                    len += data.len();
                }
                other => {
                    pending = Some(other);
                    break;
                }
            }
        }
        let bytes = batch.as_deref().unwrap_or(&first);
        let mut write = std::pin::pin!(target.write_all(bytes));
        let mut waited = false;
        let written = poll_fn(|cx| {
            let poll = write.as_mut().poll(cx);
            waited |= poll.is_pending();
            poll
        });
        if let Err(e) = written.await {
            return target_failed(e, cancel);
        }
        asked = drained && !waited;
        shared.up.fetch_add(len as u64, Relaxed);
        metrics.bytes(Direction::ClientToTarget, len);
    }
}

/// What the client side of the bridge got.
pub(super) enum Step {
    /// Payload bytes for the target: a binary message's payload or a text message's UTF-8 bytes.
    Data(Bytes),
    /// A control frame: the codec answers pings itself.
    Skip,
    /// The client's Close, with its code (1005 when it gave none).
    Close(u16),
    End(Ending),
}

impl From<Option<Result<Message, WsError>>> for Step {
    fn from(msg: Option<Result<Message, WsError>>) -> Step {
        match msg {
            Some(Ok(m)) if m.is_binary() || m.is_text() => Step::Data(m.into_payload().into()),
            Some(Ok(m)) => match m.as_close() {
                Some((code, _)) => Step::Close(code.into()),
                None => Step::Skip,
            },
            Some(Err(e)) => Step::End(classify_ws_error(e)),
            None => Step::End(Ending::ClientGone),
        }
    }
}

/// The stream's next item; when `asked`, the stream was just polled with this pump's waker and
/// said "not yet", and the first poll only waits for its wake-up.
async fn next<S: Stream + Unpin>(stream: &mut S, mut asked: bool) -> Option<S::Item> {
    poll_fn(|cx| {
        if std::mem::take(&mut asked) {
            return Poll::Pending;
        }
        stream.poll_next_unpin(cx)
    })
    .await
}

/// The stream's next item if it is ready now; `None` if it would wait (the task is then woken
/// when it is ready, which a bridge that has moved on simply ignores).
pub(super) fn poll_now<S: Stream + Unpin>(
    stream: &mut S,
    cx: &mut std::task::Context<'_>,
) -> Option<Option<S::Item>> {
    match stream.poll_next_unpin(cx) {
        Poll::Ready(item) => Some(item),
        Poll::Pending => None,
    }
}
