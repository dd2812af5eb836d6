//! The HTTP accept loop, and the budget of HTTP connections that are not bridges.
//!
//! Every connection is accepted while descriptors last: in the listen backlog a prompt client
//! cannot be told from a slow one, and waits behind all of them. Connections that are not
//! bridges share a budget, `--max-heads`: those waiting for a request head (the TLS handshake
//! included, and keep-alive connections between requests) and those whose request is being
//! answered. When a new connection finds the budget full, the one that has waited longest for a
//! request head is closed (if none is waiting for one, the one answered longest): a client that
//! sends its request promptly always gets in, however many slow ones there are, and a slow one
//! lasts until the handshake timeout or until `--max-heads` newer connections arrived, whichever
//! comes first. Bridges are not in the budget: `--max-conns` caps them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::http::{AppState, Local, Peer, Secure, MAX_HEADER_BYTES};

/// How long open HTTP connections get to finish their request at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// An HTTP connection that has not become a bridge is closed after this many handshake
/// timeouts (60 s by default), once its current request is answered or [`HTTP_DRAIN`] later.
const HTTP_LIFETIME_FACTOR: u32 = 6;

/// How often at most the relay warns that it closes connections to make room.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The most of a first request head (or TLS record) left waiting in the kernel's socket buffer
/// before the connection is handed over anyway: heads are a few hundred bytes, and peeking
/// copies this much at most on each arrival.
const PEEK_MAX: usize = 4096;

/// Descriptors kept back from the budget besides those of the bridges: listeners, the echo
/// services' sockets, logs.
const SPARE_FDS: u64 = 64;

/// Accepts HTTP connections until `listening` is cancelled, each in the budget of connections
/// that are not bridges (see the module's doc).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    listening: CancellationToken,
) {
    let heads = Heads::new(budget(&state.settings));
    let connections = TaskTracker::new();
    let mut failures = crate::tcp::FailedAccepts::default();
    loop {
        // Out of descriptors, most likely: closing the connection that has waited longest for
        // a head gives one back; otherwise give running ones time.
        let failed = |e: &std::io::Error| {
            if heads.shed_oldest() {
                debug!(error = %e, "accept failed: closed the oldest unfinished head");
                Duration::from_millis(5)
            } else {
                failures.log("http", e);
                Duration::from_millis(100)
            }
        };
        let Some((stream, peer)) = crate::tcp::accept(&listener, &listening, failed).await else {
            break;
        };
        let place = heads.admit();
        let router = router.clone();
        let tls = tls.clone();
        let state = state.clone();
        connections.spawn(async move {
            let _ = stream.set_nodelay(true);
            tokio::select! {
                () = place.shed() => debug!(%peer, "closed to make room for a new connection (--max-heads)"),
                () = serve_stream(stream, peer, router, tls, &state, &place) => {}
            }
        });
    }
    // New connections are refused from here on, not left waiting in the backlog.
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(HTTP_DRAIN, connections.wait()).await;
}

/// What a listener takes on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Plain,
    Tls,
    /// Either, told apart by the first byte (`--plain-too`, websockify's `--cert` without
    /// `--ssl-only`): a TLS handshake record starts with 22, a request head with a letter.
    Either,
}

impl Expect {
    /// Whether a connection whose first byte is `first` speaks TLS.
    fn is_tls(self, first: Option<u8>) -> bool {
        match self {
            Expect::Plain => false,
            Expect::Tls => true,
            Expect::Either => first == Some(TLS_HANDSHAKE),
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves one accepted connection. Its first request head (or TLS ClientHello) is left in the
/// kernel's socket buffer until it is complete, so that a slow client costs the relay a small
/// task, not hyper's or rustls' buffers (16 KiB and more); the handshake timeout bounds that
/// wait and the TLS handshake together, and hyper's header timeout each request head after.
async fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    state: &AppState,
    place: &Arc<Place>,
) {
    let expect = match &tls {
        None => Expect::Plain,
        Some(_) if state.settings.plain_too => Expect::Either,
        Some(_) => Expect::Tls,
    };
    let deadline = tokio::time::Instant::now() + state.settings.handshake_timeout;
    let waiting = tokio::time::timeout_at(deadline, head_buffered(&stream, expect));
    let first = tokio::select! {
        waited = waiting => match waited {
            Ok(first) => first,
            Err(_) => {
                debug!(%peer, "no request head within the handshake timeout");
                if !expect.is_tls(first_byte(&stream)) {
                    answer_late_head(&stream, state.settings.handshake_timeout);
                }
                return;
            }
        },
        () = state.cancel.cancelled() => return,
    };
    let local = stream.local_addr().ok();
    // Boxed: the task of a connection still waiting above stays small.
    match tls {
        Some(acceptor) if expect.is_tls(first) => {
            match tokio::time::timeout_at(deadline, Box::pin(acceptor.accept(stream))).await {
                Ok(Ok(stream)) => {
                    let secure = Secure(true);
                    let serving =
                        serve_connection(stream, peer, local, secure, router, state, place);
                    Box::pin(serving).await;
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        }
        _ => {
            let serving =
                serve_connection(stream, peer, local, Secure(false), router, state, place);
            Box::pin(serving).await;
        }
    }
}

/// The first byte waiting on `stream`, if any (left there).
#[cfg(target_os = "linux")]
fn first_byte(stream: &TcpStream) -> Option<u8> {
    crate::tcp::byte_waiting(stream)
}

#[cfg(not(target_os = "linux"))]
fn first_byte(_stream: &TcpStream) -> Option<u8> {
    None
}

/// Returns once the socket's receive buffer holds a whole request head (or, for TLS, a whole
/// record: the ClientHello), [`PEEK_MAX`] bytes, bytes that cannot start one, or an end or
/// error, all left for hyper or rustls to read; gives the first byte, if any came.
#[cfg(target_os = "linux")]
async fn head_buffered(stream: &TcpStream, expect: Expect) -> Option<u8> {
    use tokio::io::Interest;
    loop {
        match stream.ready(Interest::READABLE).await {
            Ok(ready) if !ready.is_read_closed() => {}
            _ => return first_byte(stream),
        }
        let peeked = stream.try_io(Interest::READABLE, || {
            let mut buf = [0u8; PEEK_MAX];
            let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
            let (_, n) = rustix::net::recv(stream, &mut buf[..], flags)?;
            let first = buf[..n].first().copied();
            if n == 0 || n >= PEEK_MAX || head_complete(&buf[..n], expect.is_tls(first)) {
                Ok(first)
            } else {
                // Not all there: clearing the readiness makes the next bytes wake this task
                // (epoll reports every arrival of data to an edge-triggered waiter).
                Err(std::io::ErrorKind::WouldBlock.into())
            }
        });
        match peeked {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(first) => return first,
            Err(_) => return None,
        }
    }
}

/// Answers a client that began a request head but did not finish it within `timeout` with
/// 408, after reading what it sent: closed with those bytes unread, the socket would send a
/// reset, which can discard the answer on the client's side. A client that sent nothing (a
/// browser's spare connection, say) is closed without a word, as hyper closes an idle
/// keep-alive connection. The socket is read and written directly: the wait for the head
/// left tokio's readiness cleared.
#[cfg(target_os = "linux")]
fn answer_late_head(stream: &TcpStream, timeout: std::time::Duration) {
    use rustix::net::{RecvFlags, SendFlags};
    let mut scratch = [0u8; PEEK_MAX];
    let mut read = 0;
    // At most what the peek allows and a little more: never a loop on a client that streams.
    while read < 4 * PEEK_MAX {
        match rustix::net::recv(stream, &mut scratch[..], RecvFlags::DONTWAIT) {
            Ok((_, n)) if n > 0 => read += n,
            _ => break,
        }
    }
    if read == 0 {
        return;
    }
    let body = format!(
        "request timeout: no complete request head within {} s\n",
        timeout.as_secs_f64()
    );
    let answer = format!(
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\
         Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A new connection's send buffer holds it whole; a client that does not read loses it.
    let _ = rustix::net::send(
        stream,
        answer.as_bytes(),
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    );
}

#[cfg(not(target_os = "linux"))]
fn answer_late_head(_stream: &TcpStream, _timeout: std::time::Duration) {}

/// Elsewhere the connection goes to hyper or rustls once its first byte is there.
#[cfg(not(target_os = "linux"))]
async fn head_buffered(stream: &TcpStream, _expect: Expect) -> Option<u8> {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(1) => Some(byte[0]),
        _ => None,
    }
}

/// Whether `buf`, the first bytes of a connection, holds a whole request head or TLS record,
/// or cannot be the start of one (then hyper or rustls refuse it at once).
fn head_complete(buf: &[u8], tls: bool) -> bool {
    if tls {
        // A handshake record: type 22, version (2 bytes), length (2 bytes), then the record.
        return match buf {
            [0x16, _, _, hi, lo, record @ ..] => {
                record.len() >= usize::from(u16::from_be_bytes([*hi, *lo]))
            }
            [0x16, ..] => false,
            _ => true,
        };
    }
    match buf.first() {
        // A method (or the empty lines a server may skip before the request line).
        Some(b'A'..=b'Z' | b'\r' | b'\n') => {
            buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
        }
        _ => true,
    }
}

/// `--max-heads`, lowered to what the open-file limit leaves once every bridge `--max-conns`
/// allows has its descriptors (and never below half the limit: where the limit cannot hold the
/// bridges, the startup log already says so).
fn budget(settings: &crate::config::Settings) -> usize {
    let wanted = settings.max_heads;
    let Ok((limit, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        info!(max_heads = wanted, "HTTP connections that are not bridges");
        return wanted;
    };
    let bridges = settings.max_conns as u64;
    let pipes = crate::splice::MAX_PIPES.min(settings.max_conns) as u64;
    let reserved = bridges
        .saturating_add(pipes)
        .saturating_mul(2)
        .saturating_add(SPARE_FDS);
    let room = limit.saturating_sub(reserved).max(limit / 2);
    let budget = usize::try_from(room)
        .map_or(wanted, |room| wanted.min(room))
        .max(1);
    let lowered = if budget < wanted {
        ", lowered from --max-heads to what the open-file limit leaves beside the bridges"
    } else {
        ""
    };
    info!(
        open_files = limit,
        max_heads = budget,
        "HTTP connections that are not bridges: at most {budget}{lowered}"
    );
    budget
}

/// Raises this process's soft open-file limit to its hard limit (`sockrelay` at startup, and
/// tests that open thousands of connections); returns the soft limit now.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Serves HTTP/1.1 (and WebSocket upgrades) on one accepted connection until it ends, becomes
/// a bridge, or the relay shuts down; `place` follows it between waiting for a head and being
/// answered. `local` is the connection's own address, where it has one.
pub async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    secure: Secure,
    router: Router,
    state: &AppState,
    place: &Arc<Place>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let metrics = state.metrics.clone();
    let place = place.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        place.head_received();
        let answering = Answering(place.clone());
        metrics.http_request();
        request.extensions_mut().insert(Peer(peer));
        request.extensions_mut().insert(secure);
        if let Some(local) = local {
            request.extensions_mut().insert(Local(local));
        }
        let response = hyper::service::Service::call(&service, request);
        async move {
            let response = response.await?;
            // Answered once the body is written: the connection then waits for a head again.
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(AnswerBody {
                    body,
                    _answering: answering,
                })
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.settings.handshake_timeout)
        // A client that sends its request and then shuts down its write side (`nc -N`) still
        // gets its answer.
        .half_close(true)
        .max_buf_size(2 * MAX_HEADER_BYTES);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    // Idle keep-alive connections end at the header timeout; this ends one that stays busy,
    // or never reads what it asked for, so that it cannot hold its place for ever.
    let lifetime = state.settings.handshake_timeout * HTTP_LIFETIME_FACTOR;
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "http connection ended with an error");
            }
        }
        () = async {
            tokio::select! {
                () = state.cancel.cancelled() => {}
                () = tokio::time::sleep(lifetime) => debug!(%peer, "http connection too old"),
            }
        } => {
            // The request in progress is answered (within the drain time); no other.
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HTTP_DRAIN, connection).await;
        }
    }
}

/// The budget of HTTP connections that are not bridges, and the order in which they are
/// closed when it is full.
#[derive(Debug)]
pub struct Heads {
    limit: usize,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Every connection in the budget, keyed by its phase (waiting for a head sorts first) and
    /// then by when it entered that phase: the first key is the next to close.
    places: BTreeMap<u64, Arc<Notify>>,
    /// The sequence number of the next phase change (0 means "not in the budget").
    next: u64,
    /// Connections closed to make room since the last warning, and when that was.
    shed: u64,
    warned: Option<Instant>,
}

/// The bit of a key that says the connection's request is being answered.
const ANSWERING: u64 = 1 << 63;

impl Heads {
    /// A budget of `limit` connections (at least one).
    pub fn new(limit: usize) -> Arc<Heads> {
        Arc::new(Heads {
            limit: limit.max(1),
            queue: Mutex::new(Queue {
                next: 1,
                ..Queue::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent after every statement: a panic elsewhere leaves it usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection just accepted, waiting for its first head; when the budget is
    /// full, the connection first in line is closed to make room.
    pub fn admit(self: &Arc<Self>) -> Arc<Place> {
        let shed = Arc::new(Notify::new());
        let mut queue = self.lock();
        let warning = if queue.places.len() >= self.limit {
            queue.shed_first()
        } else {
            None
        };
        let key = queue.insert(0, shed.clone());
        drop(queue);
        if let Some(closed) = warning {
            warn!(
                closed,
                max_heads = self.limit,
                "HTTP connections over --max-heads: closed those that waited longest for a request head"
            );
        }
        Arc::new(Place {
            heads: self.clone(),
            key: AtomicU64::new(key),
            shed,
        })
    }

    /// Closes the connection first in line, if there is one.
    pub fn shed_oldest(&self) -> bool {
        let mut queue = self.lock();
        let had_one = !queue.places.is_empty();
        queue.shed_first();
        had_one
    }

    /// Connections in the budget.
    pub fn len(&self) -> usize {
        self.lock().places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Queue {
    fn insert(&mut self, phase: u64, shed: Arc<Notify>) -> u64 {
        let key = phase | self.next;
        self.next += 1;
        self.places.insert(key, shed);
        key
    }

    /// Closes the first connection in line; returns how many were closed since the last
    /// warning when it is time for another.
    fn shed_first(&mut self) -> Option<u64> {
        let (_, shed) = self.places.pop_first()?;
        shed.notify_one();
        self.shed += 1;
        if self.warned.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        self.warned = Some(Instant::now());
        Some(std::mem::take(&mut self.shed))
    }
}

/// One connection's place in [`Heads`]; dropping it gives the place back.
#[derive(Debug)]
pub struct Place {
    heads: Arc<Heads>,
    /// Its key in the queue; only changed under the queue's lock.
    key: AtomicU64,
    /// Notified when the connection is closed to make room.
    shed: Arc<Notify>,
}

impl Place {
    /// A place in a budget of its own, for a connection served outside the accept loop.
    pub fn alone() -> Arc<Place> {
        Heads::new(usize::MAX).admit()
    }

    /// Completes when the connection must close to make room.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }

    /// Moves to the back of the line of `phase`, unless it was closed to make room.
    fn enter(&self, phase: u64) {
        let mut queue = self.heads.lock();
        if queue
            .places
            .remove(&self.key.load(Ordering::Relaxed))
            .is_some()
        {
            let key = queue.insert(phase, self.shed.clone());
            self.key.store(key, Ordering::Relaxed);
        }
    }

    /// Its request head is in: it is answered now.
    fn head_received(&self) {
        self.enter(ANSWERING);
    }

    /// Its answer is written: it waits for the next request head.
    fn answered(&self) {
        self.enter(0);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.heads
            .lock()
            .places
            .remove(&self.key.load(Ordering::Relaxed));
    }
}

/// Marks the connection as waiting for a head again when dropped: when the answer's body is
/// written, or the request is abandoned.
struct Answering(Arc<Place>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answered();
    }
}

/// A response body that holds its connection in the "being answered" phase until it is
/// dropped.
struct AnswerBody {
    body: Body,
    _answering: Answering,
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shed_now(place: &Place) -> bool {
        use futures_util::FutureExt;
        place.shed().now_or_never().is_some()
    }

    #[test]
    fn a_full_budget_closes_the_connection_that_waited_longest_for_a_head() {
        let heads = Heads::new(3);
        let a = heads.admit();
        let b = heads.admit();
        let c = heads.admit();
        // `a` got its head and is being answered: `b` has waited longest for one.
        a.head_received();
        let d = heads.admit();
        assert!(shed_now(&b));
        assert!(!shed_now(&a) && !shed_now(&c) && !shed_now(&d));
        assert_eq!(heads.len(), 3);
        // `a` is answered and waits again, behind `c` and `d`.
        a.answered();
        let _e = heads.admit();
        assert!(shed_now(&c));
        let _f = heads.admit();
        assert!(shed_now(&d));
        let _g = heads.admit();
        assert!(shed_now(&a));
    }

    #[test]
    fn connections_being_answered_are_closed_only_when_none_waits_for_a_head() {
        let heads = Heads::new(2);
        let a = heads.admit();
        let b = heads.admit();
        b.head_received();
        a.head_received();
        let c = heads.admit();
        assert!(shed_now(&b), "answered longest");
        assert!(!shed_now(&a) && !shed_now(&c));
        let d = heads.admit();
        assert!(shed_now(&c), "a head comes first");
        assert!(!shed_now(&a) && !shed_now(&d));
    }

    #[test]
    fn a_head_is_whole_at_its_empty_line_and_a_tls_record_at_its_length() {
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n", false));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false));
        assert!(head_complete(b"GET / HTTP/1.1\nHost: x\n\n", false));
        // Not HTTP (here a ClientHello): hyper refuses it at once.
        assert!(head_complete(b"\x16\x03\x01", false));
        assert!(!head_complete(b"\x16\x03\x01\x00", true));
        assert!(!head_complete(b"\x16\x03\x01\x00\x03ab", true));
        assert!(head_complete(b"\x16\x03\x01\x00\x03abc", true));
        // Not TLS: rustls refuses it at once.
        assert!(head_complete(b"GET / HTTP/1.1\r\n", true));
    }

    #[test]
    fn a_closed_connection_stays_out_and_places_are_given_back() {
        let heads = Heads::new(1);
        let a = heads.admit();
        let b = heads.admit();
        assert!(shed_now(&a));
        // Its request was already in when it was closed: it does not take a place again.
        a.head_received();
        a.answered();
        assert_eq!(heads.len(), 1);
        drop(a);
        assert_eq!(heads.len(), 1);
        drop(b);
        assert!(heads.is_empty());
        assert!(!heads.shed_oldest());
    }
}
