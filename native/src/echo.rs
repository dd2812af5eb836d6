//! The tutorial's servers: the RFC 862 echo service (TCP and UDP on one port) and the
//! "acknowledge" server that answers every read with a fixed text.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::{EchoDrop, Metrics, Proto};
use crate::readsize::ReadSize;

/// Largest UDP payload (IPv6 jumbograms aside); larger datagrams cannot arrive.
const MAX_DATAGRAM: usize = 65_535;

/// Source ports never answered over UDP (CERT CA-1996-01): echo (7), daytime (13), chargen (19)
/// and time (37) answer every datagram, so a datagram forged to come from one of them would
/// bounce between it and this echo forever.
const LOOP_PORTS: [u16; 4] = [7, 13, 19, 37];

/// What a TCP service does with each connection.
#[derive(Debug, Clone)]
pub enum TcpService {
    /// Every byte back, in order, until the client closes.
    Echo,
    /// The tutorial's first server: one fixed reply per read.
    Ack(Arc<str>),
}

impl TcpService {
    fn name(&self) -> &'static str {
        match self {
            TcpService::Echo => "echo",
            TcpService::Ack(_) => "ack",
        }
    }
}

/// Shared by every connection of the TCP services.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    pub metrics: Arc<Metrics>,
    /// Caps concurrent connections; a permit is taken before `accept`, so excess clients wait in
    /// the listen backlog instead of costing a task each.
    pub limit: Arc<Semaphore>,
    pub cancel: CancellationToken,
}

/// Counts an open connection in the metrics until dropped, however its task ends.
struct Open<'a>(&'a Metrics);

impl<'a> Open<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.echo_opened();
        Open(metrics)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.echo_closed();
    }
}

/// Accepts connections until cancelled, then ends every connection and returns once they are
/// gone. Connections are tasks of a [`JoinSet`] so that shutdown can abort them: a connection
/// does not watch the cancellation itself, which would cost a lock on every wake-up, that is on
/// every message.
pub async fn serve_tcp(listener: TcpListener, service: TcpService, ctx: ServiceContext) {
    let mut connections = JoinSet::new();
    let mut failures = crate::tcp::FailedAccepts::default();
    loop {
        // Finished connections leave the set here, so it holds at most the open ones and those
        // that ended since the last accept.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = ctx.limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = ctx.cancel.cancelled() => break,
        };
        let failed = |e: &io::Error| {
            // Out of file descriptors and the like: back off instead of spinning.
            failures.log(service.name(), e);
            Duration::from_millis(100)
        };
        let Some((stream, peer)) = crate::tcp::accept(&listener, &ctx.cancel, failed).await else {
            break;
        };
        let service = service.clone();
        let metrics = ctx.metrics.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _open = Open::new(&metrics);
            match handle_tcp(stream, &service, &metrics).await {
                Ok(()) => debug!(service = service.name(), %peer, "connection closed"),
                Err(e) => debug!(service = service.name(), %peer, error = %e, "connection ended"),
            }
        });
    }
    // Shutdown: no new connections; the open ones are dropped (closed) now.
    drop(listener);
    connections.shutdown().await;
}

async fn handle_tcp(
    mut stream: TcpStream,
    service: &TcpService,
    metrics: &Metrics,
) -> io::Result<()> {
    // Small request/response exchanges are the point of these services: don't let Nagle delay them.
    stream.set_nodelay(true)?;
    // Small while traffic is small (many idle connections cost little), large while reads fill
    // it. One read, one write.
    let mut size = ReadSize::default();
    let mut buf = vec![0u8; size.get()];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // The client is done sending; everything it sent has been answered.
            return stream.shutdown().await;
        }
        size.record(n);
        if buf.len() != size.get() {
            // Shrinking only follows small reads: the `n` bytes read stay.
            buf.resize(size.get(), 0);
            buf.shrink_to_fit();
        }
        match service {
            TcpService::Echo => {
                stream.write_all(&buf[..n]).await?;
                metrics.echoed(Proto::Tcp, n);
            }
            TcpService::Ack(reply) => stream.write_all(reply.as_bytes()).await?,
        }
    }
}

/// Echoes each datagram to its sender until cancelled, except those [`replies_to`] refuses
/// (counted in the metrics).
///
/// Broadcasts: an echo bound to a unicast address (the default is loopback) never receives a
/// broadcast or multicast datagram, since Linux delivers those only to sockets bound to the
/// wildcard address or to that broadcast or group address. Bound to the wildcard address, it
/// cannot tell them apart without the datagram's destination (IP_PKTINFO), so it says so at
/// startup.
pub async fn serve_udp(socket: UdpSocket, metrics: Arc<Metrics>, cancel: CancellationToken) {
    let local = socket.local_addr().ok();
    if local.is_some_and(|l| l.ip().is_unspecified()) {
        warn!(
            "the UDP echo is bound to a wildcard address: it answers broadcast datagrams too; \
             bind --echo to a unicast address to rule that out"
        );
    }
    let own_port = local.map_or(0, |l| l.port());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP errors from earlier replies surface here on Linux; they concern one peer.
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        if let Err(drop) = replies_to(from, own_port) {
            debug!(%from, reason = drop.as_str(), "not echoing");
            metrics.echo_dropped(drop);
            continue;
        }
        match socket.send_to(&buf[..n], from).await {
            Ok(_) => metrics.echoed(Proto::Udp, n),
            Err(e) => debug!(%from, error = %e, "udp send failed"),
        }
    }
}

/// Whether a datagram from `from` gets its echo from an echo on port `own_port`: not when it
/// comes from a port whose service answers every datagram (two such servers would bounce
/// packets forever, and a forged source address can set that up), nor from the echo's own port
/// (its own address, or another echo on the same port elsewhere: the same loop), nor from
/// port 0, which cannot be sent to.
fn replies_to(from: SocketAddr, own_port: u16) -> Result<(), EchoDrop> {
    match from.port() {
        0 => Err(EchoDrop::PortZero),
        port if LOOP_PORTS.contains(&port) => Err(EchoDrop::LoopPort),
        port if port == own_port => Err(EchoDrop::OwnPort),
        _ => Ok(()),
    }
}

/// Binds TCP and UDP to the same port. With port 0 the kernel picks the TCP port, and the UDP
/// socket takes the same number; if that number is taken for UDP, try another. TCP clients get
/// the congestion control `congestion` when it is set.
pub async fn bind_echo(
    addr: SocketAddr,
    congestion: Option<&str>,
) -> io::Result<(TcpListener, UdpSocket)> {
    if addr.port() != 0 {
        let tcp = crate::listen(addr, congestion)?;
        let udp = UdpSocket::bind(addr).await?;
        return Ok((tcp, udp));
    }
    let mut last_err = None;
    for _ in 0..16 {
        let tcp = crate::listen(addr, congestion)?;
        let chosen = tcp.local_addr()?;
        match UdpSocket::bind(chosen).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port for TCP and UDP")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn udp_echo_never_answers_looping_services_its_own_port_or_port_zero() {
        let own = 65432;
        for ip in ["127.0.0.1", "::1", "192.0.2.1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let at = |port| SocketAddr::new(ip, port);
            assert_eq!(replies_to(at(0), own), Err(EchoDrop::PortZero));
            for port in [7, 13, 19, 37] {
                assert_eq!(replies_to(at(port), own), Err(EchoDrop::LoopPort), "{port}");
            }
            assert_eq!(replies_to(at(own), own), Err(EchoDrop::OwnPort));
            for port in [1, 6, 8, 12, 14, 18, 20, 36, 38, 53, 65431, 65433, 65535] {
                assert_eq!(replies_to(at(port), own), Ok(()), "{ip} port {port}");
            }
        }
    }
}
