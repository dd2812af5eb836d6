//! The target end of a bridge: the kinds of target it connects to ([`Dial`]) and the connection
//! it then moves bytes through ([`Target`]). TCP is the one kind today; another kind (UDP, a
//! Unix socket) is a `Dial` and a `Target`, and neither the bridge's pumps nor the HTTP side
//! change for it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::Settings;

/// How long connecting to a target may take before the bridge gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An admitted target, not yet connected: what the bridge dials once the client has its 101.
pub trait Dial: Send + 'static {
    /// The connection this kind of target gives.
    type Target: Target + Send;
    /// The target as the log line names it (the allow-list's canonical form).
    fn name(&self) -> &str;
    /// Connects, bounded in time.
    fn dial(&self, settings: &Settings) -> impl Future<Output = io::Result<Self::Target>> + Send;
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
}

/// The target end of a bridge, split in two halves that work at the same time.
pub trait Target {
    type Read: AsyncRead + Unpin;
    type Write: AsyncWrite + Unpin;
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
