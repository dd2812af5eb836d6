//! `GET /ws`: the policy's decision, the 101, and the bridge (the handler only wires them).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracing::{debug, info};

use super::{AppState, Local, Peer};
use crate::bridge;
use crate::metrics::RefusalReason;
use crate::policy::{self, Refusal};

pub(super) async fn ws(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    // The route takes GET, and so HEAD (which a GET route answers too); a HEAD request is not
    // a handshake (RFC 6455, 4.1), and must not open a bridge.
    if request.method() != axum::http::Method::GET {
        let refusal = Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            RefusalReason::BadRequest,
            "the WebSocket handshake is a GET request",
        )
        .with_header(axum::http::header::ALLOW, "GET");
        return refuse(&state, refusal);
    }
    let rules = policy::Rules {
        allow: &state.allow,
        origin: &state.origin,
        token: state.settings.token.as_deref(),
        // The connection's own scheme (a `--plain-too` port takes both).
        tls: super::Secure::of(&request, &state),
        tokens: state.tokens.as_ref(),
    };
    let parts = policy::Parts {
        query: request.uri().query(),
        headers: request.headers(),
    };
    let admitted = match policy::admit(rules, parts).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(&state, refusal),
    };
    if state.cancel.is_cancelled() || state.listening.is_cancelled() {
        let refusal = Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalReason::ShuttingDown,
            "relay is shutting down",
        );
        return refuse(&state, refusal);
    }
    let Ok(permit) = state.bridges.clone().try_acquire_owned() else {
        let message = format!(
            "relay is at capacity ({} bridges); try again later",
            state.settings.max_conns
        );
        let refusal = Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RefusalReason::Capacity,
            message,
        );
        return refuse(&state, refusal);
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        let refusal = Refusal::new(
            StatusCode::BAD_REQUEST,
            RefusalReason::BadRequest,
            "this connection cannot be upgraded to a WebSocket",
        );
        return refuse(&state, refusal);
    };
    let peer = request
        .extensions()
        .get::<Peer>()
        .map(|p| state.proxy.client_of(p.0, request.headers()));
    let local = request.extensions().get::<Local>().map(|l| l.0);
    let proxy = state.proxy.header_for(
        &admitted.target,
        admitted.proxy_protocol,
        state.tokens.as_ref(),
        peer,
        local,
    );
    let order = bridge::Order {
        peer,
        proxy: proxy.await,
        target: admitted.target,
        permit,
        announce: admitted.announce,
    };
    let env = bridge::Env {
        settings: state.settings.clone(),
        metrics: state.metrics.clone(),
        cancel: state.cancel.clone(),
        tracker: state.tracker.clone(),
    };
    state.tracker.spawn(bridge::serve(on_upgrade, order, env));

    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(admitted.key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    // The one that says more, when a client offers both.
    let subprotocol = if admitted.announce {
        Some(policy::CONNECTED)
    } else {
        admitted.binary.then_some("binary")
    };
    if let Some(subprotocol) = subprotocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(subprotocol),
        );
    }
    response
}

/// A refusal: the status, a JSON body `{"error": "..."}`, its header, and a metric.
fn refuse(state: &AppState, refusal: Refusal) -> Response {
    let Refusal {
        status,
        reason,
        message,
        header,
    } = refusal;
    state.metrics.refused(reason);
    if reason == RefusalReason::Origin {
        // What an operator needs when a page that should work does not: the browser shows its
        // page no reason, so the log says it, and how to allow the page.
        info!(
            status = status.as_u16(),
            %message,
            "websocket request refused: start the relay with --origin ORIGIN to allow that page"
        );
    } else {
        debug!(status = status.as_u16(), reason = reason.as_str(), %message, "websocket request refused");
    }
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    if let Some((name, value)) = header {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        // RFC 6455, 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
