//! The `sockrelay` command: parses flags and hands over to the library.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::task::Poll;

use clap::{Parser, Subcommand};
use sockrelay::config::{ServeArgs, Settings};
use sockrelay::tools::{self, InetCommand};
use sockrelay::websockify::{self, Extras, WebsockifyArgs};
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
    /// websockify's command line on sockrelay's engine: a drop-in for noVNC deployments
    /// (options it cannot honour are refused by name)
    #[command(
        override_usage = "sockrelay websockify [OPTIONS] [HOST:]PORT [TARGET_HOST:TARGET_PORT]"
    )]
    Websockify(Box<WebsockifyArgs>),
    /// gethostname(), or gethostbyname(NAME)
    Host {
        name: Option<String>,
        /// Print JSON instead of Python-style output
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    sockrelay_alloc::return_empty_pages_at_once();
    match run(Cli::parse_from(arguments())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => fatal.report(),
    }
}

/// The command line, with `websockify` first when the binary runs under that name: a link
/// `websockify -> sockrelay` stands in for websockify where scripts run it by name (noVNC's
/// `novnc_proxy`, a service unit).
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_websockify = args
        .first()
        .and_then(|program| std::path::Path::new(program).file_name())
        .is_some_and(|name| name == "websockify");
    if called_websockify {
        args.splice(0..1, ["sockrelay".into(), "websockify".into()]);
    }
    args
}

fn run(cli: Cli) -> Result<(), Fatal> {
    match cli.command {
        None => serve(&cli.serve, Extras::default()),
        Some(Command::Serve(args)) => serve(&args, Extras::default()),
        Some(Command::Websockify(args)) => {
            let (mut serve_args, extras) = args
                .to_serve()
                .map_err(|e| Fatal::Usage(format!("sockrelay websockify: {e}")))?;
            // SOCKRELAY_TOKEN guards this mode too: a service whose command changes from
            // `serve` to `websockify` must not lose its token without a word.
            if serve_args.token.is_none() {
                serve_args.token.clone_from(&cli.serve.token);
            }
            serve(&serve_args, extras)
        }
        Some(Command::Client { target }) => client(&target),
        Some(Command::Inet { command, json }) => print_line(&tools::inet(&command, json)?),
        Some(Command::Serv {
            name_or_port,
            proto,
            json,
        }) => print_line(&tools::serv(&name_or_port, proto.as_deref(), json)?),
        Some(Command::Host { name, json }) => print_line(&tools::host(name.as_deref(), json)?),
    }
}

/// Why a command stopped early. [`Fatal::report`] is the one place that prints a fatal error
/// and chooses the exit status; clap prints its own usage errors (status 2, as `Usage`).
#[derive(Debug)]
enum Fatal {
    /// Bad input, flag value, setting or config file: status 2.
    Usage(String),
    /// A failure while running (a port in use, a refused connection, a full disk): status 1.
    Runtime(String),
    /// Whoever read stdout went away (`| head`): status 0 and nothing printed, as ripgrep does.
    /// Rust ignores SIGPIPE, so the write fails with EPIPE instead of ending the process.
    BrokenPipe,
}

impl Fatal {
    /// A failed write to stdout.
    fn stdout(command: &str, error: std::io::Error) -> Fatal {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Fatal::BrokenPipe
        } else {
            Fatal::Runtime(format!("{command}: cannot write to stdout: {error}"))
        }
    }

    fn report(self) -> ExitCode {
        let (status, message) = match self {
            Fatal::Usage(message) => (2, message),
            Fatal::Runtime(message) => (1, message),
            Fatal::BrokenPipe => return ExitCode::SUCCESS,
        };
        // Nothing is left to tell if stderr is closed too; `eprintln!` would panic.
        let _ = writeln!(std::io::stderr().lock(), "{message}");
        ExitCode::from(status)
    }
}

impl From<tools::ToolError> for Fatal {
    /// Printed alone, as Python prints the exception: `OSError: ...`.
    fn from(error: tools::ToolError) -> Fatal {
        Fatal::Usage(error.to_string())
    }
}

/// Writes `text` and a newline to stdout and flushes, so that a failed write comes back as an
/// error here instead of a panic in `println!`.
fn print_line(text: &str) -> Result<(), Fatal> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Fatal::stdout("sockrelay", e))
}

fn client(target: &str) -> Result<(), Fatal> {
    use sockrelay::client::ClientError;
    init_logging();
    let rt = runtime().map_err(|e| Fatal::Runtime(format!("sockrelay client: {e:#}")))?;
    let result = rt.block_on(sockrelay::client::run(target));
    // Stdin is read on a blocking thread that no one can interrupt: waiting for it (as
    // dropping the runtime does) would keep a client whose server has closed until the next
    // Enter.
    rt.shutdown_background();
    match result {
        Ok(()) => Ok(()),
        Err(ClientError::Stdout(e)) => Err(Fatal::stdout("sockrelay client", e)),
        Err(e @ ClientError::Target { .. }) => Err(Fatal::Usage(format!("sockrelay client: {e}"))),
        Err(e) => Err(Fatal::Runtime(format!("sockrelay client: {e:#}"))),
    }
}

fn serve(args: &ServeArgs, extras: Extras) -> Result<(), Fatal> {
    let log_file = match &extras.log_file {
        None => None,
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    Fatal::Usage(format!(
                        "sockrelay: cannot open the log file {}: {e}",
                        path.display()
                    ))
                })?,
        ),
    };
    init_logging_to(if extras.verbose { "debug" } else { "info" }, log_file);
    let settings = Settings::resolve(args).map_err(|e| Fatal::Usage(format!("sockrelay: {e}")))?;
    if let Some(name) = &settings.tcp_congestion {
        // A name the kernel does not know (or lets only root use) is the user's to fix.
        sockrelay::tcp::check_congestion(name, settings.http)
            .map_err(|e| Fatal::Usage(format!("sockrelay: invalid setting tcp-congestion: {e}")))?;
    }
    raise_fd_limit(settings.max_conns);
    runtime()
        .and_then(|rt| {
            rt.block_on(async {
                let relay = sockrelay::Relay::bind(settings).await?;
                let stop = listening(sockrelay::shutdown::signal()).await;
                // websockify's --idle-timeout, --timeout and --run-once end the relay too.
                let (metrics, listener) = (relay.metrics(), relay.listener_stop());
                let idle_metrics = metrics.clone();
                let idle = async {
                    match extras.exit_when_idle {
                        Some(after) => websockify::exit_when_idle(idle_metrics, after).await,
                        None => std::future::pending().await,
                    }
                };
                let done = websockify::exit_when_done(
                    metrics,
                    listener,
                    extras.stop_after,
                    extras.run_once,
                );
                relay
                    .run(async {
                        tokio::select! { () = stop => {}, () = idle => {}, () = done => {} }
                    })
                    .await
            })
        })
        .map_err(|e| Fatal::Runtime(format!("sockrelay: {e:#}")))
}

/// `stop`, polled once: tokio installs a signal's handler when its future is first polled,
/// and `Relay::run` logs the relay's URL before it polls `stop`. Until then a Ctrl-C (or a
/// script that sends SIGINT as soon as it reads the URL) killed the relay instead of stopping
/// it, without closing its bridges.
async fn listening(stop: impl Future<Output = ()>) -> impl Future<Output = ()> {
    let mut stop = Box::pin(stop);
    let done = std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx).is_ready())).await;
    async move {
        if !done {
            stop.await;
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
    match sockrelay::accept::raise_open_file_limit() {
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

/// Threads for blocking work: file reads of `--web` downloads (tokio's files read on them),
/// name lookups, token files. tokio allows 512 by default, and a burst of downloads then grew
/// one thread per download (its stack and allocator arena stay resident: 500 downloads that
/// their clients did not read held 130 MB, with 162 threads). More than this many wait their
/// turn; each read is a few KiB from the page cache.
const MAX_BLOCKING_THREADS: usize = 16;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()?)
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level. A line that cannot be
/// written (stderr closed, as in `sockrelay 2>&1 | head`) is dropped: by default the
/// subscriber reports it with `eprintln!`, which panics on the same closed stderr and took the
/// relay down.
fn init_logging() {
    init_logging_at("info");
}

/// [`init_logging`] at `level` unless `RUST_LOG` says otherwise.
fn init_logging_at(level: &str) {
    init_logging_to(level, None);
}

/// [`init_logging_at`], and to `file` as well when there is one (websockify's `--log-file`).
fn init_logging_to(level: &str, file: Option<std::fs::File>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false);
    let file = file.map(|file| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .log_internal_errors(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .init();
}

/// Each size class in pages of its own, given back to the system as soon as they empty (see
/// `sockrelay_alloc`): an idle bridge gives back its codec's buffers (`bridge::park`), and the
/// relay's resident memory follows.
#[global_allocator]
static GLOBAL: sockrelay_alloc::MiMalloc = sockrelay_alloc::MiMalloc;
