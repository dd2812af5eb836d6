//! The bridge to a UDP target: each client message (binary, or text as its UTF-8 bytes) is one
//! datagram to the target, and each datagram from the target one binary message, empty ones
//! included. The relay's socket is connected to the target, so the kernel delivers only the
//! target's datagrams, and reports ICMP errors about it (port unreachable: ECONNREFUSED) on the
//! socket; the bridge then closes with 1011 and the error (see README, "Targets").
//!
//! Message-shaped, so it has its own two pumps instead of the stream pumps' coalescing and
//! splicing; what a bridge shares (the codec, the idle watch, the heartbeat, how it ends) is the
//! same as for a stream target.
//!
//! Buffering is bounded the same way as for streams: nothing is read ahead. A client message is
//! read only after the previous datagram was sent; a datagram is received only after the
//! previous message was written to the client. A client that does not read therefore stops the
//! relay from receiving: the target's datagrams queue in the socket's kernel receive buffer,
//! and once it is full the kernel drops the newest (UDP's own loss, counted by the kernel as
//! `RcvbufErrors` in /proc/net/snmp). The relay holds at most one datagram per direction, and a
//! 64 KiB receive buffer from the first datagram on.

use std::io;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{Error as WsError, Message};

use super::client_to_target::Step;
use super::ending::{self, classify_ws_error, Ending};
use super::heartbeat::{Beat, Heartbeat, Pinged};
use super::idle::{idle, Activity};
use super::{Client, Limits, Report, Shared};
use crate::metrics::{Direction, Metrics};

/// The largest UDP payload over IPv4: 65,535 bytes of IP datagram less 20 of IP header and 8 of
/// UDP header. Larger messages close the bridge with 1009.
pub const MAX_DATAGRAM_V4: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms: the payload length field's 65,535 less
/// the 8 bytes of UDP header (the IPv6 header is not counted in it).
pub const MAX_DATAGRAM_V6: usize = 65_527;

/// Receive buffer: any UDP payload fits, so none is truncated.
const RECV_BUFFER: usize = 65_536;

/// Runs a bridge between `ws` and the connected UDP `socket` until the client closes, the
/// target fails (an ICMP error), the idle timeout or the heartbeat's timeout passes, or `cancel`
/// fires. `activity` counts the bytes moving on the client's socket (the caller builds the codec
/// on [`Activity::watch`]); the bridge adds each datagram.
pub async fn run<W: Client>(
    ws: W,
    socket: UdpSocket,
    activity: &Activity,
    limits: &Limits,
    cancel: &CancellationToken,
    metrics: &Metrics,
) -> Report {
    let max = match socket.peer_addr() {
        Ok(addr) if addr.is_ipv6() => MAX_DATAGRAM_V6,
        _ => MAX_DATAGRAM_V4,
    };
    let pinged = Pinged::default();
    let mut ws = Heartbeat::new(ws, &pinged, activity);
    let shared = Shared::default();
    let ending = {
        let (mut sink, mut stream) = (&mut ws).split();
        let up = client_to_target(&mut stream, &socket, max, &shared, activity, metrics);
        let down = target_to_client(&socket, &mut sink, &shared, activity, metrics);
        let beat = Beat::new(&pinged, activity, limits.ping_interval, limits.ping_timeout);
        let idle = idle(limits.idle_timeout, activity, None, &shared, beat);
        let watch = super::watch(idle, cancel);
        tokio::select! {
            ending = up => ending,
            ending = down => ending,
            ending = watch => ending,
        }
    };
    // A UDP target has nothing to shut down or reset: the socket is closed when it drops.
    ending::close(
        &mut ws,
        &ending,
        None::<&mut tokio::io::Empty>,
        limits.max_message,
    )
    .await;
    super::report(ending, &shared, metrics)
}

/// Sends each client message as one datagram until the client's Close, its end, or a failure.
async fn client_to_target<S>(
    stream: &mut S,
    socket: &UdpSocket,
    max: usize,
    shared: &Shared,
    activity: &Activity,
    metrics: &Metrics,
) -> Ending
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let data = match shared.step(stream.next().await) {
            Step::Data(data) => data,
            Step::Skip => continue,
            Step::Close(code) => return Ending::ClientClosed(code),
            Step::End(ending) => return ending,
        };
        if data.len() > max {
            return Ending::DatagramTooBig(max);
        }
        if let Err(e) = socket.send(&data).await {
            return failed(e, max, metrics);
        }
        activity.moved();
        shared.up.fetch_add(data.len() as u64, Relaxed);
        metrics.bytes(Direction::ClientToTarget, data.len());
    }
}

/// Sends each datagram of the target to the client as one binary message, until a failure or
/// the client's Close.
async fn target_to_client<S>(
    socket: &UdpSocket,
    sink: &mut S,
    shared: &Shared,
    activity: &Activity,
    metrics: &Metrics,
) -> Ending
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    // Allocated with the first datagram: a bridge that only sends costs no receive buffer.
    let mut buf = Vec::new();
    loop {
        // An ICMP error makes the socket ready with an error only (EPOLLERR, not EPOLLIN):
        // waiting for reads alone would never see it.
        let ready = match socket.ready(Interest::READABLE | Interest::ERROR).await {
            Ok(ready) => ready,
            Err(e) => return failed(e, MAX_DATAGRAM_V4, metrics),
        };
        if ready.is_error() {
            match socket.take_error() {
                Ok(Some(e)) | Err(e) => return failed(e, MAX_DATAGRAM_V4, metrics),
                // Taken already (a send reported it): wait for the next event.
                Ok(None) => {
                    let _ = socket.try_io(Interest::ERROR, || {
                        Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                    });
                }
            }
        }
        if !ready.is_readable() {
            continue;
        }
        if buf.is_empty() {
            buf = vec![0u8; RECV_BUFFER];
        }
        let n = match socket.try_recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return failed(e, MAX_DATAGRAM_V4, metrics),
        };
        activity.moved();
        let message = Message::binary(Bytes::copy_from_slice(&buf[..n]));
        match sink.send(message).await {
            Ok(()) => {}
            // The client closed first: its Close is being handled by the other pump.
            Err(WsError::AlreadyClosed) => return std::future::pending().await,
            Err(e) => return classify_ws_error(e),
        }
        shared.down.fetch_add(n as u64, Relaxed);
        metrics.bytes(Direction::TargetToClient, n);
    }
}

/// How a bridge ends on a socket error: a message the kernel finds too large for a datagram
/// (EMSGSIZE) closes with 1009; an ICMP error about the target (port, host or network
/// unreachable) is counted and closes with 1011 and the error, as any other failure does.
fn failed(e: io::Error, max: usize, metrics: &Metrics) -> Ending {
    if is_too_big(&e) {
        return Ending::DatagramTooBig(max);
    }
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    ) {
        metrics.udp_icmp_error();
    }
    Ending::TargetError(e)
}

#[cfg(target_os = "linux")]
fn is_too_big(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error())
}

#[cfg(not(target_os = "linux"))]
fn is_too_big(_: &io::Error) -> bool {
    false
}
