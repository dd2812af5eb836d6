//! The floor for a bridge: the smallest reasonable tokio TCP forwarder, with no WebSocket framing,
//! no policy and no bookkeeping. `bare-proxy LISTEN TARGET` prints `listening on ADDR` once
//! bound, then forwards every connection to TARGET, bytes both ways, until killed.
//!
//! A WebSocket bridge does everything this does (per message: a read and a write on each of its
//! two sockets) plus the framing, so this binary's throughput is the practical limit for a bridge
//! on the same machine, as bare-echo's is for an echo: the benchmark measures it to show how much
//! of a bridge's cost is the kernel's.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::net::TcpStream;

/// Buffer per direction: as large as a socket's typical receive queue (as in bare-echo).
const BUF: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare-proxy LISTEN_HOST:PORT TARGET_HOST:PORT";
    let listen: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let target: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    sockrelay_bench::serve("bare-proxy", listen, move |client| forward(client, target)).await
}

async fn forward(mut client: TcpStream, target: SocketAddr) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(target).await?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, BUF, BUF).await?;
    Ok(())
}
