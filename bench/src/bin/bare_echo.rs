//! The reference: the smallest reasonable tokio TCP echo server, the practical limit of an echo
//! on this machine. `bare-echo [--splice] [ADDR]` (default 127.0.0.1:0) prints
//! `listening on ADDR` once bound, then echoes every byte of every connection until killed.
//!
//! `--splice` (Linux) echoes bulk data through a pipe with `splice(2)`, so that those bytes never
//! enter user space (small reads are echoed as usual: they cost less that way).
//! The benchmark uses it as the target the bridges connect to, because that target shares its
//! CPU with the load generator: the cheaper it is, the later that CPU, rather than the bridge
//! measured, runs out (BENCHMARKS.md). As the reference echo it stays a plain read and write.
//!
//! `--udp` echoes UDP datagrams instead: each one back to its sender, as it came. It is the
//! target of the UDP bridges the benchmark measures, on the CPU it shares with the load
//! generator: a plain blocking loop (no event loop to pay for) with a receive buffer large
//! enough for every datagram the load generator keeps in flight, which on Linux batches as a
//! modern UDP server does: every datagram waiting comes in with one `recvmmsg`, with UDP_GRO a
//! segmented send comes in whole and goes back whole, datagrams of one size in a row from one
//! sender go back with one segmented send, and the rest with one `sendmmsg`. The bridges
//! measured get the same echo; the cheaper it is, the later the load side runs out.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read size: as large as a socket's typical receive queue, so bulk data moves in few syscalls.
const BUF: usize = 64 * 1024;

fn main() -> Result<()> {
    let usage = "usage: bare-echo [--splice | --udp] [HOST:PORT]";
    let mut splice = false;
    let mut udp = false;
    let mut addr: SocketAddr = "127.0.0.1:0".parse()?;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--splice" => splice = true,
            "--udp" => udp = true,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(());
            }
            other => addr = other.parse().context(usage)?,
        }
    }
    if udp {
        return udp_echo(addr);
    }
    tokio::runtime::Runtime::new()?.block_on(async move {
        if splice {
            #[cfg(target_os = "linux")]
            return sockrelay_bench::serve("bare-echo", addr, spliced::echo).await;
            #[cfg(not(target_os = "linux"))]
            anyhow::bail!("--splice needs Linux");
        }
        sockrelay_bench::serve("bare-echo", addr, echo).await
    })
}

/// The receive buffer asked for: 50 bridges x 16 datagrams of 1,400 B in flight take about
/// 2 MiB of socket memory (a datagram is charged its buffer's true size, not its payload).
/// The kernel caps it at `net.core.rmem_max`.
const UDP_RCVBUF: usize = 4 << 20;

/// Echoes every datagram to its sender until killed.
fn udp_echo(addr: SocketAddr) -> Result<()> {
    let socket = std::net::UdpSocket::bind(addr).with_context(|| format!("bind udp {addr}"))?;
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, UDP_RCVBUF) {
        eprintln!("bare-echo: SO_RCVBUF: {e} (keeping the default)");
    }
    println!("listening on udp {}", socket.local_addr()?);
    #[cfg(target_os = "linux")]
    batched::echo(&socket);
    #[cfg(not(target_os = "linux"))]
    let mut buf = vec![0u8; 65_536];
    #[cfg(not(target_os = "linux"))]
    loop {
        // A failed receive or send costs that datagram only: UDP's own loss, which the load
        // generator counts. (An unconnected socket gets no ICMP errors from Linux.)
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let _ = socket.send_to(&buf[..n], from);
    }
}

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}

#[cfg(target_os = "linux")]
mod spliced {
    use std::io;

    use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
    use tokio::net::TcpStream;

    /// What one splice moves at most; the pipe is twice as large (pages may be partly filled).
    const CHUNK: usize = 256 * 1024;

    /// Reads at least this large are followed by spliced ones; smaller ones cost less copied
    /// (a splice round trip takes more syscalls than a read and a write).
    const SPLICE_MIN: usize = 16 * 1024;

    /// Echoes small reads as `echo` does, and bulk data through a pipe.
    pub async fn echo(mut stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        // Made for the first bulk read: idle connections (thousands in the memory run) hold
        // no pipe descriptors.
        let mut pipe = None;
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        let mut buf = vec![0u8; super::BUF];
        let mut last = 0;
        loop {
            let n = if last < SPLICE_MIN {
                let n = stream.read(&mut buf).await?;
                stream.write_all(&buf[..n]).await?;
                n
            } else {
                let (pipe_read, pipe_write) = match &pipe {
                    Some(p) => p,
                    None => {
                        let (r, w) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
                        let _ = rustix::pipe::fcntl_setpipe_size(&w, 2 * CHUNK);
                        pipe.insert((r, w))
                    }
                };
                stream.readable().await?;
                let n = match stream.try_io(Interest::READABLE, || {
                    splice(&stream, None, pipe_write, None, CHUNK, flags).map_err(io::Error::from)
                }) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                let mut left = n;
                while left > 0 {
                    stream.writable().await?;
                    match stream.try_io(Interest::WRITABLE, || {
                        splice(pipe_read, None, &stream, None, left, flags).map_err(io::Error::from)
                    }) {
                        Ok(m) => left -= m,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                n
            };
            if n == 0 {
                return stream.shutdown().await;
            }
            last = n;
        }
    }
}

/// The UDP echo's loop on Linux: each system call carries a batch of datagrams.
#[cfg(target_os = "linux")]
mod batched {
    use nix::sys::socket::{recvmmsg, sendmsg, setsockopt, sockopt, MultiHeaders};
    use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage};
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    use std::io::{IoSlice, IoSliceMut};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// The most datagrams one call receives or sends (and the kernel's fewest
    /// `UDP_MAX_SEGMENTS`).
    const BATCH: usize = 64;

    /// The most bytes one segmented send carries: one IPv4 datagram's payload.
    const GSO_BYTES: usize = 65_507;

    /// One received message: its size, its sender, and its segment size when it came in whole
    /// (several datagrams of that size, the last perhaps shorter).
    type Got = (usize, SocketAddr, Option<u16>);

    /// Echoes every datagram to its sender until killed. Datagrams of one size in a row from
    /// one sender go back with one segmented send (UDP_SEGMENT), as a sender that batches
    /// would get them from a server that does; the others with one `sendmmsg`. With UDP_GRO
    /// on, a segmented send comes in whole, with its segment size, and goes back whole with
    /// the same, as a modern UDP server (QUIC's) takes and answers them. A failed receive or
    /// send costs those datagrams only: UDP's own loss, which the load generator counts.
    pub fn echo(socket: &UdpSocket) -> ! {
        let fd = socket.as_raw_fd();
        let gro = setsockopt(socket, sockopt::UdpGroSegment, &true).is_ok();
        let mut bufs = vec![vec![0u8; 65_536]; BATCH];
        let mut got: Vec<Got> = Vec::with_capacity(BATCH);
        let mut gso = true;
        loop {
            got.clear();
            {
                // Made anew for each call: the kernel shortens each header's control and
                // address lengths to what it wrote, and recvmmsg does not set them back.
                let control = gro.then(|| nix::cmsg_space!(i32));
                let mut received = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, control);
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                    bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                // Blocks for the first datagram, then takes those already waiting.
                let flags = MsgFlags::MSG_WAITFORONE;
                let Ok(msgs) = recvmmsg(fd, &mut received, iovs.iter_mut(), flags, None) else {
                    continue;
                };
                for m in msgs {
                    let Some(from) = m.address.and_then(|a| socket_addr(&a)) else {
                        continue;
                    };
                    let segment = m.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::UdpGroSegments(n) => u16::try_from(n).ok(),
                            _ => None,
                        })
                    });
                    got.push((m.bytes, from, segment.filter(|&n| usize::from(n) < m.bytes)));
                }
            }
            let mut start = 0;
            let mut singles = 0..0;
            while start < got.len() {
                let (size, to, segment) = got[start];
                // A message that came in whole, or a run of one size from one sender.
                let (end, segment) = match segment {
                    Some(segment) => (start + 1, segment),
                    None => {
                        let mut end = start + 1;
                        while gso
                            && end < got.len()
                            && got[end] == (size, to, None)
                            && (end + 1 - start) * size <= GSO_BYTES
                        {
                            end += 1;
                        }
                        if end - start < 2 || size == 0 {
                            singles = singles.start..start + 1;
                            start += 1;
                            continue;
                        }
                        (end, size as u16)
                    }
                };
                send_each(socket, &bufs, &got, singles);
                singles = end..end;
                let iov: Vec<IoSlice<'_>> = (start..end)
                    .map(|i| IoSlice::new(&bufs[i][..got[i].0]))
                    .collect();
                let control = [ControlMessage::UdpGsoSegments(&segment)];
                let to_nix = SockaddrStorage::from(to);
                if let Err(e) = sendmsg(fd, &iov, &control, MsgFlags::empty(), Some(&to_nix)) {
                    use nix::errno::Errno;
                    if matches!(e, Errno::EIO | Errno::EINVAL | Errno::EMSGSIZE) && end - start > 1
                    {
                        // No segmentation here: these go one by one, and all later ones.
                        gso = false;
                        send_each(socket, &bufs, &got, start..end);
                    }
                }
                start = end;
            }
            send_each(socket, &bufs, &got, singles);
        }
    }

    /// The sender's address as the standard library's.
    fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(SocketAddr::V4((*v4).into()));
        }
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }

    /// Sends messages `range` of `got` (their bytes in `bufs`) back to their senders with
    /// `sendmmsg`.
    fn send_each(socket: &UdpSocket, bufs: &[Vec<u8>], got: &[Got], range: std::ops::Range<usize>) {
        let iovs: Vec<[IoSlice<'_>; 1]> = range
            .clone()
            .map(|i| [IoSlice::new(&bufs[i][..got[i].0])])
            .collect();
        let addrs: Vec<SocketAddrAny> = range.map(|i| got[i].1.into()).collect();
        let mut done = 0;
        while done < iovs.len() {
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs[done..]
                .iter()
                .map(|_| SendAncillaryBuffer::default())
                .collect();
            let mut msgs: Vec<MMsgHdr<'_>> = iovs[done..]
                .iter()
                .zip(&addrs[done..])
                .zip(controls.iter_mut())
                .map(|((iov, addr), control)| MMsgHdr::new_with_addr(addr, iov, control))
                .collect();
            match sendmmsg(socket, &mut msgs, SendFlags::empty()) {
                Ok(sent) => done += sent.max(1),
                Err(_) => done += 1,
            }
        }
    }
}
