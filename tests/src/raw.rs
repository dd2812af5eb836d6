//! Raw HTTP requests and WebSocket frames, written and read byte by byte, for the tests that
//! must send what a well-behaved client never would (and see exactly what comes back).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::WAIT;

/// The `Sec-WebSocket-Key` of RFC 6455's example.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The masking key of [`frame`].
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The head of a valid WebSocket upgrade request, with the given `Host` and extra header lines
/// (each ending in CRLF), without the empty line that ends it.
pub fn upgrade_lines(host: &str, path_and_query: &str, extra: &str) -> String {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}"
    )
}

/// A WebSocket upgrade request with the given `Host` and extra header lines (each ending in
/// CRLF).
pub fn upgrade(host: &str, path_and_query: &str, extra: &str) -> String {
    upgrade_lines(host, path_and_query, &format!("{extra}\r\n"))
}

/// An upgrade request that has only `Connection: Upgrade` and `Upgrade: websocket` besides
/// these header lines (each ending in CRLF), to leave out or repeat any other header.
pub fn upgrade_with_only(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{headers}\r\n")
}

/// A client frame: `first` is FIN|RSV|opcode; masked with a fixed key unless `mask` is false.
pub fn frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xffff => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// The parts of a frame's head that a reader needs.
struct Head {
    first: u8,
    masked: bool,
    /// Payload length.
    len: u64,
    /// Bytes of the head (without a masking key: servers never mask).
    size: usize,
}

/// The head at the start of `bytes`, if they hold all of it.
fn head(bytes: &[u8]) -> Option<Head> {
    let (first, second) = (*bytes.first()?, *bytes.get(1)?);
    let (len, size) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    Some(Head {
        first,
        masked: second & 0x80 != 0,
        len,
        size,
    })
}

/// A Close payload's code; 1005 (none given) if it has none.
fn close_code(payload: &[u8]) -> u16 {
    match payload {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 1005,
    }
}

/// The binary payload of the unmasked server frames in `raw`, and the code of a Close among
/// them (1005 if it has none). A frame cut short at the end of `raw` ends it.
pub fn server_frames(mut raw: &[u8]) -> (Vec<u8>, Option<u16>) {
    let mut payload = Vec::new();
    while let Some(h) = head(raw) {
        let end = h.size + h.len as usize;
        let Some(body) = raw.get(h.size..end) else {
            break;
        };
        match h.first & 0x0f {
            0x2 => payload.extend_from_slice(body),
            0x8 => return (payload, Some(close_code(body))),
            _ => {}
        }
        raw = &raw[end..];
    }
    (payload, None)
}

/// Reads server frames until a Close (returns its code, 1005 if none) or the end of the
/// connection (`None`); binary payloads are appended to `data`. Reads nothing past the Close.
pub async fn read_server_frames(
    stream: &mut (impl AsyncRead + Unpin),
    data: &mut Vec<u8>,
) -> Option<u16> {
    let read = async {
        loop {
            // Two bytes tell how many more the head has.
            let mut bytes = vec![0u8; 2];
            stream.read_exact(&mut bytes).await.ok()?;
            let extra = match bytes[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            bytes.resize(2 + extra, 0);
            stream.read_exact(&mut bytes[2..]).await.ok()?;
            let h = head(&bytes)?;
            assert!(!h.masked, "server frames are never masked");
            assert!(h.len <= 1 << 20, "server frame of {} bytes", h.len);
            let mut payload = vec![0u8; h.len as usize];
            stream.read_exact(&mut payload).await.ok()?;
            match h.first & 0x0f {
                0x8 => return Some(close_code(&payload)),
                0x2 => data.extend_from_slice(&payload),
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the relay neither answered nor closed")
}

/// One HTTP exchange on a fresh connection.
pub struct Answer {
    /// 0: the server closed without answering.
    pub status: u16,
    /// The response head as sent.
    pub head: String,
    pub body: String,
    /// Still open after a 101, positioned right after the response head.
    pub stream: TcpStream,
}

impl Answer {
    /// The value of the response header `name` (any case), if there is exactly one.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.head.lines().filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        });
        let first = values.next();
        assert!(values.next().is_none(), "two {name} headers: {}", self.head);
        first
    }

    /// The `error` of a JSON refusal body; panics if the body is not one.
    pub fn error(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body));
        v["error"].as_str().unwrap().to_owned()
    }
}

/// Sends `request` on a fresh connection and reads the answer (see [`exchange_on`]).
pub async fn exchange(addr: SocketAddr, request: impl AsRef<[u8]>) -> Answer {
    exchange_on(TcpStream::connect(addr).await.unwrap(), request).await
}

/// Sends `request` on `stream` (a fresh connection, or one kept alive from an earlier
/// [`Answer`]) and reads the response head (byte by byte, so that nothing after a 101 is read
/// and a 101 does not wait for the connection to end) and, unless it is a 101, the body as far
/// as Content-Length says or the server closes.
pub async fn exchange_on(mut stream: TcpStream, request: impl AsRef<[u8]>) -> Answer {
    // The server may close before taking all of an oversized request: that is an answer too.
    let _ = stream.write_all(request.as_ref()).await;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(WAIT, read_head)
        .await
        .expect("no response head");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = status_of(&head);
    let mut answer = Answer {
        status,
        head,
        body: String::new(),
        stream,
    };
    if status != 101 && status != 0 {
        let length = answer
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let mut body = Vec::new();
        let mut chunk = [0u8; 4096];
        let _ = tokio::time::timeout(WAIT, async {
            while body.len() < length {
                match answer.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        answer.body = String::from_utf8_lossy(&body).into_owned();
    }
    answer
}

/// A raw HTTP exchange: sends `request` as-is, reads until the server closes or `WAIT`.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` with `Connection: close`; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let response = raw_http(addr, request.as_bytes()).await;
    parse_response(&response)
}

/// Splits a raw HTTP/1.1 response into status and body.
pub fn parse_response(response: &str) -> (u16, String) {
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status_of(response), body)
}

/// The status code of a response that starts with its status line; 0 if there is none.
fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A one-shot `GET /healthz` (`Connection: close`) written to `stream`.
pub async fn ask_health(stream: &mut (impl AsyncWrite + Unpin), host: &str) {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
}

/// Everything `stream` sends until it closes, waiting up to `wait`.
pub async fn read_answer(
    stream: &mut (impl AsyncRead + Unpin),
    wait: Duration,
) -> Result<String, tokio::time::error::Elapsed> {
    let mut response = String::new();
    tokio::time::timeout(wait, stream.read_to_string(&mut response))
        .await
        .map(|_| response)
}
