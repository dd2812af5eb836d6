//! The relay as its own process: what only a real process shows (signals, its log).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{ClosedPort, RelayProcess, WAIT};
use tokio_tungstenite::tungstenite::Message;

async fn connect(relay: &RelayProcess, path: &str) -> sockrelay_tests::Ws {
    let url = format!("ws://{}{path}", relay.http);
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    ws
}

/// The local address of a client's TCP connection, as the relay logs it as the peer.
fn local_addr(ws: &sockrelay_tests::Ws) -> std::net::SocketAddr {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
        _ => panic!("plain TCP expected"),
    }
}

fn signal(relay: &RelayProcess, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &relay.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_closes_open_bridges_with_1001_after_their_bytes_and_exits_0() {
    stops_cleanly_on("TERM").await;
}

/// The terminal the relay runs in was closed: the same clean stop (by default SIGHUP killed the
/// process, and every bridge was cut without its Close).
#[tokio::test]
async fn sighup_stops_the_relay_as_sigterm_does() {
    stops_cleanly_on("HUP").await;
}

async fn stops_cleanly_on(name: &str) {
    let mut relay = RelayProcess::spawn(&[]);
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let mut ws = connect(&relay, "/ws").await;
        ws.send(Message::binary(vec![i; 1000])).await.unwrap();
        let mut got = 0;
        while got < 1000 {
            match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
                Some(Ok(Message::Binary(b))) => got += b.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        clients.push(ws);
    }
    signal(&relay, name);
    for mut ws in clients {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1001);
                assert_eq!(f.reason.as_str(), "relay shutting down");
            }
            other => panic!("expected Close 1001, got {other:?}"),
        }
        // Answering the Close lets the relay finish its drain early.
        let _ = ws.close(None).await;
    }
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "relay still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{status}");
    // Stopped accepting: nothing listens any more.
    assert!(tokio::net::TcpStream::connect(relay.http).await.is_err());
}

#[tokio::test]
async fn each_bridge_ends_with_one_log_line_saying_who_where_how_much_how_long_and_why() {
    let closed = ClosedPort::tcp();
    let dead = closed.addr;
    let relay = RelayProcess::spawn(&["--allow", &dead.to_string()]);

    // An echo bridge the client closes.
    let mut ws = connect(&relay, "/ws").await;
    let peer = local_addr(&ws).to_string();
    ws.send(Message::text("Hello, world")).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"Hello, world"),
        other => panic!("unexpected {other:?}"),
    }
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "done".into(),
    }))
    .await
    .unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    let peer_field = format!("peer={peer}");
    let line = relay
        .wait_for_log(&["bridge closed", &peer_field], WAIT)
        .expect("no log line for the bridge");
    for field in [
        "target=echo",
        "client_to_target=12",
        "target_to_client=12",
        "duration_ms=",
        "code=1000",
        "ending=client closed",
    ] {
        assert!(line.contains(field), "{field:?} not in {line:?}");
    }

    // A bridge whose target is unreachable gets its line too, with the reason it was given.
    let mut ws = connect(&relay, &format!("/ws?target={dead}")).await;
    let peer = local_addr(&ws).to_string();
    let (code, reason) = sockrelay_tests::next_close(&mut ws).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("target unreachable"), "{reason}");
    let peer_field = format!("peer={peer}");
    let line = relay
        .wait_for_log(&["bridge closed", &peer_field], WAIT)
        .expect("no log line for the refused bridge");
    let dead_field = format!("target={dead}");
    for field in [
        dead_field.as_str(),
        "client_to_target=0",
        "code=1011",
        "target unreachable",
    ] {
        assert!(line.contains(field), "{field:?} not in {line:?}");
    }
    // One line per bridge, not one per message or per direction.
    assert_eq!(relay.log_lines(&["bridge closed"]).len(), 2);
}

/// Downloads of `--web` files that their clients do not read hold no thread each: the relay's
/// file reads share a small pool of blocking threads (tokio's default would grow one thread per
/// concurrent read, up to 512, each keeping its stack and allocator arena resident).
#[cfg(target_os = "linux")]
/// Regression: a page refused for its origin was logged at debug only, so an operator whose
/// noVNC page failed (the browser shows no reason) found nothing in the log.
#[tokio::test]
async fn a_page_refused_for_its_origin_is_logged_with_the_way_to_allow_it() {
    let relay = RelayProcess::spawn(&[]);
    let host = relay.http.to_string();
    let asked = sockrelay_tests::raw::upgrade(&host, "/ws", "Origin: https://vnc.example.org\r\n");
    let answer = sockrelay_tests::raw::exchange(relay.http, asked).await;
    assert_eq!(answer.status, 403);
    let line = relay.wait_for_log(&["websocket request refused", "vnc.example.org"], WAIT);
    let line = line.expect("no log line for the refusal");
    assert!(line.contains("INFO") && line.contains("--origin"), "{line}");
}

#[test]
fn unread_downloads_of_web_files_share_a_few_threads() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("sockrelay-webthreads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let relay = RelayProcess::spawn(&["--web", dir.to_str().unwrap()]);
    let threads = || {
        std::fs::read_to_string(format!("/proc/{}/status", relay.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap()
    };
    let mut clients = Vec::new();
    for _ in 0..200 {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&relay.http.into()).unwrap();
        let mut stream = std::net::TcpStream::from(socket);
        stream
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        clients.push(stream);
    }
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(threads());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(clients);
    let _ = std::fs::remove_dir_all(&dir);
    // The runtime's workers (one per CPU), 16 blocking threads, the main thread, the log's.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        most <= cpus + 16 + 4,
        "{most} threads for 200 unread downloads"
    );
}
