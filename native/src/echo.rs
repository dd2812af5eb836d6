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

use crate::metrics::{Metrics, Proto};
use crate::readsize::ReadSize;

/// Largest UDP payload (IPv6 jumbograms aside); larger datagrams cannot arrive.
const MAX_DATAGRAM: usize = 65_535;

/// Source ports never answered over UDP: echo (7) and chargen (19) would answer back forever.
const LOOP_PORTS: [u16; 2] = [7, 19];

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
            warn!(service = service.name(), error = %e, "accept failed");
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

/// Echoes each datagram to its sender until cancelled.
pub async fn serve_udp(socket: UdpSocket, metrics: Arc<Metrics>, cancel: CancellationToken) {
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
        if !replies_to(from) {
            debug!(%from, "not echoing to a service port");
            continue;
        }
        match socket.send_to(&buf[..n], from).await {
            Ok(_) => metrics.echoed(Proto::Udp, n),
            Err(e) => debug!(%from, error = %e, "udp send failed"),
        }
    }
}

/// Whether a datagram from `from` gets its echo: not when it comes from a port whose service
/// answers every datagram (echo, chargen: two such servers would bounce packets forever, and
/// a forged source address can set that up), nor from port 0, which cannot be sent to.
fn replies_to(from: SocketAddr) -> bool {
    from.port() != 0 && !LOOP_PORTS.contains(&from.port())
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
    fn udp_echo_never_answers_looping_services_or_port_zero() {
        for ip in ["127.0.0.1", "::1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            for port in [0, 7, 19] {
                assert!(!replies_to(SocketAddr::new(ip, port)), "{ip} port {port}");
            }
            for port in [1, 6, 8, 18, 20, 53, 65432, 65535] {
                assert!(replies_to(SocketAddr::new(ip, port)), "{ip} port {port}");
            }
        }
    }
}
