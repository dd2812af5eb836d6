//! UDP targets: `udp:HOST:PORT` through `/ws`, one message one datagram, the built-in UDP echo,
//! the allow-list's rules for them, and how a bridge to one ends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{counter, http_get, ClosedPort, Rng, TestRelay, Ws, WAIT};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

/// The next message, which must be binary.
async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    }
}

/// The Close the relay ends with, skipping binary messages before it.
async fn close_of(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Binary(_))) => {}
            other => panic!("expected a Close, got {other:?}"),
        }
    }
}

fn udp_echo(relay: &TestRelay) -> String {
    format!("udp:{}", relay.echo)
}

#[tokio::test]
async fn the_udp_echo_is_listed_with_its_protocol_and_checked_as_ws_would() {
    let relay = TestRelay::with(|s| s.allow = vec!["udp:127.0.0.1:9".into()]).await;
    let (status, body) = http_get(relay.http, "/api/targets").await;
    assert_eq!(status, 200);
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected = serde_json::json!([
        {"name": "echo", "target": relay.echo.to_string(), "proto": "tcp"},
        {"name": "ack", "target": relay.ack.to_string(), "proto": "tcp"},
        {"name": "udp-echo", "target": udp_echo(&relay), "proto": "udp"},
        {"name": "udp:127.0.0.1:9", "target": "udp:127.0.0.1:9", "proto": "udp"},
    ]);
    assert_eq!(targets, expected);
    for (asked, canonical) in [
        ("udp-echo".to_owned(), udp_echo(&relay)),
        (udp_echo(&relay), udp_echo(&relay)),
        ("udp:127.0.0.1:9".to_owned(), "udp:127.0.0.1:9".to_owned()),
    ] {
        let (status, body) = http_get(relay.http, &format!("/api/check?target={asked}")).await;
        assert_eq!(status, 200, "{asked}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer, serde_json::json!({ "target": canonical }));
    }
}

#[tokio::test]
async fn a_udp_target_that_is_not_allowed_gets_403_json_from_ws_and_check_alike() {
    let relay = TestRelay::with(|s| s.allow = vec!["udp:127.0.0.1:9".into()]).await;
    let tcp_of_udp_echo = relay.echo.to_string();
    for (target, error) in [
        (
            "udp:127.0.0.1:10",
            r#"target "udp:127.0.0.1:10" is not allowed by this relay (see GET /api/targets)"#,
        ),
        // The same port over TCP is another target.
        (
            "127.0.0.1:9",
            r#"target "127.0.0.1:9" is not allowed by this relay (see GET /api/targets)"#,
        ),
        (
            "udp:127.1:9",
            r#"invalid target "udp:127.1:9": numeric host must be a dotted-quad IPv4 address such as 127.0.0.1"#,
        ),
    ] {
        let (status, body) = relay
            .try_ws(&format!("/ws?target={target}"), &[])
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(status, 403, "{target}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json, serde_json::json!({ "error": error }), "{target}");
        let (status, check) = http_get(relay.http, &format!("/api/check?target={target}")).await;
        assert_eq!((status, check), (403, body), "/api/check answers as /ws");
    }
    // The TCP echo stays TCP: its UDP twin is reached only as udp:.
    assert!(relay
        .try_ws(&format!("/ws?target={tcp_of_udp_echo}"), &[])
        .await
        .is_ok());
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains("sockrelay_refusals_total{reason=\"target\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn broadcast_and_multicast_targets_are_refused_unless_written_out() {
    let relay = TestRelay::start().await;
    for target in [
        "udp:255.255.255.255:9",
        "udp:224.0.0.1:9",
        "udp:[ff05::1:3]:9",
    ] {
        let refused = relay.try_ws(&format!("/ws?target={target}"), &[]).await;
        assert_eq!(refused.map(|_| ()).unwrap_err().0, 403, "{target}");
    }
    // A link-scope group cannot be reached at all (it needs an interface, which a target
    // cannot name): refused with that reason, and refused in --allow too.
    let refused = relay.try_ws("/ws?target=udp:[ff02::1]:9", &[]).await;
    let (status, body) = refused.map(|_| ()).unwrap_err();
    assert_eq!(status, 403);
    assert!(body.contains("link-local"), "{body}");
    let mut settings = sockrelay::config::Settings::ephemeral();
    settings.allow = vec!["udp:[ff02::1]:9".into()];
    let error = sockrelay::Relay::bind(settings)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("link-local"), "{error}");
    // Allowed by its exact address, a broadcast target is the operator's choice (checked only:
    // the tests send nothing off loopback).
    let relay = TestRelay::with(|s| s.allow = vec!["udp:255.255.255.255:9".into()]).await;
    let (status, _) = http_get(relay.http, "/api/check?target=udp:255.255.255.255:9").await;
    assert_eq!(status, 200);
    let (status, _) = http_get(relay.http, "/api/check?target=udp:255.255.255.255:10").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_thousand_datagrams_of_0_to_65507_bytes_come_back_one_per_message() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws("/ws?target=udp-echo").await;
    let mut rng = Rng::new(15);
    let mut sizes: Vec<usize> = (0..1000).map(|i| i * 65_507 / 999).collect();
    // Small ones more often than a linear spread gives them.
    for size in sizes.iter_mut().skip(1).step_by(3) {
        *size = rng.range(0, 1500);
    }
    let sent_total: usize = sizes.iter().sum();
    let mut lost = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let datagram = rng.bytes(size);
        ws.send(Message::binary(datagram.clone())).await.unwrap();
        // One at a time: loopback loses nothing unless a socket buffer overflows, and one
        // datagram in flight cannot overflow one.
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                assert_eq!(b.len(), size, "datagram {i}");
                assert!(
                    b[..] == datagram[..],
                    "datagram {i} of {size} bytes differs"
                );
            }
            Err(_) => lost += 1,
            other => panic!("datagram {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(lost, 0, "datagrams lost on loopback");
    assert_eq!(sizes[0], 0);
    assert_eq!(sizes[999], 65_507);
    let metrics = relay.metrics.encode();
    let up = format!("sockrelay_bridge_bytes_total{{direction=\"client_to_target\"}} {sent_total}");
    assert!(metrics.contains(&up), "{metrics}");
    ws.close(None).await.unwrap();
    relay.wait_bridges_closed().await;
}

#[tokio::test]
async fn text_messages_go_as_their_utf8_bytes() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws(&format!("/ws?target={}", udp_echo(&relay))).await;
    ws.send(Message::text("héllo ✓")).await.unwrap();
    assert_eq!(next_binary(&mut ws).await, "héllo ✓".as_bytes());
    ws.send(Message::text("")).await.unwrap();
    assert_eq!(next_binary(&mut ws).await, b"");
}

#[tokio::test]
async fn a_message_larger_than_a_datagram_closes_1009() {
    let relay = TestRelay::start().await;
    let mut ws = relay.ws("/ws?target=udp-echo").await;
    ws.send(Message::binary(vec![7u8; 65_507])).await.unwrap();
    assert_eq!(next_binary(&mut ws).await.len(), 65_507);
    ws.send(Message::binary(vec![7u8; 65_508])).await.unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1009, "datagram too big: max 65507 bytes".to_owned())
    );
    relay.wait_bridges_closed().await;
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains("sockrelay_bridge_errors_total{kind=\"too_big\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn over_ipv6_a_datagram_holds_65527_bytes() {
    let Ok(target) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![format!("udp:{addr}")]).await;
    let mut ws = relay.ws(&format!("/ws?target=udp:{addr}")).await;
    ws.send(Message::binary(vec![1u8; 65_527])).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, _) = tokio::time::timeout(WAIT, target.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 65_527);
    ws.send(Message::binary(vec![1u8; 65_528])).await.unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1009, "datagram too big: max 65527 bytes".to_owned())
    );
}

#[tokio::test]
async fn only_the_targets_datagrams_come_back() {
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![format!("udp:{addr}")]).await;
    let mut ws = relay.ws(&format!("/ws?target=udp:{addr}")).await;
    ws.send(Message::binary(b"hello".to_vec())).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, relay_side) = tokio::time::timeout(WAIT, target.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
    // Another socket writes to the relay's socket: a connected socket never receives it.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(b"from a stranger", relay_side)
        .await
        .unwrap();
    target
        .send_to(b"from the target", relay_side)
        .await
        .unwrap();
    target.send_to(b"", relay_side).await.unwrap();
    assert_eq!(next_binary(&mut ws).await, b"from the target");
    assert_eq!(
        next_binary(&mut ws).await,
        b"",
        "an empty datagram is an empty message"
    );
}

#[tokio::test]
async fn port_unreachable_closes_1011_and_is_counted() {
    let port = ClosedPort::udp();
    let closed = port.addr;
    let relay = TestRelay::with(|s| s.allow = vec![format!("udp:{closed}")]).await;
    let mut ws = relay.ws(&format!("/ws?target=udp:{closed}")).await;
    ws.send(Message::binary(b"anyone?".to_vec())).await.unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1011, "target error: connection refused".to_owned())
    );
    relay.wait_bridges_closed().await;
    let metrics = relay.metrics.encode();
    assert_eq!(
        counter(&metrics, "sockrelay_bridge_udp_icmp_errors_total"),
        1
    );
    assert!(
        metrics.contains("sockrelay_bridge_errors_total{kind=\"target\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_quiet_udp_bridge_is_closed_at_the_idle_timeout() {
    let relay = TestRelay::with(|s| s.idle_timeout = Duration::from_secs(1)).await;
    let mut ws = relay.ws("/ws?target=udp-echo").await;
    ws.send(Message::binary(b"once".to_vec())).await.unwrap();
    assert_eq!(next_binary(&mut ws).await, b"once");
    assert_eq!(close_of(&mut ws).await, (1001, "idle timeout".to_owned()));
}

#[tokio::test]
async fn a_client_that_does_not_read_stops_the_relay_reading_its_target() {
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![format!("udp:{addr}")]).await;
    let mut ws = relay.ws(&format!("/ws?target=udp:{addr}")).await;
    ws.send(Message::binary(b"start".to_vec())).await.unwrap();
    let mut buf = [0u8; 64];
    let (_, relay_side) = target.recv_from(&mut buf).await.unwrap();
    // 64 MiB in 1 KiB datagrams, more than every buffer between here and the client holds;
    // the client reads none of it yet.
    let datagram = [0x5au8; 1024];
    for _ in 0..65_536 {
        target.send_to(&datagram, relay_side).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relayed = |metrics: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("sockrelay_bridge_bytes_total{direction=\"target_to_client\"} ")
            })
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before_reading = relayed(&relay.metrics.encode());
    assert!(
        before_reading < 32 << 20,
        "the relay read {before_reading} bytes for a client that reads nothing"
    );
    // The client reads again: what was held comes, then the bridge still works.
    let mut received = 0u64;
    while received < before_reading {
        received += next_binary(&mut ws).await.len() as u64;
    }
    target.send_to(b"after", relay_side).await.unwrap();
    loop {
        let got = next_binary(&mut ws).await;
        if got == b"after" {
            break;
        }
        assert_eq!(got.len(), 1024);
    }
}

#[tokio::test]
async fn the_udp_echo_does_not_answer_the_ports_of_looping_services() {
    let relay = TestRelay::start().await;
    // Binding ports below 1024 takes root (or CAP_NET_BIND_SERVICE); a port in use elsewhere
    // is left out.
    let mut services = Vec::new();
    for port in [7u16, 13, 19, 37] {
        match UdpSocket::bind(("127.0.0.1", port)).await {
            Ok(socket) => services.push(socket),
            Err(e) => eprintln!("port {port} left out: {e}"),
        }
    }
    if services.is_empty() {
        eprintln!("skipped: cannot bind ports 7, 13, 19 or 37 here (not root?)");
        return;
    }
    for socket in &services {
        socket.send_to(b"loop?", relay.echo).await.unwrap();
    }
    // Datagrams to the echo are handled in order: once this one is answered, those before it
    // were handled too.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"hello", relay.echo).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(WAIT, client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
    for socket in &services {
        let port = socket.local_addr().unwrap().port();
        let answer = socket.try_recv_from(&mut buf);
        assert!(answer.is_err(), "port {port} got an echo: {answer:?}");
    }
    let metrics = relay.metrics.encode();
    let dropped = format!(
        "sockrelay_echo_udp_dropped_total{{reason=\"loop_port\"}} {}",
        services.len()
    );
    assert!(metrics.contains(&dropped), "{metrics}");
}
