//! The reference: the smallest reasonable tokio TCP echo server, the practical limit of an echo
//! on this machine. `bare-echo [ADDR]` (default 127.0.0.1:0) prints `listening on ADDR` once
//! bound, then echoes every byte of every connection until killed.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read size: as large as a socket's typical receive queue, so bulk data moves in few syscalls.
const BUF: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .context("usage: bare-echo [HOST:PORT]")?;
    sockrelay_bench::serve("bare-echo", addr, echo).await
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
