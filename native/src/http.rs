//! The HTTP side's routes: the embedded web client, `/ws`, `/api/targets`, `/healthz`,
//! `/metrics` ([`crate::accept`] accepts and serves the connections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::bridge::{self, close_client, close_message, codes, Limits};
use crate::config::Settings;
use crate::metrics::{ErrorKind, Metrics, RefusalReason};
use crate::origin::OriginPolicy;
use crate::target::AllowList;

/// How long connecting to a target may take before the bridge gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Request headers larger than this get 431.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub allow: AllowList,
    pub origin: OriginPolicy,
    pub metrics: Arc<Metrics>,
    /// One permit per open bridge: `--max-conns`.
    pub bridges: Arc<Semaphore>,
    /// Fires at shutdown; bridges then close with 1001.
    pub cancel: CancellationToken,
    /// Bridges outlive their HTTP request; shutdown waits for them here.
    pub tracker: TaskTracker,
    /// Whether the relay serves https/wss (for the same-origin check).
    pub tls: bool,
}

/// The peer address, put into each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

pub fn router(state: Arc<AppState>) -> Router {
    // With `--token`, what the relay reaches and counts is as private as `/ws` itself.
    let guarded = Router::new()
        .route("/api/targets", get(targets))
        .route("/api/check", get(check_target))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    Router::new()
        .merge(guarded)
        // Open even with `--token`: load balancers probe it, and it tells nothing.
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(get(static_file))
        .layer(axum::middleware::from_fn(require_host))
        // Added after that layer: `/ws` checks Host with the rest of its handshake, and
        // counts the refusal as one.
        .route("/ws", get(ws))
        .layer(axum::middleware::from_fn(limit_header_size))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Answers 400 to an HTTP/1.1 request without a `Host` header or with more than one (RFC 9112,
/// 3.2): which site it asks for would be a guess, and a proxy in front may guess otherwise.
/// HTTP/1.0 requests may leave it out.
async fn require_host(request: Request, next: axum::middleware::Next) -> Response {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let needs_one = request.version() >= axum::http::Version::HTTP_11;
    if hosts > 1 || (needs_one && hosts == 0) {
        let error = if hosts > 1 {
            "more than one Host header: send it once"
        } else {
            "missing Host header (HTTP/1.1 requires one)"
        };
        let body = Json(serde_json::json!({ "error": error }));
        return (StatusCode::BAD_REQUEST, body).into_response();
    }
    next.run(request).await
}

/// Adds `X-Content-Type-Options: nosniff` and the Content-Security-Policy of
/// [`crate::assets::content_security_policy`] to every answer but a 101, unless the handler
/// set its own.
async fn security_headers(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| is_plain_authority(h))
        .map(str::to_owned);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let policy =
        crate::assets::content_security_policy(host.as_deref(), &state.settings.frame_ancestors);
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(policy);
    }
    response
}

/// With `--token`, answers 401 unless the request carries the token (`?token=` or
/// `Authorization: Bearer`).
async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(expected) = &state.settings.token {
        let query = request
            .uri()
            .query()
            .and_then(|q| serde_urlencoded_query(q).ok())
            .and_then(|q| q.token);
        if !token_ok(expected, query.as_deref(), request.headers()) {
            let message = "this relay requires a token: add ?token=... to the URL \
                           or send Authorization: Bearer ...";
            let body = Json(serde_json::json!({ "error": message }));
            let response = (StatusCode::UNAUTHORIZED, body).into_response();
            return with_header(response, header::WWW_AUTHENTICATE, "Bearer");
        }
    }
    next.run(request).await
}

/// Refuses requests whose headers add up to more than [`MAX_HEADER_BYTES`]: hyper bounds what
/// it buffers, but a head that arrives in one read can exceed its limit.
async fn limit_header_size(request: Request, next: axum::middleware::Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        let body = Json(serde_json::json!({ "error": "request headers too large" }));
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, body).into_response();
    }
    next.run(request).await
}

async fn targets(State(state): State<Arc<AppState>>) -> Response {
    Json(state.allow.list()).into_response()
}

/// `GET /api/check?target=...`: whether `/ws?target=...` would be allowed, with the refusal
/// reason. Browsers cannot read the body of a refused WebSocket handshake, so a page asks here.
async fn check_target(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let query = match request
        .uri()
        .query()
        .map(serde_urlencoded_query)
        .transpose()
    {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": e })),
            )
                .into_response()
        }
    };
    let Some(target) = query.target else {
        return Json(serde_json::json!({ "target": "echo" })).into_response();
    };
    match state.allow.check(&target).await {
        Ok((canonical, _)) => Json(serde_json::json!({ "target": canonical })).into_response(),
        Err(e) => (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn static_file(request: Request) -> Response {
    crate::assets::serve(request.uri().path(), request.headers())
}

/// A refusal: the status, a JSON body `{"error": "..."}`, and a metric.
fn refuse(
    state: &AppState,
    status: StatusCode,
    reason: RefusalReason,
    message: String,
) -> Response {
    state.metrics.refused(reason);
    debug!(status = status.as_u16(), reason = reason.as_str(), %message, "websocket request refused");
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn with_header(mut response: Response, name: HeaderName, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

/// True if a comma-separated header contains `token` (case-insensitive).
fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

#[derive(Debug, Default, Deserialize)]
struct WsQuery {
    target: Option<String>,
    token: Option<String>,
}

/// Checks the token from `?token=` or `Authorization: Bearer`, in constant time. The scheme's
/// name is case-insensitive (RFC 9110, 11.1); one space separates it from the token.
fn token_ok(expected: &str, query: Option<&str>, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        // `1*SP` between scheme and credentials (RFC 9110, 11.4).
        .map(|(_, token)| token.trim_start_matches(' '));
    [query, bearer]
        .into_iter()
        .flatten()
        .any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// The headers of a handshake that must appear at most once: with two, the relay and a proxy
/// in front of it could each believe a different one (RFC 6455 4.2.1 and 11.3.1).
const SINGLE_HEADERS: [HeaderName; 4] = [
    header::HOST,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::ORIGIN,
];

/// Why a handshake's headers are ambiguous or incomplete, if they are: a header of
/// [`SINGLE_HEADERS`] repeated, or a missing or invalid `Host` (RFC 9112, 3.2).
fn ambiguity(headers: &HeaderMap) -> Option<String> {
    if let Some(name) = SINGLE_HEADERS
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return Some(format!(
            "more than one {} header: send it once",
            canonical_name(name)
        ));
    }
    match headers.get(header::HOST).map(|v| v.to_str()) {
        None => Some("missing Host header".into()),
        Some(Ok(host)) if is_plain_authority(host) => None,
        Some(_) => Some("invalid Host header: expected host[:port]".into()),
    }
}

/// `Sec-WebSocket-Key` for `sec-websocket-key`, for messages.
fn canonical_name(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|word| match word {
            "websocket" => "WebSocket".to_owned(),
            _ => {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A `Host` value the relay accepts and repeats in its Content-Security-Policy: a DNS name or
/// IPv4 address (letters, digits, `.`, `-`, `_`) or a bracketed IPv6 address, and an optional
/// decimal port. Anything else (userinfo, a list, spaces, `;`) is not one authority.
fn is_plain_authority(host: &str) -> bool {
    let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok();
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, port)) = rest.split_once(']') else {
                return false;
            };
            let v6_char = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
            (!v6.is_empty() && v6.chars().all(v6_char), port)
        }
        None => {
            let (name, port) = host.find(':').map_or((host, ""), |i| host.split_at(i));
            let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            (!name.is_empty() && name.chars().all(name_char), port)
        }
    };
    name_ok && (port.is_empty() || port.strip_prefix(':').is_some_and(port_ok))
}

/// `GET /ws`: validates the handshake and the request, answers 101, and bridges.
async fn ws(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    let headers = request.headers();
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        let message = "this endpoint is a WebSocket: connect with a WebSocket client \
                       (Connection: Upgrade, Upgrade: websocket)";
        let r = refuse(
            &state,
            StatusCode::UPGRADE_REQUIRED,
            RefusalReason::BadRequest,
            message.into(),
        );
        return with_header(r, header::UPGRADE, "websocket");
    }
    if let Some(message) = ambiguity(headers) {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            RefusalReason::BadRequest,
            message,
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let r = refuse(
            &state,
            StatusCode::UPGRADE_REQUIRED,
            RefusalReason::BadRequest,
            "unsupported or missing Sec-WebSocket-Version: this relay speaks version 13".into(),
        );
        return with_header(r, header::SEC_WEBSOCKET_VERSION, "13");
    }
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| is_valid_key(k.as_bytes()))
        .cloned()
    else {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            RefusalReason::BadRequest,
            "missing or invalid Sec-WebSocket-Key (must be 16 bytes, base64)".into(),
        );
    };
    // An upgrade request has no body; one that claims a body (both framings even) is a request
    // smuggling attempt or a broken client, and proxies in front would disagree about it.
    if headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            RefusalReason::BadRequest,
            "a WebSocket upgrade request must not have a body".into(),
        );
    }
    let query: WsQuery = match request.uri().query() {
        None => WsQuery::default(),
        Some(q) => match serde_urlencoded_query(q) {
            Ok(q) => q,
            Err(e) => {
                return refuse(
                    &state,
                    StatusCode::BAD_REQUEST,
                    RefusalReason::BadRequest,
                    e,
                )
            }
        },
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Err(message) = state.origin.check(origin, host, state.tls) {
        return refuse(
            &state,
            StatusCode::FORBIDDEN,
            RefusalReason::Origin,
            message,
        );
    }
    if let Some(expected) = &state.settings.token {
        if !token_ok(expected, query.token.as_deref(), headers) {
            let r = refuse(
                &state,
                StatusCode::UNAUTHORIZED,
                RefusalReason::Token,
                "this relay requires a token: add ?token=... to the URL".into(),
            );
            return with_header(r, header::WWW_AUTHENTICATE, "Bearer");
        }
    }
    let (target_name, addrs) = match &query.target {
        None => ("echo".to_owned(), state.allow.default_addrs()),
        Some(t) => match state.allow.check(t).await {
            Ok(found) => found,
            Err(e) => {
                return refuse(
                    &state,
                    StatusCode::FORBIDDEN,
                    RefusalReason::Target,
                    e.to_string(),
                )
            }
        },
    };
    if state.cancel.is_cancelled() {
        return refuse(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalReason::ShuttingDown,
            "relay is shutting down".into(),
        );
    }
    let Ok(permit) = state.bridges.clone().try_acquire_owned() else {
        let message = format!(
            "relay is at capacity ({} bridges); try again later",
            state.settings.max_conns
        );
        return refuse(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalReason::Capacity,
            message,
        );
    };
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "binary");
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            RefusalReason::BadRequest,
            "this connection cannot be upgraded to a WebSocket".into(),
        );
    };
    let peer = request.extensions().get::<Peer>().map(|p| p.0);
    let accept = accept_key(key.as_bytes());

    let task_state = state.clone();
    state.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return debug!(error = %e, "websocket upgrade failed"),
        };
        // A plain TCP client: bulk frames to it can be spliced (frames to a TLS client are
        // encrypted in user space, so they cannot), unless `--no-splice`.
        #[cfg(target_os = "linux")]
        let upgraded = if task_state.settings.splice {
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let (io, splicer) = crate::splice::share(parts.io.into_inner(), parts.read_buf);
                    return bridge_connection(
                        task_state,
                        io,
                        Some(splicer),
                        peer,
                        target_name,
                        addrs,
                        permit,
                    )
                    .await;
                }
                Err(upgraded) => upgraded,
            }
        } else {
            upgraded
        };
        let io = TokioIo::new(upgraded);
        bridge_connection(task_state, io, None, peer, target_name, addrs, permit).await;
    });

    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if protocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("binary"),
        );
    }
    response
}

fn serde_urlencoded_query(q: &str) -> Result<WsQuery, String> {
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|_| "malformed query string".to_owned())?;
    axum::extract::Query::<WsQuery>::try_from_uri(&uri)
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| format!("malformed query string: {}", e.body_text()))
}

/// A Sec-WebSocket-Key is 16 random bytes in base64 (RFC 6455, 4.2.1).
fn is_valid_key(key: &[u8]) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455, 4.2.2): the base64 of the SHA-1
/// of the key and the protocol's GUID.
fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha1 = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finish())
}

/// The WebSocket codec of a bridge, with `--max-message` as its limit: a frame or message
/// over it is refused with Close 1009 before it is buffered. The codec's read buffer holds at
/// most one frame and is filled without being zeroed first, so it costs a bridge only what it
/// has read. Outgoing frames are one target read each (at most [`bridge::TARGET_READ_MAX`]
/// bytes; spliced ones go around the codec).
fn ws_server(settings: &Settings) -> tokio_websockets::ServerBuilder {
    let limits = tokio_websockets::Limits::default().max_payload_len(Some(settings.max_message));
    tokio_websockets::ServerBuilder::new().limits(limits)
}

/// Connects to the first of `addrs` that answers, with the relay's congestion control.
async fn connect(addrs: &[SocketAddr], congestion: Option<&str>) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to");
    for &addr in addrs {
        let connecting = crate::tcp::connect(addr, congestion);
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(stream)) => {
                // Bridged traffic is often small interactive messages.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    Err(last)
}

/// Connects to the target and bridges `io`, the upgraded client connection, to it; `splicer`
/// where `io` is a plain TCP connection (see [`crate::splice`]).
async fn bridge_connection<I>(
    state: Arc<AppState>,
    io: I,
    splicer: Option<crate::splice::Splicer>,
    peer: Option<SocketAddr>,
    target: String,
    addrs: Vec<SocketAddr>,
    _permit: OwnedSemaphorePermit,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    // The idle watch counts every byte that moves on the client's socket.
    let activity = crate::activity::Activity::default();
    let mut ws = ws_server(&state.settings).serve(activity.watch(io));
    let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
    // Every bridge that got its 101 ends with one "bridge closed" line, whichever way it ends.
    let closed = |up: u64, down: u64, code: u16, ending: &str| {
        info!(
            %peer,
            %target,
            client_to_target = up,
            target_to_client = down,
            duration_ms = started.elapsed().as_millis() as u64,
            code,
            ending = %ending,
            "bridge closed"
        );
    };
    let stream = tokio::select! {
        s = connect(&addrs, state.settings.tcp_congestion.as_deref()) => s,
        () = state.cancel.cancelled() => {
            let close = close_message(codes::GOING_AWAY, "relay shutting down");
            close_client(&mut ws, close).await;
            closed(0, 0, codes::GOING_AWAY, "relay shutting down");
            return;
        }
    };
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            state.metrics.error(ErrorKind::Connect);
            let reason = format!("target unreachable: {}", bridge::short_io_error(&e));
            close_client(&mut ws, close_message(codes::TARGET_ERROR, &reason)).await;
            closed(0, 0, codes::TARGET_ERROR, &reason);
            return;
        }
    };
    state.metrics.bridge_opened();
    let limits = Limits {
        idle_timeout: state.settings.idle_timeout,
        max_message: state.settings.max_message,
    };
    let report = bridge::run(
        ws,
        stream,
        splicer,
        &activity,
        &limits,
        &state.cancel,
        &state.metrics,
    )
    .await;
    state.metrics.bridge_closed();
    closed(
        report.client_to_target,
        report.target_to_client,
        report.ending.code(),
        &report.ending.describe(),
    );
}

/// Serves HTTP/1.1 (and WebSocket upgrades) on one accepted connection until it ends or the
/// relay shuts down, outside the accept loop's budget of connections (see [`crate::accept`]).
/// Public so that fuzzers can feed it arbitrary bytes.
pub async fn serve_connection<I>(io: I, peer: SocketAddr, router: Router, state: &AppState)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let place = crate::accept::Place::alone();
    crate::accept::serve_connection(io, peer, router, state, &place).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn websocket_keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"not base64 at all!!!!!!!"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZXh4eA=="));
    }

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        // RFC 6455, 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn token_from_query_or_bearer() {
        let mut h = HeaderMap::new();
        assert!(token_ok("s3cret", Some("s3cret"), &h));
        assert!(!token_ok("s3cret", Some("s3cre"), &h));
        assert!(!token_ok("s3cret", None, &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(token_ok("s3cret", None, &h));
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let value = HeaderValue::from_str(&format!("{scheme} s3cret")).unwrap();
            h.insert(header::AUTHORIZATION, value);
            assert!(token_ok("s3cret", None, &h), "{scheme}");
        }
        for wrong in [
            "bearer S3CRET",
            "bearers3cret",
            "Basic s3cret",
            "s3cret",
            "Bearer",
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(wrong));
            assert!(!token_ok("s3cret", None, &h), "{wrong}");
        }
    }

    #[test]
    fn plain_authorities() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "relay.example.org:443",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:1",
            "x",
        ] {
            assert!(is_plain_authority(ok), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "a:",
            "a:123456",
            "a:65536",
            "a:+80",
            "a:8x",
            "a:80:80",
            "user@a",
            "a, b",
            "a b",
            "a;script-src *",
            "a'",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:",
            "[v1.x]",
            "a/b",
        ] {
            assert!(!is_plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn repeated_or_missing_handshake_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(ambiguity(&h).as_deref(), Some("missing Host header"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://a"));
        assert_eq!(ambiguity(&h), None);
        for name in SINGLE_HEADERS {
            let mut twice = h.clone();
            twice.append(name.clone(), HeaderValue::from_static("x"));
            twice.append(name.clone(), HeaderValue::from_static("x"));
            let message = ambiguity(&twice).unwrap();
            assert!(
                message.contains(&canonical_name(&name)),
                "{name}: {message}"
            );
        }
        assert_eq!(
            canonical_name(&header::SEC_WEBSOCKET_KEY),
            "Sec-WebSocket-Key"
        );
        assert_eq!(canonical_name(&header::HOST), "Host");
        h.insert(header::HOST, HeaderValue::from_static("a b"));
        assert!(ambiguity(&h).unwrap().contains("invalid Host"));
    }
}
