//! The `sockrelay` command: parses flags and hands over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sockrelay::config::{ServeArgs, Settings};
use sockrelay::tools::{self, InetCommand};
use tracing_subscriber::EnvFilter;

/// Echo servers, a safe WebSocket-to-TCP bridge, and socket address tools, with a browser
/// client. With no subcommand, runs `serve` with defaults: open http://127.0.0.1:8080
#[derive(Debug, Parser)]
#[command(name = "sockrelay", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay: web client, /ws bridge, echo (TCP+UDP) and acknowledge servers
    Serve(Box<ServeArgs>),
    /// The tutorial's TCP client: send each input line, print the replies
    Client {
        /// Server to connect to, e.g. 127.0.0.1:65432
        target: String,
    },
    /// inet_aton, inet_ntoa, inet_pton, inet_ntop with Python's semantics
    Inet {
        #[command(subcommand)]
        command: InetCommand,
        /// Print JSON instead of Python-style output
        #[arg(long, global = true)]
        json: bool,
    },
    /// getservbyname / getservbyport from the built-in services table
    Serv {
        /// Service name (e.g. ssh) or port number (e.g. 22)
        #[arg(allow_negative_numbers = true)]
        name_or_port: String,
        /// Protocol: tcp or udp (default: first match)
        #[arg(long)]
        proto: Option<String>,
        /// Print JSON instead of Python-style output
        #[arg(long)]
        json: bool,
    },
    /// gethostname(), or gethostbyname(NAME)
    Host {
        name: Option<String>,
        /// Print JSON instead of Python-style output
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Client { target }) => {
            init_logging();
            match runtime().and_then(|rt| rt.block_on(sockrelay::client::run(&target))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sockrelay client: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Inet { command, json }) => print_tool(tools::inet(&command, json)),
        Some(Command::Serv {
            name_or_port,
            proto,
            json,
        }) => print_tool(tools::serv(&name_or_port, proto.as_deref(), json)),
        Some(Command::Host { name, json }) => print_tool(tools::host(name.as_deref(), json)),
    }
}

fn print_tool(result: Result<String, tools::ToolError>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    init_logging();
    let settings = match Settings::resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sockrelay: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = &settings.tcp_congestion {
        // A name the kernel does not know (or lets only root use) is the user's to fix.
        if let Err(e) = sockrelay::tcp::check_congestion(name, settings.http) {
            eprintln!("sockrelay: invalid setting tcp-congestion: {e}");
            return ExitCode::from(2);
        }
    }
    raise_fd_limit(settings.max_conns);
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let relay = sockrelay::Relay::bind(settings).await?;
            relay.run(sockrelay::shutdown::signal()).await
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("sockrelay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each bridge holds two sockets (and two pipe ends while it splices, for at most
/// `splice::MAX_PIPES` bridges at once), and the default soft limit is often 1024: raise it to
/// the hard limit so `--max-conns` is what limits the relay.
fn raise_fd_limit(max_conns: usize) {
    let pipes = sockrelay::splice::MAX_PIPES.min(max_conns);
    let needed = max_conns
        .saturating_add(pipes)
        .saturating_mul(2)
        .saturating_add(64);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if (limit as usize) < needed => {
            tracing::warn!(
                limit,
                needed,
                max_conns,
                "the open-file limit is below what --max-conns needs (2 per bridge, 2 more per \
                 bridge that splices, for {pipes} at most); raise `ulimit -n`"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
