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
//! Buffering is bounded the same way as for streams: the client's socket is read for a message
//! only after the previous ones were sent (those read together go in as few system calls
//! as the kernel allows: see [`send_all`]).
//! Datagrams from the target go to the client in batches: those that have arrived together (at
//! most [`BATCH`] bytes of frames and [`BATCH_DATAGRAMS`] datagrams, received up to
//! [`RECV_SLOTS`] at a time) are written with one flush, and the next are received only once
//! that write is done. A client that does not read therefore stops the relay from receiving:
//! the target's datagrams queue in the socket's kernel receive buffer, and once it is full the
//! kernel drops the newest (UDP's own loss, counted by the kernel as `RcvbufErrors` in
//! /proc/net/snmp). A bridge holds at most one batch of client messages and one batch of
//! datagrams (its last receive may take it past [`BATCH`] by up to [`RECV_SLOTS`] datagrams);
//! the receive buffers belong to the runtime's threads, not to bridges.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{Error as WsError, Message};

use super::client_to_target::{poll_now, Step};
use super::ending::{self, classify_ws_error, Ending};
use super::heartbeat::{Beat, Heartbeat, Pinged};
use super::idle::{idle, Activity};
use super::{halves, Client, Limits, Report, Shared};
use crate::metrics::{Direction, Metrics};

/// The largest UDP payload over IPv4: 65,535 bytes of IP datagram less 20 of IP header and 8 of
/// UDP header. Larger messages close the bridge with 1009.
pub const MAX_DATAGRAM_V4: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms: the payload length field's 65,535 less
/// the 8 bytes of UDP header (the IPv6 header is not counted in it).
pub const MAX_DATAGRAM_V6: usize = 65_527;

/// Receive buffer: any UDP payload fits, so none is truncated.
const RECV_BUFFER: usize = 65_536;

/// The most bytes of frames (payload and header) one batch of datagrams to the client holds.
/// Datagrams that arrive together (a target answering several messages at once) then cost the
/// relay one write to the client, and the client one read, instead of one each. A batch ends
/// with the datagrams the socket holds, or at this size.
const BATCH: usize = 64 * 1024;

/// A frame header's largest size from the relay (no mask): what a datagram adds to a batch.
const FRAME_HEADER: usize = 10;

/// The most datagrams in one batch to the client: the codec keeps a queue entry for each
/// frame until the flush (56 B each), and its queue keeps its size afterwards, so a burst of
/// empty datagrams must not leave an idle bridge holding a large one.
const BATCH_DATAGRAMS: usize = 64;

/// Runs a bridge between `ws` and the connected UDP `socket` until the client closes, the
/// target fails (an ICMP error), the idle timeout or the heartbeat's timeout passes, or `cancel`
/// fires. `activity` counts the bytes moving on the client's socket (the caller builds the codec
/// on [`Activity::watch`]); the bridge adds each datagram.
pub async fn run<W: Client + Send>(
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
    let ws = parking_lot::Mutex::new(Heartbeat::new(ws, &pinged, activity));
    let shared = Shared::default();
    let ending = {
        let (mut stream, mut sink) = halves::halves(&ws);
        let up = client_to_target(&mut stream, &socket, max, &shared, activity, metrics);
        let down = target_to_client(&socket, &mut sink, &shared, activity, metrics);
        let beat = Beat::new(&pinged, limits.ping_interval, limits.ping_timeout);
        let idle = idle(
            limits.idle_timeout,
            activity,
            None,
            &shared,
            beat,
            halves::Parker(&ws),
        );
        let watch = super::watch(idle, cancel);
        tokio::select! {
            ending = up => ending,
            ending = down => ending,
            ending = watch => ending,
        }
    };
    let mut ws = ws.into_inner();
    // A UDP target has nothing to shut down or reset: the socket is closed when it drops.
    ending::close(
        &mut ws,
        &ending,
        None::<&mut tokio::io::Empty>,
        limits.max_message,
        tokio::time::Instant::now() + ending::CLOSE_GRACE,
    )
    .await;
    super::report(ending, &shared, metrics)
}

/// The most client messages sent to the target with one `sendmmsg` (Linux).
const SEND_BATCH: usize = 32;

/// A batch of client messages is not added to past this many bytes (one message more at the
/// most): what a bridge holds while the target's socket is full.
const SEND_BATCH_BYTES: usize = 64 * 1024;

/// Sends each client message as one datagram until the client's Close, its end, or a failure.
/// The messages that have arrived together (those the codec has without waiting, up to
/// [`SEND_BATCH`] and [`SEND_BATCH_BYTES`]) go to the target with one system call where there
/// is `sendmmsg`, in order; what ends the bridge (a Close, a message too large) ends it after
/// the messages before it.
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
    let mut batch: Vec<Bytes> = Vec::new();
    let mut gso = segment_limit(socket);
    loop {
        // The first message is waited for; those the codec has without waiting are taken as
        // they are. Polled with this task's context, not a no-op one: the codec may write (a
        // Pong) while it reads, and a write that waits must leave a waker that wakes this task.
        let mut ending = match take(shared.step(stream.next().await), max, &mut batch) {
            Taken::More => None,
            Taken::Ending(ending) => Some(ending),
        };
        let mut held: usize = batch.iter().map(Bytes::len).sum();
        while ending.is_none() && batch.len() < SEND_BATCH && held < SEND_BATCH_BYTES {
            let Some(next) = poll_fn(|cx| Poll::Ready(poll_now(stream, cx))).await else {
                break;
            };
            if let Taken::Ending(e) = take(shared.step(next), max, &mut batch) {
                ending = Some(e);
            }
            held = batch.iter().map(Bytes::len).sum();
        }
        if !batch.is_empty() {
            let (sent, result) = send_all(socket, &batch, &mut gso).await;
            // What went out counts, whatever happened to the rest.
            if sent > 0 {
                activity.moved();
                let bytes: usize = batch[..sent].iter().map(Bytes::len).sum();
                shared.up.fetch_add(bytes as u64, Relaxed);
                metrics.bytes(Direction::ClientToTarget, bytes);
            }
            if let Err(e) = result {
                return failed(e, max, metrics);
            }
            batch.clear();
        }
        if let Some(ending) = ending {
            return ending;
        }
    }
}

/// What [`take`] made of a step.
enum Taken {
    /// A message was added to the batch, or there was none (a control frame).
    More,
    /// The bridge ends once the batch is sent.
    Ending(Ending),
}

/// Adds a step's message to `batch`, or tells how the bridge ends.
fn take(step: Step, max: usize, batch: &mut Vec<Bytes>) -> Taken {
    match step {
        Step::Data(data) if data.len() > max => Taken::Ending(Ending::DatagramTooBig(max)),
        Step::Data(data) => {
            batch.push(data);
            Taken::More
        }
        Step::Skip => Taken::More,
        Step::Close(code) => Taken::Ending(Ending::ClientClosed(code)),
        Step::End(ending) => Taken::Ending(ending),
    }
}

/// Sends each of `datagrams` to the connected target, in order, and says how many went out and
/// the error that stopped the rest. A run of datagrams of one size (the last of it may be
/// shorter) no larger than `gso` (see [`segment_limit`]) goes with one `sendmsg` and
/// segmentation offload: the kernel builds, routes and queues it once and cuts it into the same
/// datagrams, each its own packet, as late as it can. Other datagrams go with `sendmmsg`, as
/// many at a time as the kernel takes. Where the kernel cannot segment (EIO, EINVAL) the run
/// goes again without it and `gso` turns 0; where the route's MTU has fallen below the run's
/// datagrams (EMSGSIZE, and the MTU read again says so) `gso` takes the new limit and the run
/// goes again. Any other error is the target's, as it would be from a plain send.
///
/// `sendmmsg` that stops short says how many it sent and drops the error that stopped it
/// (the man page: "the error code is lost"), an ICMP error about the target among them; so
/// after a short count the next datagram goes alone, with `send`, which reports the next one.
#[cfg(target_os = "linux")]
async fn send_all(
    socket: &UdpSocket,
    datagrams: &[Bytes],
    gso: &mut usize,
) -> (usize, io::Result<()>) {
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
    use std::io::IoSlice;

    let mut sent = 0;
    let mut alone = datagrams.len() == 1;
    while sent < datagrams.len() {
        let rest = &datagrams[sent..];
        let (singles, run) = split_run(rest, *gso);
        if singles == 0 {
            match send_segmented(socket, &rest[..run]).await {
                Ok(()) => {
                    sent += run;
                    alone = false;
                }
                Err(e) if matches!(e.raw_os_error(), Some(nix::libc::EIO | nix::libc::EINVAL)) => {
                    *gso = 0
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) => {
                    let limit = mtu_limit(socket);
                    if limit >= rest[0].len() {
                        return (sent, Err(e));
                    }
                    *gso = limit;
                }
                Err(e) => return (sent, Err(e)),
            }
            continue;
        }
        if alone {
            if let Err(e) = socket.send(&rest[0]).await {
                return (sent, Err(e));
            }
            sent += 1;
            alone = false;
            continue;
        }
        let rest = &rest[..singles];
        let result = socket
            .async_io(Interest::WRITABLE, || {
                let iovs: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|d| [IoSlice::new(d)]).collect();
                let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = rest
                    .iter()
                    .map(|_| SendAncillaryBuffer::default())
                    .collect();
                let mut msgs: Vec<MMsgHdr<'_>> = iovs
                    .iter()
                    .zip(controls.iter_mut())
                    .map(|(iov, control)| MMsgHdr::new(iov, control))
                    .collect();
                match sendmmsg(socket, &mut msgs, SendFlags::empty())? {
                    0 => Err(io::ErrorKind::WriteZero.into()),
                    n => Ok(n),
                }
            })
            .await;
        match result {
            Ok(n) => {
                sent += n;
                alone = n < rest.len();
            }
            Err(e) => return (sent, Err(e)),
        }
    }
    (sent, Ok(()))
}

/// The most datagrams one segmented send carries (the kernel's `UDP_MAX_SEGMENTS`, 64 before
/// Linux 6.9 and 128 since).
#[cfg(target_os = "linux")]
const GSO_SEGMENTS: usize = 64;

/// The IP and UDP headers of a datagram, at most (IPv6's 40 bytes and UDP's 8).
#[cfg(target_os = "linux")]
const HEADERS: usize = 48;

/// The largest datagram a segmented send to the target may be cut into: what the route's MTU
/// leaves after the IP and UDP headers. 0 (none) where the kernel does not know the UDP_SEGMENT
/// option (before Linux 4.18, which would ignore the control message and send a run as one
/// datagram) or the MTU is unknown.
#[cfg(target_os = "linux")]
fn segment_limit(socket: &UdpSocket) -> usize {
    use nix::sys::socket::{getsockopt, sockopt::UdpGsoSegment};
    match getsockopt(socket, UdpGsoSegment) {
        Ok(_) => mtu_limit(socket),
        Err(_) => 0,
    }
}

/// What the route's MTU to the connected target leaves of a datagram after its headers; 0 when
/// it is not known.
#[cfg(target_os = "linux")]
fn mtu_limit(socket: &UdpSocket) -> usize {
    use rustix::net::sockopt::{ip_mtu, ipv6_mtu};
    let (mtu, headers) = match socket.peer_addr() {
        Ok(addr) if addr.is_ipv6() => (ipv6_mtu(socket), 40 + 8),
        _ => (ip_mtu(socket), 20 + 8),
    };
    mtu.map_or(0, |mtu| (mtu as usize).saturating_sub(headers))
}

#[cfg(not(target_os = "linux"))]
fn segment_limit(_: &UdpSocket) -> usize {
    0
}

/// Where the first run of `datagrams` worth segmenting starts, and how long it is: two or more
/// non-empty datagrams of one size no larger than `limit`, then perhaps one shorter but not
/// empty, together within what one segmented send carries. `(datagrams.len(), 0)` when there is
/// none.
#[cfg(target_os = "linux")]
fn split_run(datagrams: &[Bytes], limit: usize) -> (usize, usize) {
    let mut start = 0;
    while start + 1 < datagrams.len() {
        let size = datagrams[start].len();
        // At most GSO_SEGMENTS datagrams and one datagram's bytes; and within GSO_SEGMENTS
        // segments counting the headers, which kernels before 5.6 counted.
        let fits = |count: usize, bytes: usize| {
            count <= GSO_SEGMENTS
                && bytes <= MAX_DATAGRAM_V4
                && bytes + HEADERS <= GSO_SEGMENTS * size
        };
        let mut len = 1;
        while start + len < datagrams.len()
            && datagrams[start + len].len() == size
            && fits(len + 1, (len + 1) * size)
        {
            len += 1;
        }
        if (1..=limit).contains(&size) && len >= 2 {
            if let Some(last) = datagrams.get(start + len) {
                if (1..size).contains(&last.len()) && fits(len + 1, len * size + last.len()) {
                    len += 1;
                }
            }
            return (start, len);
        }
        start += len;
    }
    (datagrams.len(), 0)
}

/// Sends `run` (see [`split_run`]) with one `sendmsg`, segmented at the size of its first.
#[cfg(target_os = "linux")]
async fn send_segmented(socket: &UdpSocket, run: &[Bytes]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let size =
        u16::try_from(run[0].len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let total: usize = run.iter().map(Bytes::len).sum();
    socket
        .async_io(Interest::WRITABLE, || {
            let iov: Vec<IoSlice<'_>> = run.iter().map(|d| IoSlice::new(d)).collect();
            let control = [ControlMessage::UdpGsoSegments(&size)];
            let fd = socket.as_raw_fd();
            match sendmsg::<SockaddrStorage>(fd, &iov, &control, MsgFlags::empty(), None)? {
                n if n == total => Ok(()),
                _ => Err(io::ErrorKind::WriteZero.into()),
            }
        })
        .await
}

/// Sends each of `datagrams` to the connected target, in order. How many went out, and the
/// error that stopped the rest.
#[cfg(not(target_os = "linux"))]
async fn send_all(
    socket: &UdpSocket,
    datagrams: &[Bytes],
    _gso: &mut usize,
) -> (usize, io::Result<()>) {
    for (sent, d) in datagrams.iter().enumerate() {
        if let Err(e) = socket.send(d).await {
            return (sent, Err(e));
        }
    }
    (datagrams.len(), Ok(()))
}

/// The most datagrams one receive takes: with `recvmmsg` (Linux), a burst from the target costs
/// one system call per this many datagrams instead of one each.
const RECV_SLOTS: usize = if cfg!(target_os = "linux") { 8 } else { 1 };

/// Where datagrams are received, per runtime thread rather than per bridge: each is copied out
/// at once, so no bridge holds them across an await. [`RECV_SLOTS`] buffers that any UDP
/// payload fits (none is truncated); their pages are touched only as datagrams fill them.
struct Slots {
    bufs: Vec<Vec<u8>>,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<()>,
}

thread_local! {
    static RECV: std::cell::RefCell<Slots> = std::cell::RefCell::new(Slots {
        bufs: (0..RECV_SLOTS).map(|_| vec![0; RECV_BUFFER]).collect(),
        #[cfg(target_os = "linux")]
        headers: nix::sys::socket::MultiHeaders::preallocate(RECV_SLOTS, None),
    });
}

/// Receives up to `want` (at most [`RECV_SLOTS`]) of the datagrams the socket holds, each
/// copied to a buffer of its size, onto `into`. WouldBlock when it holds none.
fn receive(socket: &UdpSocket, want: usize, into: &mut Vec<Bytes>) -> io::Result<()> {
    RECV.with(|slots| {
        let slots = &mut *slots.borrow_mut();
        let want = want.clamp(1, RECV_SLOTS);
        #[cfg(target_os = "linux")]
        if want > 1 {
            use nix::sys::socket::{recvmmsg, MsgFlags};
            use std::io::IoSliceMut;
            use std::os::fd::AsRawFd;
            return socket.try_io(Interest::READABLE, || {
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = slots.bufs[..want]
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(b)])
                    .collect();
                let fd = socket.as_raw_fd();
                let got = recvmmsg(
                    fd,
                    &mut slots.headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )?;
                // Each datagram as received (an empty one has no slice).
                into.extend(got.map(|m| Bytes::copy_from_slice(m.iovs().next().unwrap_or(&[]))));
                Ok(())
            });
        }
        let n = socket.try_recv(&mut slots.bufs[0])?;
        into.push(Bytes::copy_from_slice(&slots.bufs[0][..n]));
        Ok(())
    })
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
        // One batch: every datagram the socket holds (up to BATCH bytes of frames and
        // BATCH_DATAGRAMS datagrams) goes into the codec's queue, then to the client with one
        // flush (the codec writes every 8 KiB it has queued).
        let (mut framed, mut bytes, mut count, mut error) = (0, 0, 0, None);
        let mut received = Vec::new();
        while framed < BATCH && count < BATCH_DATAGRAMS {
            let want = (BATCH_DATAGRAMS - count).min(RECV_SLOTS);
            match receive(socket, want, &mut received) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // After the datagrams received before it have gone out.
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            // Fewer than asked for: the socket holds no more.
            let drained = received.len() < want;
            for datagram in received.drain(..) {
                let n = datagram.len();
                match sink.feed(Message::binary(datagram)).await {
                    Ok(()) => {}
                    // The client closed first: its Close is being handled by the other pump.
                    Err(WsError::AlreadyClosed) => return std::future::pending().await,
                    Err(e) => return classify_ws_error(e),
                }
                framed += n + FRAME_HEADER;
                bytes += n;
                count += 1;
            }
            if drained {
                break;
            }
        }
        if framed > 0 {
            activity.moved();
            match sink.flush().await {
                Ok(()) => {}
                Err(WsError::AlreadyClosed) => return std::future::pending().await,
                Err(e) => return classify_ws_error(e),
            }
            shared.down.fetch_add(bytes as u64, Relaxed);
            metrics.bytes(Direction::TargetToClient, bytes);
        }
        if let Some(e) = error {
            return failed(e, MAX_DATAGRAM_V4, metrics);
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::duplex;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message as TMessage;
    use tokio_tungstenite::WebSocketStream;

    use super::*;
    use crate::bridge::park::Codec;
    use crate::bridge::tests::limits;

    /// A bridge from an in-memory WebSocket client to a UDP socket the test holds as the target.
    async fn bridge() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        UdpSocket,
        std::net::SocketAddr,
        tokio::task::JoinHandle<Report>,
    ) {
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (client, relay, task) = bridge_to(target.local_addr().unwrap()).await;
        (client, target, relay, task)
    }

    /// A bridge from an in-memory WebSocket client to the UDP target at `target`.
    async fn bridge_to(
        target: std::net::SocketAddr,
    ) -> (
        WebSocketStream<tokio::io::DuplexStream>,
        std::net::SocketAddr,
        tokio::task::JoinHandle<Report>,
    ) {
        let relay_side = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        relay_side.connect(target).await.unwrap();
        let relay = relay_side.local_addr().unwrap();
        let (client_io, server_io) = duplex(1 << 20);
        let task = tokio::spawn(async move {
            let (activity, limits) = (Activity::default(), limits());
            let server = Codec::serve(limits.max_message, activity.watch(server_io));
            let metrics = Metrics::new();
            let cancel = CancellationToken::new();
            run(server, relay_side, &activity, &limits, &cancel, &metrics).await
        });
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        (client, relay, task)
    }

    /// A UDP bridge parks its codec while quiet too, and datagrams go both ways across it.
    #[tokio::test]
    async fn datagrams_go_both_ways_across_quiet_spells() {
        let (mut client, target, relay, task) = bridge().await;
        let quiet = || tokio::time::sleep(4 * crate::bridge::idle::PARK_AFTER);
        let mut got = [0u8; 64];
        for round in 0..3u8 {
            client
                .send(TMessage::binary(vec![round; 10]))
                .await
                .unwrap();
            let n = target.recv(&mut got).await.unwrap();
            assert_eq!(&got[..n], &[round; 10]);
            quiet().await;
            target.send_to(&[round; 20], relay).await.unwrap();
            match client.next().await.unwrap().unwrap() {
                TMessage::Binary(b) => assert_eq!(&b[..], &[round; 20]),
                other => panic!("{other:?}"),
            }
            quiet().await;
        }
        client.close(None).await.unwrap();
        let report = task.await.unwrap();
        assert_eq!((report.client_to_target, report.target_to_client), (30, 60));
    }

    /// A UDP socket on loopback that draws ICMP port unreachable for as long as it lives:
    /// bound, so nobody else gets the port, and connected elsewhere, so no datagram from the
    /// bridge finds it.
    async fn refusing() -> UdpSocket {
        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        closed.connect("127.0.0.1:9").await.unwrap();
        closed
    }

    /// Messages of different sizes read together to a target that refuses them: the refusal
    /// (an ICMP error, which `sendmmsg` drops when it hits a datagram after the first) closes
    /// the bridge with 1011 at once, not after the whole batch. The error `sendmmsg` dropped
    /// is gone, so the datagram sent alone after it goes too, and the next refusal is the one
    /// reported: two datagrams out of ten.
    #[tokio::test]
    async fn a_refusal_within_a_batch_closes_the_bridge_at_once() {
        let closed = refusing().await;
        let (mut client, _relay, task) = bridge_to(closed.local_addr().unwrap()).await;
        for i in 1..=10 {
            client.feed(TMessage::binary(datagram(i))).await.unwrap();
        }
        client.flush().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            TMessage::Close(Some(f)) => assert_eq!(u16::from(f.code), 1011),
            other => panic!("unexpected {other:?}"),
        }
        let report = task.await.unwrap();
        let (one, two) = (datagram(1).len() as u64, datagram(2).len() as u64);
        let sent = report.client_to_target;
        assert!([one, one + two].contains(&sent), "{sent} B counted as sent");
    }

    /// Messages of one size read together go as one segmented send: to a target that refuses
    /// them, all of it went out before the refusal came back, and the bridge closes with 1011.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_refused_run_of_one_size_is_sent_whole_then_closes_1011() {
        let closed = refusing().await;
        let (mut client, _relay, task) = bridge_to(closed.local_addr().unwrap()).await;
        for _ in 0..10 {
            client.feed(TMessage::binary(vec![7u8; 100])).await.unwrap();
        }
        client.flush().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            TMessage::Close(Some(f)) => assert_eq!(u16::from(f.code), 1011),
            other => panic!("unexpected {other:?}"),
        }
        let report = task.await.unwrap();
        assert!(
            matches!(report.ending, Ending::TargetError(_)),
            "{:?}",
            report.ending
        );
        // Where the kernel cannot segment, the messages go with sendmmsg: one or two of them
        // before the refusal stops it (see the test above).
        let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        probe.connect(closed.local_addr().unwrap()).await.unwrap();
        let expected: &[u64] = if segment_limit(&probe) > 0 {
            &[1000]
        } else {
            &[100, 200]
        };
        let sent = report.client_to_target;
        assert!(expected.contains(&sent), "{sent} B counted as sent");
    }

    /// Datagram `i` of the tests: its size and bytes tell it apart (empty ones included).
    fn datagram(i: usize) -> Vec<u8> {
        vec![i as u8; (i * 37) % 1500]
    }

    #[tokio::test]
    async fn datagrams_that_arrive_together_come_back_one_message_each_in_order() {
        let (mut client, target, relay, task) = bridge().await;
        // More than one batch holds (about 70 KiB), all queued before the relay receives any,
        // and within the default receive buffer (about 2.3 KiB of it per datagram).
        let count = 60;
        let datagram = |i: usize| {
            if i % 10 == 3 {
                Vec::new()
            } else {
                vec![i as u8; 1400]
            }
        };
        for i in 0..count {
            target.send_to(&datagram(i), relay).await.unwrap();
        }
        for i in 0..count {
            match client.next().await.unwrap().unwrap() {
                TMessage::Binary(b) => assert_eq!(b, datagram(i), "message {i}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        client.close(None).await.unwrap();
        let report = task.await.unwrap();
        let total: usize = (0..count).map(|i| datagram(i).len()).sum();
        assert_eq!(report.target_to_client, total as u64);
    }

    #[tokio::test]
    async fn messages_read_together_go_out_one_datagram_each_in_order_before_the_close() {
        let (mut client, target, relay, task) = bridge().await;
        // One write from the client: more messages than one sendmmsg takes, then the Close.
        let count = 3 * SEND_BATCH + 1;
        for i in 0..count {
            client.feed(TMessage::binary(datagram(i))).await.unwrap();
        }
        client.feed(TMessage::Close(None)).await.unwrap();
        client.flush().await.unwrap();
        let mut buf = vec![0u8; 2048];
        for i in 0..count {
            let (n, from) = target.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, relay);
            assert_eq!(buf[..n], datagram(i), "datagram {i}");
        }
        let report = task.await.unwrap();
        assert!(matches!(report.ending, Ending::ClientClosed(_)));
        let total: usize = (0..count).map(|i| datagram(i).len()).sum();
        assert_eq!(report.client_to_target, total as u64);
    }

    /// The sizes of the messages of [`runs_of_one_size_arrive_as_the_datagrams_sent`]: runs
    /// of one size, some ending shorter, between single ones and empty ones.
    const RUN_SIZES: &[usize] = &[
        100, 100, 100, 50, 7, 200, 200, 0, 0, 300, 1, 1, 1, 1, 30_000, 30_000, 30_000, 9, 9,
    ];

    /// The `i`th message of [`RUN_SIZES`], its bytes telling it apart.
    fn run_message(i: usize) -> Vec<u8> {
        vec![i as u8 + 1; RUN_SIZES[i]]
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_worth_segmenting_are_found_within_the_kernels_limits() {
        let within = |limit: usize, sizes: &[usize]| {
            let datagrams: Vec<Bytes> = sizes.iter().map(|&n| Bytes::from(vec![0; n])).collect();
            split_run(&datagrams, limit)
        };
        let of = |sizes: &[usize]| within(MAX_DATAGRAM_V4, sizes);
        assert_eq!(of(&[]), (0, 0));
        assert_eq!(of(&[100]), (1, 0));
        assert_eq!(of(&[100, 200, 300]), (3, 0));
        assert_eq!(of(&[100, 100]), (0, 2));
        // A shorter one ends a run; a longer or an empty one does not join it.
        assert_eq!(of(&[100, 100, 50, 50]), (0, 3));
        assert_eq!(of(&[100, 100, 150]), (0, 2));
        assert_eq!(of(&[100, 100, 0]), (0, 2));
        assert_eq!(of(&[7, 100, 100, 100]), (1, 3));
        assert_eq!(of(&[0, 0, 0]), (3, 0));
        assert_eq!(of(&[5, 0, 0, 9, 9]), (3, 2));
        // At most GSO_SEGMENTS datagrams, and their headers within GSO_SEGMENTS segments too
        // (what kernels before 5.6 checked): 63 of 64 B, 59 of 10 B.
        assert_eq!(of(&[64; 100]), (0, 63));
        assert_eq!(of(&[10; 100]), (0, 59));
        assert_eq!(of(&[1000; 100]), (0, 63));
        let mut tail = vec![1000; 63];
        tail.push(900);
        assert_eq!(of(&tail), (0, GSO_SEGMENTS));
        // No more bytes than one datagram.
        assert_eq!(of(&[30_000, 30_000, 30_000]), (0, 2));
        assert_eq!(of(&[30_000, 30_000, 5_508]), (0, 2));
        assert_eq!(of(&[30_000, 30_000, 5_507]), (0, 3));
        assert_eq!(of(&[40_000, 40_000]), (2, 0));
        // Datagrams larger than the route's MTU allows are not segmented; none are at 0.
        assert_eq!(within(1472, &[1500, 1500, 1472, 1472]), (2, 2));
        assert_eq!(within(0, &[64, 64, 64]), (3, 0));
    }

    /// On loopback (MTU 65,536) any datagram may be segmented: the limit is the MTU less the
    /// headers, as the kernel checks it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_segment_limit_is_the_routes_mtu_less_the_headers() {
        for (local, headers) in [("127.0.0.1:0", 28), ("[::1]:0", 48)] {
            let (a, b) = (
                UdpSocket::bind(local).await.unwrap(),
                UdpSocket::bind(local).await.unwrap(),
            );
            a.connect(b.local_addr().unwrap()).await.unwrap();
            let mtu = if local.starts_with('[') {
                rustix::net::sockopt::ipv6_mtu(&a)
            } else {
                rustix::net::sockopt::ip_mtu(&a)
            };
            assert_eq!(
                segment_limit(&a),
                mtu.unwrap() as usize - headers,
                "{local}"
            );
        }
    }

    #[tokio::test]
    async fn runs_of_one_size_arrive_as_the_datagrams_sent() {
        let (mut client, target, relay, task) = bridge().await;
        for i in 0..RUN_SIZES.len() {
            client.feed(TMessage::binary(run_message(i))).await.unwrap();
        }
        client.flush().await.unwrap();
        let mut buf = vec![0u8; 65_536];
        for i in 0..RUN_SIZES.len() {
            let (n, from) = target.recv_from(&mut buf).await.unwrap();
            assert_eq!(
                (&buf[..n], from),
                (&run_message(i)[..], relay),
                "datagram {i}"
            );
        }
        client.close(None).await.unwrap();
        let report = task.await.unwrap();
        assert_eq!(
            report.client_to_target,
            RUN_SIZES.iter().sum::<usize>() as u64
        );
    }

    /// Where the kernel cannot segment (a UDP-Lite socket: EIO, as a route without checksum
    /// offload would), a run goes again one datagram at a time, and nothing is lost.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_run_the_kernel_cannot_segment_goes_one_datagram_at_a_time() {
        use socket2::{Domain, Protocol, Socket, Type};
        let lite = || -> Option<UdpSocket> {
            match Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDPLITE)) {
                Ok(socket) => {
                    socket.set_nonblocking(true).unwrap();
                    socket
                        .bind(
                            &"127.0.0.1:0"
                                .parse::<std::net::SocketAddr>()
                                .unwrap()
                                .into(),
                        )
                        .unwrap();
                    Some(UdpSocket::from_std(socket.into()).unwrap())
                }
                // A kernel built without UDP-Lite: nothing to try it with here.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPROTONOSUPPORT) => None,
                Err(e) => panic!("{e}"),
            }
        };
        let (Some(target), Some(relay_side)) = (lite(), lite()) else {
            eprintln!("no UDP-Lite in this kernel: the fallback is not tried");
            return;
        };
        relay_side
            .connect(target.local_addr().unwrap())
            .await
            .unwrap();
        let relay = relay_side.local_addr().unwrap();
        let datagrams: Vec<Bytes> = (0..RUN_SIZES.len())
            .map(|i| run_message(i).into())
            .collect();
        let mut gso = segment_limit(&relay_side);
        assert!(gso > 30_000, "UDP-Lite knows the option: {gso}");
        let (sent, result) = send_all(&relay_side, &datagrams, &mut gso).await;
        assert_eq!((sent, result.ok()), (datagrams.len(), Some(())));
        assert_eq!(gso, 0, "segmentation was not turned off");
        let mut buf = vec![0u8; 65_536];
        for (i, d) in datagrams.iter().enumerate() {
            let (n, from) = target.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&d[..], relay), "datagram {i}");
        }
    }

    #[tokio::test]
    async fn a_message_too_large_read_with_others_closes_after_those_before_it() {
        let (mut client, target, relay, task) = bridge().await;
        for i in 0..5 {
            client.feed(TMessage::binary(datagram(i))).await.unwrap();
        }
        client
            .feed(TMessage::binary(vec![0u8; MAX_DATAGRAM_V4 + 1]))
            .await
            .unwrap();
        client.feed(TMessage::binary(datagram(9))).await.unwrap();
        client.flush().await.unwrap();
        let mut buf = vec![0u8; 2048];
        for i in 0..5 {
            let (n, from) = target.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&datagram(i)[..], relay));
        }
        match client.next().await.unwrap().unwrap() {
            TMessage::Close(Some(f)) => assert_eq!(u16::from(f.code), 1009),
            other => panic!("unexpected {other:?}"),
        }
        let report = task.await.unwrap();
        assert!(matches!(
            report.ending,
            Ending::DatagramTooBig(MAX_DATAGRAM_V4)
        ));
        assert!(
            target.try_recv_from(&mut buf).is_err(),
            "nothing after the message too large was sent"
        );
    }
}
