//! The target end of a bridge: where an admitted bridge goes ([`Dest`]), the kinds of target it
//! connects to ([`Dial`]) and the connection it then moves bytes through ([`Target`]).
//!
//! A stream-shaped kind (TCP, a Unix stream socket) is a `Dial` whose connection is a
//! `Target`, and runs on the stream pumps unchanged. UDP is message-shaped: its connection is a
//! connected [`UdpSocket`], moved by the datagram pumps of [`super::datagram`].

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UdpSocket, UnixStream};

use crate::config::Settings;

/// How long connecting to a target may take before the bridge gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where an admitted bridge goes: one of the kinds of target, with its canonical name.
#[derive(Debug, Clone)]
pub enum Dest {
    Tcp(TcpAddr),
    Udp(UdpAddr),
    Unix(UnixAddr),
}

impl Dest {
    /// The target as the log line and `/api/check` name it (the allow-list's canonical form).
    pub fn name(&self) -> &str {
        match self {
            Dest::Tcp(t) => &t.name,
            Dest::Udp(u) => &u.name,
            Dest::Unix(u) => &u.name,
        }
    }
}

/// An admitted target, not yet connected: what the bridge dials once the client has its 101.
pub trait Dial: Send + 'static {
    /// The connection this kind of target gives.
    type Target: Target + Send;
    /// The target as the log line names it (the allow-list's canonical form).
    fn name(&self) -> &str;
    /// Connects, bounded in time.
    fn dial(&self, settings: &Settings) -> impl Future<Output = io::Result<Self::Target>> + Send;
    /// Where a connection went: a TCP target's peer address and the relay's own end of it;
    /// `None` where there is none to tell apart (a Unix socket is the path it was dialed by).
    fn reached(target: &Self::Target) -> io::Result<Option<(SocketAddr, SocketAddr)>>;
}

/// A TCP target: the addresses an allowed `HOST:PORT` (or a built-in) resolved to, in order.
#[derive(Debug, Clone)]
pub struct TcpAddr {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
}

impl Dial for TcpAddr {
    type Target = TcpStream;

    fn name(&self) -> &str {
        &self.name
    }

    /// Connects to the first address that answers, with the relay's congestion control.
    async fn dial(&self, settings: &Settings) -> io::Result<TcpStream> {
        let congestion = settings.tcp_congestion.as_deref();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for &addr in &self.addrs {
            let connecting = crate::tcp::connect(addr, congestion);
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(stream)) => {
                    // Bridged traffic is often small interactive messages.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            }
        }
        Err(last)
    }

    fn reached(target: &TcpStream) -> io::Result<Option<(SocketAddr, SocketAddr)>> {
        Ok(Some((target.peer_addr()?, target.local_addr()?)))
    }
}

/// A UDP target: the addresses an allowed `udp:HOST:PORT` (or the built-in UDP echo) resolved
/// to, in order.
#[derive(Debug, Clone)]
pub struct UdpAddr {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    /// The entry spelled its address out, so it may be a broadcast address (`SO_BROADCAST` is
    /// set). Without it the kernel refuses to send to a broadcast address.
    pub broadcast: bool,
}

impl UdpAddr {
    /// A UDP socket on an ephemeral port, connected to the first address that takes it:
    /// connected, so that only the target's datagrams come back, and ICMP errors about it are
    /// reported on the socket.
    pub async fn dial(&self) -> io::Result<UdpSocket> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for &addr in &self.addrs {
            let local = if addr.is_ipv4() {
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
            } else {
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
            };
            let socket = match UdpSocket::bind(local).await {
                Ok(socket) => socket,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if self.broadcast {
                socket.set_broadcast(true)?;
            }
            match socket.connect(addr).await {
                Ok(()) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// A Unix stream socket target: an allowed `unix:/path`.
#[derive(Debug, Clone)]
pub struct UnixAddr {
    pub name: String,
    pub path: PathBuf,
}

impl Dial for UnixAddr {
    type Target = UnixStream;

    fn name(&self) -> &str {
        &self.name
    }

    async fn dial(&self, _: &Settings) -> io::Result<UnixStream> {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.path)).await {
                Ok(connected) => connected?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            };
        // Unix stream sockets have urgent data too (Linux 5.15 on): kept in the stream, as
        // for TCP targets. A kernel without it refuses nothing here (the option is generic).
        crate::tcp::keep_urgent_inline(&stream)?;
        Ok(stream)
    }

    fn reached(_: &UnixStream) -> io::Result<Option<(SocketAddr, SocketAddr)>> {
        Ok(None)
    }
}

/// The target end of a bridge, split in two halves that work at the same time.
pub trait Target {
    type Read: AsyncRead + Unpin + Send;
    type Write: AsyncWrite + Unpin + Send;
    fn into_halves(self) -> (Self::Read, Self::Write);
    /// The TCP socket under the read half, which spliced frames read from; `None` where
    /// there is none.
    fn socket(read: &Self::Read) -> Option<&TcpStream>;
    /// Ends the connection so that the target sees an error, not an end of stream: the client
    /// went away without a Close, and what the target got may be cut short.
    fn abort(read: Self::Read, write: Self::Write);
}

impl Target for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;

    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }

    fn socket(read: &Self::Read) -> Option<&TcpStream> {
        Some(read.as_ref())
    }

    /// A reset (RST) instead of a FIN. The halves are joined first: dropping the write half
    /// alone would send a FIN, which the target would read as a clean end before the reset.
    fn abort(read: Self::Read, write: Self::Write) {
        if let Ok(stream) = read.reunite(write) {
            // Closing with a zero linger time discards what is unsent and sends RST.
            let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
        }
    }
}

impl Target for UnixStream {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;

    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }

    fn socket(_: &Self::Read) -> Option<&TcpStream> {
        None
    }

    /// A Unix socket has no reset: closing it is all there is. The target reads an error
    /// (ECONNRESET) only if it had sent bytes the relay had not read; otherwise it reads the end
    /// of the stream. Dropping the write half alone would shut it down first, so the halves are
    /// joined and closed at once.
    fn abort(read: Self::Read, write: Self::Write) {
        drop(read.reunite(write));
    }
}

/// An in-memory target (tests, embedding): never spliced.
impl Target for tokio::io::DuplexStream {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;

    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }

    fn socket(_: &Self::Read) -> Option<&TcpStream> {
        None
    }

    /// An in-memory pipe has no reset: its far end sees the end of the stream.
    fn abort(_: Self::Read, _: Self::Write) {}
}
