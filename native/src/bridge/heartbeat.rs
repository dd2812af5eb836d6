//! The heartbeat of a bridge (`--ping-interval`, `--ping-timeout`): the relay sends the client
//! a Ping every interval, and a client that sends nothing at all (no Pong, no other frame) for
//! the timeout after a Ping is closed with 1001 "ping timeout", its target reset as for a
//! client that vanished. Pings keep a bridge alive through proxies that cut silent connections
//! (nginx's `proxy_read_timeout` is 60 s by default) and find peers that are gone without a
//! FIN or RST (a laptop closed, a network dropped).
//!
//! Two parts, in the bridge's one task: [`Pinged::watch`] keeps time (it sleeps, so it runs on a
//! paused clock in tests) and decides, and [`Heartbeat`], a layer over the client's WebSocket,
//! sends the Pings it asks for (the sending half of the socket belongs to the downstream pump,
//! so the Ping goes out when the upstream pump next polls the stream, which it does while it
//! waits for the client: the timekeeper wakes it) and notes every frame the client sends.
//!
//! The heartbeat is not traffic: the bytes of the relay's Pings and of the Pongs that answer
//! them are discounted from the bridge's [`Activity`], so `--idle-timeout` still closes a bridge
//! on which nothing else moves.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_websockets::{Error as WsError, Message};

use super::ending::Ending;
use super::idle::Activity;
use super::Client;

/// What the timekeeper and the WebSocket layer of one heartbeat share.
#[derive(Debug, Default)]
pub(super) struct Pinged {
    /// A Ping is to be sent.
    due: AtomicBool,
    /// Frames read from the client, of any kind.
    frames: AtomicU64,
    /// The task's waker as the WebSocket layer last saw it: woken when a Ping is due, so the
    /// stream is polled again even where a `select!` polls only the branch that was woken.
    stream: AtomicWaker,
}

impl Pinged {
    /// Asks for a Ping every `interval` (never when it is zero) and ends as
    /// [`Ending::PingTimeout`] once `timeout` has passed since a Ping with nothing heard from
    /// the client and nothing moved on the bridge (a client whose frames are not being read,
    /// because a slow target holds the upstream pump, is not judged). Never ends otherwise.
    pub(super) async fn watch(
        &self,
        activity: &Activity,
        interval: Duration,
        timeout: Duration,
    ) -> Ending {
        if interval.is_zero() {
            return std::future::pending().await;
        }
        let heard = || (self.frames.load(Relaxed), activity.count());
        let mut next_ping = Instant::now() + interval;
        // The deadline of the oldest unanswered Ping, and what had been heard when it went.
        let mut waiting: Option<(Instant, (u64, u64))> = None;
        loop {
            let wake = waiting.map_or(next_ping, |(deadline, _)| deadline.min(next_ping));
            tokio::time::sleep_until(wake).await;
            let now = Instant::now();
            if let Some((deadline, seen)) = waiting {
                if heard() != seen {
                    waiting = None;
                } else if now >= deadline {
                    return Ending::PingTimeout;
                }
            }
            if now >= next_ping {
                self.due.store(true, Relaxed);
                if waiting.is_none() {
                    waiting = Some((now + timeout, heard()));
                }
                next_ping = now + interval;
                self.stream.wake();
            }
        }
    }
}

/// The client's WebSocket with the heartbeat's Pings sent into it, and its frames noted.
pub(super) struct Heartbeat<'a, W> {
    ws: W,
    pinged: &'a Pinged,
    activity: &'a Activity,
    /// A Ping was queued and is not yet written out.
    flushing: bool,
    /// A Ping was sent and no Pong has come since.
    unanswered: bool,
}

impl<'a, W> Heartbeat<'a, W> {
    pub(super) fn new(ws: W, pinged: &'a Pinged, activity: &'a Activity) -> Self {
        Heartbeat {
            ws,
            pinged,
            activity,
            flushing: false,
            unanswered: false,
        }
    }
}

impl<W: Client> Heartbeat<'_, W> {
    /// Queues the Ping asked for, if the codec takes it now, and writes it out; the writes it
    /// takes are discounted from the activity.
    fn poll_ping(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
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

impl<W: Client> Stream for Heartbeat<'_, W> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.pinged.stream.register(cx.waker());
        if let Err(e) = this.poll_ping(cx) {
            return Poll::Ready(Some(Err(e)));
        }
        let before = this.activity.moves();
        let item = std::task::ready!(this.ws.poll_next_unpin(cx));
        if let Some(Ok(message)) = &item {
            this.pinged.frames.fetch_add(1, Relaxed);
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
