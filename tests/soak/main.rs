//! Soak and chaos: thousands of bridges through the relay binary, with random message sizes and
//! random behaviour on both ends (clean closes, resets, clients that stop reading, targets that
//! stall, reset or close), for `SOCKRELAY_SOAK_SECS` seconds (default 30: about 45 s for the
//! whole test; set it higher, e.g. 180, for the long run).
//!
//! Checked: every byte that arrives anywhere is an exact prefix of what was sent, and on every
//! cleanly closed bridge it is all of it (both ways); refusals and close codes are the documented
//! ones; afterwards the relay has no bridge open (`/metrics`), holds no more file descriptors
//! than before, and counted every bridge. First, on a relay process of its own, 100 readers stop
//! reading from flooding targets: the relay's memory must stay bounded and flat.
//!
//! The figures are printed at the end (`-- --nocapture`) for RELIABILITY.md:
//! `cargo build -p sockrelay && cargo test -p sockrelay-tests --test soak -- --nocapture`.

#![allow(clippy::unwrap_used)]

mod chaos;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos::{Ctx, Mode, Stats, Targets};
use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{http_get, ws_echo_roundtrip, ClosedPort, RelayProcess, Rng, WAIT};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Bridges open at once.
const CONCURRENCY: usize = 200;
/// Readers that stop reading in the memory phase.
const STALLED_READERS: usize = 100;
const MAX_MESSAGE: usize = 256 * 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one bridge of the soak, however it behaves.
const BRIDGE_DEADLINE: Duration = Duration::from_secs(120);
/// Seconds of new bridges by default (`SOCKRELAY_SOAK_SECS` overrides).
const DEFAULT_SECS: u64 = 30;
/// Bridges that must upgrade per `DEFAULT_SECS` of soak: the issue asks for thousands, and the
/// 2-core machine does about 5,000 (RELIABILITY.md), so this fails only if the relay or the test
/// slows down several times over.
const MIN_BRIDGES_PER_DEFAULT_RUN: u64 = 1000;
/// Bridges of the warm-up, before the baselines (counted in `Stats::upgraded`, not in the soak).
const WARM_UP: u64 = 20;
/// How long the floods of the stalled-readers phase may take to stall (they usually do in about
/// 5 s) in the default run; longer runs are allowed more, up to 90 s.
const STALL_LIMIT: Duration = Duration::from_secs(20);

/// `SOCKRELAY_SOAK_SECS`, or the default.
fn soak_secs() -> u64 {
    match std::env::var("SOCKRELAY_SOAK_SECS") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SOCKRELAY_SOAK_SECS must be a number of seconds: {s:?}")),
        Err(_) => DEFAULT_SECS,
    }
}

/// The bridges a soak of `secs` seconds must upgrade: `MIN_BRIDGES_PER_DEFAULT_RUN`, scaled.
fn min_bridges(secs: u64) -> u64 {
    secs * MIN_BRIDGES_PER_DEFAULT_RUN / DEFAULT_SECS
}

/// The stalled-readers phase's bound: `STALL_LIMIT`, or half the soak time for long runs,
/// at most 90 s.
fn stall_limit(secs: u64) -> Duration {
    Duration::from_secs((secs / 2).clamp(STALL_LIMIT.as_secs(), 90))
}

/// `/metrics` as name (with labels) to value.
async fn scrape(http: SocketAddr) -> BTreeMap<String, f64> {
    let (status, text) = http_get(http, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// No bridge and no echo connection open.
async fn quiet(http: SocketAddr) -> bool {
    let m = scrape(http).await;
    metric(&m, "sockrelay_bridges_active") == 0
        && metric(&m, "sockrelay_echo_connections_active") == 0
}

fn metric(m: &BTreeMap<String, f64>, key: &str) -> u64 {
    m.get(key).copied().unwrap_or(0.0) as u64
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Polls `check` every 100 ms until it holds or `limit` passes; returns whether it held.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Figures of the stalled-readers phase (memory in KiB).
struct StalledFigures {
    before: u64,
    stalled: u64,
    later: u64,
    buffered: u64,
    resumed_bytes: u64,
    fds_before: usize,
    fds_after: usize,
}

/// On a relay of its own (default idle timeout, so that only the readers decide), opens
/// `STALLED_READERS` bridges to flooding targets whose clients never read, waits until every
/// flood is stalled, and measures the relay's memory; then a fifth of the readers resume and
/// must get every byte, the rest reset, and the relay must let go of everything.
async fn stalled_readers(targets: &Targets, stall_limit: Duration) -> StalledFigures {
    let chaos_target = targets.addr.to_string();
    let relay = RelayProcess::spawn(&["--allow", &chaos_target]);
    let pid = relay.child.id();
    for i in 0..10 {
        let ws = chaos::connect(relay.http, "").await.unwrap();
        let payload = Rng::new(i).bytes(200_000);
        assert!(ws_echo_roundtrip(ws, &payload, &[10_000]).await == payload);
    }
    assert!(eventually(WAIT, async || quiet(relay.http).await).await);
    let fds_before = fd_count(pid);
    let before = relay.rss_kib();
    let start_written = targets.flood_written.load(Relaxed);
    let mut clients = Vec::new();
    for i in 0..STALLED_READERS as u64 {
        let id = 1_000_000_000 + i;
        let resumes = i % 5 == 0;
        // Resuming readers' targets stop after 6 MiB so the bridge ends with a Close 1000.
        let cap = if resumes { 6 << 20 } else { 0 };
        // A small receive buffer on our side, so the stall is reached quickly: what is
        // measured is the relay, not how much the kernel buffers on the way.
        let query = format!("?target={chaos_target}");
        let mut ws = chaos::connect_with(relay.http, &query, Some(64 * 1024))
            .await
            .unwrap();
        ws.send(Message::binary(chaos::header(id, id, Mode::Flood, cap, 0)))
            .await
            .unwrap();
        clients.push((id, cap, ws));
    }
    // Stalled: nothing more written for two seconds.
    let mut last = 0;
    let mut stable = 0;
    let stall_start = Instant::now();
    let stalled = eventually(stall_limit, async || {
        let now = targets.flood_written.load(Relaxed);
        stable = if now == last && now > start_written {
            stable + 1
        } else {
            0
        };
        last = now;
        stable >= 20
    })
    .await;
    assert!(
        stalled,
        "the floods did not stall within {stall_limit:?}: {} bytes written and still growing",
        last - start_written
    );
    println!(
        "floods stalled after {:.1} s",
        stall_start.elapsed().as_secs_f64()
    );
    let buffered = last - start_written;
    let stalled_rss = relay.rss_kib();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = relay.rss_kib();

    // A fifth resume and must receive every byte; the others reset.
    let mut resumed = Vec::new();
    for (id, cap, ws) in clients {
        if cap == 0 {
            chaos::reset(ws.into_inner());
            continue;
        }
        resumed.push(tokio::spawn(async move {
            let (_, mut stream) = ws.split();
            let mut expected = chaos::ByteStream::new(id ^ 0x9e37_79b9_7f4a_7c15);
            let mut got = 0u64;
            loop {
                match tokio::time::timeout(WAIT, stream.next()).await {
                    Ok(Some(Ok(Message::Binary(b)))) => {
                        assert!(expected.check(&b), "resumed reader {id}: bytes differ");
                        got += b.len() as u64;
                    }
                    Ok(Some(Ok(Message::Close(f)))) => {
                        assert_eq!(f.map(|f| u16::from(f.code)), Some(1000));
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("resumed reader {id}: {other:?} after {got} bytes"),
                }
            }
            assert_eq!(got, u64::from(cap), "resumed reader {id}");
            got
        }));
    }
    let mut resumed_bytes = 0;
    for r in resumed {
        resumed_bytes += r.await.unwrap();
    }
    assert!(
        eventually(WAIT, async || quiet(relay.http).await).await,
        "bridges left open after the stalled readers"
    );
    let mut fds_after = fd_count(pid);
    let released = eventually(WAIT, async || {
        fds_after = fd_count(pid);
        fds_after <= fds_before
    })
    .await;
    assert!(released, "relay holds {fds_after} fds, {fds_before} before");
    StalledFigures {
        before,
        stalled: stalled_rss,
        later,
        buffered,
        resumed_bytes,
        fds_before,
        fds_after,
    }
}

#[test]
fn bounds_scale_with_the_soak_duration() {
    assert_eq!(min_bridges(DEFAULT_SECS), 1000);
    assert_eq!(min_bridges(180), 6000);
    assert_eq!(min_bridges(3), 100);
    assert_eq!(stall_limit(DEFAULT_SECS), STALL_LIMIT);
    assert_eq!(stall_limit(100), Duration::from_secs(50));
    assert_eq!(stall_limit(600), Duration::from_secs(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_and_chaos() {
    let test_start = Instant::now();
    let secs = soak_secs();
    let targets = Targets::start().await;

    // Memory while readers are stalled.
    let phase = Instant::now();
    let stalled = stalled_readers(&targets, stall_limit(secs)).await;
    println!(
        "stalled-readers phase: {:.1} s",
        phase.elapsed().as_secs_f64()
    );
    let per_bridge = stalled.stalled.saturating_sub(stalled.before) / STALLED_READERS as u64;
    // Allowed, but nothing listens there.
    let closed = ClosedPort::tcp();
    let unreachable = closed.addr;
    let (chaos_target, dead_target) = (targets.addr.to_string(), unreachable.to_string());
    let relay = RelayProcess::spawn(&[
        "--allow",
        &chaos_target,
        "--allow",
        &dead_target,
        "--max-message",
        &MAX_MESSAGE.to_string(),
        "--idle-timeout",
        &IDLE_TIMEOUT.as_secs().to_string(),
        "--max-conns",
        "4096",
    ]);
    let pid = relay.child.id();
    let ctx = Arc::new(Ctx {
        http: relay.http,
        targets: targets.clone(),
        unreachable,
        max_message: MAX_MESSAGE,
        idle_timeout: IDLE_TIMEOUT,
        stats: Stats::default(),
    });

    // Warm up allocator and runtime, then take the baselines with no bridge open.
    for id in 0..WARM_UP {
        chaos::run(&ctx, "echo, clean close", 2_000_000_000 + id)
            .await
            .unwrap();
    }
    let http = ctx.http;
    assert!(eventually(WAIT, async || quiet(http).await).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_before = fd_count(pid);
    let rss_baseline = relay.rss_kib();

    // The soak proper.
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak_rss.clone();
        let path = format!("/proc/{pid}/status");
        tokio::spawn(async move {
            loop {
                if let Some(kib) = std::fs::read_to_string(&path).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                }) {
                    peak.fetch_max(kib, Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let running = Arc::new(AtomicU64::new(0));
    let mut rng = Rng::new(0x50a4);
    let mut tasks = tokio::task::JoinSet::new();
    let mut id = 0u64;
    while Instant::now() < deadline {
        let permit = limit.clone().acquire_owned().await.unwrap();
        id += 1;
        let mut scenario = chaos::pick(&mut rng);
        // Idle bridges last 1.5 idle timeouts: none in the last stretch, so the run ends soon
        // after its deadline.
        if scenario == "idle bridge" && deadline - Instant::now() < 2 * IDLE_TIMEOUT {
            scenario = "echo, clean close";
        }
        ctx.stats.bridges.fetch_add(1, Relaxed);
        let task_ctx = ctx.clone();
        let running = running.clone();
        tasks.spawn(async move {
            let ctx = task_ctx;
            let now = running.fetch_add(1, Relaxed) + 1;
            ctx.stats.peak_concurrency.fetch_max(now, Relaxed);
            let result =
                tokio::time::timeout(BRIDGE_DEADLINE, chaos::run(&ctx, scenario, id)).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => ctx.stats.error(format!("bridge {id} ({scenario}): {e}")),
                Err(_) => ctx.stats.error(format!(
                    "bridge {id} ({scenario}): still running after {BRIDGE_DEADLINE:?}"
                )),
            }
            running.fetch_sub(1, Relaxed);
            drop(permit);
        });
        // Reap finished tasks as we go (a panic is a failure too).
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                ctx.stats.error(format!("a bridge task panicked: {e}"));
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            ctx.stats.error(format!("a bridge task panicked: {e}"));
        }
    }
    let soak_time = started.elapsed();
    println!("soak phase: {:.1} s", soak_time.as_secs_f64());
    sampler.abort();

    // Everything closes: no bridge, echo connection, target connection or descriptor remains.
    let drained = eventually(Duration::from_secs(60), async || quiet(http).await).await;
    let targets_closed = eventually(Duration::from_secs(60), async || {
        targets.open.load(Relaxed) == 0
    })
    .await;
    let mut fds_after = fd_count(pid);
    let fds_back = eventually(Duration::from_secs(30), async || {
        fds_after = fd_count(pid);
        fds_after <= fds_before
    })
    .await;
    let rss_after = relay.rss_kib();
    let m = scrape(ctx.http).await;

    // Every byte that reached a target was exact and in order.
    let records = targets.records();
    let corrupt: Vec<_> = records.iter().filter(|(_, r)| !r.intact).collect();
    let delivered: u64 = records.iter().map(|(_, r)| r.received).sum();

    let s = &ctx.stats;
    let unreachable_count = s.faults().get("target unreachable").copied().unwrap_or(0);
    let upgraded = s.upgraded.load(Relaxed);
    let soak_upgraded = upgraded.saturating_sub(WARM_UP);
    println!("\n==== soak report ====");
    println!(
        "duration: {:.1} s of new bridges (SOCKRELAY_SOAK_SECS={secs}), {} at a time (peak {})",
        soak_time.as_secs_f64(),
        CONCURRENCY,
        s.peak_concurrency.load(Relaxed)
    );
    println!(
        "bridges: {} started in the soak (+{WARM_UP} warm-up); {} upgraded (with the warm-up), {} \
         cleanly closed and checked complete",
        s.bridges.load(Relaxed),
        upgraded,
        s.clean.load(Relaxed),
    );
    println!("scenarios:");
    for (name, n) in s.scenarios() {
        println!("  {n:>6}  {name}");
    }
    println!("faults injected:");
    for (name, n) in s.faults() {
        println!("  {n:>6}  {name}");
    }
    println!("endings seen by clients:");
    for (name, n) in s.endings() {
        println!("  {n:>6}  {name}");
    }
    println!(
        "bytes: client->target {} delivered to targets, all intact ({} target connections, {} corrupt); \
         target->client {} checked by clients; {} on cleanly closed bridges, complete both ways",
        mib(delivered),
        records.len(),
        corrupt.len(),
        mib(s.down_bytes.load(Relaxed)),
        mib(s.clean_bytes.load(Relaxed)),
    );
    println!(
        "relay /metrics: bridges_total {}, bytes client_to_target {}, target_to_client {}, \
         refusals {:?}, errors {:?}",
        metric(&m, "sockrelay_bridges_total"),
        mib(metric(
            &m,
            "sockrelay_bridge_bytes_total{direction=\"client_to_target\"}"
        )),
        mib(metric(
            &m,
            "sockrelay_bridge_bytes_total{direction=\"target_to_client\"}"
        )),
        m.iter()
            .filter(|(k, _)| k.starts_with("sockrelay_refusals_total"))
            .map(|(k, v)| (k.split('"').nth(1).unwrap_or("").to_owned(), *v as u64))
            .collect::<Vec<_>>(),
        m.iter()
            .filter(|(k, _)| k.starts_with("sockrelay_bridge_errors_total"))
            .map(|(k, v)| (k.split('"').nth(1).unwrap_or("").to_owned(), *v as u64))
            .collect::<Vec<_>>(),
    );
    println!(
        "after: bridges_active {}, echo_connections_active {}, target connections open {}; \
         relay fds {fds_before} before, {fds_after} after",
        metric(&m, "sockrelay_bridges_active"),
        metric(&m, "sockrelay_echo_connections_active"),
        targets.open.load(Relaxed),
    );
    println!(
        "relay RSS: {rss_baseline} KiB at baseline, peak {} KiB during the soak, {rss_after} KiB \
         at the end",
        peak_rss.load(Relaxed),
    );
    println!(
        "stalled readers (own relay process): RSS {} KiB before, {} KiB with {STALLED_READERS} \
         readers stalled ({per_bridge} KiB per bridge; {} held in kernel buffers), {} KiB 3 s \
         later; {} all received by the {} readers that resumed; relay fds {} before, {} after",
        stalled.before,
        stalled.stalled,
        mib(stalled.buffered),
        stalled.later,
        mib(stalled.resumed_bytes),
        STALLED_READERS / 5,
        stalled.fds_before,
        stalled.fds_after,
    );
    let errors = s.errors();
    println!("errors: {}", errors.len());
    for e in errors.iter().take(30) {
        println!("  {e}");
    }
    println!("whole test: {:.1} s", test_start.elapsed().as_secs_f64());
    println!("====================\n");

    assert!(
        errors.is_empty(),
        "{} bridges broke a promise",
        errors.len()
    );
    assert!(corrupt.is_empty(), "corrupt deliveries: {corrupt:?}");
    assert!(drained, "bridges still open after the soak: {m:?}");
    assert!(
        targets_closed,
        "{} target connections still open",
        targets.open.load(Relaxed)
    );
    assert!(
        fds_back,
        "relay holds {fds_after} fds, {fds_before} before the soak"
    );
    assert_eq!(
        metric(&m, "sockrelay_bridges_total"),
        upgraded - unreachable_count,
        "every upgraded bridge to a reachable target is counted once"
    );
    // Bounded memory: a stalled reader costs the relay its fixed buffers, not the flood.
    assert!(
        per_bridge < 512,
        "{per_bridge} KiB of relay memory per stalled reader"
    );
    assert!(
        stalled.later < stalled.stalled + 8 * 1024,
        "relay memory grew from {} to {} KiB while its readers stayed stalled",
        stalled.stalled,
        stalled.later
    );
    assert!(
        soak_upgraded >= min_bridges(secs),
        "only {soak_upgraded} bridges upgraded in {secs} s of soak ({} started), at least {} \
         expected",
        s.bridges.load(Relaxed),
        min_bridges(secs)
    );
}
