//! A verifying echo load generator.
//!
//! `loadgen tcp HOST:PORT` and `loadgen ws URL` open `--conns` connections, keep `--inflight`
//! messages of `--size` bytes outstanding on each, check every echoed byte against what was sent
//! (in order, nothing lost, nothing extra), and report messages/s, MiB/s and latency percentiles
//! (HDR histogram) over `--duration` seconds after `--warmup`. Frame boundaries on the way back do
//! not matter: a bridge may split or join the echo, only the bytes count.
//!
//! `loadgen udp URL` loads a WebSocket bridge to a UDP echo: each message is one datagram, and
//! carries its sequence number, so its echo is matched and checked on its own. Datagrams may be
//! lost: one whose echo has not come back within `--loss-timeout` is counted lost and frees its
//! slot in the window, so a loss costs the run that slot for a while, never the run itself.
//!
//! `loadgen idle URL --conns N --pid PID` opens N bridges, sends one message through each, holds
//! them all open and reports the server's RSS per bridge.
//!
//! Every run prints one line for people and, with `--json FILE`, appends one JSON record for
//! `bench-report`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use sockrelay_bench::datagrams::{self, Ledger, SEQ};
use sockrelay_bench::{
    cpu_busy_ticks, parse_size, pattern, rss_kib, tree_cpu_ticks, ws, Record, Verifier, SHIFTS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Verifying echo load generator for TCP echo servers and WebSocket bridges to TCP \
             and UDP echoes"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// Runtime worker threads (default: the CPUs this process may run on; 1 = current-thread).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Load a TCP echo server directly, e.g. `loadgen tcp 127.0.0.1:65432`.
    Tcp {
        addr: String,
        #[command(flatten)]
        load: Load,
    },
    /// Load a WebSocket bridge to an echo server, e.g. `loadgen ws ws://127.0.0.1:8080/ws`.
    Ws {
        url: String,
        #[command(flatten)]
        load: Load,
    },
    /// Load a WebSocket bridge to a UDP echo, one message per datagram, e.g.
    /// `loadgen udp ws://127.0.0.1:8080/ws?target=udp:127.0.0.1:7`. Messages are at least 8
    /// bytes (a sequence number, then the pattern); lost datagrams are counted, not waited for.
    Udp {
        url: String,
        #[command(flatten)]
        load: Load,
        /// Milliseconds after which a datagram whose echo has not come back counts as lost.
        #[arg(long, default_value_t = 1000)]
        loss_timeout: u64,
    },
    /// Open many bridges, send one message through each, hold them, report the server's RSS.
    /// Bridges go to the URLs in turn (several targets: the relay's connections to one target
    /// address share one range of ephemeral ports).
    Idle {
        #[arg(required = true)]
        urls: Vec<String>,
        /// Bridges to open.
        #[arg(short = 'c', long, default_value_t = 10_000)]
        conns: usize,
        /// Connections opened concurrently.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// The server's process id, whose RSS is read from /proc.
        #[arg(long)]
        pid: u32,
        /// Seconds to wait with all bridges open before reading the RSS.
        #[arg(long, default_value_t = 1.0)]
        settle: f64,
        /// Connections per source address towards a loopback server: past this many, the next
        /// ones come from 127.0.0.2, 127.0.0.3, ... (one address has one range of ephemeral
        /// ports per destination).
        #[arg(long, default_value_t = 20_000)]
        per_source: usize,
        #[command(flatten)]
        out: Out,
    },
}

#[derive(Args, Debug)]
struct Load {
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    conns: usize,
    /// Message size: 64, 16K, 64KiB, 1M.
    #[arg(short = 's', long, default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Messages outstanding per connection (1 = strict request/response).
    #[arg(short = 'i', long, default_value_t = 1)]
    inflight: usize,
    /// Measured seconds.
    #[arg(short = 'd', long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(short = 'w', long, default_value_t = 1.0)]
    warmup: f64,
    /// Server process id: report its CPU use (with children) and peak RSS during the window.
    #[arg(long)]
    pid: Option<u32>,
    /// The target's process id (the echo the server connects to), when it runs on the server's
    /// CPU: its CPU use is reported on its own and is not counted as other processes' load.
    #[arg(long)]
    target_pid: Option<u32>,
    /// The CPU the server is pinned to: with `--pid`, report how much other processes ran there.
    #[arg(long)]
    sut_cpu: Option<usize>,
    /// The CPUs the load generator (and whatever shares them) runs on, e.g. `0` or `0,2,3`:
    /// report how busy they were. Near 100%, the load side, not the server, limited the
    /// throughput.
    #[arg(long, value_delimiter = ',')]
    load_cpu: Vec<usize>,
    /// Measure up to this many times while other processes took more than `--max-foreign` % of
    /// the server's CPU, and keep the least disturbed measurement.
    #[arg(long, default_value_t = 1)]
    attempts: u32,
    /// See `--attempts`.
    #[arg(long, default_value_t = 15.0)]
    max_foreign: f64,
    /// WebSocket client: `fast` frames and parses itself (see `sockrelay_bench::ws`), so the
    /// load generator costs less per byte than the bridges it measures; `tungstenite` is a
    /// general-purpose client, as an application would use.
    #[arg(long, value_enum, default_value_t = WsClient::Fast)]
    ws_client: WsClient,
    #[command(flatten)]
    out: Out,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum WsClient {
    Fast,
    Tungstenite,
}

#[derive(Args, Debug)]
struct Out {
    /// Append the result as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Name of the system measured, for the record.
    #[arg(long, default_value = "")]
    system: String,
    /// Name of the workload, for the record.
    #[arg(long, default_value = "")]
    workload: String,
    /// Round number, for the record.
    #[arg(long, default_value_t = 0)]
    round: u32,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        match cli.mode {
            Mode::Tcp { addr, load } => run_load(Target::Tcp(addr), load).await,
            Mode::Ws { url, load } => run_load(Target::Ws(url), load).await,
            Mode::Udp {
                url,
                load,
                loss_timeout,
            } => {
                if load.size < SEQ {
                    bail!("udp: --size must be at least {SEQ} bytes (the sequence number)");
                }
                let loss = Duration::from_millis(loss_timeout.max(1));
                run_load(Target::Udp(url, loss), load).await
            }
            Mode::Idle {
                urls,
                conns,
                parallel,
                pid,
                settle,
                per_source,
                out,
            } => {
                let spread = Spread {
                    urls,
                    per_source: per_source.max(1),
                };
                run_idle(spread, conns, parallel, pid, settle, out).await
            }
        }
    })
}

#[derive(Debug, Clone)]
enum Target {
    Tcp(String),
    Ws(String),
    /// A bridge to a UDP echo, and the loss timeout.
    Udp(String, Duration),
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

enum Conn {
    Tcp(TcpStream),
    Ws(Box<Ws>),
    /// A WebSocket opened by hand, with the bytes read past the handshake's response.
    FastWs(TcpStream, Vec<u8>),
}

/// The client's WebSocket buffers: tungstenite zero-fills its whole read buffer before every
/// read, so a buffer far larger than the messages costs the load generator time on each one.
fn ws_config(size: usize) -> WebSocketConfig {
    let read = (size + 14).next_power_of_two().clamp(4096, 64 * 1024);
    WebSocketConfig::default()
        .read_buffer_size(read)
        .write_buffer_size(64 * 1024)
        .max_message_size(None)
        .max_frame_size(None)
}

async fn connect(target: &Target, size: usize, client: WsClient) -> Result<Conn> {
    match target {
        // The UDP runs always use the hand-made client: they need no general one.
        Target::Ws(url) | Target::Udp(url, _)
            if client == WsClient::Fast || matches!(target, Target::Udp(..)) =>
        {
            let (host, path) = ws::split_url(url).map_err(anyhow::Error::msg)?;
            let mut s = TcpStream::connect(host)
                .await
                .with_context(|| format!("connect {host}"))?;
            s.set_nodelay(true)?;
            s.write_all(ws::handshake_request(host, path).as_bytes())
                .await?;
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            let end = loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    bail!("{url}: closed during the handshake");
                }
                head.extend_from_slice(&buf[..n]);
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if head.len() > 64 * 1024 {
                    bail!("{url}: no end to the handshake response");
                }
            };
            if !head.starts_with(b"HTTP/1.1 101") {
                let status = String::from_utf8_lossy(&head[..end]);
                bail!("{url}: {}", status.lines().next().unwrap_or_default());
            }
            Ok(Conn::FastWs(s, head.split_off(end)))
        }
        Target::Tcp(addr) => {
            let s = TcpStream::connect(addr)
                .await
                .with_context(|| format!("connect {addr}"))?;
            s.set_nodelay(true)?;
            Ok(Conn::Tcp(s))
        }
        Target::Ws(url) | Target::Udp(url, _) => {
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(url, Some(ws_config(size)), true)
                    .await
                    .with_context(|| format!("connect {url}"))?;
            Ok(Conn::Ws(Box::new(ws)))
        }
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// How long connections get to drain their outstanding echoes and close after the window.
const GRACE: Duration = Duration::from_secs(10);

struct Shared {
    phase: AtomicU8,
    /// Readers give up here whatever happens.
    give_up: Instant,
}

/// One connection's send times of outstanding messages and its window of permits.
struct Window {
    sent_at: Mutex<VecDeque<Instant>>,
    permits: Semaphore,
}

struct ConnResult {
    hist: Histogram<u64>,
    error: Option<String>,
    /// UDP runs only: what happened to the datagrams.
    datagrams: Datagrams,
}

/// What happened to a UDP run's datagrams (zero for the other runs).
#[derive(Debug, Default, Clone, Copy)]
struct Datagrams {
    sent: u64,
    lost: u64,
    late: u64,
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

async fn run_load(target: Target, load: Load) -> Result<()> {
    if load.conns == 0 || load.inflight == 0 {
        bail!("--conns and --inflight must be at least 1");
    }
    let mut best: Option<(Record, Vec<String>)> = None;
    let mut attempts = 0;
    while attempts < load.attempts.max(1) {
        attempts += 1;
        let (record, errors) = measure(&target, &load).await?;
        let foreign = record.foreign_cpu_pct.unwrap_or(0.0);
        let better = best
            .as_ref()
            .is_none_or(|(b, _)| foreign < b.foreign_cpu_pct.unwrap_or(0.0) || !errors.is_empty());
        if better {
            best = Some((record, errors));
        }
        if foreign <= load.max_foreign || best.as_ref().is_some_and(|(_, e)| !e.is_empty()) {
            break;
        }
        if attempts < load.attempts {
            eprintln!(
                "loadgen: other processes took {foreign:.0}% of the server's CPU; measuring again"
            );
        }
    }
    let Some((mut record, errors)) = best else {
        bail!("nothing measured");
    };
    record.attempts = Some(attempts);
    write_record(&load.out, &record)?;
    if !errors.is_empty() {
        for e in errors.iter().take(5) {
            eprintln!("loadgen: connection failed: {e}");
        }
        bail!("{} of {} connections failed", errors.len(), load.conns);
    }
    if record.msgs == 0 {
        bail!("no message completed in the measured window");
    }
    Ok(())
}

/// One measurement on fresh connections: the record and the connections' errors.
async fn measure(target: &Target, load: &Load) -> Result<(Record, Vec<String>)> {
    let size = load.size;
    // Connect everything before the clock starts.
    let mut conns = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        conns.push(connect(target, size, load.ws_client).await?);
    }
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(load.warmup);
    let duration = Duration::from_secs_f64(load.duration);
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(WARMUP),
        give_up: start + warmup + duration + GRACE,
    });
    let mut tasks = JoinSet::new();
    for (id, conn) in conns.into_iter().enumerate() {
        let pat: Arc<[u8]> = pattern(id as u64, size).into();
        let shared = shared.clone();
        let inflight = load.inflight;
        let loss = match target {
            Target::Udp(_, loss) => Some(*loss),
            _ => None,
        };
        tasks.spawn(async move {
            let r = match (conn, loss) {
                (Conn::FastWs(s, early), Some(loss)) => {
                    run_datagrams(s, early, pat, size, inflight, loss, shared).await
                }
                (Conn::Tcp(s), _) => {
                    run_stream(s, false, Vec::new(), pat, size, inflight, shared).await
                }
                (Conn::Ws(ws), _) => run_ws(*ws, pat, size, inflight, shared).await,
                (Conn::FastWs(s, early), None) => {
                    run_stream(s, true, early, pat, size, inflight, shared).await
                }
            };
            r.unwrap_or_else(|e| ConnResult {
                hist: new_hist(),
                error: Some(format!("{e:#}")),
                datagrams: Datagrams::default(),
            })
        });
    }

    sleep_until(start + warmup).await;
    let cpu0 = load.pid.and_then(tree_cpu_ticks);
    let target0 = load.target_pid.and_then(tree_cpu_ticks);
    let busy0 = load.sut_cpu.and_then(cpu_busy_ticks);
    let load0 = cpus_busy_ticks(&load.load_cpu);
    let t0 = Instant::now();
    shared.phase.store(MEASURE, Ordering::SeqCst);
    let mut rss_max = None;
    let end = t0 + duration;
    loop {
        if let Some(pid) = load.pid {
            rss_max = rss_max.max(rss_kib(pid));
        }
        let next = Instant::now() + Duration::from_millis(100);
        if next >= end {
            sleep_until(end).await;
            break;
        }
        sleep_until(next).await;
    }
    shared.phase.store(STOP, Ordering::SeqCst);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu1 = load.pid.and_then(tree_cpu_ticks);
    let target1 = load.target_pid.and_then(tree_cpu_ticks);
    let busy1 = load.sut_cpu.and_then(cpu_busy_ticks);
    let load1 = cpus_busy_ticks(&load.load_cpu);

    let mut hist = new_hist();
    let mut errors = Vec::new();
    let mut datagrams = Datagrams::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.context("connection task panicked")?;
        hist.add(&r.hist).context("merge histograms")?;
        if let Some(e) = r.error {
            errors.push(e);
        }
        datagrams.sent += r.datagrams.sent;
        datagrams.lost += r.datagrams.lost;
        datagrams.late += r.datagrams.late;
    }
    let msgs = hist.len();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let server_cpu_pct = match (cpu0, cpu1) {
        (Some(a), Some(b)) => {
            Some(b.saturating_sub(a) as f64 / sockrelay_bench::TICKS_PER_SECOND / seconds * 100.0)
        }
        _ => None,
    };
    let target_ticks = match (target0, target1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let target_cpu_pct =
        target_ticks.map(|t| t as f64 / sockrelay_bench::TICKS_PER_SECOND / seconds * 100.0);
    let foreign_cpu_pct = match (cpu0, cpu1, busy0, busy1) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            let other = (d.saturating_sub(c))
                .saturating_sub(b.saturating_sub(a))
                .saturating_sub(target_ticks.unwrap_or(0));
            Some(other as f64 / sockrelay_bench::TICKS_PER_SECOND / seconds * 100.0)
        }
        _ => None,
    };
    let load_cpu_pct = match (load0, load1) {
        (Some(a), Some(b)) => Some(
            b.saturating_sub(a) as f64 / sockrelay_bench::TICKS_PER_SECOND / seconds * 100.0
                / load.load_cpu.len() as f64,
        ),
        _ => None,
    };
    let (mode, where_) = match target {
        Target::Tcp(a) => ("tcp", a.clone()),
        Target::Ws(u) => ("ws", u.clone()),
        Target::Udp(u, _) => ("udp", u.clone()),
    };
    let udp = matches!(target, Target::Udp(..));
    let record = Record {
        kind: "throughput".into(),
        system: load.out.system.clone(),
        workload: load.out.workload.clone(),
        mode: mode.into(),
        round: load.out.round,
        conns: load.conns,
        size,
        inflight: load.inflight,
        seconds,
        msgs,
        msgs_per_s: msgs as f64 / seconds,
        mib_per_s: msgs as f64 * size as f64 / seconds / (1024.0 * 1024.0),
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: hist.max() as f64 / 1000.0,
        server_cpu_pct,
        server_rss_kib: rss_max,
        foreign_cpu_pct,
        load_cpu_pct,
        target_cpu_pct,
        sent: udp.then_some(datagrams.sent),
        lost: udp.then_some(datagrams.lost),
        late: udp.then_some(datagrams.late),
        ..Record::default()
    };
    println!(
        "{mode} {where_} {sys}{conns} conns x {size} B x {inflight} in flight: {mps:.0} msgs/s, \
         {mib:.1} MiB/s, p50 {p50:.1} us, p99 {p99:.1} us, p99.9 {p999:.1} us{cpu}{target}{rss}\
         {other}{load_cpu}{lost}",
        sys = if record.system.is_empty() {
            String::new()
        } else {
            format!("[{}] ", record.system)
        },
        conns = load.conns,
        inflight = load.inflight,
        mps = record.msgs_per_s,
        mib = record.mib_per_s,
        p50 = record.p50_us,
        p99 = record.p99_us,
        p999 = record.p999_us,
        cpu = server_cpu_pct.map_or(String::new(), |c| format!(", server CPU {c:.0}%")),
        target = target_cpu_pct.map_or(String::new(), |c| format!(", target CPU {c:.0}%")),
        rss = rss_max.map_or(String::new(), |r| format!(", server RSS {r} KiB")),
        other = foreign_cpu_pct.map_or(String::new(), |f| format!(
            ", other processes {f:.0}% of the server's CPU"
        )),
        load_cpu = load_cpu_pct.map_or(String::new(), |l| format!(
            ", load generator's CPU {l:.0}% busy"
        )),
        lost = if udp {
            format!(
                "; {} of {} datagrams lost ({} of them came back late)",
                datagrams.lost, datagrams.sent, datagrams.late
            )
        } else {
            String::new()
        },
    );
    Ok((record, errors))
}

/// The busy ticks of all of `cpus` together; `None` for none, or if one cannot be read.
fn cpus_busy_ticks(cpus: &[usize]) -> Option<u64> {
    if cpus.is_empty() {
        return None;
    }
    cpus.iter().map(|&c| cpu_busy_ticks(c)).sum()
}

fn write_record(out: &Out, record: &Record) -> Result<()> {
    if let Some(path) = &out.json {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(record)?)?;
    }
    Ok(())
}

impl Window {
    fn new(inflight: usize) -> Arc<Window> {
        Arc::new(Window {
            sent_at: Mutex::new(VecDeque::with_capacity(inflight)),
            permits: Semaphore::new(inflight),
        })
    }
}

/// A connection's result once its reader has stopped: the writer's count of messages sent must
/// match what the reader verified, to the byte.
async fn finish(
    writer: tokio::task::JoinHandle<Result<u64>>,
    verifier: &Verifier,
    mut error: Option<String>,
    hist: Histogram<u64>,
) -> Result<ConnResult> {
    let sent = match writer.await.context("writer panicked")? {
        Ok(sent) => sent,
        Err(e) => {
            error.get_or_insert(format!("write: {e:#}"));
            verifier.seq
        }
    };
    if error.is_none() && (verifier.seq != sent || verifier.pos != 0) {
        error = Some(format!(
            "sent {sent} messages, {} came back (+{} bytes)",
            verifier.seq, verifier.pos
        ));
    }
    Ok(ConnResult {
        hist,
        error,
        datagrams: Datagrams::default(),
    })
}

/// Reads until EOF, handing each read to `feed`, which returns whether to go on (or the error
/// that ends the connection); gives up at the run's deadline. The connection's error, if any.
async fn read_all(
    rd: &mut (impl AsyncReadExt + Unpin),
    size: usize,
    shared: &Shared,
    mut feed: impl FnMut(&[u8]) -> Result<bool, String>,
) -> Option<String> {
    let mut buf = vec![0u8; size.clamp(16 * 1024, 256 * 1024)];
    // One timer for the whole run: a new one per read would cost a timer-wheel insert each time.
    let give_up = sleep_until(shared.give_up);
    tokio::pin!(give_up);
    loop {
        let n = tokio::select! {
            biased;
            r = rd.read(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => return Some(format!("read: {e}")),
            },
            () = &mut give_up => return Some("did not close in time".into()),
        };
        if n == 0 {
            return None;
        }
        match feed(&buf[..n]) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
    }
}

/// Records one completed message: its latency (if measuring) and a permit for the next one.
fn complete(window: &Window, shared: &Shared, hist: &mut Histogram<u64>) {
    let sent = window
        .sent_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front();
    if shared.phase.load(Ordering::Relaxed) == MEASURE {
        if let Some(sent) = sent {
            hist.saturating_record(sent.elapsed().as_nanos() as u64);
        }
    }
    window.permits.add_permits(1);
}

/// Waits for a free slot in the window, then takes every free slot at once (so pipelined
/// messages go out in one write) and stamps their send time. 0 once the run is over.
async fn next_batch(window: &Window, shared: &Shared) -> usize {
    let Ok(first) = window.permits.acquire().await else {
        return 0;
    };
    first.forget();
    let mut n = 1;
    while let Ok(p) = window.permits.try_acquire() {
        p.forget();
        n += 1;
    }
    if shared.phase.load(Ordering::Relaxed) == STOP {
        // Give back all but one: `drain` counts on exactly one being held.
        window.permits.add_permits(n - 1);
        return 0;
    }
    let now = Instant::now();
    window
        .sent_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(std::iter::repeat_n(now, n));
    n
}

/// After the last send: wait (bounded) until every outstanding message has come back.
async fn drain(window: &Window, inflight: usize, shared: &Shared) {
    // One permit was kept by the `next_batch` that saw STOP.
    let rest = (inflight - 1) as u32;
    if rest > 0 {
        let _ = tokio::time::timeout_at(shared.give_up, window.permits.acquire_many(rest)).await;
    }
}

/// The most bytes of a connection's pattern kept framed (see `run_stream`): messages up to
/// about 4 KiB.
const PREFRAMED_MAX: usize = 1 << 20;

/// A connection over a plain TCP stream: a TCP echo (`framed` false) or a WebSocket opened by
/// hand (`framed`, with `early` the bytes read past the handshake). Each batch of messages goes
/// out in one vectored write: the pattern's bytes, each message behind its frame header when
/// framed (zero mask, so the payload goes out as it is); echoed frames are parsed where they
/// were read.
async fn run_stream(
    stream: TcpStream,
    framed: bool,
    early: Vec<u8>,
    pat: Arc<[u8]>,
    size: usize,
    inflight: usize,
    shared: Arc<Shared>,
) -> Result<ConnResult> {
    let (mut rd, mut wr) = stream.into_split();
    let window = Window::new(inflight);
    let writer = {
        let (window, shared, pat) = (window.clone(), shared.clone(), pat.clone());
        tokio::spawn(async move {
            let header = if framed {
                ws::client_header(size)
            } else {
                Vec::new()
            };
            // Small messages are framed once, each of the pattern's SHIFTS messages behind its
            // header: a message then costs one slice of the write, as on a plain TCP stream, so
            // the framing adds to the load generator's work per message only its parsing of
            // the echo (the floor, measured through plain TCP, pays neither).
            let framed_pat: Vec<u8> = if framed && (header.len() + size) * SHIFTS <= PREFRAMED_MAX {
                (0..SHIFTS)
                    .flat_map(|off| header.iter().chain(&pat[off..off + size]))
                    .copied()
                    .collect()
            } else {
                Vec::new()
            };
            let stride = header.len() + size;
            let mut seq = 0u64;
            loop {
                let n = next_batch(&window, &shared).await;
                if n == 0 {
                    break;
                }
                let mut slices = Vec::with_capacity(2 * n);
                for _ in 0..n {
                    let off = (seq % SHIFTS as u64) as usize;
                    if !framed_pat.is_empty() {
                        let at = off * stride;
                        slices.push(std::io::IoSlice::new(&framed_pat[at..at + stride]));
                    } else {
                        if framed {
                            slices.push(std::io::IoSlice::new(&header));
                        }
                        slices.push(std::io::IoSlice::new(&pat[off..off + size]));
                    }
                    seq += 1;
                }
                let mut slices = &mut slices[..];
                while !slices.is_empty() {
                    let written = wr.write_vectored(slices).await?;
                    if written == 0 {
                        bail!("the server stopped reading");
                    }
                    std::io::IoSlice::advance_slices(&mut slices, written);
                }
            }
            drain(&window, inflight, &shared).await;
            if framed {
                // A Close (code 1000, masked with the zero key).
                wr.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).await?;
            }
            wr.shutdown().await?;
            anyhow::Ok(seq)
        })
    };
    let mut hist = new_hist();
    let mut verifier = Verifier::new(pat, size);
    let mut frames = ws::FrameReader::default();
    let mut feed = |data: &[u8]| {
        let mut echoed = |p: &[u8]| verifier.feed(p, || complete(&window, &shared, &mut hist));
        if !framed {
            echoed(data)?;
            return Ok(true);
        }
        Ok(frames.feed(data, echoed)? == ws::Event::More)
    };
    let error = match feed(&early) {
        Ok(true) => read_all(&mut rd, size + 14, &shared, feed).await,
        Ok(false) => None,
        Err(e) => Some(e),
    };
    // A failed reader leaves the writer waiting for permits: release it.
    window.permits.close();
    finish(writer, &verifier, error, hist).await
}

async fn run_ws(
    ws: Ws,
    pat: Arc<[u8]>,
    size: usize,
    inflight: usize,
    shared: Arc<Shared>,
) -> Result<ConnResult> {
    let (mut sink, mut stream) = ws.split();
    let window = Window::new(inflight);
    let writer = {
        let (window, shared) = (window.clone(), shared.clone());
        let pat = Bytes::copy_from_slice(&pat);
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let n = next_batch(&window, &shared).await;
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    let off = (seq % SHIFTS as u64) as usize;
                    sink.feed(Message::Binary(pat.slice(off..off + size)))
                        .await?;
                    seq += 1;
                }
                sink.flush().await?;
            }
            drain(&window, inflight, &shared).await;
            // The bridge answers the Close; a bridge that already hung up is no error here (the
            // reader checks that every message came back).
            let _ = sink.close().await;
            anyhow::Ok(seq)
        })
    };
    let mut hist = new_hist();
    let mut verifier = Verifier::new(pat, size);
    let mut error = None;
    let give_up = sleep_until(shared.give_up);
    tokio::pin!(give_up);
    loop {
        let msg = tokio::select! {
            biased;
            m = stream.next() => m,
            () = &mut give_up => { error = Some("did not close in time".into()); break; }
        };
        let data = match msg {
            None => break,
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(_))) => continue,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Text(_))) => {
                error = Some("got a text message".into());
                break;
            }
            Some(Err(e)) => {
                error = Some(format!("read: {e}"));
                break;
            }
        };
        if let Err(e) = verifier.feed(&data, || complete(&window, &shared, &mut hist)) {
            error = Some(e);
            break;
        }
    }
    window.permits.close();
    finish(writer, &verifier, error, hist).await
}

/// One UDP connection's window: its datagrams on their way, and the permits for the free slots.
struct Pending {
    ledger: Mutex<Ledger>,
    permits: Semaphore,
}

impl Pending {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection over a WebSocket bridge to a UDP echo (`early`: the bytes read past the
/// handshake), one message per datagram (see [`sockrelay_bench::datagrams`]). Each batch goes
/// out in one write. The echoes come back as binary messages of `size` bytes; they are cut
/// from the frames' payload at that size (a bridge that split or joined datagrams fails the
/// check). An echo not back within `loss` counts as lost and frees its slot.
async fn run_datagrams(
    stream: TcpStream,
    early: Vec<u8>,
    pat: Arc<[u8]>,
    size: usize,
    inflight: usize,
    loss: Duration,
    shared: Arc<Shared>,
) -> Result<ConnResult> {
    let (mut rd, mut wr) = stream.into_split();
    let window = Arc::new(Pending {
        ledger: Mutex::new(Ledger::default()),
        permits: Semaphore::new(inflight),
    });
    let mut writer = {
        let (window, shared, pat) = (window.clone(), shared.clone(), pat.clone());
        tokio::spawn(async move {
            let header = ws::client_header(size);
            let mut batch = Vec::with_capacity(inflight * (header.len() + size));
            let mut seq = 0u64;
            loop {
                let Ok(first) = window.permits.acquire().await else {
                    break;
                };
                first.forget();
                let mut n = 1u64;
                while let Ok(p) = window.permits.try_acquire() {
                    p.forget();
                    n += 1;
                }
                if shared.phase.load(Ordering::Relaxed) == STOP {
                    window.permits.add_permits(n as usize);
                    break;
                }
                batch.clear();
                {
                    let now = std::time::Instant::now();
                    let mut ledger = window.ledger();
                    for s in seq..seq + n {
                        ledger.sent(s, now);
                        batch.extend_from_slice(&header);
                        datagrams::append(&mut batch, &pat, s, size);
                    }
                }
                seq += n;
                wr.write_all(&batch).await?;
            }
            // Every slot back: each echo came back or was counted lost (bounded by `loss`).
            let _ = tokio::time::timeout_at(
                shared.give_up,
                window.permits.acquire_many(inflight as u32),
            )
            .await;
            // A Close (code 1000, masked with the zero key).
            wr.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).await?;
            wr.shutdown().await?;
            anyhow::Ok(seq)
        })
    };

    let mut hist = new_hist();
    let mut echo = Vec::with_capacity(size);
    let mut frames = ws::FrameReader::default();
    let mut on_echo = |d: &[u8]| -> Result<(), String> {
        if let Some(sent) = window.ledger().echoed(d, &pat, size)? {
            if shared.phase.load(Ordering::Relaxed) == MEASURE {
                hist.saturating_record(sent.elapsed().as_nanos() as u64);
            }
            window.permits.add_permits(1);
        }
        Ok(())
    };
    let mut feed = |bytes: &[u8]| {
        frames.feed(bytes, |mut p| {
            while !p.is_empty() {
                let take = (size - echo.len()).min(p.len());
                echo.extend_from_slice(&p[..take]);
                p = &p[take..];
                if echo.len() == size {
                    on_echo(&echo)?;
                    echo.clear();
                }
            }
            Ok(())
        })
    };

    let mut buf = vec![0u8; (size + 14).clamp(16 * 1024, 256 * 1024)];
    let give_up = sleep_until(shared.give_up);
    tokio::pin!(give_up);
    let mut sweep = tokio::time::interval(loss / 4);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut error = None;
    // The writer's result once it has sent its Close, and until when the server's Close or end
    // is then awaited: a bridge to UDP need not answer it (websocat's does not), and with the
    // echoes all in or counted lost, nothing is left to measure.
    let mut written = None;
    let linger = sleep_until(shared.give_up);
    tokio::pin!(linger);
    let mut got = feed(&early);
    loop {
        match got {
            Ok(ws::Event::More) => {}
            Ok(ws::Event::Closed) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        let n = tokio::select! {
            biased;
            r = rd.read(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    error = Some(format!("read: {e}"));
                    break;
                }
            },
            _ = sweep.tick() => {
                if let Some(before) = std::time::Instant::now().checked_sub(loss) {
                    let n = window.ledger().expire(before);
                    window.permits.add_permits(n);
                }
                got = Ok(ws::Event::More);
                continue;
            }
            r = &mut writer, if written.is_none() => {
                written = Some(r);
                linger.as_mut().reset(Instant::now() + loss);
                got = Ok(ws::Event::More);
                continue;
            }
            () = &mut linger, if written.is_some() => break,
            () = &mut give_up => {
                error = Some("did not close in time".into());
                break;
            }
        };
        if n == 0 {
            break;
        }
        got = feed(&buf[..n]);
    }
    if error.is_none() && shared.phase.load(Ordering::Relaxed) != STOP {
        error = Some("the bridge closed during the run".into());
    }
    // What is still awaited now will not come back.
    let (lost, late) = {
        let mut ledger = window.ledger();
        ledger.give_up();
        (ledger.lost, ledger.late)
    };
    window.permits.close();
    let written = match written {
        Some(r) => r,
        None => writer.await,
    };
    let mut sent = 0;
    match written.context("writer panicked")? {
        Ok(n) => sent = n,
        Err(e) => {
            error.get_or_insert(format!("write: {e:#}"));
        }
    }
    Ok(ConnResult {
        hist,
        error,
        datagrams: Datagrams { sent, lost, late },
    })
}

/// Where idle bridge number `id` goes, and from which address.
struct Spread {
    urls: Vec<String>,
    per_source: usize,
}

impl Spread {
    fn url(&self, id: usize) -> &str {
        &self.urls[id % self.urls.len()]
    }

    /// The local address bridge `id` connects from: none of its own for the first
    /// `per_source`, then 127.0.0.2, 127.0.0.3, ... (to a loopback IPv4 server only).
    fn source(&self, id: usize) -> Option<std::net::Ipv4Addr> {
        let n = id / self.per_source;
        (n > 0)
            .then(|| std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::LOCALHOST) + n as u32))
    }
}

/// A TCP connection to `url`'s host and port from `source`.
async fn connect_from(url: &str, source: std::net::Ipv4Addr) -> Result<TcpStream> {
    let uri: tokio_tungstenite::tungstenite::http::Uri = url.parse().context("bad URL")?;
    let host = uri.host().context("URL without a host")?;
    let port = uri.port_u16().unwrap_or(80);
    let ip: std::net::Ipv4Addr = host
        .parse()
        .with_context(|| format!("{host}: a source address needs an IPv4 loopback server"))?;
    if !ip.is_loopback() {
        bail!("{host}: a source address needs an IPv4 loopback server");
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket
        .bind((source, 0).into())
        .with_context(|| format!("bind {source}"))?;
    Ok(socket.connect((ip, port).into()).await?)
}

/// Opens one bridge (from `source`, if given), sends one small message, checks the echo, and
/// returns the open bridge.
async fn open_idle(url: String, id: u64, source: Option<std::net::Ipv4Addr>) -> Result<Ws> {
    const SIZE: usize = 64;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = match source {
        None => tokio_tungstenite::connect_async_with_config(&url, Some(config), true).await,
        Some(source) => {
            let stream = connect_from(&url, source).await?;
            tokio_tungstenite::client_async_with_config(
                url.as_str(),
                MaybeTlsStream::Plain(stream),
                Some(config),
            )
            .await
        }
    }
    .with_context(|| format!("connect {url}"))?;
    let pat: Arc<[u8]> = pattern(id, SIZE).into();
    ws.send(Message::binary(pat[..SIZE].to_vec())).await?;
    let mut verifier = Verifier::new(pat, SIZE);
    while verifier.seq == 0 {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => verifier.feed(&b, || ()).map_err(anyhow::Error::msg)?,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before the echo came back"),
        }
    }
    Ok(ws)
}

async fn open_many(spread: &Spread, from: usize, to: usize, parallel: usize) -> Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(to - from);
    let mut set = JoinSet::new();
    let mut next = from;
    while next < to || !set.is_empty() {
        while next < to && set.len() < parallel {
            let url = spread.url(next).to_owned();
            set.spawn(open_idle(url, next as u64, spread.source(next)));
            next += 1;
        }
        if let Some(r) = set.join_next().await {
            out.push(r.context("open task panicked")??);
        }
    }
    Ok(out)
}

async fn run_idle(
    spread: Spread,
    conns: usize,
    parallel: usize,
    pid: u32,
    settle: f64,
    out: Out,
) -> Result<()> {
    if conns < 2 {
        bail!("--conns must be at least 2");
    }
    let settle = Duration::from_secs_f64(settle);
    let rss = || rss_kib(pid).with_context(|| format!("no process {pid}"));
    let before = rss()?;
    let half = conns / 2;
    let started = std::time::Instant::now();
    let mut held = open_many(&spread, 0, half, parallel).await?;
    tokio::time::sleep(settle).await;
    let mid = rss()?;
    held.extend(open_many(&spread, half, conns, parallel).await?);
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let after = rss()?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / conns as f64;
    let marginal = (after.saturating_sub(mid)) as f64 * 1024.0 / (conns - half) as f64;
    println!(
        "idle {}: {conns} bridges open (in {open_secs:.1} s); server RSS {before} KiB -> \
         {after} KiB: {per:.0} bytes per bridge ({marginal:.0} bytes per bridge over the second half)",
        spread.urls.join(" ")
    );
    let record = Record {
        kind: "idle".into(),
        system: out.system.clone(),
        workload: out.workload.clone(),
        mode: "ws".into(),
        round: out.round,
        conns,
        size: 64,
        idle_bridges: Some(conns),
        rss_before_kib: Some(before),
        rss_after_kib: Some(after),
        rss_per_bridge_bytes: Some(per),
        rss_per_bridge_marginal_bytes: Some(marginal),
        ..Record::default()
    };
    write_record(&out, &record)?;
    // Close politely, a bounded number at a time, so the server is not flooded with resets.
    let mut set = JoinSet::new();
    for mut ws in held {
        if set.len() >= parallel {
            set.join_next().await;
        }
        set.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}
