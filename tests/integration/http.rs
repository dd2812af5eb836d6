//! The HTTP surface: static files, `/api/targets`, `/healthz`, `/metrics`, TLS.

use std::sync::Arc;

use sockrelay_tests::raw::{ask_health, read_answer};
use sockrelay_tests::{http_get, ws_echo_roundtrip, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn health_targets_and_metrics() {
    let relay = TestRelay::with(|s| s.allow = vec!["localhost:22".into()]).await;
    assert_eq!(http_get(relay.http, "/healthz").await, (200, "ok\n".into()));

    let (status, body) = http_get(relay.http, "/api/targets").await;
    assert_eq!(status, 200);
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(targets[0]["name"], "echo");
    assert_eq!(targets[0]["target"], relay.echo.to_string());
    assert_eq!(targets[1]["name"], "ack");
    assert_eq!(targets[1]["target"], relay.ack.to_string());
    assert_eq!(targets[2]["name"], "udp-echo");
    assert_eq!(targets[2]["target"], format!("udp:{}", relay.echo));
    assert_eq!(targets[3]["target"], "localhost:22");
    assert_eq!(targets[3]["proto"], "tcp");

    let ws = relay.ws("/ws").await;
    assert_eq!(ws_echo_roundtrip(ws, b"12345", &[5]).await, b"12345");
    relay.wait_bridges_closed().await;
    let (status, text) = http_get(relay.http, "/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "sockrelay_bridges_active 0",
        "sockrelay_bridges_total 1",
        "sockrelay_bridge_bytes_total{direction=\"client_to_target\"} 5",
        "sockrelay_bridge_bytes_total{direction=\"target_to_client\"} 5",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test]
async fn index_page_is_served_and_paths_cannot_escape() {
    let relay = TestRelay::start().await;
    let (status, body) = http_get(relay.http, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fnative/src/lib.rs",
        "/%2e%2e%2f%2e%2e%2fetc/passwd",
        "//etc/passwd",
        "/pkg/../../Cargo.toml",
        "/nonexistent.html",
    ] {
        assert_eq!(http_get(relay.http, path).await.0, 404, "{path}");
    }
}

/// The directory of a test's certificate files (`tag` keeps tests apart).
fn tls_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sockrelay-tls-{tag}-{}", std::process::id()))
}

fn write_temp(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A self-signed certificate for `localhost`: its files for the relay (named after `tag`), a
/// client that trusts it, and the name it is for.
fn self_signed(
    tag: &str,
) -> (
    sockrelay_tests::sockrelay::config::TlsFiles,
    tokio_rustls::TlsConnector,
    tokio_rustls::rustls::pki_types::ServerName<'static>,
) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tls_dir(tag);
    let cert = write_temp(&dir, "cert.pem", &certified.cert.pem());
    let key = write_temp(&dir, "key.pem", &certified.signing_key.serialize_pem());
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let files = sockrelay_tests::sockrelay::config::TlsFiles { cert, key };
    (files, connector, name)
}

/// `payload` through a wss bridge to the relay's echo, written in pieces of `sizes`.
async fn wss_echo(
    relay: &TestRelay,
    connector: &tokio_rustls::TlsConnector,
    name: &tokio_rustls::rustls::pki_types::ServerName<'static>,
    payload: &[u8],
    sizes: &[usize],
) -> Vec<u8> {
    let tcp = TcpStream::connect(relay.http).await.unwrap();
    let tls = connector.connect(name.clone(), tcp).await.unwrap();
    let url = format!("wss://localhost:{}/ws", relay.http.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws_echo_roundtrip(ws, payload, sizes).await
}

#[tokio::test]
async fn tls_serves_https_and_wss() {
    let (files, connector, name) = self_signed("only");
    let relay = TestRelay::with(|s| s.tls = Some(files)).await;

    // https
    let tcp = TcpStream::connect(relay.http).await.unwrap();
    let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, tls.read_to_string(&mut response))
        .await
        .unwrap()
        .ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");

    // wss
    assert_eq!(
        wss_echo(&relay, &connector, &name, b"secure", &[3]).await,
        b"secure"
    );
    // Bulk frames to a TLS client are encrypted, never spliced.
    let payload = sockrelay_tests::Rng::new(9).bytes(2 << 20);
    assert!(wss_echo(&relay, &connector, &name, &payload, &[64 * 1024]).await == payload);
    let metrics = relay.metrics.encode();
    assert_eq!(
        sockrelay_tests::counter(&metrics, "sockrelay_bridge_spliced_bytes_total"),
        0
    );

    let _ = std::fs::remove_dir_all(tls_dir("only"));

    // Plain http to a TLS port fails the handshake without hurting the relay.
    let mut plain = TcpStream::connect(relay.http).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut sink)).await;
}

/// `--plain-too` (websockify's `--cert` without `--ssl-only`): one port takes TLS and plain
/// connections, told apart by their first byte, each with its own scheme's origin.
#[tokio::test]
async fn plain_too_takes_tls_and_plain_on_one_port() {
    let (files, connector, name) = self_signed("both");
    let relay = TestRelay::with(|s| {
        s.tls = Some(files);
        s.plain_too = true;
        s.handshake_timeout = std::time::Duration::from_secs(1);
    })
    .await;

    assert_eq!(
        wss_echo(&relay, &connector, &name, b"secure", &[3]).await,
        b"secure"
    );
    assert_eq!(http_get(relay.http, "/healthz").await, (200, "ok\n".into()));
    let ws = relay.ws("/ws").await;
    assert_eq!(ws_echo_roundtrip(ws, b"plain", &[5]).await, b"plain");

    // A page of the relay's own origin is the http:// one on a plain connection, and the
    // https:// one on a TLS connection, not the other way round. (An address that is not
    // loopback, in the headers only: every loopback origin is allowed by default.)
    let host = format!("192.0.2.7:{}", relay.http.port());
    for (origin, status) in [
        (format!("http://{host}"), 101),
        (format!("https://{host}"), 403),
    ] {
        let asked = sockrelay_tests::raw::upgrade(&host, "/ws", &format!("Origin: {origin}\r\n"));
        let answer = sockrelay_tests::raw::exchange(relay.http, asked).await;
        assert_eq!(answer.status, status, "plain, Origin {origin}");
    }
    for (origin, status) in [
        (format!("https://{host}"), 101),
        (format!("http://{host}"), 403),
    ] {
        let tcp = TcpStream::connect(relay.http).await.unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        let asked = sockrelay_tests::raw::upgrade(&host, "/ws", &format!("Origin: {origin}\r\n"));
        tls.write_all(asked.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 12];
        tokio::time::timeout(WAIT, tls.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        let head = String::from_utf8_lossy(&head).into_owned();
        assert_eq!(head, format!("HTTP/1.1 {status}"), "TLS, Origin {origin}");
    }
    // A slow plain head still gets its 408.
    let mut slow = TcpStream::connect(relay.http).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{answer:?}");
    let _ = std::fs::remove_dir_all(tls_dir("both"));
}

/// Regression: `/api/check` had no CORS header, so the socket library on a page of another
/// origin (its `relay` option), which the relay would bridge, could not read it and failed
/// with "Cannot reach the relay".
#[tokio::test]
async fn api_answers_are_readable_by_the_pages_that_may_open_bridges() {
    let relay = TestRelay::with(|s| s.token = Some("s3cret".into())).await;
    let ask = |path: &str, origin: &str| {
        sockrelay_tests::raw::exchange(
            relay.http,
            format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\n\
                 Connection: close\r\n\r\n",
                relay.http
            ),
        )
    };
    for (path, status) in [
        ("/api/check?target=echo&token=s3cret", 200),
        ("/api/check?target=127.0.0.1:1&token=s3cret", 403),
        ("/api/targets?token=s3cret", 200),
        ("/api/check?target=echo", 401),
    ] {
        let answer = ask(path, "http://localhost:5173").await;
        assert_eq!(answer.status, status, "{path}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("http://localhost:5173"),
            "{path}"
        );
        assert_eq!(answer.header("vary"), Some("Origin"), "{path}");
        // A page the relay would not bridge for reads nothing.
        let foreign = ask(path, "https://evil.example").await;
        assert_eq!(foreign.status, status, "{path}");
        assert_eq!(
            foreign.header("access-control-allow-origin"),
            None,
            "{path}"
        );
        assert_eq!(foreign.header("vary"), Some("Origin"), "{path}");
    }
    let metrics = ask("/metrics?token=s3cret", "http://localhost:5173").await;
    assert_eq!(metrics.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn check_endpoint_explains_refusals() {
    let relay = TestRelay::start().await;
    let (status, body) = http_get(relay.http, "/api/check?target=ack").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&relay.ack.to_string()), "{body}");
    let (status, body) = http_get(relay.http, "/api/check?target=127.0.0.1:1").await;
    assert_eq!(status, 403);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("not allowed"),
        "{body}"
    );
    let (status, body) = http_get(relay.http, "/api/check?target=127.0.0.1:0").await;
    assert_eq!(status, 403);
    assert!(body.contains("port"), "{body}");
    assert_eq!(http_get(relay.http, "/api/check").await.0, 200);
}

#[tokio::test]
async fn a_client_that_half_closes_still_gets_its_answer() {
    let relay = TestRelay::start().await;
    let mut stream = TcpStream::connect(relay.http).await.unwrap();
    ask_health(&mut stream, "127.0.0.1").await;
    stream.shutdown().await.unwrap();
    let response = read_answer(&mut stream, WAIT).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
}

#[tokio::test]
async fn rebinding_origin_is_refused() {
    // A page on attacker.example whose name was rebound to the relay's address: Host and Origin
    // agree, but the relay was not told it is attacker.example.
    let relay = TestRelay::start().await;
    let err = relay
        .try_ws(
            "/ws",
            &[
                ("Host", "attacker.example"),
                ("Origin", "http://attacker.example"),
            ],
        )
        .await
        .err()
        .unwrap();
    assert_eq!(err.0, 403);
}
