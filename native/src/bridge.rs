//! One WebSocket-to-TCP bridge: bytes both ways, exact and in order, with bounded buffering.
//!
//! Generic over the WebSocket (any `Sink` + `Stream` of messages) and the target (any
//! `AsyncRead + AsyncWrite`), so tests can drive it with in-memory pipes.
//!
//! Backpressure comes from never reading ahead: a client message is read only after the previous
//! one was written to the target, and target bytes are read only after the previous frame was
//! flushed to the client. A slow side therefore slows the other, and per-bridge memory is one
//! read buffer per direction plus tungstenite's bounded frame buffers.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::metrics::{Direction, ErrorKind, Metrics};

/// Largest chunk read from the target at once, and so the largest frame sent to the client.
const TARGET_READ_CHUNK: usize = 16 * 1024;

/// How long to wait for the client's answer to our Close before dropping the connection.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Close codes used by the bridge. 1014 (bad gateway) would fit an unreachable target, but
/// common client libraries (tungstenite among them) reject it as a protocol error, so both
/// target failures use 1011 with a reason that tells them apart.
pub mod codes {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
    pub const TARGET_ERROR: u16 = 1011;
}

/// How a bridge ended.
#[derive(Debug)]
pub enum Ending {
    /// The target closed its side; everything it sent was delivered, then Close 1000.
    TargetClosed,
    /// The client sent Close; the target's write side was shut down and the Close answered.
    ClientClosed(Option<CloseFrame>),
    /// The client vanished without a Close (TCP reset or EOF).
    ClientGone,
    /// Reading from or writing to the target failed.
    TargetError(io::Error),
    /// A client message was larger than `--max-message`.
    TooBig,
    /// The client broke the WebSocket protocol.
    Protocol(WsError),
    /// No traffic in either direction for the idle timeout.
    Idle,
    /// The relay is shutting down.
    Shutdown,
}

impl Ending {
    /// The close code sent (or received, for a client Close), for logs.
    pub fn code(&self) -> Option<u16> {
        match self {
            Ending::TargetClosed => Some(codes::NORMAL),
            Ending::ClientClosed(frame) => frame.as_ref().map(|f| u16::from(f.code)),
            Ending::ClientGone => None,
            Ending::TargetError(_) => Some(codes::TARGET_ERROR),
            Ending::TooBig => Some(codes::TOO_BIG),
            Ending::Protocol(_) => Some(codes::PROTOCOL),
            Ending::Idle | Ending::Shutdown => Some(codes::GOING_AWAY),
        }
    }

    /// A short description for the log line.
    pub fn describe(&self) -> String {
        match self {
            Ending::TargetClosed => "target closed".into(),
            Ending::ClientClosed(Some(f)) => format!("client closed ({})", f.code),
            Ending::ClientClosed(None) => "client closed".into(),
            Ending::ClientGone => "client gone".into(),
            Ending::TargetError(e) => format!("target error: {e}"),
            Ending::TooBig => "message too big".into(),
            Ending::Protocol(e) => format!("protocol error: {e}"),
            Ending::Idle => "idle timeout".into(),
            Ending::Shutdown => "relay shutting down".into(),
        }
    }

    fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Ending::TargetError(_) => Some(ErrorKind::Target),
            Ending::TooBig => Some(ErrorKind::TooBig),
            Ending::Protocol(_) | Ending::ClientGone => Some(ErrorKind::Protocol),
            Ending::Idle => Some(ErrorKind::Idle),
            _ => None,
        }
    }
}

/// What a finished bridge reports for its log line.
#[derive(Debug)]
pub struct Report {
    pub client_to_target: u64,
    pub target_to_client: u64,
    pub ending: Ending,
}

/// Settings of one bridge.
#[derive(Debug, Clone)]
pub struct Limits {
    pub idle_timeout: Duration,
    /// Only for the 1009 close reason.
    pub max_message: usize,
}

/// A Close frame with a reason cut to the 123 bytes a control frame allows.
pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_owned().into(),
    }
}

/// Sends a Close frame and waits (bounded) for the client's answer so the close is clean.
pub async fn close_client<W>(ws: &mut W, frame: CloseFrame)
where
    W: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin,
{
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Runs the bridge until either side ends, the idle timeout passes, or `cancel` fires.
pub async fn run<W, T>(
    mut ws: W,
    target: T,
    limits: &Limits,
    cancel: &CancellationToken,
    metrics: &Metrics,
) -> Report
where
    W: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut target_read, mut target_write) = tokio::io::split(target);
    // Shared by the direction futures of this one task; atomics only because the future must
    // be Send. Activity is kept as milliseconds since `started`.
    let started = Instant::now();
    let last_activity = AtomicU64::new(0);
    let touch = || last_activity.store(started.elapsed().as_millis() as u64, Relaxed);
    let up_bytes = AtomicU64::new(0);
    let down_bytes = AtomicU64::new(0);

    let ending = {
        let (mut sink, mut stream) = (&mut ws).split();

        let client_to_target = async {
            while let Some(msg) = stream.next().await {
                let payload = match msg {
                    Ok(Message::Binary(b)) => b,
                    Ok(Message::Text(t)) => t.into(),
                    Ok(Message::Close(frame)) => {
                        // Everything before the Close is already written; now end the target's
                        // input so it sees EOF, as the client intended.
                        let _ = target_write.shutdown().await;
                        return Ending::ClientClosed(frame);
                    }
                    // tungstenite answers pings itself.
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                    Err(e) => return classify_ws_error(e),
                };
                touch();
                if let Err(e) = target_write.write_all(&payload).await {
                    return Ending::TargetError(e);
                }
                up_bytes.fetch_add(payload.len() as u64, Relaxed);
                metrics.bytes(Direction::ClientToTarget, payload.len());
            }
            Ending::ClientGone
        };

        let target_to_client = async {
            let mut buf = vec![0u8; TARGET_READ_CHUNK];
            loop {
                let n = match target_read.read(&mut buf).await {
                    Ok(0) => return Ending::TargetClosed,
                    Ok(n) => n,
                    Err(e) => return Ending::TargetError(e),
                };
                touch();
                let frame = Message::Binary(buf[..n].to_vec().into());
                if let Err(e) = sink.send(frame).await {
                    return classify_ws_error(e);
                }
                down_bytes.fetch_add(n as u64, Relaxed);
                metrics.bytes(Direction::TargetToClient, n);
            }
        };

        let idle = async {
            loop {
                let last = started + Duration::from_millis(last_activity.load(Relaxed));
                let deadline = last + limits.idle_timeout;
                if Instant::now() >= deadline {
                    return Ending::Idle;
                }
                tokio::time::sleep_until(deadline).await;
            }
        };

        tokio::select! {
            ending = client_to_target => ending,
            ending = target_to_client => ending,
            ending = idle => ending,
            () = cancel.cancelled() => Ending::Shutdown,
        }
    };

    match &ending {
        Ending::TargetClosed => {
            close_client(&mut ws, close_frame(codes::NORMAL, "target closed")).await
        }
        Ending::ClientClosed(_) => {
            // Flushes tungstenite's queued answer to the client's Close.
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close()).await;
        }
        Ending::TargetError(e) => {
            let reason = format!("target error: {}", short_io_error(e));
            close_client(&mut ws, close_frame(codes::TARGET_ERROR, &reason)).await;
        }
        Ending::TooBig => {
            let reason = format!("message too big (max {} bytes)", limits.max_message);
            close_client(&mut ws, close_frame(codes::TOO_BIG, &reason)).await;
        }
        Ending::Protocol(_) => {
            close_client(&mut ws, close_frame(codes::PROTOCOL, "protocol error")).await;
        }
        Ending::Idle => close_client(&mut ws, close_frame(codes::GOING_AWAY, "idle timeout")).await,
        Ending::Shutdown => {
            close_client(
                &mut ws,
                close_frame(codes::GOING_AWAY, "relay shutting down"),
            )
            .await;
        }
        Ending::ClientGone => {}
    }
    if let Some(kind) = ending.error_kind() {
        metrics.error(kind);
    }
    Report {
        client_to_target: up_bytes.load(Relaxed),
        target_to_client: down_bytes.load(Relaxed),
        ending,
    }
}

/// Separates a client that simply went away from one that broke the protocol.
fn classify_ws_error(e: WsError) -> Ending {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Capacity(_) => Ending::TooBig,
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_)
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ending::ClientGone,
        other => Ending::Protocol(other),
    }
}

/// `Connection refused`, `Connection reset by peer`: the part of an I/O error a user needs.
pub fn short_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::duplex;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::WebSocketStream;

    /// A bridge between an in-memory WebSocket pair and an in-memory target.
    async fn harness(
        limits: Limits,
    ) -> (
        WebSocketStream<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<Report>,
    ) {
        let (client_io, server_io) = duplex(64 * 1024);
        let (target_near, target_far) = duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let task = tokio::spawn(async move {
            let metrics = Metrics::new();
            run(
                server,
                target_near,
                &limits,
                &CancellationToken::new(),
                &metrics,
            )
            .await
        });
        (client, target_far, task)
    }

    fn limits() -> Limits {
        Limits {
            idle_timeout: Duration::from_secs(30),
            max_message: 1 << 20,
        }
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_then_target_eof_closes_1000() {
        let (mut client, mut target, task) = harness(limits()).await;
        client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        client.send(Message::text("hé")).await.unwrap();
        let mut got = [0u8; 6];
        target.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [1, 2, 3, b'h', 0xc3, 0xa9]);

        target.write_all(b"back").await.unwrap();
        target.shutdown().await.unwrap();
        drop(target);
        let mut received = Vec::new();
        let close = loop {
            match client.next().await.unwrap().unwrap() {
                Message::Binary(b) => received.extend_from_slice(&b),
                Message::Close(f) => break f,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(received, b"back");
        assert_eq!(u16::from(close.unwrap().code), 1000);
        let report = task.await.unwrap();
        assert!(matches!(report.ending, Ending::TargetClosed));
        assert_eq!((report.client_to_target, report.target_to_client), (6, 4));
    }

    #[tokio::test]
    async fn client_close_shuts_target_write_side() {
        let (mut client, mut target, task) = harness(limits()).await;
        client
            .send(Message::binary(b"last words".to_vec()))
            .await
            .unwrap();
        client.close(None).await.unwrap();
        let mut all = Vec::new();
        target.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"last words");
        let report = task.await.unwrap();
        assert!(matches!(report.ending, Ending::ClientClosed(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_bridge_is_closed() {
        let (mut client, _target, task) = harness(Limits {
            idle_timeout: Duration::from_secs(5),
            ..limits()
        })
        .await;
        let msg = client.next().await.unwrap().unwrap();
        match msg {
            Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(task.await.unwrap().ending, Ending::Idle));
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let f = close_frame(1011, &long);
        assert!(f.reason.len() <= 123);
        assert!(f.reason.as_str().chars().all(|c| c == 'é'));
    }
}
