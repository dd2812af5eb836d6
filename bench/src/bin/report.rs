//! `bench-report RESULTS.jsonl [--md OUT.md] [--svg OUT.svg]`: the table, the goal checks and
//! the plot from the records `loadgen` appended. Several rounds of one (workload, system) are
//! reduced to their median; the spread (max - min) / median shows how noisy the machine was.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use sockrelay_bench::{size_label, Record};

#[derive(Parser, Debug)]
#[command(
    name = "bench-report",
    about = "Tables, goal checks and a plot from loadgen results"
)]
struct Cli {
    /// The JSON Lines file the load generator appended to.
    results: PathBuf,
    /// Also write the Markdown report here.
    #[arg(long)]
    md: Option<PathBuf>,
    /// Write the plot (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// A line describing the machine and run, shown above the tables and in the plot title.
    #[arg(long, default_value = "")]
    title: String,
}

/// The workload name of the busy-memory run (reported apart from the throughput table).
const BUSY: &str = "busy RSS";

/// Display order and plot colours.
const SYSTEMS: [(&str, &str, RGBColor); 8] = [
    ("bare-echo", "bare tokio echo", RGBColor(150, 150, 150)),
    (
        "sockrelay-echo-before",
        "sockrelay echo (before)",
        RGBColor(158, 202, 225),
    ),
    ("sockrelay-echo", "sockrelay echo", RGBColor(31, 119, 180)),
    (
        "bare-proxy",
        "bare tcp proxy (floor)",
        RGBColor(110, 110, 110),
    ),
    (
        "sockrelay-ws-before",
        "sockrelay /ws (before)",
        RGBColor(240, 150, 150),
    ),
    ("sockrelay-ws", "sockrelay /ws", RGBColor(214, 39, 40)),
    ("websocat", "websocat", RGBColor(255, 127, 14)),
    ("websockify", "websockify", RGBColor(44, 160, 44)),
];

/// A system's name in the report (its own id when it is not one of [`SYSTEMS`]).
fn label(system: &str) -> &str {
    SYSTEMS
        .iter()
        .find(|(s, _, _)| *s == system)
        .map_or(system, |(_, label, _)| label)
}

/// Axis labels in the plot.
fn short(system: &str) -> &str {
    match system {
        "bare-echo" => "bare",
        "sockrelay-echo" => "echo",
        "sockrelay-ws" => "/ws",
        "sockrelay-echo-before" => "echo (old)",
        "sockrelay-ws-before" => "/ws (old)",
        "bare-proxy" => "floor",
        other => other,
    }
}

/// Server CPU time per message, µs.
fn cpu_per_msg(c: &Cell) -> f64 {
    c.cpu.map_or(f64::NAN, |v| v / 100.0 / c.msgs_per_s * 1e6)
}

#[derive(Debug, Clone, Default)]
struct Cell {
    /// `tcp`, `ws` or `udp` (see [`Record::mode`]).
    mode: String,
    rounds: usize,
    conns: usize,
    size: usize,
    inflight: usize,
    msgs_per_s: f64,
    spread_pct: f64,
    mib_per_s: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    cpu: Option<f64>,
    rss_kib: Option<u64>,
    foreign: Option<f64>,
    /// Median busy % of the load generator's CPU.
    load: Option<f64>,
    /// Median CPU % of the echo target, when it shares the server's CPU.
    target_cpu: Option<f64>,
    /// UDP runs: datagrams sent, lost and late over all rounds.
    sent: u64,
    lost: u64,
    late: u64,
}

impl Cell {
    /// A workload whose echo target shares the server's CPU (its CPU was measured).
    fn shared(&self) -> bool {
        self.target_cpu.is_some()
    }

    /// The server's and the target's CPU time per message together, µs.
    fn cpu_per_msg_with_target(&self) -> f64 {
        match (self.cpu, self.target_cpu) {
            (Some(a), Some(b)) => (a + b) / 100.0 / self.msgs_per_s * 1e6,
            _ => f64::NAN,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn reduce(records: &[&Record]) -> Cell {
    let m = |f: fn(&Record) -> f64| median(records.iter().map(|r| f(r)).collect());
    let rates: Vec<f64> = records.iter().map(|r| r.msgs_per_s).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let msgs_per_s = median(rates);
    let cpus: Vec<f64> = records.iter().filter_map(|r| r.server_cpu_pct).collect();
    let foreign: Vec<f64> = records.iter().filter_map(|r| r.foreign_cpu_pct).collect();
    let load: Vec<f64> = records.iter().filter_map(|r| r.load_cpu_pct).collect();
    let target: Vec<f64> = records.iter().filter_map(|r| r.target_cpu_pct).collect();
    let first = records[0];
    let sum = |f: fn(&Record) -> Option<u64>| records.iter().filter_map(|r| f(r)).sum();
    Cell {
        mode: first.mode.clone(),
        rounds: records.len(),
        conns: first.conns,
        size: first.size,
        inflight: first.inflight,
        msgs_per_s,
        spread_pct: if msgs_per_s > 0.0 {
            (hi - lo) / msgs_per_s * 100.0
        } else {
            0.0
        },
        mib_per_s: m(|r| r.mib_per_s),
        p50: m(|r| r.p50_us),
        p99: m(|r| r.p99_us),
        p999: m(|r| r.p999_us),
        cpu: (!cpus.is_empty()).then(|| median(cpus)),
        rss_kib: records.iter().filter_map(|r| r.server_rss_kib).max(),
        foreign: (!foreign.is_empty()).then(|| median(foreign)),
        load: (!load.is_empty()).then(|| median(load)),
        target_cpu: (!target.is_empty()).then(|| median(target)),
        sent: sum(|r| r.sent),
        lost: sum(|r| r.lost),
        late: sum(|r| r.late),
    }
}

/// A load generator's CPU at least this busy (%) limited the throughput it measured.
const LOAD_BOUND: f64 = 95.0;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let text = std::fs::read_to_string(&cli.results)
        .with_context(|| format!("read {}", cli.results.display()))?;
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("parse results")?;

    // workload (in first-seen order) -> system -> cell
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&Record>> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.kind == "throughput" && r.workload != BUSY)
    {
        if !order.contains(&r.workload) {
            order.push(r.workload.clone());
        }
        groups
            .entry((r.workload.clone(), r.system.clone()))
            .or_default()
            .push(r);
    }
    let cells: BTreeMap<(String, String), Cell> =
        groups.iter().map(|(k, v)| (k.clone(), reduce(v))).collect();
    let cell = |w: &str, s: &str| cells.get(&(w.to_owned(), s.to_owned()));

    let mut md = String::new();
    if !cli.title.is_empty() {
        writeln!(md, "{}\n", cli.title)?;
    }
    writeln!(
        md,
        "| workload | system | msgs/s | MiB/s | p50 µs | p99 µs | p99.9 µs | server CPU | CPU µs/msg | RSS MiB | ratio | spread | other load | load CPU |"
    )?;
    writeln!(
        md,
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|"
    )?;
    for w in &order {
        for (sys, label, _) in SYSTEMS {
            let Some(c) = cell(w, sys) else { continue };
            let ratio = match sys {
                "sockrelay-echo" | "sockrelay-echo-before" => cell(w, "bare-echo")
                    .map(|b| format!("{:.2}x bare echo", c.msgs_per_s / b.msgs_per_s)),
                "sockrelay-ws" | "sockrelay-ws-before" | "bare-proxy" => {
                    let peers: &[&str] = if sys == "bare-proxy" {
                        &["websocat"]
                    } else {
                        &["bare-proxy", "websocat", "websockify"]
                    };
                    let parts: Vec<String> = peers
                        .iter()
                        .filter_map(|p| {
                            let name = if *p == "bare-proxy" { "floor" } else { p };
                            cell(w, p)
                                .map(|b| format!("{:.2}x {name}", c.msgs_per_s / b.msgs_per_s))
                        })
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(", "))
                }
                _ => None,
            };
            writeln!(
                md,
                "| {w} | {label} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.0}% of {} | {} | {} |",
                c.msgs_per_s,
                c.mib_per_s,
                c.p50,
                c.p99,
                c.p999,
                c.cpu.map_or("-".into(), |v| format!("{v:.0}%")),
                c.cpu.map_or("-".into(), |_| format!("{:.2}", cpu_per_msg(c))),
                c.rss_kib
                    .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
                ratio.unwrap_or_default(),
                c.spread_pct,
                c.rounds,
                c.foreign.map_or("-".into(), |v| format!("{v:.0}%")),
                c.load.map_or("-".into(), |v| format!("{v:.0}%")),
            )?;
        }
    }
    let shape = |w: &str| {
        SYSTEMS
            .iter()
            .find_map(|(s, _, _)| cell(w, s))
            .map(|c| {
                format!(
                    "{} x {} conns x {} in flight",
                    size_label(c.size),
                    c.conns,
                    c.inflight
                )
            })
            .unwrap_or_default()
    };
    writeln!(md)?;
    for w in &order {
        writeln!(md, "- `{w}`: {}", shape(w))?;
    }

    let idle: Vec<&Record> = records.iter().filter(|r| r.kind == "idle").collect();
    let busy: Vec<&Record> = records
        .iter()
        .filter(|r| r.workload == BUSY && r.server_rss_kib.is_some())
        .collect();
    if !idle.is_empty() || !busy.is_empty() {
        writeln!(md, "\n**Memory (sockrelay)**\n")?;
    }
    for r in &idle {
        let who = label(&r.system);
        writeln!(
            md,
            "- {who}: {} idle bridges: RSS {} KiB -> {} KiB, **{:.1} KiB per bridge** ({:.1} KiB per bridge over the second half)",
            r.idle_bridges.unwrap_or(0),
            r.rss_before_kib.unwrap_or(0),
            r.rss_after_kib.unwrap_or(0),
            r.rss_per_bridge_bytes.unwrap_or(f64::NAN) / 1024.0,
            r.rss_per_bridge_marginal_bytes.unwrap_or(f64::NAN) / 1024.0,
        )?;
    }
    for r in busy {
        let who = label(&r.system);
        writeln!(
            md,
            "- {who}: {} busy bridges ({} B messages, {:.0} msgs/s): peak RSS {} KiB",
            r.conns,
            r.size,
            r.msgs_per_s,
            r.server_rss_kib.unwrap_or(0)
        )?;
    }

    let udp: Vec<&String> = order
        .iter()
        .filter(|w| {
            SYSTEMS
                .iter()
                .any(|(s, _, _)| cell(w, s).is_some_and(|c| c.mode == "udp"))
        })
        .collect();
    if !udp.is_empty() {
        writeln!(
            md,
            "\n**UDP** (datagrams whose echo was not back within the loss timeout, over every \
             round, warm-up included; late: came back after it)\n"
        )?;
        for w in &udp {
            for (sys, label, _) in SYSTEMS {
                let Some(c) = cell(w, sys) else { continue };
                writeln!(
                    md,
                    "- `{w}`, {label}: {} of {} datagrams lost ({:.3}%), {} of them late",
                    c.lost,
                    c.sent,
                    c.lost as f64 * 100.0 / (c.sent.max(1)) as f64,
                    c.late
                )?;
            }
        }
    }
    let shared: Vec<&String> = order
        .iter()
        .filter(|w| {
            SYSTEMS
                .iter()
                .any(|(s, _, _)| cell(w, s).is_some_and(Cell::shared))
        })
        .collect();
    if !shared.is_empty() {
        writeln!(
            md,
            "\n**Shared CPU** (the bridge and a copying echo target pinned to the same CPU, as on a \
             one-box install; `server CPU` above is the bridge's alone)\n"
        )?;
        for w in &shared {
            for (sys, label, _) in SYSTEMS {
                let Some(c) = cell(w, sys) else { continue };
                let (Some(mine), Some(target)) = (c.cpu, c.target_cpu) else {
                    continue;
                };
                writeln!(
                    md,
                    "- `{w}`, {label}: {:.1} MiB/s; bridge CPU {mine:.0}%, echo target CPU \
                     {target:.0}%, together {:.0}%: {:.1} µs per message",
                    c.mib_per_s,
                    mine + target,
                    c.cpu_per_msg_with_target()
                )?;
            }
        }
    }

    // Goals.
    writeln!(md, "\n**Goals**\n")?;
    // `notes`: what else explains the figure (the floor's ratio, CPU per message, the load
    // side's saturation).
    let mut goal = |name: &str, value: Option<f64>, want: &str, ok: Option<bool>, notes: &str| {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measured",
        };
        let value = value.map_or("-".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(md, "- {name}: {value} (goal {want}): {verdict}{notes}");
    };
    // The same ratio for the bare TCP proxy, the floor of a bridge that copies.
    let floor_note = |f: Option<f64>| {
        f.map_or(String::new(), |f| {
            format!("; a bare TCP proxy (the floor) reaches {f:.2}")
        })
    };
    let ratio =
        |w: &str, a: &str, b: &str, f: fn(&Cell) -> f64| Some(f(cell(w, a)?) / f(cell(w, b)?));
    // The UDP and shared-CPU workloads have goals of their own.
    let plain = |c: &Cell| c.mode != "udp" && !c.shared();
    let small = order.iter().find(|w| {
        cell(w, "bare-echo")
            .or(cell(w, "sockrelay-ws"))
            .is_some_and(|c| plain(c) && c.size == 64 && c.conns == 50)
    });
    let bulk = order.iter().find(|w| {
        cell(w, "sockrelay-ws")
            .or(cell(w, "websocat"))
            .is_some_and(|c| plain(c) && c.size == 64 * 1024 && c.conns == 8)
    });
    let msgs: fn(&Cell) -> f64 = |c| c.msgs_per_s;
    let mib: fn(&Cell) -> f64 = |c| c.mib_per_s;
    // The workload, the system and what it is compared with, the measure, the goal's name, the
    // goal as written and the least ratio that meets it.
    type RatioGoal<'a> = (
        Option<&'a String>,
        &'a str,
        &'a str,
        fn(&Cell) -> f64,
        &'a str,
        &'a str,
        f64,
    );
    let ratio_goals: [RatioGoal<'_>; 5] = [
        (
            small,
            "sockrelay-echo",
            "bare-echo",
            msgs,
            "sockrelay echo / bare echo, msgs/s, 64 B x 50",
            ">= 0.95",
            0.95,
        ),
        (
            small,
            "sockrelay-ws",
            "websocat",
            msgs,
            "/ws / websocat, msgs/s, 64 B x 50",
            ">= 2",
            2.0,
        ),
        (
            small,
            "sockrelay-ws",
            "websockify",
            msgs,
            "/ws / websockify, msgs/s, 64 B x 50",
            "far ahead",
            2.0,
        ),
        (
            bulk,
            "sockrelay-ws",
            "websocat",
            mib,
            "/ws / websocat, MiB/s, 64 KiB x 8",
            ">= 4",
            4.0,
        ),
        (
            bulk,
            "sockrelay-ws",
            "websockify",
            mib,
            "/ws / websockify, MiB/s, 64 KiB x 8",
            "far ahead",
            2.0,
        ),
    ];
    for (workload, system, against, measure, name, want, least) in ratio_goals {
        if let Some(w) = workload {
            let r = ratio(w, system, against, measure);
            let mut notes = String::new();
            if system == "sockrelay-ws" {
                notes += &floor_note(ratio(w, "bare-proxy", against, measure));
            }
            // Throughput ratios hold only while the system measured is what runs out.
            let per_msg = |s: &str| cell(w, s).filter(|c| c.cpu.is_some()).map(cpu_per_msg);
            if let (Some(mine), Some(theirs)) = (per_msg(system), per_msg(against)) {
                notes += &format!(
                    "; per message, {} uses {:.2}x {}'s CPU",
                    label(against),
                    theirs / mine,
                    label(system)
                );
            }
            if let Some(load) = cell(w, system).and_then(|c| c.load) {
                if load >= LOAD_BOUND {
                    notes += &format!(
                        "; the load generator's CPU was {load:.0}% busy: there the harness, not \
                         the systems, set the throughput"
                    );
                }
            }
            goal(name, r, want, r.map(|r| r >= least), &notes);
        }
    }
    for w in &udp {
        let r = ratio(w, "sockrelay-ws", "websocat", msgs);
        let mut notes = String::new();
        let per_msg = |s: &str| cell(w, s).filter(|c| c.cpu.is_some()).map(cpu_per_msg);
        if let (Some(mine), Some(theirs)) = (per_msg("sockrelay-ws"), per_msg("websocat")) {
            notes += &format!(
                "; per datagram, websocat uses {:.2}x sockrelay /ws's CPU",
                theirs / mine
            );
        }
        if let Some(load) = cell(w, "sockrelay-ws").and_then(|c| c.load) {
            if load >= LOAD_BOUND {
                notes += &format!(
                    "; the load generator's CPU was {load:.0}% busy: there the harness, not the \
                     systems, set the throughput"
                );
            }
        }
        goal(
            &format!("/ws / websocat over UDP, datagrams/s, {w}"),
            r,
            ">= 2",
            r.map(|r| r >= 2.0),
            &notes,
        );
    }
    for w in &order {
        if cell(w, "sockrelay-ws").is_some_and(|c| c.mode == "udp" || c.shared()) {
            continue;
        }
        let r = ratio(w, "sockrelay-ws", "websocat", |c| c.p99);
        if r.is_some() {
            goal(
                &format!("/ws p99 / websocat p99, {w}"),
                r,
                "<= 1",
                r.map(|r| r <= 1.0),
                &floor_note(ratio(w, "bare-proxy", "websocat", |c| c.p99)),
            );
        }
    }
    if let Some(r) = idle.iter().rev().find(|r| r.system == "sockrelay-ws") {
        let kib = r.rss_per_bridge_bytes.map(|b| b / 1024.0);
        goal(
            "RSS per idle bridge, KiB",
            kib,
            "<= 16",
            kib.map(|k| k <= 16.0),
            "",
        );
    }
    for w in &shared {
        if let Some(r) = ratio(w, "sockrelay-ws", "bare-proxy", mib) {
            writeln!(
                md,
                "- /ws / floor, MiB/s, {w} (bridge and echo target on one CPU): {r:.2} (no goal \
                 of its own)"
            )?;
        }
        let r = ratio(w, "sockrelay-ws", "websocat", mib);
        if r.is_some() {
            let per_msg = |s: &str| cell(w, s).map(Cell::cpu_per_msg_with_target);
            let notes = match (per_msg("sockrelay-ws"), per_msg("websocat")) {
                (Some(mine), Some(theirs)) if mine.is_finite() && theirs.is_finite() => format!(
                    "; per message, websocat and its target use {:.2}x the CPU of sockrelay and \
                     its target",
                    theirs / mine
                ),
                _ => String::new(),
            };
            let value = r.map_or("-".to_owned(), |r| format!("{r:.2}"));
            writeln!(
                md,
                "- /ws / websocat, MiB/s, {w} (bridge and echo target on one CPU): {value} \
                 (no goal of its own: reported beside the >= 4 above){notes}"
            )?;
        }
    }

    print!("{md}");
    if let Some(path) = &cli.md {
        std::fs::write(path, &md).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &cli.svg {
        let idle_now = idle.iter().rev().find(|r| r.system == "sockrelay-ws");
        plot(path, &cli.title, &order, &cells, idle_now.copied())?;
        println!("\nplot: {}", path.display());
    }
    Ok(())
}

type Cells = BTreeMap<(String, String), Cell>;

fn plot(
    path: &PathBuf,
    title: &str,
    order: &[String],
    cells: &Cells,
    idle: Option<&Record>,
) -> Result<()> {
    let cols = order.len().max(1);
    let width = 420 * cols as u32;
    let root = SVGBackend::new(path, (width, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut heading =
        "sockrelay (echo, /ws) vs a bare tokio echo (bare), a bare TCP proxy (floor), websocat and websockify".to_owned();
    if let Some(r) = idle {
        heading.push_str(&format!(
            "   |   {:.1} KiB RSS per idle bridge ({} bridges)",
            r.rss_per_bridge_bytes.unwrap_or(f64::NAN) / 1024.0,
            r.idle_bridges.unwrap_or(0)
        ));
    }
    let (top, body) = root.split_vertically(60);
    top.draw(&Text::new(
        heading,
        (10, 8),
        ("sans-serif", 20).into_font().color(&BLACK),
    ))
    .map_err(plot_err)?;
    top.draw(&Text::new(
        title.to_owned(),
        (10, 36),
        ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
    ))
    .map_err(plot_err)?;
    let panels = body.split_evenly((3, cols));
    for (i, w) in order.iter().enumerate() {
        let present: Vec<(&str, RGBColor, &Cell)> = SYSTEMS
            .iter()
            .filter_map(|(s, _, colour)| {
                cells
                    .get(&(w.clone(), (*s).to_owned()))
                    .map(|c| (*s, *colour, c))
            })
            .collect();
        if present.is_empty() {
            continue;
        }
        let bulk = present[0].2.size >= 16 * 1024;
        let (metric, unit): (fn(&Cell) -> f64, &str) = if bulk {
            (|c| c.mib_per_s, "MiB/s")
        } else {
            (|c| c.msgs_per_s, "msgs/s")
        };
        bars(
            &panels[i],
            &format!("{w}: {unit} (higher is better)"),
            &present,
            metric,
            Scale::Linear,
        )?;
        bars(
            &panels[cols + i],
            &format!("{w}: p99 latency, µs (lower is better)"),
            &present,
            |c| c.p99,
            Scale::Log,
        )?;
        bars(
            &panels[2 * cols + i],
            &format!("{w}: server CPU µs per message (lower is better)"),
            &present,
            cpu_per_msg,
            Scale::Log,
        )?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

fn bars(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    present: &[(&str, RGBColor, &Cell)],
    metric: fn(&Cell) -> f64,
    scale: Scale,
) -> Result<()> {
    let n = present.len() as i32;
    let values: Vec<f64> = present.iter().map(|(_, _, c)| metric(c)).collect();
    let finite = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0);
    let hi = finite.clone().fold(0.0, f64::max).max(1e-9);
    let lo = finite.fold(f64::INFINITY, f64::min).min(hi);
    let names: Vec<&str> = present.iter().map(|(s, _, _)| short(s)).collect();
    let label = |v: f64| {
        if v >= 100_000.0 {
            format!("{:.0}k", v / 1000.0)
        } else if v == 0.0 {
            "0".to_owned()
        } else if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    };
    let x_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            names.get(*i as usize).copied().unwrap_or("").to_owned()
        }
        SegmentValue::Last => String::new(),
    };
    let text_style = ("sans-serif", 11)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(52);
    let x = (0..n - 1).into_segmented();
    match scale {
        Scale::Linear => {
            let top = hi * 1.18;
            let mut chart = builder.build_cartesian_2d(x, 0f64..top).map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(present.len())
                .x_label_formatter(&x_fmt)
                .x_label_style(("sans-serif", 10))
                .y_label_formatter(&|v| label(*v))
                .draw()
                .map_err(plot_err)?;
            for (i, (_, colour, _)) in present.iter().enumerate() {
                let v = values[i];
                if !v.is_finite() {
                    continue;
                }
                chart
                    .draw_series(
                        Histogram::vertical(&chart)
                            .style(colour.filled())
                            .margin(6)
                            .data(std::iter::once((i as i32, v))),
                    )
                    .map_err(plot_err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label(v),
                        (SegmentValue::CenterOf(i as i32), v + top * 0.01),
                        text_style.clone(),
                    )))
                    .map_err(plot_err)?;
            }
        }
        Scale::Log => {
            let (bottom, top) = (lo / 2.0, hi * 3.0);
            let mut chart = builder
                .build_cartesian_2d(x, (bottom..top).log_scale())
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(present.len())
                .x_label_formatter(&x_fmt)
                .x_label_style(("sans-serif", 10))
                .y_labels(6)
                .y_label_formatter(&|v| label(*v))
                .draw()
                .map_err(plot_err)?;
            for (i, (_, colour, _)) in present.iter().enumerate() {
                let v = values[i];
                if !v.is_finite() || v <= 0.0 {
                    continue;
                }
                chart
                    .draw_series(
                        Histogram::vertical(&chart)
                            .style(colour.filled())
                            .margin(6)
                            .baseline(bottom)
                            .data(std::iter::once((i as i32, v))),
                    )
                    .map_err(plot_err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label(v),
                        (SegmentValue::CenterOf(i as i32), v * 1.08),
                        text_style.clone(),
                    )))
                    .map_err(plot_err)?;
            }
        }
    }
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plot: {e:?}")
}
