//! `sockrelay client HOST:PORT`: the tutorial's client, made interactive. Each line typed (or
//! piped) is sent with its newline; whatever the server sends back is printed. At the end of
//! input the write side is shut down and the remaining replies are printed until the server
//! closes.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long to wait for the server to close after our input ended.
const LINGER: Duration = Duration::from_secs(5);

/// The prompt goes to stderr so that stdout carries only what the server sent.
fn prompt() {
    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = write!(err, "> ");
    let _ = err.flush();
}

/// Runs the client; returns when the server closes or input ends and replies are drained.
pub async fn run(target: &str) -> anyhow::Result<()> {
    let stream = TcpStream::connect(target)
        .await
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_nodelay(true)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive {
        eprintln!(
            "Connected to {}. Type a line and press Enter to send it; Ctrl-D quits.",
            stream.peer_addr()?
        );
        prompt();
    }
    let (mut reader, mut writer) = stream.into_split();

    let print_replies = async {
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            stdout.write_all(&buf[..n]).await?;
            if interactive && !buf[..n].ends_with(b"\n") {
                stdout.write_all(b"\n").await?;
            }
            stdout.flush().await?;
            if interactive {
                prompt();
            }
        }
    };

    let send_lines = async {
        let mut lines = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line).await? == 0 {
                break;
            }
            writer.write_all(&line).await?;
        }
        writer.shutdown().await?;
        anyhow::Ok(())
    };

    tokio::pin!(print_replies);
    tokio::select! {
        sent = send_lines => {
            sent.context("sending failed")?;
            // Input is over: print what is still coming, but don't wait forever for a server
            // that keeps the connection open.
            match tokio::time::timeout(LINGER, &mut print_replies).await {
                Ok(r) => r.context("receiving failed")?,
                Err(_) => {
                    if interactive {
                        eprintln!("(server did not close the connection; quitting)");
                    }
                }
            }
        }
        received = &mut print_replies => {
            received.context("receiving failed")?;
            if interactive {
                eprintln!("(server closed the connection)");
            }
        }
    }
    Ok(())
}
