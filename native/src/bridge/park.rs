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
//!   WebSocket libraries send a message as one frame. A frame that is only partly read makes
//!   the read bytes outnumber the computed ones, and so, nearly always, does a message sent in
//!   fragments (their headers take more room than one frame's): such a codec is not parked.
//!   The count never overstates what was consumed, so where the two agree the codec holds
//!   nothing and no message is in progress;
//! - nothing to write: every frame given to it, and the Pong it queues for each Ping, has been
//!   flushed since;
//! - no Close or error seen: the bridge is ending.
//!
//! The new codec starts where the old one stopped, at a frame boundary with no message in
//! progress, with the same limits; its state is otherwise that of a codec between messages.
//!
//! ## The direct path
//!
//! The same count tells when the codec holds no byte and no message in progress. Then, and
//! while nothing is queued to write and no Close or error has been seen, a client's next
//! frame is read without the codec (`Codec::poll_direct`): the socket is read into the
//! runtime thread's input buffer, and a complete, final, masked binary frame in the shortest
//! length form, within `--max-message`, is unmasked there and handed out as the codec would
//! hand it out. What the read brought past it waits in the bridge's [`Watched`] for the next
//! poll (the socket is not read again until it is used up). Any other frame (text, control,
//! a fragment, one only partly read, anything the codec would refuse) is given back there,
//! with every byte after it, and so are the waiting bytes whenever the codec must read (the
//! bridge queued something to write, or closes): every read returns them before the socket's,
//! so the codec sees exactly the bytes it would have seen, from a frame boundary, and decides
//! as before. A small message thus costs one read and a few dozen instructions of decoding
//! instead of a trip through the codec's buffers and queues. After a frame longer than one
//! read of the direct path, the codec reads until it hands out a short message: a direct read
//! of such a frame's start would only be given back.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::bytes::{Buf, Bytes};
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

/// The most the direct path reads from a client at once, and so the most it holds for a
/// bridge (what a read brought past the frame handed out). As much as a bridge coalesces into
/// one target write; larger frames are the codec's (it reads them whole).
const INPUT_LEN: usize = super::client_to_target::COALESCE_MAX;

/// A message the codec hands out shorter than this turns the direct path back on after long
/// frames.
const SHORT_MESSAGE: usize = INPUT_LEN / 4;

thread_local! {
    /// Where the direct path reads a client's frames: one buffer per runtime thread, not one
    /// per bridge. A read is decoded in the poll that made it; what it brought past the frame
    /// handed out is copied to the bridge.
    static INPUT: RefCell<Box<[u8]>> = RefCell::new(vec![0; INPUT_LEN].into_boxed_slice());
}

/// Where the direct path may take a frame at the start of `bytes` itself (see the module's
/// documentation): the lengths of its header and its payload. `None` for every frame the codec
/// must see, and for one that is not all there.
fn direct_frame(bytes: &[u8], max_message: usize) -> Option<(usize, usize)> {
    // FIN, no reserved bit, binary; masked.
    let (&[0x82, second], rest) = bytes.split_first_chunk::<2>()? else {
        return None;
    };
    if second & 0x80 == 0 {
        return None;
    }
    let (len, extended) = match second & 0x7f {
        126 => {
            let len = usize::from(u16::from_be_bytes(*rest.first_chunk::<2>()?));
            (len, 2)
        }
        127 => {
            let len = u64::from_be_bytes(*rest.first_chunk::<8>()?);
            (usize::try_from(len).ok()?, 8)
        }
        short => (usize::from(short), 0),
    };
    // The shortest length form only (the codec refuses others), within the limit.
    let shortest = match extended {
        0 => true,
        2 => len > 125,
        _ => len > 0xffff,
    };
    let header = 2 + extended + 4;
    let whole = bytes
        .len()
        .checked_sub(header)
        .is_some_and(|payload| payload >= len);
    (shortest && len <= max_message && whole).then_some((header, len))
}

/// Whether the frame at the start of `bytes` (as far as its header is there) is longer than
/// one read of the direct path: the codec reads such frames, and the messages after them, until
/// it hands out a small one.
fn too_long_to_read_directly(bytes: &[u8]) -> bool {
    let Some(&[_, second]) = bytes.first_chunk::<2>() else {
        return false;
    };
    let (len, extended) = match second & 0x7f {
        126 => match bytes.get(2..4) {
            Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 2),
            _ => return false,
        },
        127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(len) => (u64::from_be_bytes(len), 8),
            None => return false,
        },
        short => (u64::from(short), 0),
    };
    let header = 2 + extended + if second & 0x80 != 0 { 4 } else { 0 };
    len.saturating_add(header) > INPUT_LEN as u64
}

/// Unmasks a direct frame in place: its header's last four bytes are the masking key.
fn unmask(frame: &mut [u8], header: usize) {
    let (head, payload) = frame.split_at_mut(header);
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&head[header - 4..]);
    key[4..].copy_from_slice(&head[header - 4..]);
    let wide = u64::from_ne_bytes(key);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
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
    /// The client sends frames too long for the direct path: the codec reads them all (a
    /// direct read would only be given back, a copy for nothing) until it hands out a small
    /// message.
    long_frames: bool,
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
            long_frames: false,
        }
    }

    /// The client's next message read without the codec, if the direct path may read it (see
    /// the module's documentation); `Ready(None)` when the codec must: what was read is then
    /// given back to it.
    fn poll_direct(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Option<Result<Message, WsError>>>> {
        let State::Live(ws) = &mut self.state else {
            return Poll::Ready(None);
        };
        let io = ws.get_mut();
        // Something queued to write, or a Close or an error seen: the codec reads (it flushes
        // as it reads, and it alone knows a closing stream's state).
        let codec_reads = self.ended || self.unflushed || self.long_frames;
        let read = io.bytes_read();
        if let Some(ahead) = io.ahead() {
            // Read right after the frames handed out, which only the direct path hands out
            // until it gives the rest back.
            debug_assert_eq!(read - ahead.len() as u64, self.consumed);
            // Whenever the codec reads, it reads these first.
            let frame = direct_frame(ahead, self.max_message).filter(|_| !codec_reads);
            let Some((header, len)) = frame else {
                io.give_back();
                return Poll::Ready(None);
            };
            let mut frame = ahead.split_to(header + len);
            io.drop_ahead_if_empty();
            unmask(&mut frame, header);
            frame.advance(header);
            self.consumed += (header + len) as u64;
            return Poll::Ready(Some(Some(Ok(Message::binary(frame.freeze())))));
        }
        if codec_reads || read != self.consumed {
            return Poll::Ready(None);
        }
        INPUT.with(|input| {
            let mut input = input.borrow_mut();
            let mut buf = ReadBuf::new(&mut input[..]);
            if let Err(e) = std::task::ready!(Pin::new(&mut *io).poll_read(cx, &mut buf)) {
                self.ended = true;
                return Poll::Ready(Some(Some(Err(WsError::Io(e)))));
            }
            let n = buf.filled().len();
            let read = &mut input[..n];
            if n == 0 {
                // The end of the stream: the codec reads it again and ends as it does.
                return Poll::Ready(None);
            }
            let Some((header, len)) = direct_frame(read, self.max_message) else {
                self.long_frames = too_long_to_read_directly(read);
                io.keep_ahead(read);
                io.give_back();
                return Poll::Ready(None);
            };
            let (frame, rest) = read.split_at_mut(header + len);
            io.keep_ahead(rest);
            unmask(frame, header);
            self.consumed += (header + len) as u64;
            let payload = Bytes::copy_from_slice(&frame[header..]);
            Poll::Ready(Some(Some(Ok(Message::binary(payload)))))
        })
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
            State::Live(_) => {
                if let Some(item) = std::task::ready!(this.poll_direct(cx)) {
                    return Poll::Ready(item);
                }
                this.live()
            }
        };
        let item = std::task::ready!(ws.poll_next_unpin(cx));
        match &item {
            Some(Ok(message)) => {
                let len = message.as_payload().len();
                this.consumed += client_frame_len(len);
                if len < SHORT_MESSAGE {
                    this.long_frames = false;
                }
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

    /// A client's frame: `first` is its first byte (FIN, RSV, opcode); `form` the length form
    /// (0 the shortest, 2 or 8 a longer one).
    fn raw_frame(first: u8, payload: &[u8], key: [u8; 4], form: usize) -> Vec<u8> {
        let len = payload.len();
        let form = match (form, len) {
            (0, 0..=125) => 0,
            (0, 126..=0xffff) | (2, _) => 2,
            _ => 8,
        };
        let mut frame = vec![first];
        match form {
            0 => frame.push(0x80 | len as u8),
            2 => {
                frame.push(0x80 | 126);
                frame.extend((len as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend((len as u64).to_be_bytes());
            }
        }
        frame.extend(key);
        frame.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        frame
    }

    /// `count` binary frames of `len` bytes each, the i-th of bytes `i`, one after the other.
    fn numbered_frames(count: u8, len: usize) -> Vec<u8> {
        (0..count)
            .flat_map(|i| raw_frame(0x82, &vec![i; len], [i, 2, 3, 4], 0))
            .collect()
    }

    #[test]
    fn the_direct_path_takes_only_whole_binary_frames_in_the_shortest_form() {
        let key = [1, 2, 3, 4];
        for len in [0, 1, 125, 126, 1000, 0xffff, 0x10000] {
            let frame = raw_frame(0x82, &vec![9; len], key, 0);
            let header = frame.len() - len;
            assert_eq!(direct_frame(&frame, 1 << 20), Some((header, len)), "{len}");
            // Followed by more bytes: the same frame.
            let mut more = frame.clone();
            more.extend([0x82, 0x80]);
            assert_eq!(direct_frame(&more, 1 << 20), Some((header, len)));
            // Any part of it: not all there.
            for cut in [0, 1, 2, header - 1, header, frame.len() - 1] {
                if cut < frame.len() {
                    assert_eq!(
                        direct_frame(&frame[..cut], 1 << 20),
                        None,
                        "{len} cut {cut}"
                    );
                }
            }
            // Over the limit.
            if len > 0 {
                assert_eq!(direct_frame(&frame, len - 1), None);
            }
        }
        let payload = b"hello";
        let codec_only = [
            raw_frame(0x81, payload, key, 0),               // text
            raw_frame(0x02, payload, key, 0),               // not final
            raw_frame(0x80, payload, key, 0),               // a continuation
            raw_frame(0x89, payload, key, 0),               // Ping
            raw_frame(0x8a, payload, key, 0),               // Pong
            raw_frame(0x88, &[3, 232], key, 0),             // Close
            raw_frame(0xc2, payload, key, 0),               // RSV1
            raw_frame(0x83, payload, key, 0),               // a reserved opcode
            raw_frame(0x82, payload, key, 2),               // 16-bit form for 5 bytes
            raw_frame(0x82, &vec![0; 300], key, 8),         // 64-bit form for 300 bytes
            vec![0x82, 0x05, b'h', b'e', b'l', b'l', b'o'], // unmasked
        ];
        for frame in codec_only {
            assert_eq!(direct_frame(&frame, 1 << 20), None, "{frame:02x?}");
        }
        // A 64-bit length no machine holds.
        let mut huge = vec![0x82, 0xff];
        huge.extend(u64::MAX.to_be_bytes());
        huge.extend(key);
        assert_eq!(direct_frame(&huge, usize::MAX), None);
    }

    #[test]
    fn unmasking_matches_the_definition_at_every_length() {
        for len in 0..40usize {
            let payload: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let key = [0xa5, 0x3c, 0x0f, 0x81];
            let mut frame = raw_frame(0x82, &payload, key, 0);
            let header = frame.len() - len;
            unmask(&mut frame, header);
            assert_eq!(&frame[header..], &payload[..], "{len}");
        }
    }

    /// A client's stream of frames of every kind the codec takes, in one order.
    fn mixed_frames(seed: u64) -> Vec<u8> {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut bytes = Vec::new();
        for i in 0..60u32 {
            let key = (next() as u32).to_ne_bytes();
            let len = match next() % 8 {
                0 => 0,
                1..=4 => (next() % 130) as usize,
                5 | 6 => (next() % 3000) as usize,
                _ => (next() % 70_000) as usize,
            };
            let payload: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
            match next() % 10 {
                0..=5 => bytes.extend(raw_frame(0x82, &payload, key, 0)),
                6 => bytes.extend(raw_frame(0x81, &vec![b'x'; len], key, 0)),
                7 => bytes.extend(raw_frame(0x89, &payload[..len.min(125)], key, 0)),
                8 => bytes.extend(raw_frame(0x8a, &payload[..len.min(125)], key, 0)),
                _ => {
                    // A message in two fragments, a Ping between them.
                    let (a, b) = payload.split_at(len / 2);
                    bytes.extend(raw_frame(0x02, a, key, 0));
                    bytes.extend(raw_frame(0x89, b"mid", key, 0));
                    bytes.extend(raw_frame(0x80, b, key, 0));
                }
            }
        }
        bytes.extend(raw_frame(0x88, &[3, 232], [9, 9, 9, 9], 0));
        bytes
    }

    /// Kind, length and first bytes of a message.
    fn described(m: &Message) -> String {
        let kind = if m.is_binary() {
            "binary"
        } else if m.is_text() {
            "text"
        } else if m.is_ping() {
            "ping"
        } else if m.is_pong() {
            "pong"
        } else {
            "close"
        };
        let payload = m.as_payload();
        format!(
            "{kind} {} {:?}",
            payload.len(),
            &payload[..payload.len().min(8)]
        )
    }

    /// The bridge's codec (with its direct path) hands out what the codec alone does, message
    /// for message, however the bytes are cut into reads and whenever the relay queues or
    /// flushes messages of its own: frames of every kind, fragments with a Ping between them,
    /// frames over 64 KiB, and streams that end with each kind of frame the codec refuses.
    #[tokio::test]
    async fn the_direct_path_hands_out_what_the_codec_alone_does() {
        let key = [1, 1, 1, 1];
        let mut too_long = vec![0x82, 0xff];
        too_long.extend((2u64 << 20).to_be_bytes());
        too_long.extend(key);
        let refused = [
            raw_frame(0x82, b"short", key, 2),      // a longer length form
            raw_frame(0xc2, b"rsv", key, 0),        // a reserved bit
            vec![0x82, 0x03, 1, 2, 3],              // unmasked
            raw_frame(0x83, b"op", key, 0),         // a reserved opcode
            raw_frame(0x80, b"cont", key, 0),       // a continuation of nothing
            raw_frame(0x81, &[0xff, 0xfe], key, 0), // text that is not UTF-8
            raw_frame(0x09, b"ping", key, 0),       // a fragmented control frame
            too_long,                               // over --max-message
        ];
        // Each refused frame right after two the direct path takes.
        for (i, frame) in refused.iter().enumerate() {
            let mut bytes = raw_frame(0x82, &[1; 10], key, 0);
            bytes.extend(raw_frame(0x82, &[2; 10], key, 0));
            bytes.extend(frame);
            for seed in [1, 2, 3] {
                let plain = read_all(
                    |io| crate::bridge::codec_builder(1 << 20).serve(io),
                    bytes.clone(),
                    seed,
                )
                .await;
                let bridged = read_all(server, bytes.clone(), seed).await;
                assert_eq!(plain.len(), 3, "{plain:?}");
                assert!(plain[2].starts_with("error"), "{plain:?}");
                assert_eq!(plain, bridged, "refused frame {i}");
            }
        }
        for seed in 1..=32u64 {
            let mut bytes = mixed_frames(seed);
            if seed % 2 == 0 {
                // Ends with a frame the codec refuses instead of the Close.
                let close = raw_frame(0x88, &[3, 232], [9, 9, 9, 9], 0).len();
                bytes.truncate(bytes.len() - close);
                bytes.extend(&refused[(seed as usize / 2) % refused.len()]);
            }
            let plain = read_all(
                |io| crate::bridge::codec_builder(1 << 20).serve(io),
                bytes.clone(),
                seed,
            )
            .await;
            let bridged = read_all(server, bytes, seed).await;
            assert!(plain.len() > 50, "{plain:?}");
            assert_eq!(plain, bridged, "seed {seed}");
        }
    }

    #[tokio::test]
    async fn frames_read_together_are_handed_out_in_order_and_then_it_parks() {
        let (mut codec, mut client) = raw_pair();
        client.write_all(&numbered_frames(50, 64)).await.unwrap();
        for i in 0..50u8 {
            let got = next_now(&mut codec).await;
            assert_eq!(got.as_payload().to_vec(), vec![i; 64]);
            // The rest waits in the bridge: not parked until it is handed out.
            assert_eq!(codec.park(Waker::noop()), i == 49, "after {i}");
        }
        // Read on from a parked codec, then with the direct path again.
        client
            .write_all(&raw_frame(0x82, b"next", [5, 6, 7, 8], 0))
            .await
            .unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().to_vec(), b"next");
        client
            .write_all(&raw_frame(0x82, b"again", [5, 6, 7, 8], 0))
            .await
            .unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().to_vec(), b"again");
        assert!(codec.park(Waker::noop()));
    }

    /// Frames read ahead are the codec's to hand out once the bridge has queued something to
    /// write (or the codec has seen a Close): they come before anything the socket has next.
    #[tokio::test]
    async fn frames_read_ahead_go_to_the_codec_when_it_must_read() {
        let (mut codec, mut client) = raw_pair();
        client.write_all(&numbered_frames(4, 10)).await.unwrap();
        assert_eq!(
            next_now(&mut codec).await.as_payload().to_vec(),
            vec![0; 10]
        );
        futures_util::future::poll_fn(|cx| codec.poll_ready_unpin(cx))
            .await
            .unwrap();
        codec.start_send_unpin(Message::text("queued")).unwrap();
        client
            .write_all(&raw_frame(0x82, b"later", [1, 2, 3, 4], 0))
            .await
            .unwrap();
        for i in 1..4u8 {
            assert_eq!(
                next_now(&mut codec).await.as_payload().to_vec(),
                vec![i; 10]
            );
        }
        codec.flush().await.unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().to_vec(), b"later");
        assert!(codec.park(Waker::noop()));
    }

    /// The closing handshake reads through the codec without the direct path: the frames read
    /// ahead, the last of them cut short, come first, and it ends at the client's Close (a codec
    /// that began mid-frame would end at once on the error, leaving the client's upload unread).
    #[tokio::test]
    async fn closing_reads_the_frames_read_ahead_first() {
        let (mut codec, mut client) = raw_pair();
        let bytes = numbered_frames(4, 300);
        let cut = bytes.len() - 100;
        client.write_all(&bytes[..cut]).await.unwrap();
        assert_eq!(
            next_now(&mut codec).await.as_payload().to_vec(),
            vec![0; 300]
        );
        client.write_all(&bytes[cut..]).await.unwrap();
        let mut closing = std::pin::pin!(codec.close());
        assert!(
            futures_util::poll!(&mut closing).is_pending(),
            "the client's Close is still to come"
        );
        client
            .write_all(&raw_frame(0x88, &[3, 232], [5, 6, 7, 8], 0))
            .await
            .unwrap();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), closing);
        closed.await.unwrap().unwrap();
        let mut answer = [0u8; 4];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [0x88, 2, 3, 232], "the relay's Close");
    }

    #[test]
    fn frames_longer_than_a_direct_read_are_told_by_their_header() {
        let key = [1, 2, 3, 4];
        let fits = INPUT_LEN - 8; // 16-bit length form: 8 bytes of header
        for (len, long) in [(0, false), (125, false), (fits, false), (fits + 1, true)] {
            let frame = raw_frame(0x82, &vec![0; len], key, 0);
            assert_eq!(too_long_to_read_directly(&frame), long, "{len}");
        }
        let frame = raw_frame(0x82, &vec![0; 70_000], key, 0);
        assert!(
            too_long_to_read_directly(&frame[..10]),
            "the header is enough"
        );
        assert!(
            !too_long_to_read_directly(&frame[..9]),
            "not all of the header"
        );
        assert!(too_long_to_read_directly(&raw_frame(
            0x81,
            &vec![0; 20_000],
            key,
            0
        )));
    }

    /// After a frame too long for the direct path, the codec reads until it hands out a short
    /// message; every message arrives whole and in order either way.
    #[tokio::test]
    async fn long_frames_stay_with_the_codec_until_a_short_message() {
        let (mut codec, mut client) = raw_pair();
        let key = [7, 7, 7, 7];
        for (len, long_after) in [(100, false), (40_000, true), (10_000, true), (100, false)] {
            client
                .write_all(&raw_frame(0x82, &vec![3; len], key, 0))
                .await
                .unwrap();
            assert_eq!(
                next_now(&mut codec).await.as_payload().to_vec(),
                vec![3; len]
            );
            assert_eq!(codec.long_frames, long_after, "after {len}");
        }
        assert!(codec.park(Waker::noop()));
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_the_codecs_error() {
        let (near, mut client) = duplex(1 << 16);
        let mut codec = Codec::serve(100, super::super::idle::Activity::default().watch(near));
        client
            .write_all(&raw_frame(0x82, &[1; 100], [1, 2, 3, 4], 0))
            .await
            .unwrap();
        assert_eq!(next_now(&mut codec).await.as_payload().len(), 100);
        client
            .write_all(&raw_frame(0x82, &[1; 101], [1, 2, 3, 4], 0))
            .await
            .unwrap();
        match codec.next().await {
            Some(Err(WsError::PayloadTooLong {
                len: 101,
                max_len: 100,
            })) => {}
            other => panic!("{other:?}"),
        }
        assert!(!codec.park(Waker::noop()));
    }

    /// What a server reading `bytes`, given in pieces of the sizes `cuts` draws from, hands
    /// out: each message's kind and payload, then its error or end.
    async fn read_all<S>(
        make: impl FnOnce(DuplexStream) -> S,
        bytes: Vec<u8>,
        seed: u64,
    ) -> Vec<String>
    where
        S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    {
        let (near, mut far) = duplex(1 << 22);
        let mut server = make(near);
        let mut rng = seed | 1;
        let mut sends = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        let writer = async move {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let n = match rng % 4 {
                    0 => 1 + (rng >> 8) as usize % 7,
                    1 => 1 + (rng >> 8) as usize % 200,
                    _ => 1 + (rng >> 8) as usize % 100_000,
                }
                .min(rest.len());
                far.write_all(&rest[..n]).await.unwrap();
                rest = &rest[n..];
                tokio::task::yield_now().await;
            }
            far
        };
        let reader = async {
            let mut seen = Vec::new();
            while let Some(item) = server.next().await {
                sends ^= sends << 13;
                sends ^= sends >> 7;
                sends ^= sends << 17;
                // Now and then the relay queues a message of its own, flushed or not yet, while
                // the stream is open.
                if matches!(&item, Ok(m) if !m.is_close()) {
                    if sends.is_multiple_of(5) {
                        let ready = futures_util::future::poll_fn(|cx| server.poll_ready_unpin(cx));
                        ready.await.unwrap();
                        server
                            .start_send_unpin(Message::binary(&b"down"[..]))
                            .unwrap();
                    }
                    if sends.is_multiple_of(7) {
                        server.flush().await.unwrap();
                    }
                }
                match item {
                    Ok(m) => seen.push(described(&m)),
                    Err(e) => {
                        seen.push(format!("error {e}"));
                        break;
                    }
                }
            }
            seen
        };
        // A server that waits for more than the stream holds says so instead of hanging.
        let reader = async {
            match tokio::time::timeout(std::time::Duration::from_secs(10), reader).await {
                Ok(seen) => seen,
                Err(_) => vec!["waits for more".to_owned()],
            }
        };
        let (seen, _far) = tokio::join!(reader, writer);
        seen
    }
}
