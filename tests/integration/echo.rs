//! The echo (TCP and UDP) and acknowledge services.

use std::process::Command;

use sockrelay_tests::{counter, Rng, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn python(script: &str, args: &[String]) -> String {
    let path = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn tcp_echo_returns_every_byte_in_order_then_closes() {
    let relay = TestRelay::start().await;
    let mut stream = TcpStream::connect(relay.echo).await.unwrap();
    let payload = Rng::new(7).bytes(3 * 1024 * 1024 + 17);
    let (mut r, mut w) = stream.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut got = Vec::new();
    let receive = r.read_to_end(&mut got);
    let ((), n) = tokio::time::timeout(WAIT, async { tokio::join!(send, receive) })
        .await
        .unwrap();
    assert_eq!(n.unwrap(), payload.len());
    assert!(got == payload, "echo differs");
}

#[tokio::test]
async fn tutorial_python_client_gets_its_echo() {
    let relay = TestRelay::start().await;
    let port = relay.echo.port().to_string();
    let out = tokio::task::spawn_blocking(move || python("tutorial_client.py", &[port]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "Received b'Hello, world'");
}

#[tokio::test]
async fn tutorial_client_against_the_acknowledge_server() {
    let relay = TestRelay::start().await;
    let port = relay.ack.port().to_string();
    let out = tokio::task::spawn_blocking(move || python("tutorial_client.py", &[port]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "Received b'server received you message.'");
}

#[tokio::test]
async fn acknowledge_reply_is_configurable_and_sent_per_read() {
    let relay = TestRelay::with(|s| s.ack_reply = "got it\n".into()).await;
    let mut stream = TcpStream::connect(relay.ack).await.unwrap();
    for _ in 0..3 {
        stream.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 7];
        tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"got it\n");
    }
}

#[tokio::test]
async fn udp_echo_on_the_same_port() {
    let relay = TestRelay::start().await;
    let port = relay.echo.port().to_string();
    let out = tokio::task::spawn_blocking(move || python("udp_client.py", &[port]))
        .await
        .unwrap();
    assert_eq!(out.trim(), "echoed 3 datagrams");

    // And from tokio, a maximum-size IPv4 datagram.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let big = Rng::new(3).bytes(65_507);
    socket.send_to(&big, relay.echo).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, relay.echo);
    assert!(buf[..n] == big[..]);
}

#[tokio::test]
async fn many_concurrent_tcp_clients() {
    let relay = TestRelay::start().await;
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let addr = relay.echo;
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let payload = Rng::new(i + 1).bytes(10_000 + i as usize);
                s.write_all(&payload).await.unwrap();
                let mut got = vec![0u8; payload.len()];
                s.read_exact(&mut got).await.unwrap();
                assert!(got == payload);
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
    }
}

/// One echo round trip on an open connection, or `None` if no answer came within `wait`.
async fn echo_once(stream: &mut TcpStream, wait: std::time::Duration) -> Option<Vec<u8>> {
    stream.write_all(b"ping").await.ok()?;
    let mut got = [0u8; 4];
    tokio::time::timeout(wait, stream.read_exact(&mut got))
        .await
        .ok()?
        .ok()?;
    Some(got.to_vec())
}

#[tokio::test]
async fn connections_past_max_conns_wait_until_one_ends() {
    let relay = TestRelay::with(|s| s.max_conns = 2).await;
    let mut a = TcpStream::connect(relay.echo).await.unwrap();
    let mut b = TcpStream::connect(relay.echo).await.unwrap();
    assert_eq!(echo_once(&mut a, WAIT).await.unwrap(), b"ping");
    assert_eq!(echo_once(&mut b, WAIT).await.unwrap(), b"ping");
    // The third is queued by the kernel, not served and not refused...
    let mut c = TcpStream::connect(relay.echo).await.unwrap();
    let short = std::time::Duration::from_millis(300);
    assert_eq!(echo_once(&mut c, short).await, None);
    // ... until a served one ends; then its bytes (sent while it waited) come back first.
    drop(a);
    let mut got = [0u8; 8];
    tokio::time::timeout(WAIT, async {
        c.write_all(b"pong").await.unwrap();
        c.read_exact(&mut got).await.unwrap();
    })
    .await
    .unwrap();
    assert_eq!(&got, b"pingpong");
    assert_eq!(echo_once(&mut b, WAIT).await.unwrap(), b"ping");
}

#[tokio::test]
async fn shutdown_ends_open_echo_and_ack_connections() {
    let relay = TestRelay::start().await;
    let metrics = relay.metrics.clone();
    let open = || counter(&metrics.encode(), "sockrelay_echo_connections_active");
    let mut echo = TcpStream::connect(relay.echo).await.unwrap();
    let mut ack = TcpStream::connect(relay.ack).await.unwrap();
    assert_eq!(echo_once(&mut echo, WAIT).await.unwrap(), b"ping");
    ack.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; b"server received you message.".len()];
    tokio::time::timeout(WAIT, ack.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply, b"server received you message.");
    assert_eq!(open(), 2);

    relay.shutdown().await.unwrap();
    // Both clients see the connection end, with nothing more.
    for (name, stream) in [("echo", &mut echo), ("ack", &mut ack)] {
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("the {name} connection outlived the relay"))
            .unwrap();
        assert!(rest.is_empty(), "{name} sent more: {rest:?}");
    }
    assert_eq!(open(), 0, "open connections still counted");
}
