//! The relay's own TCP sockets: listeners with a deep backlog, and the TCP congestion control
//! its connections use when `--tcp-congestion` names one.
//!
//! A congestion control set on a listener is inherited by every connection it accepts, so the
//! clients of every service get it from their listener, and targets get it on their socket
//! before it connects.
//!
//! Target sockets keep TCP urgent data in the stream ([`keep_urgent_inline`]). They also keep
//! at most [`NOTSENT_LOWAT`] bytes that they have not yet sent (Linux's `TCP_NOTSENT_LOWAT`).
//! Without it the kernel lets a socket queue megabytes for a slow target, and the relay's
//! writes finish long before the bytes move, so a bridge would look idle while a slow upload
//! still goes on (its idle watch counts reads and writes). Client sockets do not get it: on
//! them it stalled bulk downloads (a quick `scripts/bench.sh` run at 64 KiB x 8 fell from
//! about 1,000 to 39 MiB/s with the relay's CPU idle, waiting to be told it could write).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`, 4096 by default
/// on Linux). `TcpListener::bind` asks for 128, which a burst of a few hundred connections
/// overflows while the accept loop is busy: the kernel then drops their SYNs or final ACKs, and
/// they wait for retransmissions, 1 s and then doubling, before the relay even sees them.
pub const LISTEN_BACKLOG: u32 = 4096;

/// The most unsent bytes a target socket holds (the kernel still takes a whole write that
/// starts below it). A peer that reads only this much per idle timeout still keeps its
/// bridge open after the relay's last write (32 KiB in 2 s is 16 KiB/s); below it, bytes that
/// move only in the kernel's queue would go unseen.
pub const NOTSENT_LOWAT: u32 = 32 * 1024;

/// Binds a TCP listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it, so that a restarted relay does not wait for `TIME_WAIT`); the
/// connections it accepts use `congestion` when it is set.
pub fn listen(addr: SocketAddr, congestion: Option<&str>) -> io::Result<TcpListener> {
    let socket = socket_for(addr, congestion)?;
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts the next connection on `listener`; `None` once `cancel` fires. The accept loops of
/// every service are built on it (the echo's and the HTTP one's, see [`crate::accept`]): they
/// differ in what they do before an accept and with a connection, not here. A failed accept
/// (out of descriptors, most likely) is tried again after the pause `failed` returns for its
/// error, so the loop backs off instead of spinning.
pub async fn accept(
    listener: &TcpListener,
    cancel: &CancellationToken,
    mut failed: impl FnMut(&io::Error) -> Duration,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let pause = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(e) => failed(&e),
            },
            () = cancel.cancelled() => return None,
        };
        tokio::time::sleep(pause).await;
    }
}

/// Failed accepts (out of descriptors, mostly) come back every pause while the condition lasts:
/// a warning for each would flood the log (about 20 a second). This lets one through every
/// [`FAILED_ACCEPT_WARN_EVERY`], with the number of failures since the last.
#[derive(Debug, Default)]
pub struct FailedAccepts {
    warned: Option<std::time::Instant>,
    since: u64,
}

/// How often a failing accept loop warns.
pub const FAILED_ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

impl FailedAccepts {
    /// Logs the failed accept `e` of `service`: a warning with the count when one is due, else
    /// a debug line.
    pub fn log(&mut self, service: &str, e: &io::Error) {
        match self.failed() {
            Some(count) => tracing::warn!(
                service,
                error = %e,
                count,
                "accept failed (count: failures since the last such warning)"
            ),
            None => tracing::debug!(service, error = %e, "accept failed"),
        }
    }

    /// Counts a failure; `Some(failures since the last warning, this one included)` when it is
    /// time to warn again.
    fn failed(&mut self) -> Option<u64> {
        self.since += 1;
        if self
            .warned
            .is_some_and(|t| t.elapsed() < FAILED_ACCEPT_WARN_EVERY)
        {
            return None;
        }
        self.warned = Some(std::time::Instant::now());
        Some(std::mem::take(&mut self.since))
    }
}

/// Connects to `addr` with `congestion` (when set) from the first packet on, holding at most
/// [`NOTSENT_LOWAT`] unsent bytes, with urgent data kept in the stream (see
/// [`keep_urgent_inline`]).
pub async fn connect(addr: SocketAddr, congestion: Option<&str>) -> io::Result<TcpStream> {
    let socket = socket_for(addr, congestion)?;
    #[cfg(target_os = "linux")]
    socket2::SockRef::from(&socket).set_tcp_notsent_lowat(NOTSENT_LOWAT)?;
    keep_urgent_inline(&socket)?;
    socket.connect(addr).await
}

/// Keeps TCP urgent data (a byte sent with `MSG_OOB`, as telnet's Synch sends its Data Mark)
/// in the stream where it was sent (`SO_OOBINLINE`, which RFC 6093 asks of applications that
/// meet the urgent mechanism). Without it the kernel takes that byte out of the stream, and a
/// bridge would pass on a stream with a byte missing (telnet's `IAC DM` would reach the
/// client as a lone `IAC`, which then swallows the next byte as a command).
pub fn keep_urgent_inline(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    socket2::SockRef::from(socket).set_out_of_band_inline(true)
}

/// The first byte waiting in `socket`'s receive queue, left there; `None` when none is (or
/// the peek fails). Never waits.
#[cfg(target_os = "linux")]
pub fn byte_waiting(socket: &impl std::os::fd::AsFd) -> Option<u8> {
    let mut byte = [0u8; 1];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    match rustix::net::recv(socket, &mut byte[..], flags) {
        Ok((1.., _)) => Some(byte[0]),
        _ => None,
    }
}

/// A TCP socket of `addr`'s family with `congestion` set.
fn socket_for(addr: SocketAddr, congestion: Option<&str>) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(name) = congestion {
        set_congestion(&socket, name)?;
    }
    Ok(socket)
}

#[cfg(target_os = "linux")]
fn set_congestion(socket: &TcpSocket, name: &str) -> io::Result<()> {
    rustix::net::sockopt::set_tcp_congestion(socket, name).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn set_congestion(_socket: &TcpSocket, _name: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "choosing a TCP congestion control is supported on Linux only",
    ))
}

/// The congestion control of a connected or listening socket (Linux).
#[cfg(target_os = "linux")]
pub fn congestion_of(socket: &impl std::os::fd::AsFd) -> io::Result<String> {
    rustix::net::sockopt::tcp_congestion(socket).map_err(io::Error::from)
}

/// Checks at startup that the relay may use the congestion control `name` on sockets of
/// `addr`'s family, so that a typo or a missing permission stops it with a message saying what
/// can be used instead of failing every connection later.
pub fn check_congestion(name: &str, addr: SocketAddr) -> Result<(), String> {
    match socket_for(addr, Some(name)) {
        Ok(_) => Ok(()),
        Err(e) => Err(congestion_error(name, &e)),
    }
}

/// What a failure to set `name` means, with the names that can be set.
fn congestion_error(name: &str, e: &io::Error) -> String {
    let list = |file: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{file}"))
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|_| "unknown".into())
    };
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "no TCP congestion control named {name:?} on this system (available: {}; others may \
             need their kernel module loaded, e.g. `modprobe tcp_{name}`)",
            list("tcp_available_congestion_control")
        ),
        io::ErrorKind::PermissionDenied => format!(
            "TCP congestion control {name:?} needs CAP_NET_ADMIN (without it: {}, the \
             net.ipv4.tcp_allowed_congestion_control sysctl)",
            list("tcp_allowed_congestion_control")
        ),
        _ => format!("cannot use TCP congestion control {name:?}: {e}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failed_accepts_warn_once_per_period_with_the_count_since() {
        let mut failures = FailedAccepts::default();
        assert_eq!(failures.failed(), Some(1));
        for _ in 0..50 {
            assert_eq!(failures.failed(), None);
        }
        // As if the period had passed (the clock's start is far enough back on any machine
        // that has run this long; if not, the test has nothing more to check).
        let Some(then) = std::time::Instant::now().checked_sub(FAILED_ACCEPT_WARN_EVERY) else {
            return;
        };
        failures.warned = Some(then);
        assert_eq!(failures.failed(), Some(51));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn target_sockets_hold_little_unsent_data_and_client_sockets_keep_the_default() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let connected = connect(addr, None).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let plain = TcpStream::connect(addr).await.unwrap();
        let lowat = |s: &TcpStream| socket2::SockRef::from(s).tcp_notsent_lowat().unwrap();
        assert_eq!(lowat(&connected), NOTSENT_LOWAT);
        // Accepted (client) sockets and sockets made elsewhere keep the system's default (no
        // limit, or a sysctl's).
        assert_eq!(lowat(&accepted), lowat(&plain));
        assert_ne!(lowat(&accepted), NOTSENT_LOWAT);
    }

    /// A burst of clients larger than `TcpListener::bind`'s backlog of 128 all get connected
    /// while nobody accepts; then every one of them is accepted. With a backlog of 128 the
    /// 130th `connect` waits for SYN retransmissions that never succeed, and this times out.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog_not_in_retransmissions() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 200.min(somaxconn);
        let listener = listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..burst).map(|_| TcpStream::connect(addr));
        let clients = tokio::time::timeout(
            Duration::from_secs(20),
            futures_util::future::try_join_all(connects),
        )
        .await
        .expect("connections beyond the backlog were dropped")
        .unwrap();
        for _ in 0..burst {
            tokio::time::timeout(Duration::from_secs(20), listener.accept())
                .await
                .expect("a connected client was never accepted")
                .unwrap();
        }
        assert_eq!(clients.len(), burst);
    }

    /// The two built-in algorithms that are not the usual default, so that the test sees a
    /// change whatever the system's default is (reno is always built in; cubic nearly always).
    #[cfg(target_os = "linux")]
    fn other_than_default() -> String {
        let default = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap_or_default();
        if default.trim() == "reno" {
            "cubic"
        } else {
            "reno"
        }
        .to_owned()
    }

    /// Both ends a relay makes, accepted and connected, carry the congestion control asked for;
    /// without one they keep the system's default.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn accepted_and_connected_sockets_use_the_congestion_control_asked_for() {
        let default = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap()
            .trim()
            .to_owned();
        let name = other_than_default();
        assert_eq!(
            check_congestion(&name, "127.0.0.1:0".parse().unwrap()),
            Ok(())
        );
        let listener = listen("127.0.0.1:0".parse().unwrap(), Some(&name)).unwrap();
        let addr = listener.local_addr().unwrap();
        let plain = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert_eq!(congestion_of(&accepted).unwrap(), name);
        assert_eq!(congestion_of(&plain).unwrap(), default);

        let other = listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let connected = connect(other.local_addr().unwrap(), Some(&name))
            .await
            .unwrap();
        let (far, _) = other.accept().await.unwrap();
        assert_eq!(congestion_of(&connected).unwrap(), name);
        assert_eq!(congestion_of(&far).unwrap(), default);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unknown_congestion_control_is_refused_with_what_exists() {
        let message = check_congestion("nosuchcc", "127.0.0.1:0".parse().unwrap()).unwrap_err();
        assert!(
            message.contains("no TCP congestion control named \"nosuchcc\"")
                && message.contains("available: ")
                && message.contains("reno"),
            "{message}"
        );
        let stream_error = listen("127.0.0.1:0".parse().unwrap(), Some("nosuchcc")).unwrap_err();
        assert_eq!(stream_error.kind(), io::ErrorKind::NotFound);
    }
}
