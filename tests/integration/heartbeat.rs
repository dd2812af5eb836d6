//! The heartbeat over real sockets, with small values: `--ping-interval 1 --ping-timeout 1`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::raw::upgrade;
use sockrelay_tests::{sockrelay, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn beating(interval: u64, timeout: u64) -> impl FnOnce(&mut sockrelay::config::Settings) {
    move |s| {
        s.ping_interval = Duration::from_secs(interval);
        s.ping_timeout = Duration::from_secs(timeout);
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_and_its_target_reset() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| {
        beating(1, 1)(s);
        s.allow = vec![addr.to_string()];
    })
    .await;
    // A client that upgrades, then neither reads nor writes: a peer that is gone.
    let mut client = TcpStream::connect(relay.http).await.unwrap();
    let request = upgrade(&relay.http.to_string(), &format!("/ws?target={addr}"), "");
    client.write_all(request.as_bytes()).await.unwrap();
    let (mut target_side, _) = tokio::time::timeout(WAIT, target.accept())
        .await
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, target_side.read(&mut buf))
        .await
        .expect("the target was never released");
    // Released as for a client that vanished: reset, not a clean end of stream.
    let err = read.expect_err("the target saw a clean end, not a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let waited = started.elapsed();
    // A Ping at 1 s, the timeout 1 s later, then the Close's grace (3 s) for an answer that
    // never comes.
    assert!(waited >= Duration::from_secs(2), "reset after {waited:?}");
    relay.wait_bridges_closed().await;
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains("sockrelay_bridge_errors_total{kind=\"ping_timeout\"} 1"),
        "{metrics}"
    );
    // What the client was sent: the 101, a Ping, then Close 1001 "ping timeout".
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, client.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames = &raw[head_end..];
    assert_eq!(&frames[..2], &[0x89, 0], "a Ping first");
    let close = [&[0x88, 14, 0x03, 0xe9][..], b"ping timeout"].concat();
    assert!(frames.ends_with(&close), "{frames:?}");
}

#[tokio::test]
async fn a_client_that_answers_stays_open_past_the_timeout() {
    let relay = TestRelay::with(beating(1, 1)).await;
    let mut ws = relay.ws("/ws").await;
    let started = std::time::Instant::now();
    let mut pings = 0;
    // tungstenite answers each Ping as it reads on.
    while started.elapsed() < Duration::from_millis(3500) {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} Pings");
    ws.send(Message::binary(b"still open".to_vec()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => {
                assert_eq!(&b[..], b"still open");
                break;
            }
            Some(Ok(Message::Ping(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn with_the_heartbeat_on_an_idle_bridge_still_closes_at_the_idle_timeout() {
    let relay = TestRelay::with(|s| {
        beating(1, 5)(s);
        s.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let mut ws = relay.ws("/ws").await;
    let mut pings = 0;
    let give_up = tokio::time::Instant::now() + WAIT;
    let close = loop {
        let next = tokio::time::timeout_at(give_up, ws.next()).await;
        match next.expect("still open after nothing but the heartbeat for 20 s") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(Some(f)))) => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason, "idle timeout");
    assert!(pings >= 1, "{pings} Pings");
}

#[tokio::test]
async fn a_silent_client_of_a_udp_bridge_is_closed_too() {
    let relay = TestRelay::with(beating(1, 1)).await;
    let mut client = TcpStream::connect(relay.http).await.unwrap();
    let request = upgrade(&relay.http.to_string(), "/ws?target=udp-echo", "");
    client.write_all(request.as_bytes()).await.unwrap();
    // Nothing read or written from now on; the relay ends the bridge after the Ping's timeout
    // and the Close's grace, then closes the connection.
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut raw))
        .await
        .expect("the silent client was never closed")
        .unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let close = [&[0x88, 14, 0x03, 0xe9][..], b"ping timeout"].concat();
    assert!(raw[head_end..].ends_with(&close), "{:?}", &raw[head_end..]);
    relay.wait_bridges_closed().await;
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains("sockrelay_bridge_errors_total{kind=\"ping_timeout\"} 1"),
        "{metrics}"
    );
}
