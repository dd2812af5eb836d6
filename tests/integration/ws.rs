//! The `/ws` bridge: contracts, limits and bad input.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::raw::KEY;
use sockrelay_tests::{
    connect_with, counter, raw_http, still_serves, ws_echo_roundtrip, ClosedPort, Rng, TestRelay,
    Ws, WAIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Reads until a Close frame; returns the binary payload received before it and the close code
/// and reason.
async fn read_until_close(ws: &mut Ws) -> (Vec<u8>, Option<(u16, String)>) {
    let mut data = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => data.extend_from_slice(&b),
            Some(Ok(Message::Close(f))) => {
                return (data, f.map(|f| (u16::from(f.code), f.reason.to_string())))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("error before close: {e}"),
            None => return (data, None),
        }
    }
}

#[tokio::test]
async fn default_target_is_the_echo() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws("/ws").await;
    ws.send(Message::text("Hello, world")).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"Hello, world"),
        other => panic!("unexpected {other:?}"),
    }
    ws.close(None).await.unwrap();
    relay.wait_bridges_closed().await;
}

#[tokio::test]
async fn text_and_binary_frames_carry_exact_bytes() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws("/ws").await;
    ws.send(Message::text("héllo ✓")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 255, 10, 13]))
        .await
        .unwrap();
    let expected: Vec<u8> = ["héllo ✓".as_bytes(), &[0, 255, 10, 13]].concat();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn binary_subprotocol_is_selected_when_offered() {
    let relay = TestRelay::start().await;
    let offered = [("Sec-WebSocket-Protocol", "base64, binary")];
    let (_ws, response) = connect_with(&relay.ws_url("/ws"), &offered).await.unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "binary"
    );
    let (_ws, response) = tokio_tungstenite::connect_async(relay.ws_url("/ws"))
        .await
        .unwrap();
    assert!(response.headers().get("Sec-WebSocket-Protocol").is_none());
}

#[tokio::test]
async fn builtin_targets_by_name_and_address() {
    let relay = TestRelay::start().await;
    for target in ["ack".to_string(), relay.ack.to_string()] {
        let mut ws = relay.ws(&format!("/ws?target={target}")).await;
        ws.send(Message::text("hi")).await.unwrap();
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"server received you message."),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn disallowed_targets_get_403_with_a_json_reason() {
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = TestRelay::start().await;
    let port = other.local_addr().unwrap().port();
    let echo_port = relay.echo.port();
    let cases = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("127.1:{echo_port}"),
        format!("0x7f.0.0.1:{echo_port}"),
        format!("2130706433:{echo_port}"),
        format!("%5B%3A%3Affff%3A127.0.0.1%5D:{echo_port}"),
        "127.0.0.1:0".into(),
        "127.0.0.1:65536".into(),
        "127.0.0.1:http".into(),
        "127.0.0.1".into(),
        "".into(),
        "10.0.0.1:22".into(),
    ];
    for target in cases {
        let err = relay
            .try_ws(&format!("/ws?target={target}"), &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{target} was allowed"));
        assert_eq!(err.0, 403, "{target}: {err:?}");
        let body: serde_json::Value = serde_json::from_str(&err.1).unwrap();
        assert!(
            body["error"].as_str().unwrap().len() > 10,
            "{target}: {body}"
        );
    }
    assert!(relay
        .metrics
        .encode()
        .contains("sockrelay_refusals_total{reason=\"target\"} 12"));
    still_serves(relay.http).await;
    // Nothing ever connected to the non-allowed listener.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.accept())
            .await
            .is_err()
    );
}

/// A one-shot TCP target: runs `script` on the first connection.
async fn target<F, Fut>(script: F) -> std::net::SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        script(s).await;
    });
    addr
}

#[tokio::test]
async fn allowed_extra_target_and_target_eof_delivers_everything_then_1000() {
    let payload = Rng::new(11).bytes(300_000);
    let sent = payload.clone();
    let addr = target(move |mut s| async move {
        s.write_all(&sent).await.unwrap();
        // EOF right after a burst: the bridge must deliver the whole burst before closing.
    })
    .await;
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let mut ws = relay.ws(&format!("/ws?target={addr}")).await;
    let (data, close) = read_until_close(&mut ws).await;
    assert!(
        data == payload,
        "got {} of {} bytes",
        data.len(),
        payload.len()
    );
    assert_eq!(close.unwrap().0, 1000);
    relay.wait_bridges_closed().await;
}

/// TCP urgent data (a byte sent with `MSG_OOB`, as telnet's Synch sends its Data Mark) is a byte
/// of the stream: it reaches the client where it was sent, not dropped as the kernel drops it
/// from a socket that does not ask to keep it inline.
#[tokio::test]
async fn urgent_data_from_the_target_arrives_in_its_place() {
    let addr = target(move |mut s| async move {
        s.write_all(b"telnet \xff").await.unwrap();
        socket2::SockRef::from(&s)
            .send_out_of_band(b"\xf2")
            .unwrap();
        s.write_all(b" and on").await.unwrap();
    })
    .await;
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let mut ws = relay.ws(&format!("/ws?target={addr}")).await;
    let (data, close) = read_until_close(&mut ws).await;
    assert_eq!(data, b"telnet \xff\xf2 and on");
    assert_eq!(close.unwrap().0, 1000);
    relay.wait_bridges_closed().await;
}

/// A WebSocket handshake on a path that is not a bridge's gets a 404 that says where bridges
/// are (not the page at that path, which a WebSocket client cannot use), unless
/// `--ws-any-path` (websockify's way) takes it there too.
#[tokio::test]
async fn handshakes_on_other_paths_get_404_unless_any_path_is_on() {
    let relay = TestRelay::start().await;
    for path in ["/", "/index.html", "/nothing/here"] {
        let url = relay.ws_url(path);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 404, "{path}");
                let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default());
                assert!(body.contains("/ws"), "{path}: {body}");
            }
            other => panic!("{path}: {:?}", other.map(|_| ())),
        }
    }
    // The pages themselves are still there.
    assert_eq!(sockrelay_tests::http_get(relay.http, "/").await.0, 200);
    let relay = TestRelay::with(|s| s.ws_any_path = true).await;
    for path in ["/", "/index.html", "/nothing/here?target=echo"] {
        let mut ws = relay.ws(path).await;
        ws.send(Message::binary(b"any path".to_vec()))
            .await
            .unwrap();
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"any path", "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert_eq!(sockrelay_tests::http_get(relay.http, "/").await.0, 200);
}

#[tokio::test]
async fn client_close_shuts_the_target_write_side_after_all_bytes() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let addr = target(move |mut s| async move {
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        let _ = tx.send(all);
    })
    .await;
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let mut ws = relay.ws(&format!("/ws?target={addr}")).await;
    let payload = Rng::new(5).bytes(200_000);
    for chunk in payload.chunks(7_001) {
        ws.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
    ws.close(None).await.unwrap();
    // The Close is answered: the stream ends cleanly (an unanswered close would end in an
    // error, which read_until_close rejects).
    let _ = read_until_close(&mut ws).await;
    let got = tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    assert!(
        got == payload,
        "target got {} of {} bytes",
        got.len(),
        payload.len()
    );
}

#[tokio::test]
async fn unreachable_target_closes_1011_with_a_reason() {
    // A port that was just free: connecting is refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let mut ws = relay.ws(&format!("/ws?target={addr}")).await;
    let (_, close) = read_until_close(&mut ws).await;
    let (code, reason) = close.unwrap();
    assert_eq!(code, 1011);
    assert!(reason.contains("unreachable"), "{reason}");
    still_serves(relay.http).await;
}

#[tokio::test]
async fn target_reset_closes_1011() {
    let addr = target(|s| async move {
        // SO_LINGER 0 makes the close an RST; the socket is non-blocking, so the drop is instant.
        #[allow(deprecated)]
        s.set_linger(Some(Duration::ZERO)).unwrap();
        let mut s = s;
        s.write_all(b"partial").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(s); // RST because of linger 0
    })
    .await;
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let mut ws = relay.ws(&format!("/ws?target={addr}")).await;
    let (data, close) = read_until_close(&mut ws).await;
    assert_eq!(data, b"partial");
    let (code, reason) = close.unwrap();
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("reset"), "{reason}");
}

#[tokio::test]
async fn ipv6_literal_target() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    };
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        tokio::io::copy(&mut r, &mut w).await.unwrap();
    });
    let relay = TestRelay::with(|s| s.allow = vec![addr.to_string()]).await;
    let encoded = addr.to_string().replace('[', "%5B").replace(']', "%5D");
    let ws = relay.ws(&format!("/ws?target={encoded}")).await;
    assert_eq!(ws_echo_roundtrip(ws, b"over v6", &[3]).await, b"over v6");
    let targets = sockrelay_tests::http_get(relay.http, "/api/targets")
        .await
        .1;
    assert!(
        targets.contains(&format!("\"target\":\"{addr}\"")),
        "{targets}"
    );
}

#[tokio::test]
async fn oversized_message_closes_1009() {
    let relay = TestRelay::with(|s| s.max_message = 1000).await;
    let mut ws = relay.ws("/ws").await;
    ws.send(Message::binary(vec![1u8; 1000])).await.unwrap();
    ws.send(Message::binary(vec![2u8; 1001])).await.unwrap();
    let (data, close) = read_until_close(&mut ws).await;
    assert_eq!(
        data,
        vec![1u8; 1000],
        "the message within the limit is echoed"
    );
    assert_eq!(close.unwrap().0, 1009);
    still_serves(relay.http).await;
    // Counted under its own kind, and only there.
    relay.wait_bridges_closed().await;
    let (_, metrics) = sockrelay_tests::http_get(relay.http, "/metrics").await;
    let errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("sockrelay_bridge_errors_total{"))
        .collect();
    assert_eq!(
        errors,
        ["sockrelay_bridge_errors_total{kind=\"too_big\"} 1"],
        "{metrics}"
    );
}

#[tokio::test]
async fn token_is_required_when_set() {
    let relay = TestRelay::with(|s| s.token = Some("s3cret".into())).await;
    assert_eq!(relay.try_ws("/ws", &[]).await.err().unwrap().0, 401);
    assert_eq!(
        relay.try_ws("/ws?token=wrong", &[]).await.err().unwrap().0,
        401
    );
    let ws = relay.try_ws("/ws?token=s3cret", &[]).await.unwrap();
    assert_eq!(ws_echo_roundtrip(ws, b"ok", &[2]).await, b"ok");
    let ws = relay
        .try_ws("/ws", &[("Authorization", "Bearer s3cret")])
        .await
        .unwrap();
    assert_eq!(ws_echo_roundtrip(ws, b"ok", &[2]).await, b"ok");
}

#[tokio::test]
async fn origin_allow_list() {
    let relay = TestRelay::start().await;
    let own = format!("http://{}", relay.http);
    for ok in [
        own.as_str(),
        "http://localhost:3000",
        "http://127.0.0.1:9999",
    ] {
        assert!(relay.try_ws("/ws", &[("Origin", ok)]).await.is_ok(), "{ok}");
    }
    for bad in [
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
    ] {
        let err = relay.try_ws("/ws", &[("Origin", bad)]).await.err().unwrap();
        assert_eq!(err.0, 403, "{bad}");
        assert!(err.1.contains("origin"), "{}", err.1);
    }
    let relay = TestRelay::with(|s| s.origin = vec!["https://docs.example".into()]).await;
    assert!(relay
        .try_ws("/ws", &[("Origin", "https://docs.example")])
        .await
        .is_ok());
    assert_eq!(
        relay
            .try_ws("/ws", &[("Origin", "http://localhost:3000")])
            .await
            .err()
            .unwrap()
            .0,
        403
    );
}

#[tokio::test]
async fn max_conns_gives_503_and_frees_on_close() {
    let relay = TestRelay::with(|s| s.max_conns = 2).await;
    let mut a = relay.ws("/ws").await;
    let b = relay.ws("/ws").await;
    let err = relay.try_ws("/ws", &[]).await.err().unwrap();
    assert_eq!(err.0, 503);
    assert!(err.1.contains("capacity"));
    a.close(None).await.unwrap();
    let _ = read_until_close(&mut a).await;
    drop(b);
    relay.wait_bridges_closed().await;
    // Permits come back when the bridge task ends, just after the gauge drops.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match relay.try_ws("/ws", &[]).await {
            Ok(ws) => {
                assert_eq!(ws_echo_roundtrip(ws, b"x", &[1]).await, b"x");
                break;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("still refused: {e:?}"),
        }
    }
}

#[tokio::test]
async fn idle_bridge_is_closed() {
    let relay = TestRelay::with(|s| s.idle_timeout = Duration::from_secs(1)).await;
    let mut ws = relay.ws("/ws").await;
    let (_, close) = read_until_close(&mut ws).await;
    let (code, reason) = close.unwrap();
    assert_eq!(code, 1001);
    assert!(reason.contains("idle"), "{reason}");
}

#[tokio::test]
async fn handshake_that_never_completes_is_dropped() {
    let relay = TestRelay::with(|s| s.handshake_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(relay.http).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    // Regression: the connection was closed with the head unread, so the client got a reset
    // (ECONNRESET) and no answer; it now reads a 408 and the end of the stream.
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("connection still open")
        .expect("a clean end, not a reset");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    let (_, body) = sockrelay_tests::raw::parse_response(&answer);
    assert_eq!(
        body,
        "request timeout: no complete request head within 1 s\n"
    );
    // A connection that sent nothing is closed without an answer.
    let mut silent = TcpStream::connect(relay.http).await.unwrap();
    let mut nothing = Vec::new();
    tokio::time::timeout(WAIT, silent.read_to_end(&mut nothing))
        .await
        .expect("connection still open")
        .unwrap();
    assert!(nothing.is_empty(), "{nothing:?}");
    still_serves(relay.http).await;
}

fn handshake(extra: &str) -> String {
    format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n")
}

#[tokio::test]
async fn bad_handshakes_are_refused_clearly() {
    let relay = TestRelay::start().await;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
            426,
            "WebSocket",
        ),
        (
            handshake(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
            426,
            "Version",
        ),
        (
            handshake(&format!(
                "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: {KEY}\r\n"
            )),
            426,
            "Version",
        ),
        (handshake("Sec-WebSocket-Version: 13\r\n"), 400, "Key"),
        (
            handshake(&format!(
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\
                 Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
            )),
            400,
            "body",
        ),
        (
            handshake("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n"),
            400,
            "Key",
        ),
        (
            "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            405,
            "",
        ),
        // A HEAD request is not a handshake, however complete its headers (RFC 6455, 4.1).
        (
            handshake(&format!(
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n"
            ))
            .replacen("GET", "HEAD", 1),
            405,
            "",
        ),
        ("this is not http\r\n\r\n".into(), 400, ""),
        (
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(100_000)
            ),
            431,
            "",
        ),
        (
            format!(
                "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(1_000_000)
            ),
            431,
            "",
        ),
    ];
    for (request, status, needle) in cases {
        let response = raw_http(relay.http, request.as_bytes()).await;
        let (got, body) = sockrelay_tests::parse_response(&response);
        assert_eq!(
            got,
            status,
            "{}: {response}",
            &request[..request.len().min(60)]
        );
        assert!(body.contains(needle), "{body}");
        if status != 405 && status < 431 && !needle.is_empty() {
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "{body}"
            );
        }
    }
    still_serves(relay.http).await;
}

#[tokio::test]
async fn a_stalled_reader_slows_its_target_and_memory_stays_flat() {
    // The target floods as fast as the relay takes bytes; the client never reads.
    let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = written.clone();
    let addr = target(move |mut s| async move {
        let chunk = vec![0x5au8; 64 * 1024];
        while s.write_all(&chunk).await.is_ok() {
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .await;
    // A separate process, so its memory is measured alone.
    let allow = addr.to_string();
    let relay = sockrelay_tests::RelayProcess::spawn(&["--allow", &allow]);
    // Warm up the relay's allocator and runtime with one short bridge first.
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", relay.http))
        .await
        .unwrap();
    assert_eq!(
        ws_echo_roundtrip(ws, &[7u8; 100_000], &[10_000])
            .await
            .len(),
        100_000
    );
    let rss_before = relay.rss_kib();
    let (_ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?target={addr}", relay.http))
            .await
            .unwrap();
    // Wait until every buffer on the path is full and the target is stalled.
    let mut last = 0;
    let mut stable_rounds = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(std::sync::atomic::Ordering::Relaxed);
        if now == last && now > 0 {
            stable_rounds += 1;
            if stable_rounds >= 5 {
                break;
            }
        } else {
            stable_rounds = 0;
        }
        last = now;
    }
    assert!(
        stable_rounds >= 5,
        "target was never slowed: {last} bytes written"
    );
    // Kernel socket buffers on loopback hold a few MiB; the relay adds only its bounded buffers.
    assert!(last < 64 << 20, "{last} bytes buffered");
    // The allocator commits memory in steps of up to 4 MiB: runs of this test measured growths
    // from 0 to 4,236 KiB, the same before and after the bridge read small frames itself. A
    // relay that buffered what the target writes would grow by about `last`.
    let growth = relay.rss_kib().saturating_sub(rss_before);
    assert!(
        growth < 8 * 1024,
        "relay RSS grew by {growth} KiB while its reader was stalled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_each_send_one_mib_in_random_frames() {
    let relay = TestRelay::start().await;
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let url = relay.ws_url("/ws");
        tasks.push(tokio::spawn(async move {
            let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let mut rng = Rng::new(1000 + i);
            let payload = rng.bytes(1 << 20);
            let sizes: Vec<usize> = (0..64).map(|_| rng.range(1, 64 * 1024)).collect();
            let got = ws_echo_roundtrip(ws, &payload, &sizes).await;
            assert!(got == payload, "client {i}: echo differs");
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT * 6, t).await.unwrap().unwrap();
    }
    relay.wait_bridges_closed().await;
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains(&format!(
            "sockrelay_bridge_bytes_total{{direction=\"client_to_target\"}} {}",
            200u64 << 20
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_mid_stream_disconnects_leave_the_relay_healthy() {
    let relay = TestRelay::start().await;
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let http = relay.http;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(77 + i);
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
                .await
                .unwrap();
            for _ in 0..rng.range(0, 20) {
                let len = rng.range(1, 20_000);
                let frame = rng.bytes(len);
                if ws.send(Message::binary(frame)).await.is_err() {
                    break;
                }
            }
            match rng.range(0, 2) {
                // Abrupt: drop the TCP connection with no Close.
                0 => drop(ws),
                // Close without waiting for the answer.
                1 => {
                    let _ = ws.send(Message::Close(None)).await;
                }
                // Close properly.
                _ => {
                    let _ = ws.close(None).await;
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
    }
    relay.wait_bridges_closed().await;
    still_serves(relay.http).await;
    relay.wait_bridges_closed().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while relay.metrics.echo_active() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "echo connections leaked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_closes_bridges_with_1001_and_returns() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws("/ws").await;
    ws.send(Message::text("before")).await.unwrap();
    let reader = tokio::spawn(async move { read_until_close(&mut ws).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay.shutdown().await.unwrap();
    let (data, close) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(data, b"before");
    let (code, _) = close.unwrap();
    assert_eq!(code, u16::from(CloseCode::Away));
}

#[tokio::test]
async fn with_no_splice_bulk_data_is_copied_and_arrives_exact() {
    let relay = TestRelay::with(|s| s.splice = false).await;
    let payload = Rng::new(8).bytes(4 << 20);
    let ws = relay.ws("/ws").await;
    let back = ws_echo_roundtrip(ws, &payload, &[64 * 1024]).await;
    assert!(back == payload, "{} bytes came back", back.len());
    relay.wait_bridges_closed().await;
    assert_eq!(
        counter(
            &relay.metrics.encode(),
            "sockrelay_bridge_spliced_bytes_total"
        ),
        0
    );
}

/// The congestion control names `ss` shows for the established TCP sockets that match `filter`
/// (e.g. `sport = :8080`), one per socket.
#[cfg(target_os = "linux")]
fn congestion_of_sockets(filter: &str) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Htin", "state", "established"])
        .arg(format!("( {filter} )"))
        .output()
        .expect("ss (iproute2) runs: scripts/setup.sh installs it");
    assert!(out.status.success(), "{out:?}");
    // Each socket is a line of addresses, then an indented line of TCP details that starts
    // with the congestion control's name.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.starts_with(char::is_whitespace))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// With a congestion control set (`--tcp-congestion`), both of a bridge's sockets in the relay
/// use it: the client's, accepted, and the target's, connected. The test's own ends keep the
/// system's default, so the relay's choice is seen, not the system's.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_bridge_uses_the_tcp_congestion_control_asked_for() {
    let default = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .unwrap()
        .trim()
        .to_owned();
    let name = if default == "reno" { "cubic" } else { "reno" };
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| {
        s.tcp_congestion = Some(name.to_owned());
        s.allow = vec![t.to_string()];
    })
    .await;
    let mut ws = relay.ws(&format!("/ws?target={t}")).await;
    let (mut far, _) = tokio::time::timeout(WAIT, target.accept())
        .await
        .unwrap()
        .unwrap();
    // Traffic both ways, so that both connections are established and in use.
    ws.send(Message::binary(&b"ping"[..])).await.unwrap();
    let mut got = [0u8; 4];
    far.read_exact(&mut got).await.unwrap();
    far.write_all(b"pong").await.unwrap();
    let back = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert_eq!(back.unwrap().unwrap().into_data().as_ref(), b"pong");

    let (h, t) = (relay.http.port(), t.port());
    assert_eq!(
        congestion_of_sockets(&format!("sport = :{h}")),
        [name],
        "relay's client end"
    );
    assert_eq!(
        congestion_of_sockets(&format!("dport = :{t}")),
        [name],
        "relay's target end"
    );
    assert_eq!(
        congestion_of_sockets(&format!("dport = :{h}")),
        [default.as_str()],
        "test's client"
    );
    assert_eq!(
        congestion_of_sockets(&format!("sport = :{t}")),
        [default.as_str()],
        "test's target"
    );
    drop(ws);
    relay.wait_bridges_closed().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn bulk_data_to_a_plain_client_is_spliced_and_arrives_exact() {
    let relay = TestRelay::start().await;
    let spliced = || {
        counter(
            &relay.metrics.encode(),
            "sockrelay_bridge_spliced_bytes_total",
        )
    };
    // Small messages are copied.
    let ws = relay.ws("/ws").await;
    assert_eq!(ws_echo_roundtrip(ws, b"small", &[5]).await, b"small");
    relay.wait_bridges_closed().await;
    assert_eq!(spliced(), 0);
    // The echo's answers to 4 MB in 64 KiB messages come back in bulk: spliced.
    let payload = Rng::new(7).bytes(4 << 20);
    let ws = relay.ws("/ws").await;
    let back = ws_echo_roundtrip(ws, &payload, &[64 * 1024]).await;
    assert!(back == payload, "{} bytes came back", back.len());
    relay.wait_bridges_closed().await;
    let spliced = spliced();
    assert!(
        spliced > 2 << 20,
        "{spliced} of {} bytes spliced",
        payload.len()
    );
}

/// A bridge to `path` on `relay` whose client offers the subprotocols `offered`; the one the
/// relay chose.
async fn with_subprotocols(relay: &TestRelay, path: &str, offered: &str) -> (Ws, Option<String>) {
    let url = format!("ws://{}{path}", relay.http);
    let (ws, response) = connect_with(&url, &[("sec-websocket-protocol", offered)])
        .await
        .unwrap();
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, chosen)
}

/// `sockrelay.connected`: the page socket library learns that the target is connected (its
/// `opened` settles then) from a first text message, and that it is not from the Close that
/// comes instead; other clients see no such message.
#[tokio::test]
async fn a_client_that_asks_is_told_when_the_target_is_connected() {
    let closed = ClosedPort::tcp();
    let relay = TestRelay::with(|s| s.allow = vec![closed.addr.to_string()]).await;
    for offered in ["sockrelay.connected", "binary, sockrelay.connected"] {
        let (mut ws, chosen) = with_subprotocols(&relay, "/ws", offered).await;
        assert_eq!(chosen.as_deref(), Some("sockrelay.connected"), "{offered}");
        let first = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert_eq!(first.unwrap().unwrap(), Message::text("connected"));
        ws.send(Message::binary(b"after".to_vec())).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert_eq!(echoed.unwrap().unwrap(), Message::binary(b"after".to_vec()));
    }
    // A UDP bridge too, once its socket is connected.
    let udp = format!("/ws?target=udp:{}", relay.echo);
    let (mut ws, _) = with_subprotocols(&relay, &udp, "sockrelay.connected").await;
    let first = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::text("connected"));
    ws.send(Message::binary(b"datagram".to_vec()))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert_eq!(
        echoed.unwrap().unwrap(),
        Message::binary(b"datagram".to_vec())
    );
    // A target that refuses: the Close, and no word before it.
    let path = format!("/ws?target={}", closed.addr);
    let (mut ws, _) = with_subprotocols(&relay, &path, "sockrelay.connected").await;
    assert_eq!(
        sockrelay_tests::next_close(&mut ws).await,
        (1011, "target unreachable: connection refused".into())
    );
    // Without it (websockify's `binary`, or nothing), the target's bytes come first.
    let (mut ws, chosen) = with_subprotocols(&relay, "/ws", "binary").await;
    assert_eq!(chosen.as_deref(), Some("binary"));
    ws.send(Message::binary(b"x".to_vec())).await.unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::binary(b"x".to_vec()));
}

/// Small binary frames (which the bridge reads itself), text, Pings, Pongs, messages in
/// fragments with a Ping between them and frames longer than one of the bridge's reads (all
/// left to the codec), sent in pieces of random sizes: every payload byte reaches the echo
/// target and comes back, whole and in order.
#[tokio::test]
async fn a_mixed_stream_in_random_pieces_reaches_the_target_in_order() {
    use sockrelay_tests::raw::{exchange, frame, server_frames, upgrade};
    let relay = TestRelay::start().await;
    let host = relay.http.to_string();
    let mut rng = Rng::new(23);
    let (mut bytes, mut expected) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let len = match rng.range(0, 19) {
            0 => rng.range(17_000, 40_000),
            1..=3 => rng.range(126, 3_000),
            _ => rng.range(0, 125),
        };
        let payload: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        match rng.range(0, 9) {
            0 => {
                let text = vec![b'a' + (i % 26) as u8; len];
                bytes.extend(frame(0x81, &text, true));
                expected.extend(text);
            }
            1 => bytes.extend(frame(0x89, &payload[..len.min(125)], true)),
            2 => bytes.extend(frame(0x8a, &payload[..len.min(125)], true)),
            3 => {
                let (a, b) = payload.split_at(len / 2);
                bytes.extend(frame(0x02, a, true));
                bytes.extend(frame(0x89, b"mid", true));
                bytes.extend(frame(0x80, b, true));
                expected.extend(&payload);
            }
            _ => {
                bytes.extend(frame(0x82, &payload, true));
                expected.extend(&payload);
            }
        }
    }
    let answer = exchange(relay.http, upgrade(&host, "/ws", "")).await;
    assert_eq!(answer.status, 101, "{}", answer.head);
    let (mut read, mut write) = answer.stream.into_split();
    let writer = async move {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = match rng.range(0, 3) {
                0 => rng.range(1, 7),
                1 => rng.range(1, 300),
                _ => rng.range(1, 50_000),
            }
            .min(rest.len());
            write.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            if rng.range(0, 9) == 0 {
                // Apart in time too, so that the relay reads what there is so far.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        write
    };
    let reader = async {
        let mut raw = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let (data, close) = server_frames(&raw);
            assert_eq!(close, None, "closed after {} bytes", data.len());
            if data.len() >= expected.len() {
                return data;
            }
            let n = read.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the relay ended the connection");
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    let (echoed, _write) = tokio::time::timeout(WAIT * 3, async { tokio::join!(reader, writer) })
        .await
        .expect("the echo did not come back");
    assert_eq!(echoed.len(), expected.len());
    assert!(echoed == expected, "the echo differs");
}
