//! How a bridge ends: the [`Ending`]s, the close codes they send, and the closing handshake
//! with the client.

use std::io;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_websockets::proto::ProtocolError;
use tokio_websockets::{CloseCode, Error as WsError, Message};

use super::Client;
use crate::metrics::ErrorKind;

/// How long to wait for the client's answer to our Close before dropping the connection.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// The longest reason a Close frame can carry (125 bytes of payload, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// Close codes used by the bridge. 1014 (bad gateway) would fit an unreachable target, but
/// common client libraries (tungstenite among them) reject it as a protocol error, so both
/// target failures use 1011 with a reason that tells them apart.
pub mod codes {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    /// Never sent: what logs show for a client Close that carried no code.
    pub const NO_STATUS: u16 = 1005;
    /// Never sent: what logs show for a client that went away without a Close.
    pub const ABNORMAL: u16 = 1006;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
    pub const TARGET_ERROR: u16 = 1011;
}

/// How a bridge ended.
#[derive(Debug)]
pub enum Ending {
    /// The target closed its side; everything it sent was delivered, then Close 1000. What the
    /// client sent until it answered that Close was still written to the target.
    TargetClosed,
    /// The client sent Close (with this code; 1005 when it gave none); the target's write side
    /// was shut down and the Close answered.
    ClientClosed(u16),
    /// The client vanished without a Close (TCP reset or EOF); the target connection was
    /// reset.
    ClientGone,
    /// Reading from or writing to the target failed.
    TargetError(io::Error),
    /// A client message was larger than `--max-message`; the target connection was reset.
    TooBig,
    /// The client broke the WebSocket protocol; the target connection was reset.
    Protocol(WsError),
    /// A client message was larger than a UDP datagram can be (this many bytes); the datagram
    /// was not sent.
    DatagramTooBig(usize),
    /// No traffic in either direction for the idle timeout.
    Idle,
    /// The client sent nothing for `--ping-timeout` after a Ping; the target connection was
    /// reset, as for a client that vanished.
    PingTimeout,
    /// The relay is shutting down.
    Shutdown,
}

impl Ending {
    /// The close code sent (or received, for a client Close), for logs; where no code went
    /// over the wire, the code RFC 6455 (7.1.5) reports for that: 1005 for a Close without a
    /// code, 1006 for a connection that ended without a Close.
    pub fn code(&self) -> u16 {
        match self {
            Ending::TargetClosed => codes::NORMAL,
            Ending::ClientClosed(code) => *code,
            Ending::ClientGone => codes::ABNORMAL,
            Ending::TargetError(_) => codes::TARGET_ERROR,
            Ending::TooBig | Ending::DatagramTooBig(_) => codes::TOO_BIG,
            Ending::Protocol(WsError::Protocol(ProtocolError::InvalidUtf8)) => codes::INVALID_DATA,
            Ending::Protocol(_) => codes::PROTOCOL,
            Ending::Idle | Ending::PingTimeout | Ending::Shutdown => codes::GOING_AWAY,
        }
    }

    /// A short description for the log line.
    pub fn describe(&self) -> String {
        match self {
            Ending::TargetClosed => "target closed".into(),
            Ending::ClientClosed(codes::NO_STATUS) => "client closed".into(),
            Ending::ClientClosed(code) => format!("client closed ({code})"),
            Ending::ClientGone => "client gone".into(),
            Ending::TargetError(e) => format!("target error: {}", short_io_error(e)),
            Ending::TooBig => "message too big".into(),
            Ending::DatagramTooBig(max) => datagram_too_big_reason(*max),
            Ending::Protocol(e) => format!("protocol error: {e}"),
            Ending::Idle => "idle timeout".into(),
            Ending::PingTimeout => "ping timeout".into(),
            Ending::Shutdown => "relay shutting down".into(),
        }
    }

    /// Whether the client's stream ended without its Close: the target must then not see a
    /// clean end of stream, which it could take for a complete upload.
    pub(super) fn cuts_client_short(&self) -> bool {
        matches!(
            self,
            Ending::ClientGone
                | Ending::TooBig
                | Ending::DatagramTooBig(_)
                | Ending::Protocol(_)
                | Ending::PingTimeout
        )
    }

    pub(super) fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Ending::TargetError(_) => Some(ErrorKind::Target),
            Ending::TooBig | Ending::DatagramTooBig(_) => Some(ErrorKind::TooBig),
            Ending::Protocol(_) => Some(ErrorKind::Protocol),
            Ending::ClientGone => Some(ErrorKind::ClientGone),
            Ending::Idle => Some(ErrorKind::Idle),
            Ending::PingTimeout => Some(ErrorKind::PingTimeout),
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

/// Ends the client's side as `ending` calls for: the Close the client hears, after its answer
/// to ours or our answer to its, by `deadline` (the bridge's ending plus [`CLOSE_GRACE`]: the
/// whole closing handshake, whatever part of it the bridge waited for already, takes no
/// longer). `target_read` is the target's, unless it was reset.
pub(super) async fn close<W, R>(
    ws: &mut W,
    ending: &Ending,
    target_read: Option<&mut R>,
    max_message: usize,
    deadline: Instant,
) where
    W: Client,
    R: AsyncRead + Unpin,
{
    match ending {
        // Our Close went out after the target's bytes: what remains is to read the client up
        // to its Close and end the stream.
        Ending::TargetClosed => {
            let _ = tokio::time::timeout_at(deadline, finish(ws)).await;
        }
        // The client's Close is answered and the target has seen EOF after the client's last
        // bytes. Until the target ends its side too, what it still sends is read and dropped:
        // a socket closed with unread bytes is reset, and the reset would discard the client's
        // last bytes before the target has read them.
        Ending::ClientClosed(_) => {
            let drain_target = async {
                if let Some(target_read) = target_read {
                    let mut scratch = vec![0u8; 4096];
                    while let Ok(1..) = target_read.read(&mut scratch).await {}
                }
            };
            let _ = tokio::join!(
                tokio::time::timeout_at(deadline, finish(ws)),
                tokio::time::timeout_at(deadline, drain_target),
            );
        }
        Ending::TargetError(e) => {
            let reason = format!("target error: {}", short_io_error(e));
            close_client_by(ws, close_message(codes::TARGET_ERROR, &reason), deadline).await;
        }
        Ending::TooBig => {
            let reason = too_big_reason(max_message);
            close_client_by(ws, close_message(codes::TOO_BIG, &reason), deadline).await;
        }
        Ending::DatagramTooBig(max) => {
            let reason = datagram_too_big_reason(*max);
            close_client_by(ws, close_message(codes::TOO_BIG, &reason), deadline).await;
        }
        Ending::Protocol(_) => {
            let close = close_message(codes::PROTOCOL, "protocol error");
            close_client_by(ws, close, deadline).await;
        }
        Ending::Idle => {
            let close = close_message(codes::GOING_AWAY, "idle timeout");
            close_client_by(ws, close, deadline).await;
        }
        Ending::PingTimeout => {
            let close = close_message(codes::GOING_AWAY, "ping timeout");
            close_client_by(ws, close, deadline).await;
        }
        Ending::Shutdown => {
            let close = close_message(codes::GOING_AWAY, "relay shutting down");
            close_client_by(ws, close, deadline).await;
        }
        Ending::ClientGone => {}
    }
}

/// A Close message with `code` and a reason cut (on a character boundary) to the 123 bytes a
/// control frame allows.
pub(super) fn close_message(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    match CloseCode::try_from(code) {
        Ok(code) if !code.is_reserved() => Message::close(Some(code), &reason[..end]),
        // Codes that cannot go over the wire: a Close without a code.
        _ => Message::close(None, ""),
    }
}

/// The reason the relay gives for a message over `--max-message`. The codec closes with the
/// same words when a single frame is too large, before reading it.
fn too_big_reason(max_message: usize) -> String {
    format!("max length: {max_message}")
}

/// The reason the relay gives for a message larger than a datagram to a UDP target can be.
fn datagram_too_big_reason(max: usize) -> String {
    format!("datagram too big: max {max} bytes")
}

/// Sends a Close and waits (bounded) for the client's answer, then ends the TCP stream, so the
/// close is clean. After a protocol error or an oversized frame the codec has already queued
/// its own Close (1002, 1007 or 1009 with the reason); sending ours then fails and the codec's
/// goes out instead.
pub(super) async fn close_client<W: Client>(ws: &mut W, close: Message) {
    close_client_by(ws, close, Instant::now() + CLOSE_GRACE).await;
}

/// [`close_client`], done or given up by `deadline`.
async fn close_client_by<W: Client>(ws: &mut W, close: Message, deadline: Instant) {
    let _ = tokio::time::timeout_at(deadline, async {
        let _ = ws.send(close).await;
        finish(ws).await;
    })
    .await;
}

/// Flushes what the codec has queued (an answer to the client's Close), reads what the client
/// still sends until its Close (a socket closed with unread bytes is reset, and the reset would
/// discard what was sent last), then shuts down the TCP stream.
async fn finish<W: Client>(ws: &mut W) {
    let _ = ws.close().await;
}

/// How a bridge ends when its target fails: a target error, unless the relay is stopping (its
/// own services close their connections as it does, and the client should hear why).
pub(super) fn target_failed(e: io::Error, cancel: &CancellationToken) -> Ending {
    if cancel.is_cancelled() {
        Ending::Shutdown
    } else {
        Ending::TargetError(e)
    }
}

/// Separates a client that simply went away from one that broke the protocol.
pub(super) fn classify_ws_error(e: WsError) -> Ending {
    match e {
        WsError::PayloadTooLong { .. } => Ending::TooBig,
        WsError::Io(_) | WsError::AlreadyClosed => Ending::ClientGone,
        other => Ending::Protocol(other),
    }
}

/// `Connection refused`, `Connection reset by peer`: the part of an I/O error a user needs.
pub(super) fn short_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        // The system's words, in the same form as those above: `No such file or directory
        // (os error 2)` (a Unix socket that is not there) reads `no such file or directory`.
        _ => {
            let text = e.to_string();
            let text = match text.rfind(" (os error ") {
                Some(at) if text.ends_with(')') => &text[..at],
                _ => &text,
            };
            let mut chars = text.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_lowercase().chain(chars).collect()
            })
        }
    }
}
