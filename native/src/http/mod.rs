//! The HTTP side's routes: the embedded web client ([`assets`]), `/ws`, `/api/targets`,
//! `/api/check`, `/healthz`, `/metrics`, and the headers every answer carries.
//!
//! Owns: the router, the middleware (Host, header size, token on `/api/*` and `/metrics`,
//! security headers), and the `/ws` handler, which only wires the policy's decision, the 101
//! and the bridge.
//!
//! Leaves to others: accepting and serving connections ([`crate::accept`]), whether a `/ws`
//! request is admitted ([`crate::policy`]), the bridge itself ([`crate::bridge`]).

pub mod assets;
mod negotiate;
pub mod webdir;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::policy::origin::OriginPolicy;
use crate::policy::target::AllowList;
use crate::policy::{self, token_ok, Query};

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
    /// Fires when the listener closes (at shutdown, or by websockify's `--timeout` and
    /// `--run-once`): no bridge opens after it.
    pub listening: CancellationToken,
    /// Bridges outlive their HTTP request; shutdown waits for them here.
    pub tracker: TaskTracker,
    /// Whether the relay serves https/wss (for the same-origin check).
    pub tls: bool,
    /// `--target-tokens`.
    pub tokens: Option<crate::policy::tokens::TokenTargets>,
    /// `--trusted-proxy` and `--proxy-protocol`: who the client of a request is, and which
    /// targets are told.
    pub proxy: crate::proxy_protocol::ProxyPolicy,
    /// `--web`.
    pub web: Option<webdir::WebDir>,
}

/// The peer address, put into each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The relay's address the peer connected to (the accepted socket's local address), put into
/// each request's extensions by the accept loop: what a PROXY header names as the destination.
#[derive(Debug, Clone, Copy)]
pub struct Local(pub SocketAddr);

/// Whether the connection of a request speaks TLS, put into each request's extensions by the
/// accept loop: with `--plain-too` one port takes both, and a page's own origin is `https://`
/// on one connection and `http://` on the other.
#[derive(Debug, Clone, Copy)]
pub struct Secure(pub bool);

impl Secure {
    /// Whether `request` came over TLS (the relay's setting where the accept loop said
    /// nothing, as for fuzzers' connections).
    fn of(request: &Request, state: &AppState) -> bool {
        request
            .extensions()
            .get::<Secure>()
            .map_or(state.tls, |secure| secure.0)
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    // With `--token`, what the relay reaches and counts is as private as `/ws` itself.
    let guarded = Router::new()
        .route("/api/targets", get(targets))
        .route("/api/check", get(check_target))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api_for_allowed_pages,
        ));
    Router::new()
        .merge(guarded)
        // Open even with `--token`: load balancers probe it, and it tells nothing.
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(get(fallback))
        .layer(axum::middleware::from_fn(require_host))
        // Added after that layer: `/ws` checks Host with the rest of its handshake, and
        // counts the refusal as one.
        .route("/ws", get(ws::ws))
        // noVNC's default path, websockify's (which upgrades on any path).
        .route("/websockify", get(ws::ws))
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
/// [`assets::content_security_policy`] to every answer but a 101, unless the handler
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
        .filter(|h| policy::is_plain_authority(h))
        .map(str::to_owned);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let policy = assets::content_security_policy(host.as_deref(), &state.settings.frame_ancestors);
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

/// Lets the pages that may open bridges (the `--origin` rule of `/ws`) read `/api/*`'s answers,
/// its refusals included: the socket library asks `/api/check` before it opens a bridge, from
/// a page of another origin too (its `relay` option). Other origins get no such header, so their
/// pages cannot read what the relay reaches.
async fn api_for_allowed_pages(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let api = request.uri().path().starts_with("/api/");
    let allowed = api
        && origin.as_ref().is_some_and(|origin| {
            let secure = Secure::of(&request, &state);
            let host = request.headers().get(header::HOST);
            let host = host.and_then(|v| v.to_str().ok());
            // Not text: no origin of a page, and nothing to send back.
            origin
                .to_str()
                .is_ok_and(|origin| state.origin.check(Some(origin), host, secure).is_ok())
        });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let (true, Some(origin)) = (allowed, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    // Every answer of the API depends on the Origin: no cache may give one page's to another.
    if api {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
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
            .and_then(|q| Query::parse(q).ok())
            .unwrap_or_default();
        // `?token=` names no target here, so it is the auth token even with --target-tokens.
        let given = query.auth_tokens(false);
        if !given
            .iter()
            .any(|&given| token_ok(expected, given, request.headers()))
        {
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
    let query = match request.uri().query().map(Query::parse).transpose() {
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
        Ok(dest) => Json(serde_json::json!({ "target": dest.name() })).into_response(),
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

/// What no route takes: a WebSocket handshake (a bridge with `--ws-any-path`, as websockify
/// takes one on any path; otherwise a 404 that says where bridges are), or a page.
async fn fallback(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if policy::handshake::asks_for_websocket(request.headers()) {
        if state.settings.ws_any_path {
            return ws::ws(State(state), request).await;
        }
        let error = "no WebSocket here: bridges are opened on /ws (and /websockify)";
        let body = Json(serde_json::json!({ "error": error }));
        return (StatusCode::NOT_FOUND, body).into_response();
    }
    static_file(State(state), request).await
}

async fn static_file(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (request, _) = request.into_parts();
    if let Some(web) = &state.web {
        if let Some((mut response, inline)) = web.serve(&request).await {
            let host = request
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .filter(|h| policy::is_plain_authority(h));
            let policy = assets::content_security_policy(host, &state.settings.frame_ancestors);
            let policy = webdir::content_security_policy(&policy, &inline);
            if let Ok(v) = HeaderValue::from_str(&policy) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            return response;
        }
    }
    assets::serve(request.uri.path(), &request.headers)
}

fn with_header(mut response: Response, name: HeaderName, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

/// Serves HTTP/1.1 (and WebSocket upgrades) on one accepted connection until it ends or the
/// relay shuts down, outside the accept loop's budget of connections (see [`crate::accept`]).
/// Public so that fuzzers can feed it arbitrary bytes.
pub async fn serve_connection<I>(io: I, peer: SocketAddr, router: Router, state: &AppState)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let place = crate::accept::Place::alone();
    let secure = Secure(state.tls);
    crate::accept::serve_connection(io, peer, None, secure, router, state, &place).await;
}
