//! Strict handshakes (RFC 6455 4.2.1, RFC 9112 3.2), the token on every endpoint that needs it,
//! the headers every page and asset carries, and the close code README promises for text
//! (a message or a Close reason) that is not UTF-8.

use sockrelay_tests::raw::{exchange, frame, read_server_frames, upgrade, upgrade_with_only, KEY};
use sockrelay_tests::{counter, TestRelay};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const OTHER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEA==";
const TOKEN: &str = "s3cret-Token_42";

fn bad_requests(relay: &TestRelay) -> u64 {
    let metrics = relay.metrics.encode();
    if !metrics.contains("reason=\"bad_request\"") {
        return 0;
    }
    counter(&metrics, "sockrelay_refusals_total{reason=\"bad_request\"}")
}

#[tokio::test]
async fn ambiguous_or_missing_handshake_headers_are_refused_with_400() {
    let relay = TestRelay::start().await;
    let host = format!("Host: {}\r\n", relay.http);
    let version = "Sec-WebSocket-Version: 13\r\n";
    let key = format!("Sec-WebSocket-Key: {KEY}\r\n");
    let other_key = format!("Sec-WebSocket-Key: {OTHER_KEY}\r\n");
    let origin = format!("Origin: http://{}\r\n", relay.http);
    let local_origin = "Origin: http://localhost:3000\r\n";
    // (what is wrong, the header lines, a word the refusal names)
    let cases = [
        (
            "the same key twice",
            format!("{host}{version}{key}{key}"),
            "Sec-WebSocket-Key",
        ),
        (
            "two different keys",
            format!("{host}{version}{key}{other_key}"),
            "Sec-WebSocket-Key",
        ),
        ("no Host", format!("{version}{key}"), "Host"),
        (
            "the same Host twice",
            format!("{host}{host}{version}{key}"),
            "Host",
        ),
        (
            "two different Hosts",
            format!("{host}Host: localhost\r\n{version}{key}"),
            "Host",
        ),
        (
            "two Hosts in one line",
            format!("Host: {0}, {0}\r\n{version}{key}", relay.http),
            "Host",
        ),
        (
            "the version twice",
            format!("{host}{version}{version}{key}"),
            "Sec-WebSocket-Version",
        ),
        (
            "two different versions",
            format!("{host}{version}Sec-WebSocket-Version: 8\r\n{key}"),
            "Sec-WebSocket-Version",
        ),
        (
            "the same Origin twice",
            format!("{host}{version}{key}{origin}{origin}"),
            "Origin",
        ),
        (
            "two different Origins",
            format!("{host}{version}{key}{local_origin}Origin: http://evil.example\r\n"),
            "Origin",
        ),
    ];
    for (i, (what, headers, named)) in cases.iter().enumerate() {
        let answer = exchange(relay.http, &upgrade_with_only("/ws", headers)).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.head);
        assert!(answer.error().contains(named), "{what}: {}", answer.body);
        assert_eq!(bad_requests(&relay), i as u64 + 1, "{what}: not counted");
    }
    // The controls: each header once.
    for headers in [
        format!("{host}{version}{key}"),
        format!("{host}{version}{key}{origin}"),
        format!("{host}{version}{other_key}{local_origin}"),
    ] {
        let answer = exchange(relay.http, &upgrade_with_only("/ws", &headers)).await;
        assert_eq!(answer.status, 101, "{headers}: {}", answer.head);
    }
    assert_eq!(bad_requests(&relay), cases.len() as u64);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let relay = TestRelay::with(|s| s.token = Some(TOKEN.into())).await;
    let base = format!(
        "Host: {}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n",
        relay.http
    );
    // RFC 9110 (11.4): one or more spaces after the scheme.
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR", "Bearer  "] {
        let headers = format!("{base}Authorization: {scheme} {TOKEN}\r\n");
        let answer = exchange(relay.http, &upgrade_with_only("/ws", &headers)).await;
        assert_eq!(answer.status, 101, "{scheme}: {}", answer.head);
        let api = format!(
            "GET /api/targets HTTP/1.1\r\nHost: {}\r\nAuthorization: {scheme} {TOKEN}\r\n\r\n",
            relay.http
        );
        assert_eq!(exchange(relay.http, &api).await.status, 200, "{scheme}");
    }
    // The scheme's case does not matter; the token's does, and other schemes stay refused.
    for authorization in [
        format!("bearer {}", TOKEN.to_lowercase()),
        format!("bearer {}", &TOKEN[1..]),
        format!("bearerx {TOKEN}"),
        format!("bearer{TOKEN}"),
        format!("basic {TOKEN}"),
    ] {
        let headers = format!("{base}Authorization: {authorization}\r\n");
        let answer = exchange(relay.http, &upgrade_with_only("/ws", &headers)).await;
        assert_eq!(answer.status, 401, "{authorization}: {}", answer.head);
    }
}

#[tokio::test]
async fn with_a_token_the_api_and_metrics_need_it_and_healthz_and_pages_do_not() {
    let relay = TestRelay::with(|s| s.token = Some(TOKEN.into())).await;
    let get = |path: &str, extra: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
            relay.http
        )
    };
    for path in ["/api/targets", "/api/check?target=ack", "/metrics"] {
        let joiner = if path.contains('?') { '&' } else { '?' };
        for (how, request) in [
            ("no token", get(path, "")),
            (
                "a wrong token",
                get(&format!("{path}{joiner}token=wrong"), ""),
            ),
            (
                "a wrong bearer token",
                get(path, "Authorization: Bearer wrong\r\n"),
            ),
            (
                "the token in another scheme",
                get(path, &format!("Authorization: Basic {TOKEN}\r\n")),
            ),
        ] {
            let answer = exchange(relay.http, &request).await;
            assert_eq!(answer.status, 401, "{path} with {how}: {}", answer.head);
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{path}");
            assert!(answer.error().contains("token"), "{path}: {}", answer.body);
            assert!(!answer.body.contains(TOKEN));
        }
        for (how, request) in [
            ("?token=", get(&format!("{path}{joiner}token={TOKEN}"), "")),
            (
                "Authorization",
                get(path, &format!("Authorization: Bearer {TOKEN}\r\n")),
            ),
        ] {
            let answer = exchange(relay.http, &request).await;
            assert_eq!(answer.status, 200, "{path} with {how}: {}", answer.head);
        }
    }
    // The check still checks once the token is given.
    let request = get(&format!("/api/check?token={TOKEN}&target=127.0.0.1:9"), "");
    assert_eq!(exchange(relay.http, &request).await.status, 403);
    // Open: the health check (for load balancers) and the pages, which only load the client.
    for path in ["/healthz", "/", "/docs", "/favicon.ico"] {
        let answer = exchange(relay.http, &get(path, "")).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.head);
    }
}

/// The Content-Security-Policy's directives, by name.
fn directives(csp: &str) -> std::collections::BTreeMap<String, String> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let (name, value) = d.split_once(' ').unwrap_or((d, ""));
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn pages_and_assets_carry_nosniff_and_a_content_security_policy() {
    let relay = TestRelay::start().await;
    let authority = relay.http.to_string();
    let get = |path: &str, host: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    for path in [
        "/",
        "/docs",
        "/examples/embed.html",
        "/css/app.css",
        "/css/docs.css",
        "/js/docs.js",
        "/favicon.ico",
        "/favicon.svg",
        "/api/targets",
        "/healthz",
        "/metrics",
        "/no-such-file",
    ] {
        let answer = exchange(relay.http, &get(path, &authority)).await;
        assert!(
            answer.status == 200 || path == "/no-such-file",
            "{path}: {}",
            answer.head
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let csp = answer
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"));
        let d = directives(csp);
        assert_eq!(d["default-src"], "'self'", "{path}: {csp}");
        assert_eq!(
            d["script-src"], "'self' 'wasm-unsafe-eval'",
            "{path}: {csp}"
        );
        assert_eq!(
            d["connect-src"],
            format!("'self' ws://{authority} wss://{authority}"),
            "{path}: {csp}"
        );
        assert_eq!(d["frame-ancestors"], "'self'", "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    let icon = exchange(relay.http, &get("/favicon.ico", &authority)).await;
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));

    // A Host that is not a plain authority never reaches the policy.
    for host in [
        "evil.example;script-src *",
        "evil.example 'unsafe-inline'",
        "user@evil.example",
    ] {
        let answer = exchange(relay.http, &get("/", host)).await;
        let csp = answer.header("content-security-policy").unwrap_or("");
        assert!(!csp.contains("evil"), "{host}: {csp}");
    }
    let answer = exchange(relay.http, &get("/", "localhost:8080")).await;
    let csp = answer.header("content-security-policy").unwrap();
    assert_eq!(
        directives(csp)["connect-src"],
        "'self' ws://localhost:8080 wss://localhost:8080"
    );

    // --frame-ancestors replaces 'self'.
    let embedded = TestRelay::with(|s| {
        s.frame_ancestors = vec!["'self'".into(), "https://docs.example".into()]
    })
    .await;
    let answer = exchange(embedded.http, &get("/docs", &embedded.http.to_string())).await;
    let csp = answer.header("content-security-policy").unwrap();
    assert_eq!(
        directives(csp)["frame-ancestors"],
        "'self' https://docs.example"
    );
}

/// A masked client frame; `first` is FIN|opcode.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, true)
}

/// Reads server frames until a Close; returns its code.
async fn close_code(stream: &mut TcpStream) -> u16 {
    read_server_frames(stream, &mut Vec::new())
        .await
        .expect("no Close")
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let relay = TestRelay::start().await;
    let request = upgrade(&relay.http.to_string(), "/ws", "");
    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        ("invalid bytes", vec![client_frame(0x81, b"ok \xff\xfe")]),
        (
            "a sequence split over two frames, then broken",
            vec![client_frame(0x01, b"\xe2\x82"), client_frame(0x80, b"(")],
        ),
        ("a surrogate", vec![client_frame(0x81, b"\xed\xa0\x80")]),
        (
            "a Close whose reason is not UTF-8",
            vec![client_frame(0x88, b"\x03\xe8\xff")],
        ),
    ];
    for (what, frames) in cases {
        let answer = exchange(relay.http, &request).await;
        let mut stream = answer.stream;
        assert_eq!(answer.status, 101, "{what}");
        for frame in frames {
            stream.write_all(&frame).await.unwrap();
        }
        assert_eq!(close_code(&mut stream).await, 1007, "{what}");
    }
}

#[tokio::test]
async fn every_http_1_1_request_names_exactly_one_host() {
    // RFC 9112, 3.2: 400 for an HTTP/1.1 request with no Host or with two, on every path.
    let relay = TestRelay::start().await;
    let host = relay.http;
    for path in ["/healthz", "/", "/api/targets", "/no-such-page"] {
        let none = exchange(relay.http, &format!("GET {path} HTTP/1.1\r\n\r\n")).await;
        assert_eq!(none.status, 400, "{path} without Host: {}", none.head);
        assert!(none.error().contains("Host"), "{}", none.body);
        let two = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n");
        let two = exchange(relay.http, &two).await;
        assert_eq!(two.status, 400, "{path} with two Hosts: {}", two.head);
        let one = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        assert_ne!(exchange(relay.http, &one).await.status, 400, "{path}");
    }
    // HTTP/1.0 may leave it out.
    let old = exchange(relay.http, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert_eq!(old.status, 200, "{}", old.head);
}
