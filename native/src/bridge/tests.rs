//! The bridge's tests: whole bridges over in-memory pipes and TCP pairs, and each part alone.

#![allow(clippy::unwrap_used)]
use super::*;
use std::io;
use std::task::Poll;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::bytes::Bytes;

use super::client_to_target::COALESCE_MAX;
use super::ending::close_message;
use super::park::Codec;
use super::target_to_client::{
    copied_frame, spliced_frame, Spliced, TargetBuf, TARGET_READ_MAX, TARGET_READ_MIN,
};
use crate::readsize::ReadSize;
use tokio::io::duplex;
use tokio::time::Instant;
// The clients here are tungstenite's: another implementation than the relay's codec.
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A bridge between an in-memory WebSocket pair and an in-memory target.
async fn harness(
    limits: Limits,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Report>,
) {
    harness_with(limits, 64 * 1024).await
}

/// [`harness`] with `target_buffer` bytes of buffering each way between bridge and target.
async fn harness_with(
    limits: Limits,
    target_buffer: usize,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Report>,
) {
    let (client_io, target_far, task) = raw_harness(limits, target_buffer, 64 * 1024);
    let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    (client, target_far, task)
}

/// A bridge with `target_buffer` bytes of buffering between it and the target, and the
/// client's socket `client_buffer` bytes deep; the client end is raw bytes.
fn raw_harness(
    limits: Limits,
    target_buffer: usize,
    client_buffer: usize,
) -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Report>,
) {
    let (client_io, server_io) = duplex(client_buffer);
    let (target_near, target_far) = duplex(target_buffer);
    let activity = Activity::default();
    let server = Codec::serve(limits.max_message, activity.watch(server_io));
    let task = tokio::spawn(async move {
        let metrics = Metrics::new();
        run(
            ends(server, target_near, None),
            &activity,
            &limits,
            &CancellationToken::new(),
            &metrics,
        )
        .await
    });
    (client_io, target_far, task)
}

/// What [`run`] takes, boxed.
fn ends<W, T>(ws: W, target: T, splicer: Option<Splicer>) -> Box<Ends<W, T>> {
    Box::new(Ends {
        ws,
        target,
        splicer,
    })
}

/// The binary payload a client receives up to the bridge's Close, and the Close's code.
async fn read_until_close<S>(client: &mut WebSocketStream<S>) -> (Vec<u8>, u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut received = Vec::new();
    loop {
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => received.extend_from_slice(&b),
            Message::Close(f) => return (received, u16::from(f.unwrap().code)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Limits for the tests: no heartbeat unless a test turns it on (a Ping would be one more
/// message for every test to skip). The UDP bridge's tests use them too.
pub(super) fn limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(30),
        max_message: 1 << 20,
        ping_interval: Duration::ZERO,
        ping_timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn bytes_flow_both_ways_then_target_eof_closes_1000() {
    let (mut client, mut target, task) = harness(limits()).await;
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    client.send(Message::text("hé")).await.unwrap();
    let mut got = [0u8; 6];
    target.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [1, 2, 3, b'h', 0xc3, 0xa9]);

    target.write_all(b"back").await.unwrap();
    target.shutdown().await.unwrap();
    drop(target);
    let (received, close) = read_until_close(&mut client).await;
    assert_eq!(received, b"back");
    assert_eq!(close, 1000);
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::TargetClosed));
    assert_eq!((report.client_to_target, report.target_to_client), (6, 4));
}

/// A final client frame as a browser sends it (masked), for writing under tungstenite's
/// feet.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_fragment(true, opcode, payload)
}

/// A masked client frame, final or not.
fn masked_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

#[tokio::test]
async fn client_bytes_sent_after_target_eof_still_reach_a_half_closed_target() {
    let (mut client, target, task) = harness(limits()).await;
    let (mut target_read, mut target_write) = tokio::io::split(target);
    target_write.write_all(b"bye").await.unwrap();
    // Only the target's sending side ends; it still reads.
    target_write.shutdown().await.unwrap();
    let (received, close) = read_until_close(&mut client).await;
    assert_eq!(received, b"bye");
    assert_eq!(close, 1000);
    // The bridge has sent its Close, so it saw the EOF; a client that had a message in
    // flight then sends it, and its Close answer after it.
    let raw = client.get_mut();
    raw.write_all(&masked_frame(0x2, b"late words"))
        .await
        .unwrap();
    raw.write_all(&masked_frame(0x8, &[])).await.unwrap();
    let mut all = Vec::new();
    target_read.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"late words");
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::TargetClosed));
    assert_eq!((report.client_to_target, report.target_to_client), (10, 3));
}

#[tokio::test]
async fn a_close_read_with_the_last_messages_waits_until_they_reach_a_slow_echo() {
    // The bridge reads a burst and the Close after it at once (coalescing), then writes the
    // burst through a small buffer to an echo, whose answers can no longer go to the
    // client. Every byte before the Close must still reach the echo, then EOF.
    let (mut client, mut target, task) = harness_with(limits(), 512).await;
    let echo = tokio::spawn(async move {
        let mut total = Vec::new();
        let mut buf = [0u8; 300];
        loop {
            let n = target.read(&mut buf).await.unwrap();
            if n == 0 {
                return total;
            }
            total.extend_from_slice(&buf[..n]);
            if target.write_all(&buf[..n]).await.is_err() {
                return total;
            }
        }
    });
    let mut expected = Vec::new();
    for i in 0..10u8 {
        let msg = vec![i; 1000];
        expected.extend_from_slice(&msg);
        client.feed(Message::binary(msg)).await.unwrap();
    }
    client.feed(Message::Close(None)).await.unwrap();
    client.flush().await.unwrap();
    let report = task.await.unwrap();
    assert!(
        matches!(report.ending, Ending::ClientClosed(_)),
        "{:?}",
        report.ending
    );
    assert_eq!(report.client_to_target, expected.len() as u64);
    let got = echo.await.unwrap();
    assert!(got == expected, "{} of {} bytes", got.len(), expected.len());
}

#[tokio::test]
async fn after_target_eof_the_client_is_read_until_its_close_answer() {
    // A target that is gone entirely: writes to it fail at once. The client, still
    // sending, must still be read until its Close, or the socket would be reset.
    let (mut client, target, task) = harness(limits()).await;
    drop(target);
    let (received, close) = read_until_close(&mut client).await;
    assert!(received.is_empty());
    assert_eq!(close, 1000);
    let raw = client.get_mut();
    for _ in 0..5 {
        // Each frame reaches a bridge that has had time to try writing the one before.
        raw.write_all(&masked_frame(0x2, b"unread")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    raw.write_all(&masked_frame(0x8, &[])).await.unwrap();
    // The bridge reads all of it: the stream ends at its side (EOF), not by a reset.
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).await.unwrap();
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::TargetClosed));
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn client_close_shuts_target_write_side() {
    let (mut client, mut target, task) = harness(limits()).await;
    client
        .send(Message::binary(b"last words".to_vec()))
        .await
        .unwrap();
    client.close(None).await.unwrap();
    let mut all = Vec::new();
    target.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, b"last words");
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::ClientClosed(_)));
}

/// [`raw_harness`] with `idle` as the idle timeout.
fn slow_harness(
    idle: Duration,
    target_buffer: usize,
    client_buffer: usize,
) -> (
    tokio::io::DuplexStream,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Report>,
) {
    let limits = Limits {
        idle_timeout: idle,
        ..limits()
    };
    raw_harness(limits, target_buffer, client_buffer)
}

#[tokio::test(start_paused = true)]
async fn a_large_message_to_a_slow_target_is_not_idle_while_it_moves() {
    // 256 KiB in one message to a target that takes 4 KiB every 100 ms (6.4 s in all),
    // with a 2 s idle timeout: the message is in one write for all of that time.
    let (mut client, mut target, task) = slow_harness(Duration::from_secs(2), 4096, 512 * 1024);
    let message: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    client
        .write_all(&masked_frame(0x2, &message))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 4096];
    while got.len() < message.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match target.read(&mut chunk).await.unwrap() {
            0 => break,
            n => got.extend_from_slice(&chunk[..n]),
        }
    }
    assert!(got == message, "{} of {} bytes", got.len(), message.len());
    // Once nothing moves, the bridge does become idle.
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::Idle), "{:?}", report.ending);
}

#[tokio::test(start_paused = true)]
async fn a_download_to_a_slow_client_is_not_idle_while_it_moves() {
    // The target sends 1 MiB at once; the client reads 4 KiB every 100 ms (25.6 s in all)
    // through a 4 KiB socket, so each 64 KiB frame takes 1.6 s to go out, with a 1 s idle
    // timeout.
    let (mut client, mut target, task) = slow_harness(Duration::from_secs(1), 1 << 20, 4096);
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    target.write_all(&data).await.unwrap();
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 4096];
    // Frame headers add a few bytes per frame; the Close ends the stream.
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match client.read(&mut chunk).await.unwrap() {
            0 => break,
            n => raw.extend_from_slice(&chunk[..n]),
        }
        if raw.len() >= data.len() {
            let payload = unframe(&raw);
            if payload.len() == data.len() {
                break;
            }
        }
    }
    let payload = unframe(&raw);
    assert!(payload == data, "{} of {} bytes", payload.len(), data.len());
    drop(client);
    let report = task.await.unwrap();
    assert_eq!(report.target_to_client, data.len() as u64);
}

/// The binary payloads of whole unmasked server frames in `raw`, up to a Close.
fn unframe(mut raw: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    while raw.len() >= 2 {
        let (len, header) = match raw[1] & 0x7f {
            126 if raw.len() >= 4 => (usize::from(u16::from_be_bytes([raw[2], raw[3]])), 4),
            127 if raw.len() >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        if raw.len() < header + len || raw[0] & 0x0f != 0x2 {
            break;
        }
        payload.extend_from_slice(&raw[header..header + len]);
        raw = &raw[header + len..];
    }
    payload
}

#[tokio::test(start_paused = true)]
async fn idle_bridge_is_closed() {
    let (mut client, _target, task) = harness(Limits {
        idle_timeout: Duration::from_secs(5),
        ..limits()
    })
    .await;
    let msg = client.next().await.unwrap().unwrap();
    match msg {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(task.await.unwrap().ending, Ending::Idle));
}

#[tokio::test(start_paused = true)]
async fn the_idle_timeout_counts_from_the_last_message_up_to_a_quarter_more() {
    let idle = Duration::from_secs(8);
    let (mut client, mut target, task) = harness(Limits {
        idle_timeout: idle,
        ..limits()
    })
    .await;
    // Traffic for longer than the timeout keeps the bridge open.
    let mut buf = [0u8; 1];
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        client.send(Message::binary(vec![1])).await.unwrap();
        target.read_exact(&mut buf).await.unwrap();
    }
    let last = Instant::now();
    match client.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("unexpected {other:?}"),
    }
    let quiet = last.elapsed();
    assert!(
        quiet >= idle && quiet <= idle + idle / 4,
        "closed after {quiet:?} without traffic"
    );
    assert!(matches!(task.await.unwrap().ending, Ending::Idle));
}

#[tokio::test]
async fn a_target_that_closes_as_the_relay_stops_gets_the_client_1001() {
    // At shutdown the relay's own echo closes its connections too: a bridge that sees its
    // target's EOF after the relay began stopping tells the client 1001, not "target closed".
    // Which of the two it notices first is random, so the race is run many times.
    for _ in 0..20 {
        let (client_io, server_io) = duplex(64 * 1024);
        let (target_near, target_far) = duplex(64 * 1024);
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let server = tokio_websockets::ServerBuilder::new().serve(server_io);
        let cancel = CancellationToken::new();
        let bridge_cancel = cancel.clone();
        let task = tokio::spawn(async move {
            let metrics = Metrics::new();
            run(
                ends(server, target_near, None),
                &Activity::default(),
                &limits(),
                &bridge_cancel,
                &metrics,
            )
            .await
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        drop(target_far);
        let (_, code) = read_until_close(&mut client).await;
        assert_eq!(code, 1001);
        while let Some(Ok(_)) = client.next().await {}
        assert!(matches!(task.await.unwrap().ending, Ending::Shutdown));
    }
}

#[tokio::test]
async fn pipelined_messages_are_coalesced_in_order_then_the_close_shuts_the_target() {
    let (mut client, mut target, task) = harness(limits()).await;
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        target.read_to_end(&mut all).await.unwrap();
        all
    });
    let mut expected = Vec::new();
    for i in 0..2000u32 {
        let len = (i % 300) as usize;
        let msg: Vec<u8> = (0..len).map(|j| (i as usize * 7 + j) as u8).collect();
        expected.extend_from_slice(&msg);
        if i % 5 == 0 {
            client.feed(Message::Ping(vec![1].into())).await.unwrap();
        }
        client.feed(Message::binary(msg)).await.unwrap();
    }
    // Larger than one coalesced write, between small ones.
    let big = vec![0xabu8; 3 * COALESCE_MAX];
    expected.extend_from_slice(&big);
    client.feed(Message::binary(big)).await.unwrap();
    expected.extend_from_slice("fin".as_bytes());
    client.feed(Message::text("fin")).await.unwrap();
    client.flush().await.unwrap();
    client.close(None).await.unwrap();
    while client.next().await.is_some() {}
    let all = reader.await.unwrap();
    assert!(
        all == expected,
        "{} bytes, {} expected",
        all.len(),
        expected.len()
    );
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::ClientClosed(_)));
    assert_eq!(report.client_to_target, expected.len() as u64);
}

#[tokio::test]
async fn target_bytes_arrive_exact_whatever_the_read_sizes() {
    let (mut client, mut target, task) = harness(limits()).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        let mut rest = &data[..];
        let mut i = 0usize;
        while !rest.is_empty() {
            // Bulk runs (the buffer grows) and trickles (it shrinks again).
            let n = if (i / 40).is_multiple_of(2) {
                100_000
            } else {
                1 + i % 700
            };
            let n = n.min(rest.len());
            target.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            i += 1;
            if n < 1000 {
                tokio::task::yield_now().await;
            }
        }
        target.shutdown().await.unwrap();
        target
    });
    let mut received = Vec::new();
    loop {
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                assert!(!b.is_empty() && b.len() <= TARGET_READ_MAX);
                received.extend_from_slice(&b);
            }
            Message::Close(f) => {
                assert_eq!(u16::from(f.unwrap().code), 1000);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let _target = writer.await.unwrap();
    assert!(received == expected, "{} bytes", received.len());
    let report = task.await.unwrap();
    assert_eq!(report.target_to_client, expected.len() as u64);
}

#[tokio::test]
async fn target_buffer_grows_when_filled_shrinks_after_small_reads_and_lets_go_when_idle() {
    use std::future::poll_fn;
    let (mut far, mut near) = duplex(1 << 20);
    let mut b = TargetBuf::default();
    far.write_all(&vec![7; 300_000]).await.unwrap();
    // The first read is small; it fills, so the next ones are large.
    let n = poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
    assert_eq!(n, TARGET_READ_MIN);
    drop(b.take(n));
    let n = poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
    assert_eq!(n, TARGET_READ_MAX, "reads never exceed the read size");
    drop(b.take(n));
    // Reused, not reallocated, once each frame is gone.
    let at = b.buf.as_ptr() as usize;
    for _ in 0..3 {
        let n = poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
        assert_eq!(n, TARGET_READ_MAX);
        assert!(b.buf.as_ptr() as usize <= at + TARGET_READ_MAX);
        drop(b.take(n));
    }
    let n = poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
    assert_eq!(n, 300_000 - TARGET_READ_MIN - 4 * TARGET_READ_MAX);
    drop(b.take(n));
    // Nothing to read: the grown buffer is let go while the read waits.
    let waiting = poll_fn(|cx| std::task::Poll::Ready(b.poll_read(&mut near, cx))).await;
    assert!(waiting.is_pending());
    assert_eq!(b.buf.capacity(), 0);
    // A run of small reads brings the read size back down.
    for _ in 0..ReadSize::SHRINK_AFTER {
        far.write_all(b"small").await.unwrap();
        let n = poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
        assert_eq!(n, 5);
        drop(b.take(n));
    }
    assert_eq!(b.size.get(), TARGET_READ_MIN);
    far.write_all(&[1; 10]).await.unwrap();
    poll_fn(|cx| b.poll_read(&mut near, cx)).await.unwrap();
    assert!(b.buf.capacity() < 2 * TARGET_READ_MIN);
}

/// Reads binary frames (none over `max_frame` bytes) until the bridge's Close 1000, then
/// answers it; pings after each of the first `pings` frames. Returns the bytes, the pongs'
/// numbers and how many pings were sent.
async fn download_with_pings<S>(
    client: &mut WebSocketStream<S>,
    pings: u32,
    max_frame: usize,
) -> (Vec<u8>, Vec<u32>, u32)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut received, mut pongs, mut pinged) = (Vec::new(), Vec::new(), 0u32);
    loop {
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                assert!(b.len() <= max_frame, "a frame of {} bytes", b.len());
                received.extend_from_slice(&b);
                if pinged < pings {
                    let ping = pinged.to_be_bytes().to_vec();
                    client.send(Message::Ping(ping.into())).await.unwrap();
                    pinged += 1;
                }
            }
            Message::Pong(p) => pongs.push(u32::from_be_bytes(p[..].try_into().unwrap())),
            Message::Close(f) => {
                assert_eq!(u16::from(f.unwrap().code), 1000);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    while let Some(Ok(_)) = client.next().await {}
    (received, pongs, pinged)
}

#[tokio::test]
async fn pings_during_a_bulk_download_are_answered_and_the_bytes_stay_exact() {
    // Frames to the client are written from the target's buffer, not copied into one of
    // the codec's: the pongs it queues must go out between whole frames.
    let (mut client, mut target, task) = harness(limits()).await;
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(150_000) {
            target.write_all(chunk).await.unwrap();
        }
        target.shutdown().await.unwrap();
        target
    });
    let (received, pongs, pinged) = download_with_pings(&mut client, 50, TARGET_READ_MAX).await;
    let _target = writer.await.unwrap();
    assert!(received == expected, "{} bytes", received.len());
    assert_eq!(pongs, (0..pinged).collect::<Vec<_>>());
    assert!(matches!(task.await.unwrap().ending, Ending::TargetClosed));
}

#[tokio::test]
async fn a_message_over_the_limit_closes_1009_with_the_limit_in_one_frame_or_in_pieces() {
    let small = Limits {
        max_message: 1000,
        ..limits()
    };
    let in_pieces = [
        masked_fragment(false, 0x2, &[1; 600]),
        masked_fragment(true, 0x0, &[2; 600]),
    ]
    .concat();
    for bytes in [masked_frame(0x2, &[0; 1001]), in_pieces] {
        let (mut client, mut target, task) = harness(small.clone()).await;
        client.get_mut().write_all(&bytes).await.unwrap();
        let (code, reason) = match client.next().await {
            Some(Ok(Message::Close(Some(f)))) => (u16::from(f.code), f.reason.to_string()),
            other => panic!("expected a Close with a code, got {other:?}"),
        };
        assert_eq!((code, reason.as_str()), (1009, "max length: 1000"));
        while let Some(Ok(_)) = client.next().await {}
        assert!(matches!(task.await.unwrap().ending, Ending::TooBig));
        // Nothing of the refused message reached the target.
        let mut rest = Vec::new();
        target.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{} bytes reached the target", rest.len());
    }
}

#[cfg(target_os = "linux")]
/// A connected pair of loopback TCP sockets; the first one's receive buffer is `rcvbuf`
/// bytes if given (a small one makes the other side's writes stall early).
async fn tcp_pair(rcvbuf: Option<u32>) -> (TcpStream, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let far = socket
        .connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (near, _) = listener.accept().await.unwrap();
    (far, near)
}

/// A bridge over real loopback sockets whose bulk frames to the client are spliced; the
/// client's socket has a receive buffer of `rcvbuf` bytes if given.
#[cfg(target_os = "linux")]
async fn spliced_harness(
    rcvbuf: Option<u32>,
    cancel: CancellationToken,
    limits: Limits,
) -> (
    WebSocketStream<TcpStream>,
    TcpStream,
    Splicer,
    tokio::task::JoinHandle<Report>,
) {
    let (client_far, target_far, splicer, task) =
        spliced_bridge(rcvbuf, cancel, limits, None).await;
    let client = WebSocketStream::from_raw_socket(client_far, Role::Client, None).await;
    (client, target_far, splicer, task)
}

/// [`spliced_harness`] with the client's raw socket, for tests that frame by hand; with
/// `target_buffers`, the target's receive buffer and the bridge's send buffer towards it
/// are that small (the kernel doubles them, and has minimums).
#[cfg(target_os = "linux")]
async fn spliced_bridge(
    rcvbuf: Option<u32>,
    cancel: CancellationToken,
    limits: Limits,
    target_buffers: Option<u32>,
) -> (
    TcpStream,
    TcpStream,
    Splicer,
    tokio::task::JoinHandle<Report>,
) {
    spliced_bridge_with(rcvbuf, None, cancel, limits, target_buffers).await
}

/// [`spliced_bridge`] with the bridge's send buffer towards the client `sndbuf` small.
#[cfg(target_os = "linux")]
async fn spliced_bridge_with(
    rcvbuf: Option<u32>,
    sndbuf: Option<u32>,
    cancel: CancellationToken,
    limits: Limits,
    target_buffers: Option<u32>,
) -> (
    TcpStream,
    TcpStream,
    Splicer,
    tokio::task::JoinHandle<Report>,
) {
    let (client_far, client_near) = tcp_pair(rcvbuf).await;
    if let Some(size) = sndbuf {
        rustix::net::sockopt::set_socket_send_buffer_size(&client_near, size as usize).unwrap();
    }
    let (target_far, target_near) = tcp_pair(target_buffers).await;
    // As the relay's own connections to targets are.
    crate::tcp::keep_urgent_inline(&target_near).unwrap();
    if let Some(size) = target_buffers {
        rustix::net::sockopt::set_socket_send_buffer_size(&target_near, size as usize).unwrap();
    }
    let (io, splicer) = crate::splice::share(client_near, Bytes::new());
    let activity = Activity::default();
    let server = Codec::serve(limits.max_message, activity.watch(io));
    let bridge_splicer = splicer.clone();
    let task = tokio::spawn(async move {
        let metrics = Metrics::new();
        run(
            ends(server, target_near, Some(bridge_splicer)),
            &activity,
            &limits,
            &cancel,
            &metrics,
        )
        .await
    });
    (client_far, target_far, splicer, task)
}

#[cfg(target_os = "linux")]
/// Fails a test that hangs (a broken frame can leave both ends waiting) instead of
/// letting it run forever.
async fn within<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the test did not finish in 30 s")
}

#[cfg(target_os = "linux")]
/// What the target sends in the spliced tests: 8 MB that no shift or repeat leaves equal.
fn download() -> Vec<u8> {
    (0..8_000_000u32).map(|i| (i * 13 % 251) as u8).collect()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_bulk_download_is_spliced_whole_with_pongs_between_frames() {
    within(async {
        let (mut client, mut target, splicer, task) =
            spliced_harness(None, CancellationToken::new(), limits()).await;
        // A small message first: small reads take the copying path.
        target.write_all(b"hello").await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..], b"hello"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(splicer.frames(), 0);
        let data = download();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            target.write_all(&data).await.unwrap();
            target.shutdown().await.unwrap();
            target
        });
        let (received, pongs, _) =
            download_with_pings(&mut client, 100, crate::splice::MAX_FRAME).await;
        let _target = writer.await.unwrap();
        assert!(received == expected, "{} bytes", received.len());
        // Pings that reach the bridge after its Close get no answer (RFC 6455, 5.5.1): the
        // pongs are the first of them, in order.
        assert!(!pongs.is_empty());
        assert_eq!(pongs, (0..pongs.len() as u32).collect::<Vec<_>>());
        // Nearly all of the download went through the pipe.
        let spliced = splicer.bytes();
        assert!(
            spliced as usize >= expected.len() * 9 / 10,
            "{spliced} bytes"
        );
        let report = task.await.unwrap();
        assert!(matches!(report.ending, Ending::TargetClosed));
        assert_eq!(report.target_to_client, 5 + expected.len() as u64);
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn after_a_bulk_burst_small_reads_copy_again_and_the_pipe_goes() {
    within(async {
        let (mut client, mut target, splicer, task) =
            spliced_harness(None, CancellationToken::new(), limits()).await;
        let read_exactly = async |client: &mut WebSocketStream<TcpStream>, n: usize| {
            let mut got = Vec::new();
            while got.len() < n {
                match client.next().await.unwrap().unwrap() {
                    Message::Binary(b) => got.extend_from_slice(&b),
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        };
        let burst = vec![7u8; 1 << 20];
        target.write_all(&burst).await.unwrap();
        assert_eq!(read_exactly(&mut client, burst.len()).await, burst);
        assert!(splicer.frames() > 0 && splicer.has_pipe());
        let spliced = splicer.frames();
        for i in 0..2 * ReadSize::SHRINK_AFTER {
            target.write_all(&[i; 10]).await.unwrap();
            assert_eq!(read_exactly(&mut client, 10).await, [i; 10]);
        }
        assert!(!splicer.has_pipe(), "the pipe outlived the bulk transfer");
        // A few small frames may have been spliced before the size shrank, no more.
        assert!(splicer.frames() - spliced <= u64::from(ReadSize::SHRINK_AFTER));
        drop(target);
        let (rest, code) = read_until_close(&mut client).await;
        assert!(rest.is_empty());
        assert_eq!(code, 1000);
        while let Some(Ok(_)) = client.next().await {}
        task.await.unwrap();
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_bridge_stopped_inside_a_spliced_frame_finishes_it_before_its_close() {
    within(async {
        let cancel = CancellationToken::new();
        let (mut client, mut target, splicer, task) =
            spliced_harness(Some(4096), cancel.clone(), limits()).await;
        let data = download();
        let expected = data.clone();
        // The client reads nothing yet: the bridge's writes stall inside a frame.
        let writer = tokio::spawn(async move {
            let _ = target.write_all(&data).await;
            target
        });
        let started = std::time::Instant::now();
        while !(splicer.frames() > 0 && splicer.is_writing()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no frame stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
        let (received, code) = read_until_close(&mut client).await;
        assert_eq!(code, 1001);
        // Whole frames (tungstenite would have failed on a broken one), then the Close.
        assert!(received.len() > TARGET_READ_MAX);
        assert!(received[..] == expected[..received.len()], "bytes differ");
        while let Some(Ok(_)) = client.next().await {}
        assert!(matches!(task.await.unwrap().ending, Ending::Shutdown));
        writer.abort();
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn no_spliced_frame_follows_the_answer_to_the_clients_close() {
    within(async {
        let (mut client, mut target, splicer, task) =
            spliced_harness(None, CancellationToken::new(), limits()).await;
        let data = download();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let _ = target.write_all(&data).await;
            target
        });
        let mut received = Vec::new();
        while received.len() < 1 << 20 {
            match client.next().await.unwrap().unwrap() {
                Message::Binary(b) => received.extend_from_slice(&b),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(splicer.frames() > 0);
        client.send(Message::Close(None)).await.unwrap();
        // Frames already on their way arrive before the answer; nothing after it (tungstenite
        // fails on a frame after the Close it awaited).
        loop {
            match client.next().await {
                Some(Ok(Message::Binary(b))) => received.extend_from_slice(&b),
                Some(Ok(Message::Close(_))) => {}
                Some(Ok(other)) => panic!("unexpected {other:?}"),
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        assert!(received[..] == expected[..received.len()], "bytes differ");
        assert!(matches!(
            task.await.unwrap().ending,
            Ending::ClientClosed(_)
        ));
        writer.abort();
    })
    .await
}

/// Reads binary frames until the bridge's Close (whose code it returns), then answers it.
#[cfg(target_os = "linux")]
async fn receive_all(client: &mut WebSocketStream<TcpStream>) -> (Vec<u8>, u16) {
    let (received, code) = read_until_close(client).await;
    while let Some(Ok(_)) = client.next().await {}
    (received, code)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_ping_read_while_a_spliced_frame_waits_does_not_stall_the_download() {
    // Regression: messages were batched by polling the codec with a no-op waker. A ping read
    // that way made the codec write its pong, which waited behind the stalled spliced frame
    // and left the no-op waker on the client's socket: the download then stood still until
    // the next idle check (7.5 s here). The order of the bridge's futures is random, so a
    // round hit it about one time in ten; 12 rounds catch it most of the time.
    within(async {
        let data = download()[..4 << 20].to_vec();
        for round in 0..12 {
            let (mut client, mut target, splicer, task) =
                spliced_harness(Some(4096), CancellationToken::new(), limits()).await;
            let expected = data.clone();
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                target.write_all(&sent).await.unwrap();
                target.shutdown().await.unwrap();
                target
            });
            let waiting = std::time::Instant::now();
            while !(splicer.frames() > 0 && splicer.is_writing()) {
                assert!(
                    waiting.elapsed() < Duration::from_secs(5),
                    "no frame stalled"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let mut message_and_ping = masked_frame(0x2, b"0123456789");
            message_and_ping.extend(masked_frame(0x9, b"p"));
            client.get_mut().write_all(&message_and_ping).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let started = std::time::Instant::now();
            let mut received = Vec::new();
            loop {
                match client.next().await.unwrap().unwrap() {
                    Message::Binary(b) => received.extend_from_slice(&b),
                    Message::Pong(_) => {}
                    Message::Close(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(3),
                "round {round}: stalled for {took:?}"
            );
            assert!(received == expected, "round {round}: bytes differ");
            while let Some(Ok(_)) = client.next().await {}
            let _target = writer.await.unwrap();
            task.await.unwrap();
        }
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn urgent_data_from_the_target_does_not_stop_a_spliced_download() {
    // splice(2) stops at TCP urgent data, where a copying read goes on; the bridge copies past
    // it, and the urgent byte reaches the client in its place in the stream.
    within(async {
        let (mut client, mut target, splicer, task) =
            spliced_harness(None, CancellationToken::new(), limits()).await;
        let data = download();
        let (before, after) = data.split_at(3 << 20);
        let (before, after) = (before.to_vec(), after.to_vec());
        let writer = tokio::spawn(async move {
            target.write_all(&before).await.unwrap();
            loop {
                target.writable().await.unwrap();
                let urgent = target.try_io(tokio::io::Interest::WRITABLE, || {
                    rustix::net::send(&target, b"!", rustix::net::SendFlags::OOB)
                        .map_err(io::Error::from)
                });
                match urgent {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            target.write_all(&after).await.unwrap();
            target.shutdown().await.unwrap();
            target
        });
        let (received, code) = receive_all(&mut client).await;
        assert_eq!(code, 1000);
        let sent = [&data[..3 << 20], b"!", &data[3 << 20..]].concat();
        assert!(
            received == sent,
            "{} of {} bytes",
            received.len(),
            sent.len()
        );
        assert!(
            splicer.bytes() > 1 << 20,
            "{} bytes spliced",
            splicer.bytes()
        );
        let _target = writer.await.unwrap();
        task.await.unwrap();
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_read_behind_a_message_the_target_cannot_take_yet_ends_spliced_frames() {
    // The client's Close arrives behind messages the target takes slowly: the bridge reads
    // it with the last of them (batching) while its write to the target waits, and the
    // codec queues its answer. The target keeps sending, but no spliced frame may start any
    // more: the next flush sends the answer, and data after it would break the protocol.
    // The client is framed by hand, since a WebSocket library stops reading at the answer
    // and would not see what follows.
    within(async {
        let (client, target, splicer, task) =
            spliced_bridge(None, CancellationToken::new(), limits(), Some(4096)).await;
        let (mut client_read, mut client_write) = client.into_split();
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            let _ = client_read.read_to_end(&mut all).await;
            all
        });
        let (mut target_read, mut target_write) = target.into_split();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let writing = stop.clone();
        let writer = tokio::spawn(async move {
            let chunk = vec![5u8; 256 * 1024];
            while !writing.load(Relaxed) && target_write.write_all(&chunk).await.is_ok() {}
            let _ = target_write.shutdown().await;
        });
        while splicer.frames() < 4 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // More than the target's buffers hold, in messages too large to be batched (so
        // each is read alone), then a smaller one with the Close right behind it: the
        // bridge reads the Close while batching, and its write of that message waits.
        const LAST: usize = COALESCE_MAX - 1024;
        let (count, size) = (50, COALESCE_MAX);
        let sender = tokio::spawn(async move {
            for i in 0..count {
                let frame = masked_frame(0x2, &vec![i as u8; size]);
                client_write.write_all(&frame).await.unwrap();
            }
            let mut last = masked_frame(0x2, &[7u8; LAST]);
            last.extend(masked_frame(0x8, &1000u16.to_be_bytes()));
            client_write.write_all(&last).await.unwrap();
            client_write
        });
        // The target reads slowly, through small buffers: the bridge's writes to it wait,
        // the last one too.
        let mut taken = 0;
        let mut buf = vec![0u8; 1024];
        loop {
            match target_read.read(&mut buf).await.unwrap() {
                0 => break,
                n => taken += n,
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Every byte the client sent before its Close, though the target was still
        // sending when the bridge shut down its input (the bridge reads on until the
        // target ends its side, so that no reset discards them).
        assert_eq!(taken, count * size + LAST);
        stop.store(true, Relaxed);
        writer.await.unwrap();
        let _client_write = sender.await.unwrap();
        assert!(matches!(
            task.await.unwrap().ending,
            Ending::ClientClosed(1000)
        ));
        // Binary frames, whole, then the answer to the Close, and nothing after it.
        let sent = server_frames(&collector.await.unwrap());
        let close = sent.iter().position(|&(opcode, _)| opcode == 0x8);
        let tail = &sent[sent.len().saturating_sub(3)..];
        assert_eq!(close, Some(sent.len() - 1), "the last frames: {tail:?}");
        assert!(sent.len() > 4 && sent[..sent.len() - 1].iter().all(|&(op, _)| op == 0x2));
    })
    .await
}

/// The (opcode, payload length) of each frame in what a server sent; panics on a frame cut
/// short or masked.
#[cfg(target_os = "linux")]
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "a frame header cut short");
        assert_eq!(bytes[1] & 0x80, 0, "a masked frame from the server");
        let (len, header) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        assert!(bytes.len() >= header + len, "a frame cut short");
        frames.push((bytes[0] & 0x0f, len));
        bytes = &bytes[header + len..];
    }
    frames
}

/// A message that arrives while the bridge waits to write the one before to a slow target is
/// read once that write is done: the wake-up it brought went to the write, so the stream must
/// be polled again, not left waiting for a wake-up already spent (no timer of the bridge would
/// poll it: each pump is polled only after its own wake-ups).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_message_that_arrives_during_a_slow_write_is_read_after_it() {
    within(async {
        let (client, mut target, _splicer, task) =
            spliced_bridge(None, CancellationToken::new(), limits(), Some(1)).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        // Within one batch (no other message is looked for past COALESCE_MAX), and more than
        // the smallest socket buffers hold.
        let big = COALESCE_MAX - 1024;
        client.send(Message::binary(vec![1u8; big])).await.unwrap();
        // The bridge is now stuck in the write, the target reading nothing.
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.send(Message::binary(vec![2u8; 10])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut got = vec![0u8; big + 10];
        target.read_exact(&mut got).await.unwrap();
        assert!(got[..big].iter().all(|&b| b == 1));
        assert!(got[big..].iter().all(|&b| b == 2));
        client.close(None).await.unwrap();
        task.await.unwrap();
    })
    .await
}

/// A client that closes while a copied frame waits for room in its socket gets that frame
/// whole before the Close, and the bridge counts exactly the payload the client received.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_frame_held_when_the_client_closes_goes_before_the_close_and_is_counted() {
    within(async {
        let (client, mut target, _splicer, task) = spliced_bridge_with(
            Some(4096),
            Some(4096),
            CancellationToken::new(),
            limits(),
            None,
        )
        .await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        // Small writes, one at a time: copied frames, not spliced ones.
        let writer = tokio::spawn(async move {
            for _ in 0..2_000 {
                if target.write_all(&[5u8; 1500]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            target
        });
        // The client reads nothing for a while: its socket fills, a frame is cut and held.
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.close(None).await.unwrap();
        let mut received = 0u64;
        while let Some(Ok(message)) = client.next().await {
            if let Message::Binary(b) = message {
                received += b.len() as u64;
            }
        }
        let report = task.await.unwrap();
        assert!(received > 0);
        assert_eq!(report.target_to_client, received);
        drop(writer);
    })
    .await
}

/// A sink that cannot flush until opened: with a write through the client's socket, it stands
/// for a codec with a frame half written.
#[cfg(target_os = "linux")]
#[derive(Default)]
struct Stuck {
    open: AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

#[cfg(target_os = "linux")]
struct StuckSink(std::sync::Arc<Stuck>);

#[cfg(target_os = "linux")]
impl Stuck {
    fn open(&self) {
        self.open.store(true, Relaxed);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

// The relay's own message type (the tests' `Message` is the client's).
#[cfg(target_os = "linux")]
impl Sink<tokio_websockets::Message> for StuckSink {
    type Error = WsError;
    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(
        self: std::pin::Pin<&mut Self>,
        _: tokio_websockets::Message,
    ) -> Result<(), WsError> {
        Ok(())
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        if self.0.open.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// A frame of the bridge's own, spliced or copied, waits while the codec has a frame half
/// written (it wrote a byte and its flush has not finished), and goes once it has.
#[cfg(target_os = "linux")]
async fn own_frame_waits_for_the_codec(spliced: bool) {
    within(async {
        let (_client_far, client_near) = tcp_pair(None).await;
        let (mut target_far, mut target_near) = tcp_pair(None).await;
        let (mut io, splicer) = crate::splice::share(client_near, Bytes::new());
        // The first byte of a frame of the codec's.
        io.write_all(&[0x82]).await.unwrap();
        target_far.write_all(&[1u8; 100_000]).await.unwrap();
        let stuck = std::sync::Arc::new(Stuck::default());
        let mut sink = StuckSink(stuck.clone());
        let shared = Shared::default();
        let cancel = CancellationToken::new();
        let frame = async {
            if spliced {
                spliced_frame(
                    &splicer,
                    &target_near,
                    &mut sink,
                    &shared.client_done,
                    &cancel,
                )
                .await
            } else {
                copied_frame(
                    &splicer,
                    &mut target_near,
                    2048,
                    &mut sink,
                    &shared,
                    &cancel,
                )
                .await
            }
        };
        tokio::pin!(frame);
        let waited = tokio::time::timeout(Duration::from_millis(100), &mut frame).await;
        assert!(waited.is_err(), "a frame went out past a half-written one");
        assert!(!splicer.is_writing() && splicer.frames() == 0);
        stuck.open();
        match frame.await {
            Spliced::Frame(n) => assert!(n > 0),
            _ => panic!("no frame once the codec's queue was flushed"),
        }
        assert_eq!(splicer.frames(), u64::from(spliced));
        assert!(!splicer.codec_wrote());
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn no_frame_is_spliced_while_the_codec_has_a_frame_half_written() {
    own_frame_waits_for_the_codec(true).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn no_frame_is_copied_while_the_codec_has_a_frame_half_written() {
    own_frame_waits_for_the_codec(false).await;
}

/// One copied frame of at most 2,048 bytes from `target`, past a codec that never flushes: a
/// frame that asked it to would never go.
#[cfg(target_os = "linux")]
async fn copy_one(splicer: &Splicer, target: &mut TcpStream) -> Spliced {
    let mut sink = StuckSink(std::sync::Arc::new(Stuck::default()));
    let (shared, cancel) = (Shared::default(), CancellationToken::new());
    copied_frame(splicer, target, 2048, &mut sink, &shared, &cancel).await
}

/// A copied frame does not flush the codec when it has written nothing (no call into the codec
/// per message), and arrives as one binary frame with exactly the target's bytes.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_copied_frame_goes_out_without_the_codec_when_it_has_written_nothing() {
    within(async {
        let (mut client_far, client_near) = tcp_pair(None).await;
        let (mut target_far, mut target_near) = tcp_pair(None).await;
        let (_io, splicer) = crate::splice::share(client_near, Bytes::new());
        let payload: Vec<u8> = (0..200u8).collect();
        target_far.write_all(&payload).await.unwrap();
        match copy_one(&splicer, &mut target_near).await {
            Spliced::Frame(n) => assert_eq!(n, 200),
            _ => panic!("no frame"),
        }
        let mut got = [0u8; 204];
        client_far.read_exact(&mut got).await.unwrap();
        assert_eq!(got[..4], [0x82, 126, 0, 200]);
        assert_eq!(got[4..], payload[..]);
        assert_eq!(
            splicer.frames(),
            0,
            "copied frames are not counted as spliced"
        );
    })
    .await
}

/// Copied frames into a client socket that is full: what the socket does not take of a frame
/// is kept and goes before the next frame once the client reads, so the client gets every frame
/// whole and every byte in order.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn copied_frames_into_a_full_client_socket_arrive_whole_and_in_order() {
    within(async {
        let (mut client_far, client_near) = tcp_pair(Some(4096)).await;
        socket2::SockRef::from(&client_near)
            .set_send_buffer_size(4096)
            .unwrap();
        let (mut target_far, mut target_near) = tcp_pair(None).await;
        let (io, splicer) = crate::splice::share(client_near, Bytes::new());
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            target_far.write_all(&sent).await.unwrap();
            target_far.shutdown().await.unwrap();
            target_far
        });
        // The client reads nothing for a while: its socket fills and frames are cut.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut all = Vec::new();
            client_far.read_to_end(&mut all).await.unwrap();
            all
        });
        let mut frames = 0;
        loop {
            match copy_one(&splicer, &mut target_near).await {
                Spliced::Frame(n) => assert!(n > 0 && n <= 2048),
                Spliced::Eof => break,
                _ => panic!("a copied frame failed"),
            }
            frames += 1;
        }
        drop((io, splicer));
        let raw = reader.await.unwrap();
        let _target = writer.await.unwrap();
        let parsed = server_frames(&raw);
        assert_eq!(parsed.len(), frames);
        assert!(parsed.iter().all(|&(op, len)| op == 0x2 && len <= 2048));
        assert!(unframe(&raw) == data, "the bytes differ from the target's");
    })
    .await
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_target_quiet_for_a_check_period_gives_its_pipe_back() {
    within(async {
        let quick = Limits {
            idle_timeout: Duration::from_secs(2),
            ..limits()
        };
        let (mut client, target, splicer, task) =
            spliced_harness(None, CancellationToken::new(), quick).await;
        let (mut target_read, mut target_write) = target.into_split();
        let burst = vec![3u8; 1 << 20];
        target_write.write_all(&burst).await.unwrap();
        let mut received = 0;
        while received < burst.len() {
            match client.next().await.unwrap().unwrap() {
                Message::Binary(b) => received += b.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(splicer.has_pipe());
        // The client keeps talking (so the bridge is not idle); the target says nothing.
        let mut buf = [0u8; 16];
        for _ in 0..12 {
            client
                .send(Message::binary(b"still here".to_vec()))
                .await
                .unwrap();
            target_read.read_exact(&mut buf[..10]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!splicer.has_pipe(), "the pipe outlived a quiet target");
        // The next burst makes a new one.
        let spliced = splicer.bytes();
        target_write.write_all(&burst).await.unwrap();
        let mut received = 0;
        while received < burst.len() {
            match client.next().await.unwrap().unwrap() {
                Message::Binary(b) => received += b.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(splicer.bytes() > spliced);
        drop(target_write);
        let (rest, code) = receive_all(&mut client).await;
        assert!(rest.is_empty());
        assert_eq!(code, 1000);
        task.await.unwrap();
    })
    .await
}

#[test]
fn close_reason_is_cut_on_a_char_boundary() {
    let long = "é".repeat(100);
    let close = close_message(1011, &long);
    let (code, reason) = close.as_close().unwrap();
    assert_eq!(u16::from(code), 1011);
    assert_eq!(reason.len(), 122);
    assert!(reason.chars().all(|c| c == 'é'));
    // A code that cannot be sent gives a Close without one, not a panic.
    let close = close_message(1005, "x");
    let (code, reason) = close.as_close().unwrap();
    assert_eq!((u16::from(code), reason), (1005, ""));
}

/// The upstream pump alone, over a plain stream of messages and an in-memory writer.
#[tokio::test]
async fn client_to_target_alone_writes_the_payloads_then_ends_at_the_close() {
    use tokio_websockets::{CloseCode, Message};
    let messages = vec![
        Ok(Message::binary(&b"ab"[..])),
        Ok(Message::ping(&b"p"[..])),
        Ok(Message::text("c")),
        Ok(Message::close(Some(CloseCode::NORMAL_CLOSURE), "")),
        Ok(Message::binary(&b"after the close"[..])),
    ];
    let mut stream = futures_util::stream::iter(messages);
    let (mut near, mut far) = duplex(1024);
    let shared = Shared::default();
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let ending = client_to_target(&mut stream, &mut near, &shared, &metrics, &cancel).await;
    assert!(matches!(ending, Ending::ClientClosed(1000)));
    let mut got = Vec::new();
    far.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
    assert_eq!(shared.up.load(Relaxed), 3);
    assert!(shared.client_done.load(Relaxed));
}

/// The downstream pump alone, over an in-memory target and a sink that keeps the messages.
#[tokio::test]
async fn target_to_client_alone_sends_the_bytes_then_close_1000() {
    use tokio_websockets::Message;
    let (near, mut far) = duplex(1024);
    let (mut read, _write) = near.into_halves();
    far.write_all(b"hello").await.unwrap();
    drop(far);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
    let sink = futures_util::sink::unfold(tx, |tx, message: Message| async move {
        let _ = tx.send(message);
        Ok::<_, WsError>(tx)
    });
    tokio::pin!(sink);
    let shared = Shared::default();
    let (activity, metrics) = (Activity::default(), Metrics::new());
    let cancel = CancellationToken::new();
    let ending = target_to_client::<tokio::io::DuplexStream, _>(
        &mut read, &mut sink, None, &shared, &activity, &metrics, &cancel,
    )
    .await;
    assert!(matches!(ending, Ending::TargetClosed));
    let mut payload = Vec::new();
    let mut close = None;
    while let Ok(message) = rx.try_recv() {
        match message.as_close() {
            Some((code, reason)) => close = Some((u16::from(code), reason.to_owned())),
            None => payload.extend_from_slice(&message.into_payload()),
        }
    }
    assert_eq!(payload, b"hello");
    assert_eq!(close, Some((1000, "target closed".to_owned())));
    assert_eq!(shared.down.load(Relaxed), 5);
}

/// Limits with the heartbeat on: a Ping every `interval`, closed after `timeout` of silence.
fn beating(interval: u64, timeout: u64, idle: u64) -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(idle),
        ping_interval: Duration::from_secs(interval),
        ping_timeout: Duration::from_secs(timeout),
        ..limits()
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_answers_the_pings_stays_open_and_its_bytes_flow() {
    let (mut client, mut target, task) = harness(beating(10, 5, 300)).await;
    let start = Instant::now();
    let mut pings = 0;
    // tungstenite answers each Ping with a Pong as it reads on.
    while pings < 6 {
        match client.next().await.unwrap().unwrap() {
            Message::Ping(payload) => {
                assert!(payload.is_empty());
                pings += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(60) && elapsed < Duration::from_secs(61),
        "six Pings took {elapsed:?}"
    );
    assert!(!task.is_finished());
    client
        .send(Message::binary(b"still here".to_vec()))
        .await
        .unwrap();
    let mut got = [0u8; 10];
    target.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");
    client.close(None).await.unwrap();
    assert!(matches!(
        task.await.unwrap().ending,
        Ending::ClientClosed(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_answers_nothing_is_closed_after_the_ping_timeout() {
    // The client's socket is never read or written: Pings pile up unanswered.
    let (client_io, _target, task) = raw_harness(beating(10, 5, 300), 64 * 1024, 64 * 1024);
    let start = Instant::now();
    let report = task.await.unwrap();
    assert!(
        matches!(report.ending, Ending::PingTimeout),
        "{:?}",
        report.ending
    );
    // The first Ping at 10 s, the timeout 5 s after it, then the Close's grace for an answer.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(15) && elapsed <= Duration::from_secs(15) + CLOSE_GRACE,
        "closed after {elapsed:?}"
    );
    // What the client was sent: one empty Ping (the second was not due yet), then the Close.
    let mut raw = Vec::new();
    let mut client_io = client_io;
    client_io.read_to_end(&mut raw).await.unwrap();
    let close = [&[0x88, 14, 0x03, 0xe9][..], b"ping timeout"].concat();
    assert_eq!(raw, [&[0x89, 0][..], &close].concat());
    assert_eq!(report.ending.code(), 1001);
    assert!(report.ending.cuts_client_short(), "the target is reset");
}

#[tokio::test(start_paused = true)]
async fn an_idle_bridge_with_the_heartbeat_on_still_closes_at_the_idle_timeout() {
    // Pings every 2 s, answered: without the heartbeat's own bytes discounted, they would keep
    // the bridge from ever being idle.
    let idle = Duration::from_secs(8);
    let (mut client, _target, task) = harness(beating(2, 5, 8)).await;
    let start = Instant::now();
    let mut pings = 0;
    let give_up = start + Duration::from_secs(60);
    let close = loop {
        let next = tokio::time::timeout_at(give_up, client.next()).await;
        match next.expect("still open after 60 s of nothing but the heartbeat") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(Some(f)))) => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason, "idle timeout");
    assert!(pings >= 3, "{pings} Pings");
    let quiet = start.elapsed();
    assert!(
        quiet >= idle && quiet <= idle + idle / 4,
        "closed after {quiet:?}"
    );
    assert!(matches!(task.await.unwrap().ending, Ending::Idle));
}

#[tokio::test(start_paused = true)]
async fn data_from_the_client_counts_as_an_answer() {
    // A client that never answers Pings but keeps sending is not closed.
    let (client_io, mut target, task) = raw_harness(beating(2, 1, 300), 64 * 1024, 64 * 1024);
    let (_read, mut write) = tokio::io::split(client_io);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        write.write_all(&masked_frame(2, b"x")).await.unwrap();
        let mut got = [0u8; 1];
        target.read_exact(&mut got).await.unwrap();
    }
    assert!(!task.is_finished());
    task.abort();
}

/// A UDP bridge between an in-memory WebSocket pair and a real UDP socket on loopback, which
/// the test holds as the target.
async fn datagram_harness(
    limits: Limits,
) -> (
    WebSocketStream<tokio::io::DuplexStream>,
    tokio::net::UdpSocket,
    std::net::SocketAddr,
    tokio::task::JoinHandle<Report>,
) {
    let target = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_side = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay_side
        .connect(target.local_addr().unwrap())
        .await
        .unwrap();
    let relay_addr = relay_side.local_addr().unwrap();
    let (client_io, server_io) = duplex(256 * 1024);
    let activity = Activity::default();
    let server = limits.codec().serve(activity.watch(server_io));
    let task = tokio::spawn(async move {
        let metrics = Metrics::new();
        datagram::run(
            server,
            relay_side,
            &activity,
            &limits,
            &CancellationToken::new(),
            &metrics,
        )
        .await
    });
    let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    (client, target, relay_addr, task)
}

#[tokio::test]
async fn each_message_is_one_datagram_and_each_datagram_one_message() {
    let (mut client, target, relay, task) = datagram_harness(limits()).await;
    let sizes = [0usize, 1, 1400, 65_507];
    for &size in &sizes {
        client
            .send(Message::binary(vec![size as u8; size]))
            .await
            .unwrap();
    }
    client.send(Message::text("héllo")).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    for &size in &sizes {
        let (n, from) = target.recv_from(&mut buf).await.unwrap();
        assert_eq!((n, from), (size, relay));
        assert!(buf[..n].iter().all(|&b| b == size as u8));
    }
    let (n, _) = target.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], "héllo".as_bytes());
    // Back: datagrams, not a byte stream, whatever their sizes; the empty one too.
    for &size in sizes.iter().rev() {
        target.send_to(&vec![7u8; size], relay).await.unwrap();
    }
    for &size in sizes.iter().rev() {
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(b.len(), size),
            other => panic!("unexpected {other:?}"),
        }
    }
    // One byte more than a datagram can hold over IPv4 closes 1009, and nothing is sent.
    client
        .send(Message::binary(vec![0u8; 65_508]))
        .await
        .unwrap();
    match client.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 1009);
            assert_eq!(f.reason, "datagram too big: max 65507 bytes");
        }
        other => panic!("unexpected {other:?}"),
    }
    let report = task.await.unwrap();
    assert!(matches!(report.ending, Ending::DatagramTooBig(65_507)));
    assert_eq!(
        report.client_to_target,
        (sizes.iter().sum::<usize>() + "héllo".len()) as u64
    );
    assert!(
        target.try_recv_from(&mut buf).is_err(),
        "nothing more was sent"
    );
}

/// The codec is parked whenever the bridge has been quiet for a while (see `park`): whole
/// frames, a frame split across a quiet spell at any point, and a message in fragments all
/// arrive exact, both ways, through as many parkings.
#[tokio::test(start_paused = true)]
async fn quiet_spells_park_the_codec_and_lose_nothing() {
    let quiet = || tokio::time::sleep(4 * idle::PARK_AFTER);
    let (mut client, mut target, task) = harness(limits()).await;
    for round in 0..3u8 {
        client
            .send(Message::binary(vec![round; 200]))
            .await
            .unwrap();
        let mut got = [0u8; 200];
        target.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [round; 200]);
        quiet().await;
        target.write_all(&[round; 300]).await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..], &[round; 300]),
            other => panic!("{other:?}"),
        }
        quiet().await;
    }
    let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let frame = masked_frame(0x2, &payload);
    for split in [1, 2, 6, 8, 500, frame.len() - 1] {
        client.get_mut().write_all(&frame[..split]).await.unwrap();
        quiet().await;
        client.get_mut().write_all(&frame[split..]).await.unwrap();
        let mut got = vec![0u8; payload.len()];
        target.read_exact(&mut got).await.unwrap();
        assert_eq!(got, payload, "split at {split}");
        quiet().await;
    }
    for (fin, opcode, part) in [(false, 0x2, &b"frag"[..]), (true, 0x0, &b"ments"[..])] {
        let fragment = masked_fragment(fin, opcode, part);
        client.get_mut().write_all(&fragment).await.unwrap();
        if !fin {
            quiet().await;
        }
    }
    let mut got = [0u8; 9];
    target.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"fragments");
    client.close(None).await.unwrap();
    let report = task.await.unwrap();
    assert!(
        matches!(report.ending, Ending::ClientClosed(_)),
        "{:?}",
        report.ending
    );
    assert_eq!(report.client_to_target, 3 * 200 + 6 * 1000 + 9);
}

#[test]
fn a_bridge_is_counted_closed_and_gives_its_place_back_however_it_ends() {
    let env = Env {
        settings: Arc::new(Settings::ephemeral()),
        metrics: Arc::new(Metrics::new()),
        cancel: CancellationToken::new(),
        tracker: tokio_util::task::TaskTracker::new(),
    };
    let places = Arc::new(tokio::sync::Semaphore::new(1));
    let permit = places.clone().try_acquire_owned().unwrap();
    let dialing = env.metrics.bridge_dialing();
    let opened = Opened::new(&env, Closed::new(None), permit, dialing);
    assert_eq!(env.metrics.bridges_active(), 1);
    assert_eq!(places.available_permits(), 0);
    // A bridge's task that panics unwinds through its `Opened`.
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _opened = opened;
        panic!("a bridge that fails");
    }));
    assert!(ended.is_err());
    assert_eq!(env.metrics.bridges_active(), 0);
    assert!(!env.metrics.bridges_busy());
    assert_eq!(places.available_permits(), 1);
    // And one that ends as bridges do.
    let permit = places.clone().try_acquire_owned().unwrap();
    let report = Report {
        client_to_target: 0,
        target_to_client: 0,
        ending: Ending::TargetClosed,
    };
    let dialing = env.metrics.bridge_dialing();
    Opened::new(&env, Closed::new(None), permit, dialing).end("test", &report);
    assert_eq!(env.metrics.bridges_active(), 0);
    assert_eq!(places.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_answers_the_targets_close_is_given_one_grace_in_all() {
    // The target sends its last bytes and closes; the client reads nothing and never answers
    // the Close. The bridge waits for its answer while the client's messages could still go to
    // the target, then for the closing handshake: one grace for both, not one each.
    let (client_io, mut target, task) = raw_harness(limits(), 64 * 1024, 64 * 1024);
    target.write_all(b"bye").await.unwrap();
    drop(target);
    let start = Instant::now();
    let report = task.await.unwrap();
    assert!(
        matches!(report.ending, Ending::TargetClosed),
        "{:?}",
        report.ending
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= CLOSE_GRACE && elapsed < CLOSE_GRACE + Duration::from_millis(100),
        "closed after {elapsed:?}"
    );
    // What the client was sent: the target's bytes, then the Close.
    let mut raw = Vec::new();
    let mut client_io = client_io;
    client_io.read_to_end(&mut raw).await.unwrap();
    let close = [&[0x88, 15, 0x03, 0xe8][..], b"target closed"].concat();
    assert_eq!(raw, [&[0x82, 3][..], b"bye", &close].concat());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_slow_reader_of_a_spliced_download_is_not_taken_for_a_silent_client() {
    // A Ping every second and a second to answer it. The client reads slowly (each spliced
    // frame takes it seconds) and answers nothing (a raw socket), but the download keeps
    // moving, which the heartbeat counts as the idle watch does: it ends with the target's
    // Close, not with 1001 "ping timeout".
    within(async {
        let (mut client, mut target, splicer, task) = spliced_bridge(
            Some(64 * 1024),
            CancellationToken::new(),
            beating(1, 1, 300),
            None,
        )
        .await;
        let data = download()[..256 << 10].to_vec();
        let writer = tokio::spawn(async move {
            target.write_all(&data).await.unwrap();
            target.shutdown().await.unwrap();
            target
        });
        // Read until a Close (the test's splicer keeps the socket open past the bridge).
        let closed = [&[0x88, 15, 0x03, 0xe8][..], b"target closed"].concat();
        let timed_out = [&[0x88, 14, 0x03, 0xe9][..], b"ping timeout"].concat();
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 4 * 1024];
        while !raw.ends_with(&closed) && !raw.ends_with(&timed_out) {
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "no Close after {} bytes", raw.len());
            raw.extend_from_slice(&buf[..n]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let report = task.await.unwrap();
        assert!(
            matches!(report.ending, Ending::TargetClosed),
            "{:?} after {} bytes",
            report.ending,
            raw.len()
        );
        drop(writer.await);
        assert!(splicer.bytes() > 64 << 10, "{} spliced", splicer.bytes());
    })
    .await
}
