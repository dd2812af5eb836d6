//! `sockrelay client HOST:PORT`: the tutorial's client, made interactive. Each line typed (or
//! piped) is sent with its newline; whatever the server sends back is printed. At the end of
//! input the write side is shut down and the remaining replies are printed until the server
//! closes.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long to wait for the server to close after our input ended.
const LINGER: Duration = Duration::from_secs(5);

/// Why the client stopped, told apart where `main` gives each its own exit status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target is not `HOST:PORT` (no port, a port out of range): the user's to fix.
    #[error("invalid target {target:?}: {source}")]
    Target {
        target: String,
        source: std::io::Error,
    },
    /// Printing what the server sent failed; a broken pipe means the reader went away.
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// Anything else: resolving, connecting, sending, receiving.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Says something to the person at the terminal. Nothing is left to tell them if stderr is
/// closed, so a failed write is dropped (`eprintln!` would panic).
fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// The prompt goes to stderr so that stdout carries only what the server sent.
fn prompt() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "> ");
    let _ = err.flush();
}

/// Whether to end a reply (one read's bytes) with a newline: on a terminal, a reply without
/// one would run into the next reply (the acknowledge server's end in `.`) or the shell's
/// prompt; through a pipe or into a file the bytes stay exactly the server's.
fn needs_newline(reply: &[u8], stdout_is_terminal: bool) -> bool {
    stdout_is_terminal && !reply.ends_with(b"\n")
}

/// Runs the client; returns when the server closes or input ends and replies are drained.
pub async fn run(target: &str) -> Result<(), ClientError> {
    let addrs: Vec<_> = match tokio::net::lookup_host(target).await {
        Ok(addrs) => addrs.collect(),
        // std's parser says InvalidInput for a missing or bad port, before any lookup.
        Err(source) if source.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(ClientError::Target {
                target: target.to_owned(),
                source,
            })
        }
        Err(e) => return Err(anyhow::Error::new(e).context(cannot_connect(target)).into()),
    };
    let stream = TcpStream::connect(&addrs[..])
        .await
        .with_context(|| cannot_connect(target))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let terminal = std::io::stdout().is_terminal();
    let interactive = std::io::stdin().is_terminal() && terminal;
    if interactive {
        let peer = stream.peer_addr().context("reading the peer address")?;
        note(&format!(
            "Connected to {peer}. Type a line and press Enter to send it; Ctrl-D quits."
        ));
        prompt();
    }
    let (mut reader, mut writer) = stream.into_split();

    let print_replies = async {
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = reader.read(&mut buf).await.context("receiving failed")?;
            if n == 0 {
                return Ok::<(), ClientError>(());
            }
            let reply = &buf[..n];
            let newline: &[u8] = if needs_newline(reply, terminal) {
                b"\n"
            } else {
                b""
            };
            async {
                stdout.write_all(reply).await?;
                stdout.write_all(newline).await?;
                stdout.flush().await
            }
            .await
            .map_err(ClientError::Stdout)?;
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
                Ok(r) => r?,
                Err(_) => {
                    if interactive {
                        note("(server did not close the connection; quitting)");
                    }
                }
            }
        }
        received = &mut print_replies => {
            received?;
            if interactive {
                note("(server closed the connection)");
            }
        }
    }
    Ok(())
}

fn cannot_connect(target: &str) -> String {
    format!("cannot connect to {target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gets_a_newline_only_on_a_terminal_and_only_if_it_lacks_one() {
        let ack = b"server received you message.";
        assert!(needs_newline(ack, true));
        assert!(!needs_newline(ack, false));
        assert!(!needs_newline(b"Hello, world\n", true));
        assert!(!needs_newline(b"Hello, world\r\n", true));
        assert!(!needs_newline(b"Hello, world\n", false));
    }
}
