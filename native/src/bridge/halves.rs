//! The client's WebSocket shared by a bridge's two pumps: the upstream one reads it, the
//! downstream one writes to it.
//!
//! Both pumps run in the bridge's one task and each holds the socket only for the length of one
//! poll, never across an await, so the two never want it at once. `futures`' `split` guards it
//! with a lock built for halves in different tasks (a `BiLock`: an `Arc`, and waking the other
//! half when it is released), which cost about 200 instructions per message; here an
//! uncontended `Mutex` (one compare-and-swap to take it, one to give it back; `parking_lot`'s,
//! without the checks for poisoning a std one makes on both) is enough,
//! and it stays sound if a half is ever polled from elsewhere: the other then waits for the
//! length of a poll.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use parking_lot::{Mutex, MutexGuard};
use tokio_websockets::{Error as WsError, Message};

use super::Client;

/// One pump's handle on the shared WebSocket.
pub(super) struct Half<'a, W>(&'a Mutex<W>);

/// Two handles on `ws`, one for each pump.
pub(super) fn halves<W>(ws: &Mutex<W>) -> (Half<'_, W>, Half<'_, W>) {
    (Half(ws), Half(ws))
}

impl<W> Half<'_, W> {
    fn ws(&self) -> MutexGuard<'_, W> {
        // A panic while polling the codec ends the bridge's task, and with it both halves.
        self.0.lock()
    }
}

/// The idle watch's handle on the shared WebSocket, to park its codec (see [`Client::park`]);
/// used between the pumps' polls, never during one.
pub(super) struct Parker<'a, W>(pub(super) &'a Mutex<W>);

impl<W: Client> super::idle::Parks for Parker<'_, W> {
    fn park(&mut self, unparked: &std::task::Waker) -> bool {
        Half(self.0).ws().park(unparked)
    }

    fn is_parked(&self) -> bool {
        Half(self.0).ws().is_parked()
    }
}

impl<W: Client> Stream for Half<'_, W> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ws().poll_next_unpin(cx)
    }
}

impl<W: Client> Sink<Message> for Half<'_, W> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ws().poll_ready_unpin(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.ws().start_send_unpin(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ws().poll_flush_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.ws().poll_close_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::{SinkExt, StreamExt};

    /// Both halves reach the one socket: what one sends, the socket's far end reads, and what
    /// the far end sends, the other half reads.
    #[tokio::test]
    async fn one_half_reads_and_the_other_writes_the_same_socket() {
        let (near, far) = tokio::io::duplex(1024);
        let near = tokio_websockets::ServerBuilder::new().serve(near);
        let mut far = tokio_tungstenite::WebSocketStream::from_raw_socket(
            far,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let cell = Mutex::new(near);
        let (mut reader, mut writer) = halves(&cell);
        writer.send(Message::binary(&b"down"[..])).await.unwrap();
        far.send(tokio_tungstenite::tungstenite::Message::binary(&b"up"[..]))
            .await
            .unwrap();
        let got = far.next().await.unwrap().unwrap();
        assert_eq!(got.into_data(), &b"down"[..]);
        let got = reader.next().await.unwrap().unwrap();
        assert_eq!(&*got.into_payload(), b"up");
    }
}
