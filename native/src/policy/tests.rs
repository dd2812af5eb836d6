//! Admission, rule by rule, without sockets: each row is a request's parts and what [`admit`]
//! answers. The integration tests (ws.rs, hostile.rs) check the same rules from outside.

#![allow(clippy::unwrap_used)]
use std::net::SocketAddr;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A valid handshake from a non-browser client, with the extra headers of `with` (a name and
/// an empty value removes the header).
fn handshake(with: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("host", "127.0.0.1:8080"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", KEY),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    for &(name, value) in with {
        let name = axum::http::HeaderName::from_static(name);
        if value.is_empty() {
            h.remove(&name);
        } else {
            h.append(name, HeaderValue::from_str(value).unwrap());
        }
    }
    h
}

async fn allow_list() -> AllowList {
    let echo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    AllowList::build(
        &[("echo", target::Proto::Tcp, echo)],
        &["127.0.0.1:7010".into()],
    )
    .await
    .unwrap()
}

/// What `admit` answers, with `--token s3cret` when `token`.
async fn decide(
    token: bool,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Admitted, Refusal> {
    let allow = allow_list().await;
    let origin = OriginPolicy::new(&[]);
    let rules = Rules {
        allow: &allow,
        origin: &origin,
        token: token.then_some("s3cret"),
        tls: false,
        tokens: None,
    };
    admit(rules, Parts { query, headers }).await
}

/// What a request is, its query and headers, and the refusal's status, reason, a part of its
/// message, and the header it carries.
type Row = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
    StatusCode,
    RefusalReason,
    &'static str,
    Option<&'static str>,
);

#[tokio::test]
async fn each_rule_refuses_with_its_status_reason_and_message() {
    use RefusalReason::*;
    #[rustfmt::skip]
    let rows: [Row; 16] = [
        ("no Upgrade", None, &[("upgrade", "")], StatusCode::UPGRADE_REQUIRED, BadRequest, "this endpoint is a WebSocket", Some("upgrade")),
        ("Connection without upgrade", None, &[("connection", "")], StatusCode::UPGRADE_REQUIRED, BadRequest, "Connection: Upgrade", Some("upgrade")),
        ("two Hosts", None, &[("host", "a")], StatusCode::BAD_REQUEST, BadRequest, "more than one Host header", None),
        ("no Host", None, &[("host", "")], StatusCode::BAD_REQUEST, BadRequest, "missing Host header", None),
        ("a Host that is not one authority", None, &[("host", ""), ("host", "a b")], StatusCode::BAD_REQUEST, BadRequest, "invalid Host header", None),
        ("two keys", None, &[("sec-websocket-key", KEY)], StatusCode::BAD_REQUEST, BadRequest, "more than one Sec-WebSocket-Key header", None),
        ("two credentials", Some("target=echo"), &[("authorization", "Bearer nope"), ("authorization", "Bearer s3cret")], StatusCode::BAD_REQUEST, BadRequest, "more than one Authorization header", None),
        ("version 8", None, &[("sec-websocket-version", ""), ("sec-websocket-version", "8")], StatusCode::UPGRADE_REQUIRED, BadRequest, "Sec-WebSocket-Version", Some("sec-websocket-version")),
        ("no key", None, &[("sec-websocket-key", "")], StatusCode::BAD_REQUEST, BadRequest, "Sec-WebSocket-Key", None),
        ("a body", None, &[("content-length", "5")], StatusCode::BAD_REQUEST, BadRequest, "must not have a body", None),
        ("chunked", None, &[("transfer-encoding", "chunked")], StatusCode::BAD_REQUEST, BadRequest, "must not have a body", None),
        ("a malformed query", Some("target=a&target=b"), &[], StatusCode::BAD_REQUEST, BadRequest, "malformed query string", None),
        ("a cross-site page", None, &[("origin", "http://evil.example")], StatusCode::FORBIDDEN, Origin, "", None),
        ("no token", Some("target=echo"), &[], StatusCode::UNAUTHORIZED, Token, "requires a token", Some("www-authenticate")),
        ("a wrong token", Some("token=s3cre"), &[], StatusCode::UNAUTHORIZED, Token, "requires a token", Some("www-authenticate")),
        ("a target outside the list", Some("token=s3cret&target=127.0.0.1:7011"), &[], StatusCode::FORBIDDEN, Target, "", None),
    ];
    for (what, query, with, status, reason, message, header) in rows {
        let headers = handshake(with);
        let refusal = decide(true, query, &headers).await.unwrap_err();
        assert_eq!(refusal.status, status, "{what}");
        assert_eq!(refusal.reason, reason, "{what}");
        assert!(
            refusal.message.contains(message),
            "{what}: {}",
            refusal.message
        );
        assert_eq!(
            refusal.header.map(|(name, _)| name.to_string()).as_deref(),
            header,
            "{what}"
        );
    }
}

#[tokio::test]
async fn admitted_requests_say_where_and_how() {
    let headers = handshake(&[]);
    let admitted = decide(false, None, &headers).await.unwrap();
    let crate::bridge::Dest::Tcp(target) = admitted.target else {
        panic!("not a TCP target: {:?}", admitted.target);
    };
    assert_eq!(target.name, "echo");
    assert_eq!(target.addrs, ["127.0.0.1:7000".parse().unwrap()]);
    assert_eq!(admitted.key, KEY);
    assert!(!admitted.binary);

    let headers = handshake(&[
        ("authorization", "Bearer s3cret"),
        ("sec-websocket-protocol", "chat, binary"),
        ("origin", "http://127.0.0.1:8080"),
    ]);
    let admitted = decide(true, Some("target=127.0.0.1:7010"), &headers)
        .await
        .unwrap();
    assert_eq!(admitted.target.name(), "127.0.0.1:7010");
    assert!(admitted.binary);

    let headers = handshake(&[
        ("connection", "keep-alive, upgrade"),
        ("content-length", "0"),
    ]);
    let admitted = decide(true, Some("token=s3cret&target=echo"), &headers).await;
    assert_eq!(admitted.unwrap().target.name(), "127.0.0.1:7000");
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
    // Two sets of credentials, in either order, authenticate nobody, whatever the query says.
    for (first, second) in [
        ("Bearer s3cret", "Bearer nope"),
        ("Bearer nope", "Bearer s3cret"),
    ] {
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(first));
        h.append(header::AUTHORIZATION, HeaderValue::from_static(second));
        assert!(!token_ok("s3cret", None, &h), "{first}, {second}");
        assert!(!token_ok("s3cret", Some("s3cret"), &h), "{first}, {second}");
    }
}
