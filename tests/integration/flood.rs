//! What one client can make a bridge do: floods of control frames, slow transfers that still
//! move, and endings without a Close.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sockrelay_tests::raw::{exchange, frame, read_server_frames, server_frames, upgrade};
use sockrelay_tests::{still_serves, RelayProcess, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Opens a bridge to `target` (`None`: the built-in echo) over a raw TCP connection, returning
/// the connection positioned after the 101.
async fn raw_bridge(http: SocketAddr, target: Option<SocketAddr>) -> TcpStream {
    let path = match target {
        Some(t) => format!("/ws?target={t}"),
        None => "/ws".to_owned(),
    };
    let answer = exchange(http, upgrade(&http.to_string(), &path, "").as_bytes()).await;
    assert_eq!(answer.status, 101, "{}", answer.head);
    answer.stream
}

/// A listener for the relay to bridge to, whose accepted sockets take `rcvbuf` bytes at most
/// (set before `listen`, so accepted sockets inherit it and the window is small from the
/// start).
fn small_listener(rcvbuf: Option<u32>) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_floods_pings_and_never_reads_is_no_longer_read() {
    // Each Ping makes the codec queue a Pong; a client that never reads them must not make
    // the relay buffer them without bound (1 GiB of pings once took a relay to 1.47 GiB).
    let relay = RelayProcess::spawn(&[]);
    let mut flooder = raw_bridge(relay.http, None).await;
    // Settle the allocator with a bridge of ordinary traffic first.
    still_serves(relay.http).await;
    let before = relay.rss_kib();

    let ping = frame(0x89, &[0x5a; 125], true);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 512)
        .collect();
    let limit = 256usize << 20;
    let mut sent = 0usize;
    let started = Instant::now();
    // Until the relay stops reading (writes stall for a second) or 256 MiB have gone.
    while sent < limit && started.elapsed() < Duration::from_secs(60) {
        match tokio::time::timeout(Duration::from_secs(1), flooder.write_all(&batch)).await {
            Ok(Ok(())) => sent += batch.len(),
            Ok(Err(e)) => panic!("the relay dropped the flooding client: {e}"),
            Err(_) => break,
        }
    }
    let grown = relay.rss_kib().saturating_sub(before);
    println!(
        "ping flood: {} MiB of pings written before the relay stopped reading; RSS grew by \
         {grown} KiB",
        sent >> 20
    );
    assert!(
        sent < limit,
        "the relay read 256 MiB of pings from a client that read none of the answers"
    );
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB");
    // Everybody else is still served while the flooder hangs on.
    still_serves(relay.http).await;
    still_serves(relay.http).await;
    assert!(relay.rss_kib().saturating_sub(before) < 8 * 1024);
    drop(flooder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_transfers_that_move_are_not_idle() {
    // With --idle-timeout 2: an upload of 256 KiB to a target that reads 4 KiB every 100 ms,
    // and a download of 512 KiB to a client reading 8 KiB every 100 ms, each lasting ~6 s.
    // Both go through the real relay (the download is spliced to the plain-TCP client). The
    // upload must not be closed as idle; both must arrive whole.
    let target = small_listener(Some(4096));
    let target_addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| {
        s.idle_timeout = Duration::from_secs(2);
        s.allow = vec![target_addr.to_string()];
    })
    .await;

    let upload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let download: Vec<u8> = (0..512 * 1024).map(|i| (i % 241) as u8).collect();

    let up = async {
        let mut client = raw_bridge(relay.http, Some(target_addr)).await;
        let (mut conn, _) = target.accept().await.unwrap();
        client.write_all(&frame(0x82, &upload, true)).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 4096];
        while got.len() < upload.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        assert!(
            got == upload,
            "upload: {} of {} bytes",
            got.len(),
            upload.len()
        );
        // The bridge is still open: a Close is answered.
        client.write_all(&frame(0x88, &[], true)).await.unwrap();
        let mut data = Vec::new();
        assert_eq!(read_server_frames(&mut client, &mut data).await, Some(1005));
    };

    let down = async {
        // The client's receive buffer is small, so the relay's writes go out as it reads.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(8192).unwrap();
        let stream = socket.connect(relay.http).await.unwrap();
        let request = upgrade(
            &relay.http.to_string(),
            &format!("/ws?target={target_addr}"),
            "",
        );
        let mut client = stream;
        client.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (mut conn, _) = target.accept().await.unwrap();
        conn.write_all(&download).await.unwrap();
        let mut raw = Vec::new();
        let mut chunk = vec![0u8; 8192];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
            if raw.len() >= download.len() && server_frames(&raw).0.len() == download.len() {
                break;
            }
        }
        // The relay's writes end once the kernel holds the rest of the download (client
        // sockets keep the kernel's default send buffer, see native/src/tcp.rs), so the idle
        // timeout may run out while the client reads that tail: a Close may follow, never
        // before the last byte. (The bridge's unit tests check that writes the client is
        // taking keep it open: a_download_to_a_slow_client_is_not_idle_while_it_moves.)
        let (payload, _close) = server_frames(&raw);
        assert!(
            payload == download,
            "download: {} of {} bytes",
            payload.len(),
            download.len()
        );
    };
    // One after the other: the target listener hands out connections in order.
    up.await;
    down.await;
}

/// How a client leaves a bridge after sending its last message.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    /// A Close frame, answered, then FIN: the upload is complete.
    Close,
    /// FIN without a Close.
    Eof,
    /// A TCP reset.
    Reset,
    /// A frame that breaks the protocol (unmasked).
    ProtocolError,
}

/// What the target saw after the client's bytes: `Ok(())` for a clean end of stream.
async fn target_end(leaving: Leaving) -> (Vec<u8>, io::Result<()>) {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![target_addr.to_string()]).await;
    let mut client = raw_bridge(relay.http, Some(target_addr)).await;
    let (mut conn, _) = tokio::time::timeout(WAIT, target.accept())
        .await
        .unwrap()
        .unwrap();
    client
        .write_all(&frame(0x82, b"first half of an upload", true))
        .await
        .unwrap();
    // The bridge writes a message before it reads the next one: once the target has it, the
    // ending below is read after it.
    let mut got = vec![0u8; 23];
    conn.read_exact(&mut got).await.unwrap();
    match leaving {
        Leaving::Close => {
            client.write_all(&frame(0x88, &[], true)).await.unwrap();
            let mut data = Vec::new();
            read_server_frames(&mut client, &mut data).await;
        }
        Leaving::Eof => client.shutdown().await.unwrap(),
        Leaving::Reset => {
            client.set_zero_linger().unwrap();
            drop(client);
        }
        Leaving::ProtocolError => {
            client
                .write_all(&frame(0x82, b"unmasked", false))
                .await
                .unwrap();
        }
    }
    let mut rest = Vec::new();
    let end = tokio::time::timeout(WAIT, conn.read_to_end(&mut rest))
        .await
        .expect("the target was left open");
    got.extend_from_slice(&rest);
    relay.wait_bridges_closed().await;
    (got, end.map(|_| ()))
}

#[tokio::test]
async fn a_client_that_leaves_without_a_close_resets_the_target_connection() {
    // The target must be able to tell a complete upload (clean EOF after the client's Close)
    // from one cut short (a reset), whichever way the client went.
    let (got, end) = target_end(Leaving::Close).await;
    assert_eq!(got, b"first half of an upload");
    assert!(end.is_ok(), "after a Close: {end:?}");
    for leaving in [Leaving::Eof, Leaving::Reset, Leaving::ProtocolError] {
        let (got, end) = target_end(leaving).await;
        assert_eq!(got, b"first half of an upload", "{leaving:?}");
        let kind = end.as_ref().map_err(io::Error::kind);
        assert_eq!(
            kind,
            Err(io::ErrorKind::ConnectionReset),
            "{leaving:?}: the target saw {end:?}"
        );
    }
}
