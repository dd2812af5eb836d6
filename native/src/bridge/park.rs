//! The client's WebSocket codec, which gives its buffers back while nothing moves.
//!
//! The codec's read buffer (8 KiB when it is made) and its frame queue are most of an idle
//! bridge's memory. [`Codec`] drops them when the idle watch finds the bridge quiet
//! ([`Client::park`]) and makes a new codec on the same socket when the client's next byte
//! comes or the bridge writes to the client. Waiting for that byte needs no codec: it is read
//! alone, held by the socket's [`Watched`] layer, and read again by the new codec first. A
//! bridge whose pumps are polled on every wake-up of its task (a TLS client) thus keeps its
//! codec parked through wake-ups that bring the client nothing.
//!
//! Parking must lose nothing, so a codec is parked only when it holds nothing:
//! - nothing read and not yet handed out: the bytes read from the socket (counted below the
//!   codec by its [`Watched`]) are exactly the frames of the messages handed out. The frames'
//!   sizes follow from the messages' payloads: a client's frame is masked and has the
//!   shortest length form (RFC 6455 5.2; the codec refuses any other), and browsers and
//!   WebSocket libraries send a message as one frame. A frame that is only partly read, or
//!   a message sent in fragments, make the read bytes outnumber the computed ones: such a
//!   codec is not parked (the count never overstates what was consumed, so it never says
//!   "empty" when it is not; a client that fragments keeps its codec);
//! - nothing to write: every frame given to it, and the Pong it queues for each Ping, has been
//!   flushed since;
//! - no Close or error seen: the bridge is ending.
//!
//! The new codec starts where the old one stopped, at a frame boundary with no message in
//! progress, with the same limits; its state is otherwise that of a codec between messages.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_websockets::{Error as WsError, Message, WebSocketStream};

use super::idle::Watched;
use super::Client;

/// The bytes of a client's frame that carries `payload` bytes: the header with the shortest
/// length form and the masking key, and the payload.
fn client_frame_len(payload: usize) -> u64 {
    let extended = if payload < 126 {
        0
    } else if payload <= 0xffff {
        2
    } else {
        8
    };
    payload as u64 + 2 + extended + 4
}

enum State<I> {
    /// Boxed: a parked codec does not keep its room either.
    Live(Box<WebSocketStream<Watched<I>>>),
    /// No codec: the socket, and whom to tell when the next one is made.
    Parked(Watched<I>, Waker),
    /// Only while changing from one to the other.
    Changing,
}

/// The server side of a WebSocket on `I` that can be parked (see the module's documentation).
pub struct Codec<I> {
    state: State<I>,
    /// `--max-message`: what every codec of the bridge is made with (`super::codec_builder`).
    max_message: usize,
    /// The bytes of the frames handed out, as the client sends them.
    consumed: u64,
    /// Something was queued for the client (a message, or the codec's Pong) and not yet
    /// flushed.
    unflushed: bool,
    /// A Close or an error was seen: the codec is never parked again.
    ended: bool,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Codec<I> {
    /// A server WebSocket on `io`, an upgraded connection, that refuses messages over
    /// `max_message` bytes.
    pub fn serve(max_message: usize, io: Watched<I>) -> Self {
        Codec {
            state: State::Live(Box::new(super::codec_builder(max_message).serve(io))),
            max_message,
            consumed: 0,
            unflushed: false,
            ended: false,
        }
    }

    /// The codec, made anew if it was parked.
    fn live(&mut self) -> &mut WebSocketStream<Watched<I>> {
        if let State::Parked(..) = self.state {
            if let State::Parked(io, unparked) = std::mem::replace(&mut self.state, State::Changing)
            {
                let builder = super::codec_builder(self.max_message);
                self.state = State::Live(Box::new(builder.serve(io)));
                unparked.wake();
            }
        }
        match &mut self.state {
            State::Live(ws) => ws,
            // Only `park` leaves the state changing, and not past its return.
            State::Parked(..) | State::Changing => unreachable!("codec left mid-change"),
        }
    }

    /// Notes how a poll that gave `result` changes what the codec holds.
    fn noted<T>(&mut self, result: &Poll<Result<T, WsError>>) {
        if let Poll::Ready(Err(_)) = result {
            self.ended = true;
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Client for Codec<I> {
    fn is_parked(&self) -> bool {
        matches!(self.state, State::Parked(..))
    }

    fn park(&mut self, unparked: &Waker) -> bool {
        let ws = match &self.state {
            State::Live(ws) => ws,
            State::Parked(..) => return true,
            State::Changing => return false,
        };
        if self.ended || self.unflushed || ws.get_ref().bytes_read() != self.consumed {
            return false;
        }
        if let State::Live(ws) = std::mem::replace(&mut self.state, State::Changing) {
            self.state = State::Parked((*ws).into_inner(), unparked.clone());
        }
        true
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Stream for Codec<I> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let ws = match &mut this.state {
            State::Live(ws) => ws,
            State::Parked(io, _) => {
                // The client's next byte is waited for without a codec: one is made only when
                // it comes (it is kept for the codec's first read), or the stream's end does.
                if let Err(e) = std::task::ready!(io.poll_next_byte(cx)) {
                    this.ended = true;
                    return Poll::Ready(Some(Err(WsError::Io(e))));
                }
                this.live()
            }
            State::Changing => this.live(),
        };
        let item = std::task::ready!(ws.poll_next_unpin(cx));
        match &item {
            Some(Ok(message)) => {
                this.consumed += client_frame_len(message.as_payload().len());
                if message.is_ping() {
                    // The codec queued its Pong.
                    this.unflushed = true;
                } else if message.is_close() {
                    this.ended = true;
                }
            }
            Some(Err(_)) | None => this.ended = true,
        }
        Poll::Ready(item)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Codec<I> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if this.is_parked() {
            // An empty codec takes a frame at once: the new one is made when it comes.
            return Poll::Ready(Ok(()));
        }
        let result = this.live().poll_ready_unpin(cx);
        this.noted(&result);
        result
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        this.unflushed = true;
        if item.is_close() {
            this.ended = true;
        }
        let result = this.live().start_send_unpin(item);
        if result.is_err() {
            this.ended = true;
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if let State::Parked(io, _) = &mut this.state {
            // Nothing queued: the socket's own flush is all there is to do.
            let result = Pin::new(io).poll_flush(cx).map_err(WsError::Io);
            this.noted(&result);
            return result;
        }
        let result = this.live().poll_flush_unpin(cx);
        if let Poll::Ready(Ok(())) = result {
            this.unflushed = false;
        }
        this.noted(&result);
        result
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        this.ended = true;
        this.live().poll_close_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
    // The client is tungstenite's: another implementation than the relay's codec.
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    use tokio_tungstenite::WebSocketStream as TStream;

    fn server(io: DuplexStream) -> Codec<DuplexStream> {
        let io = super::super::idle::Activity::default().watch(io);
        Codec::serve(1 << 20, io)
    }

    /// A server codec and a raw client socket.
    fn raw_pair() -> (Codec<DuplexStream>, DuplexStream) {
        let (near, far) = duplex(1 << 20);
        (server(near), far)
    }

    /// A client frame as tungstenite writes it (masked, the shortest length form).
    async fn client_frame(message: TMessage) -> Vec<u8> {
        let (near, mut far) = duplex(1 << 21);
        let mut client = TStream::from_raw_socket(near, Role::Client, None).await;
        client.send(message).await.unwrap();
        drop(client);
        let mut bytes = Vec::new();
        far.read_to_end(&mut bytes).await.unwrap();
        bytes
    }

    fn binary(len: usize) -> TMessage {
        TMessage::binary(vec![7u8; len])
    }

    /// The next message, which must be there now.
    async fn next_now(codec: &mut Codec<DuplexStream>) -> Message {
        tokio::time::timeout(std::time::Duration::from_secs(5), codec.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn frame_sizes_are_those_a_client_sends() {
        for len in [0, 1, 125, 126, 127, 0xffff, 0x10000, 200_000] {
            let frame = client_frame(binary(len)).await;
            assert_eq!(client_frame_len(len), frame.len() as u64, "payload {len}");
        }
    }

    #[tokio::test]
    async fn parks_between_messages_and_reads_on_with_a_new_codec() {
        let (mut codec, mut client) = raw_pair();
        for round in 0..3u8 {
            let payload = vec![round; 300];
            client
                .write_all(&client_frame(TMessage::binary(payload.clone())).await)
                .await
                .unwrap();
            let got = next_now(&mut codec).await;
            assert_eq!(got.as_payload().to_vec(), payload);
            assert!(codec.park(Waker::noop()), "round {round}");
            assert!(codec.is_parked());
            assert!(codec.park(Waker::noop()), "still parked");
        }
    }

    #[tokio::test]
    async fn a_frame_read_in_part_keeps_the_codec() {
        let (mut codec, mut client) = raw_pair();
        let frame = client_frame(binary(1000)).await;
        for split in [1, 2, 6, 8, 500, frame.len() - 1] {
            client.write_all(&frame[..split]).await.unwrap();
            // The codec reads what there is and waits for the rest.
            let polled = futures_util::poll!(codec.next());
            assert!(polled.is_pending());
            assert!(!codec.park(Waker::noop()), "split at {split}");
            client.write_all(&frame[split..]).await.unwrap();
            assert_eq!(next_now(&mut codec).await.as_payload().len(), 1000);
            assert!(codec.park(Waker::noop()));
        }
    }

    #[tokio::test]
    async fn two_frames_in_one_read_are_both_handed_out_before_parking() {
        let (mut codec, mut client) = raw_pair();
        let mut bytes = client_frame(TMessage::text("one")).await;
        bytes.extend(client_frame(TMessage::text("two")).await);
        client.write_all(&bytes).await.unwrap();
        assert_eq!(next_now(&mut codec).await.as_text(), Some("one"));
        // The second frame is in the codec's buffer, not yet handed out.
        assert!(!codec.park(Waker::noop()));
        assert_eq!(next_now(&mut codec).await.as_text(), Some("two"));
        assert!(codec.park(Waker::noop()));
    }

    #[tokio::test]
    async fn a_fragmented_message_or_a_longer_length_form_is_never_lost() {
        // A message in two frames: the count no longer matches, so the codec is kept (for good:
        // parking is for clients that send a message as one frame).
        let (mut codec, mut client) = raw_pair();
        let first = [0x02, 0x83, 0, 0, 0, 0, b'a', b'b', b'c'];
        let last = [0x80, 0x82, 0, 0, 0, 0, b'd', b'e'];
        client.write_all(&first).await.unwrap();
        assert!(futures_util::poll!(codec.next()).is_pending());
        assert!(!codec.park(Waker::noop()), "mid-message");
        client.write_all(&last).await.unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().to_vec(), b"abcde");
        assert!(!codec.park(Waker::noop()));
        client
            .write_all(&client_frame(TMessage::text("after")).await)
            .await
            .unwrap();
        assert_eq!(next_now(&mut codec).await.as_text(), Some("after"));

        // Five bytes with the 16-bit length form, not the shortest: the codec refuses it (so
        // frame sizes follow from payloads), and the codec is never parked after an error.
        let (mut codec, mut client) = raw_pair();
        let long_form = [0x82, 0xfe, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5];
        client.write_all(&long_form).await.unwrap();
        assert!(codec.next().await.unwrap().is_err());
        assert!(!codec.park(Waker::noop()));
    }

    #[tokio::test]
    async fn a_pong_not_yet_written_keeps_the_codec() {
        let (near, far) = duplex(1 << 16);
        let mut codec = server(near);
        let mut client = TStream::from_raw_socket(far, Role::Client, None).await;
        client
            .send(TMessage::Ping(b"hi".to_vec().into()))
            .await
            .unwrap();
        assert!(next_now(&mut codec).await.is_ping());
        assert!(!codec.park(Waker::noop()), "the Pong is queued");
        codec.flush().await.unwrap();
        assert!(codec.park(Waker::noop()));
        match client.next().await.unwrap().unwrap() {
            TMessage::Pong(p) => assert_eq!(&p[..], b"hi"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_parked_codec_writes_and_reads_both_ways() {
        let (near, far) = duplex(1 << 16);
        let mut codec = server(near);
        let mut client = TStream::from_raw_socket(far, Role::Client, None).await;
        let unparked = std::sync::Arc::new(Unparked::default());
        assert!(
            codec.park(&Waker::from(unparked.clone())),
            "nothing read or written yet"
        );
        // A flush with nothing queued needs no codec.
        codec.flush().await.unwrap();
        assert!(codec.is_parked());
        assert_eq!(unparked.0.load(Ordering::SeqCst), 0);
        codec.send(Message::binary(&b"down"[..])).await.unwrap();
        assert!(!codec.is_parked());
        assert_eq!(unparked.0.load(Ordering::SeqCst), 1, "told when made anew");
        assert_eq!(client.next().await.unwrap().unwrap(), binary_of(b"down"));
        assert!(codec.park(Waker::noop()));
        client.send(binary_of(b"up")).await.unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().to_vec(), b"up");
        // Closing: never parked again.
        client.close(None).await.unwrap();
        assert!(next_now(&mut codec).await.is_close());
        codec.flush().await.unwrap();
        assert!(!codec.park(Waker::noop()));
    }

    /// A parked codec polled while the client is silent stays parked (no codec is made to
    /// learn that nothing came); the byte that wakes it is read once, into the new codec.
    #[tokio::test]
    async fn a_parked_codec_waits_for_the_client_without_a_codec() {
        let (mut codec, mut client) = raw_pair();
        assert!(codec.park(Waker::noop()));
        for _ in 0..3 {
            assert!(futures_util::poll!(codec.next()).is_pending());
            assert!(codec.is_parked());
        }
        let frame = client_frame(TMessage::text("woken")).await;
        client.write_all(&frame[..1]).await.unwrap();
        assert!(futures_util::poll!(codec.next()).is_pending());
        assert!(!codec.is_parked(), "made anew for the first byte");
        assert!(!codec.park(Waker::noop()), "that byte is in the codec now");
        client.write_all(&frame[1..]).await.unwrap();
        assert_eq!(next_now(&mut codec).await.as_text(), Some("woken"));
        assert!(codec.park(Waker::noop()), "each byte counted once");
        // The client's end while parked: the stream ends, never parked again.
        drop(client);
        assert!(codec.next().await.is_none());
        assert!(!codec.park(Waker::noop()));
    }

    #[tokio::test]
    async fn a_message_sent_but_not_flushed_keeps_the_codec() {
        let (mut codec, _client) = raw_pair();
        futures_util::future::poll_fn(|cx| codec.poll_ready_unpin(cx))
            .await
            .unwrap();
        codec.start_send_unpin(Message::text("queued")).unwrap();
        assert!(!codec.park(Waker::noop()));
        codec.flush().await.unwrap();
        assert!(codec.park(Waker::noop()));
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Unparked(AtomicUsize);

    impl std::task::Wake for Unparked {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn binary_of(bytes: &[u8]) -> TMessage {
        TMessage::binary(bytes.to_vec())
    }
}
