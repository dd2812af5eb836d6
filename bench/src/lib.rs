//! Shared pieces of the benchmark harness: the result record the load generator writes and the
//! report reads, the byte pattern every echoed byte is checked against, `/proc` probes for a
//! server's memory and CPU time, and the accept loop of the reference servers.

use std::fs;

use serde::{Deserialize, Serialize};

/// One measurement: a line of the results file (JSON Lines).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// `throughput` (a load run) or `idle` (the idle-bridge memory run).
    pub kind: String,
    /// The system measured, e.g. `sockrelay-ws`, `websocat`, `bare-echo`.
    pub system: String,
    /// The workload name, e.g. `64B x 50`.
    pub workload: String,
    /// `tcp`, `ws` or `udp` (WebSocket messages bridged to UDP datagrams).
    pub mode: String,
    pub round: u32,
    pub conns: usize,
    pub size: usize,
    pub inflight: usize,
    /// Length of the measured window (warm-up excluded), seconds.
    pub seconds: f64,
    /// Messages whose echo came back complete and verified inside the window.
    pub msgs: u64,
    pub msgs_per_s: f64,
    /// Payload MiB/s in one direction (each echoed byte counted once).
    pub mib_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// CPU used by the server process tree during the window, in % of one CPU (when `--pid`).
    pub server_cpu_pct: Option<f64>,
    /// Highest RSS of the server process during the window, KiB (when `--pid`).
    pub server_rss_kib: Option<u64>,
    /// CPU time other processes took on the server's CPU during the window, in % of that CPU
    /// (when `--sut-cpu` and `--pid`): how much the machine's other work got in the way.
    pub foreign_cpu_pct: Option<f64>,
    /// How busy the load generator's CPUs were during the window, in % (their average, when
    /// `--load-cpu`): near 100, the load side (load generator, and the echo target sharing its
    /// CPUs) limited the throughput, not the server.
    pub load_cpu_pct: Option<f64>,
    /// Measurement attempts made (more than 1 when `--attempts` retried a disturbed window).
    pub attempts: Option<u32>,
    /// CPU used by the target (the echo the bridges connect to) during the window, in % of one
    /// CPU (when `--target-pid`): the shared-CPU workloads pin it beside the server.
    pub target_cpu_pct: Option<f64>,
    /// UDP run: datagrams sent over the whole run (warm-up and drain included).
    pub sent: Option<u64>,
    /// UDP run: datagrams whose echo did not come back within the loss timeout.
    pub lost: Option<u64>,
    /// UDP run: echoes that came back after their datagram was counted lost (still lost).
    pub late: Option<u64>,
    /// Idle run: bridges held open at the measurement.
    pub idle_bridges: Option<usize>,
    /// Idle run: RSS before any bridge and with all bridges open, KiB.
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// Idle run: (after - before) / bridges, bytes.
    pub rss_per_bridge_bytes: Option<f64>,
    /// Idle run: the same from the second half of the bridges only (no one-time costs), bytes.
    pub rss_per_bridge_marginal_bytes: Option<f64>,
}

/// How many different message contents a connection cycles through.
pub const SHIFTS: usize = 251;

/// A connection's byte pattern: message `seq` is `pattern[seq % 251 ..][..size]`, so a lost,
/// duplicated, reordered or corrupted message (or byte) does not match.
pub fn pattern(conn: u64, size: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ conn.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
    (0..size + SHIFTS)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Checks a received byte stream against the pattern, message by message.
#[derive(Debug)]
pub struct Verifier {
    pattern: std::sync::Arc<[u8]>,
    size: usize,
    /// Next message expected.
    pub seq: u64,
    /// Bytes of message `seq` already received.
    pub pos: usize,
}

impl Verifier {
    pub fn new(pattern: std::sync::Arc<[u8]>, size: usize) -> Verifier {
        Verifier {
            pattern,
            size,
            seq: 0,
            pos: 0,
        }
    }

    /// Consumes received bytes; calls `done` once per completed message.
    pub fn feed(&mut self, mut data: &[u8], mut done: impl FnMut()) -> Result<(), String> {
        while !data.is_empty() {
            let start = (self.seq % SHIFTS as u64) as usize + self.pos;
            let take = (self.size - self.pos).min(data.len());
            if data[..take] != self.pattern[start..start + take] {
                let at = data[..take]
                    .iter()
                    .zip(&self.pattern[start..start + take])
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                return Err(format!(
                    "echoed byte {} of message {} differs from what was sent",
                    self.pos + at,
                    self.seq
                ));
            }
            self.pos += take;
            data = &data[take..];
            if self.pos == self.size {
                self.pos = 0;
                self.seq += 1;
                done();
            }
        }
        Ok(())
    }
}

/// The bookkeeping of a load over a bridge to a UDP echo, where datagrams may be lost: which
/// datagrams are awaited, which were given up, and the checks of each echo.
pub mod datagrams {
    use std::collections::{HashSet, VecDeque};
    use std::time::Instant;

    use super::SHIFTS;

    /// The bytes at the start of each datagram that hold its sequence number (little-endian).
    pub const SEQ: usize = 8;

    /// Appends datagram `seq` of `size` bytes: the sequence number, then the connection's
    /// `pattern` (see [`super::pattern`]) from `seq % 251`, so that each echo is matched and
    /// checked on its own, whatever came back before it.
    pub fn append(out: &mut Vec<u8>, pattern: &[u8], seq: u64, size: usize) {
        let off = (seq % SHIFTS as u64) as usize;
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&pattern[off..off + size - SEQ]);
    }

    /// One connection's datagrams on their way.
    #[derive(Debug, Default)]
    pub struct Ledger {
        /// Sequence numbers and send times of the datagrams whose echo is awaited, oldest first.
        awaited: VecDeque<(u64, Instant)>,
        /// Datagrams counted lost, so that a late echo is told apart from a stray one.
        given_up: HashSet<u64>,
        /// Datagrams counted lost.
        pub lost: u64,
        /// Echoes that came back after their datagram was counted lost.
        pub late: u64,
    }

    impl Ledger {
        /// Datagram `seq` was sent at `at` (in sending order).
        pub fn sent(&mut self, seq: u64, at: Instant) {
            self.awaited.push_back((seq, at));
        }

        /// Datagrams awaited.
        pub fn awaited(&self) -> usize {
            self.awaited.len()
        }

        /// Checks one echo of `size` bytes against `pattern`: the send time of its datagram
        /// when it was awaited, `None` when it came back after being counted lost (counted
        /// late), or what is wrong with it.
        pub fn echoed(
            &mut self,
            echo: &[u8],
            pattern: &[u8],
            size: usize,
        ) -> Result<Option<Instant>, String> {
            if echo.len() != size {
                return Err(format!("an echo of {} bytes, not {size}", echo.len()));
            }
            let mut n = [0u8; SEQ];
            n.copy_from_slice(&echo[..SEQ]);
            let seq = u64::from_le_bytes(n);
            let off = (seq % SHIFTS as u64) as usize;
            if echo[SEQ..] != pattern[off..off + size - SEQ] {
                return Err(format!(
                    "the echo of datagram {seq} differs from what was sent"
                ));
            }
            // On loopback echoes come back in order: the first one awaited, as a rule.
            if let Some(i) = self.awaited.iter().position(|&(s, _)| s == seq) {
                return Ok(self.awaited.remove(i).map(|(_, at)| at));
            }
            if self.given_up.remove(&seq) {
                self.late += 1;
                return Ok(None);
            }
            Err(format!("an echo of datagram {seq}, which was not awaited"))
        }

        /// Counts as lost every awaited datagram sent before `before`; returns how many.
        pub fn expire(&mut self, before: Instant) -> usize {
            let mut n = 0;
            while let Some(&(seq, at)) = self.awaited.front() {
                if at >= before {
                    break;
                }
                self.awaited.pop_front();
                self.given_up.insert(seq);
                n += 1;
            }
            self.lost += n as u64;
            n
        }

        /// Counts every awaited datagram as lost; returns how many.
        pub fn give_up(&mut self) -> usize {
            let n = self.awaited.len();
            for (seq, _) in self.awaited.drain(..) {
                self.given_up.insert(seq);
            }
            self.lost += n as u64;
            n
        }
    }
}

/// `64`, `64B`, `16K`, `64KiB`, `1M`, `1MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let (num, mult) = if let Some(n) = upper
        .strip_suffix("KIB")
        .or_else(|| upper.strip_suffix('K'))
    {
        (n.to_owned(), 1024)
    } else if let Some(n) = upper
        .strip_suffix("MIB")
        .or_else(|| upper.strip_suffix('M'))
    {
        (n.to_owned(), 1024 * 1024)
    } else {
        (upper.strip_suffix('B').unwrap_or(&upper).to_owned(), 1)
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| format!("bad size {s:?} (examples: 64, 16K, 64KiB, 1M)"))?;
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(format!("bad size {s:?}: must be at least 1 byte")),
    }
}

/// `64 B`, `64 KiB`, `1 MiB` for tables.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Resident set size of a process, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU time of a process and all its descendants, in clock ticks.
pub fn tree_cpu_ticks(root: u32) -> Option<u64> {
    let procs = all_procs();
    let mut total = 0;
    let mut found = false;
    let mut frontier = vec![root];
    while let Some(pid) = frontier.pop() {
        for p in &procs {
            if p.pid == pid {
                total += p.ticks;
                found = true;
            }
            if p.ppid == pid {
                frontier.push(p.pid);
            }
        }
    }
    found.then_some(total)
}

/// Busy time of one CPU (user, nice, system, irq, softirq, steal) in clock ticks.
pub fn cpu_busy_ticks(cpu: usize) -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    Some([0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum())
}

/// Clock ticks per second for `/proc/*/stat` times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

struct ProcStat {
    pid: u32,
    ppid: u32,
    ticks: u64,
}

fn all_procs() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: split after the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the name: state(0) ppid(1) ... utime(11) stime(12).
            Some(ProcStat {
                pid,
                ppid: f.get(1)?.parse().ok()?,
                ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
            })
        })
        .collect()
}

/// The accept loop of the reference servers (`bare-echo`, `bare-proxy`): binds `addr`, prints
/// `listening on ADDR` once bound, then runs `handle` on a task of its own for every connection
/// until killed. A connection's error ends only that connection.
pub async fn serve<F, Fut>(name: &str, addr: std::net::SocketAddr, handle: F) -> anyhow::Result<()>
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: let connections finish, then retry.
                eprintln!("{name}: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = handle(stream);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("64B").unwrap(), 64);
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert_eq!(size_label(64), "64 B");
        assert_eq!(size_label(65536), "64 KiB");
    }

    #[test]
    fn verifier_accepts_the_stream_in_any_chunking_and_rejects_a_change() {
        let size = 10;
        let p: std::sync::Arc<[u8]> = pattern(3, size).into();
        let mut stream = Vec::new();
        for seq in 0..600u64 {
            let off = (seq % SHIFTS as u64) as usize;
            stream.extend_from_slice(&p[off..off + size]);
        }
        for chunk in [1, 7, 10, 64, 6000] {
            let mut v = Verifier::new(p.clone(), size);
            let mut n = 0;
            for c in stream.chunks(chunk) {
                v.feed(c, || n += 1).unwrap();
            }
            assert_eq!(n, 600);
        }
        let mut bad = stream.clone();
        bad[1234] ^= 1;
        let mut v = Verifier::new(p.clone(), size);
        assert!(v.feed(&bad, || ()).is_err());
        // A lost message is caught too.
        let mut v = Verifier::new(p, size);
        assert!(v.feed(&stream[size..], || ()).is_err());
    }

    #[test]
    fn a_lost_datagram_is_counted_once_and_its_late_echo_told_apart() {
        use super::datagrams::{append, Ledger};
        use std::time::{Duration, Instant};
        let size = 64;
        let p: std::sync::Arc<[u8]> = pattern(5, size).into();
        let t0 = Instant::now();
        let mut ledger = Ledger::default();
        let mut sent = Vec::new();
        for seq in 0..4u64 {
            ledger.sent(seq, t0 + Duration::from_millis(seq));
            let mut d = Vec::new();
            append(&mut d, &p, seq, size);
            assert_eq!(d.len(), size);
            sent.push(d);
        }
        // Echoes match their datagram, in any order.
        assert_eq!(
            ledger.echoed(&sent[1], &p, size).unwrap(),
            Some(t0 + Duration::from_millis(1))
        );
        assert_eq!(ledger.echoed(&sent[0], &p, size).unwrap(), Some(t0));
        // Datagram 2 is given up once its time has passed, not before; 3 is still awaited.
        assert_eq!(ledger.expire(t0 + Duration::from_millis(2)), 0);
        assert_eq!(ledger.expire(t0 + Duration::from_millis(3)), 1);
        assert_eq!(ledger.expire(t0 + Duration::from_millis(3)), 0);
        assert_eq!((ledger.lost, ledger.awaited()), (1, 1));
        // Its late echo counts as late, once; a second copy is an error, as is a repeat.
        assert_eq!(ledger.echoed(&sent[2], &p, size).unwrap(), None);
        assert_eq!((ledger.lost, ledger.late), (1, 1));
        assert!(ledger.echoed(&sent[2], &p, size).is_err());
        assert!(ledger.echoed(&sent[0], &p, size).is_err());
        // A changed byte or a wrong length is an error, and leaves 3 awaited.
        let mut bad = sent[3].clone();
        bad[40] ^= 1;
        assert!(ledger.echoed(&bad, &p, size).is_err());
        assert!(ledger.echoed(&sent[3][..32], &p, size).is_err());
        assert_eq!(ledger.give_up(), 1);
        assert_eq!((ledger.lost, ledger.late, ledger.awaited()), (2, 1, 0));
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(tree_cpu_ticks(me).is_some());
        assert!(cpu_busy_ticks(0).is_some());
    }
}

/// The load generator's own WebSocket client framing (RFC 6455), cheaper per byte than a
/// general-purpose client so that the bridge measured, not the load generator, runs out of CPU
/// first. Client frames carry the all-zero masking key: legal framing that every server unmasks
/// as it unmasks any other key (the same work for the bridge), while the client skips the XOR.
/// Server frames are parsed where they were read, their payload handed on without a copy.
pub mod ws {
    /// The header of one final, masked binary frame of `len` payload bytes (key 0).
    pub fn client_header(len: usize) -> Vec<u8> {
        let mut h = vec![0x82];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        h.extend_from_slice(&[0; 4]);
        h
    }

    /// The HTTP request that opens a WebSocket at `path` on `host`.
    pub fn handshake_request(host: &str, path: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    }

    /// `ws://HOST:PORT/PATH` as (`HOST:PORT`, `/PATH`).
    pub fn split_url(url: &str) -> Result<(&str, &str), String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        Ok(match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        })
    }

    /// What a stretch of server bytes held.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Event {
        /// All of it was payload or complete frames; more may follow.
        More,
        /// A Close frame arrived (bytes after it are ignored).
        Closed,
    }

    /// Parses the frames a server sends, across reads.
    #[derive(Debug, Default)]
    pub struct FrameReader {
        /// A header split across reads.
        header: Vec<u8>,
        /// Payload bytes of the current frame still to come.
        left: u64,
        /// Whether the current frame's payload is data (binary/continuation) or to be skipped.
        data: bool,
    }

    /// The length of a frame header whose second byte is `b1` (without a masking key).
    fn header_len(b1: u8) -> usize {
        match b1 & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    /// A whole header's first two bytes and its payload length.
    fn parse_header(h: &[u8]) -> (u8, u8, u64) {
        let len = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&h[2..10]);
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        (h[0], h[1], len)
    }

    impl FrameReader {
        /// Feeds `bytes`; `payload` gets every data byte in order. Text frames and masked
        /// server frames are errors; pings and pongs are skipped.
        pub fn feed(
            &mut self,
            mut bytes: &[u8],
            mut payload: impl FnMut(&[u8]) -> Result<(), String>,
        ) -> Result<Event, String> {
            while !bytes.is_empty() {
                if self.left > 0 {
                    let take = self.left.min(bytes.len() as u64) as usize;
                    if self.data {
                        payload(&bytes[..take])?;
                    }
                    self.left -= take as u64;
                    bytes = &bytes[take..];
                    continue;
                }
                // A header: 2 bytes, then 0, 2 or 8 of length. Parsed where it was read when
                // it is whole there (nearly always); gathered across reads otherwise.
                let (b0, b1, len) = match bytes {
                    [_, b1, ..] if self.header.is_empty() && bytes.len() >= header_len(*b1) => {
                        let (header, rest) = bytes.split_at(header_len(*b1));
                        bytes = rest;
                        parse_header(header)
                    }
                    _ => {
                        let need = |h: &[u8]| h.get(1).map_or(2, |b1| header_len(*b1));
                        while self.header.len() < need(&self.header) && !bytes.is_empty() {
                            self.header.push(bytes[0]);
                            bytes = &bytes[1..];
                        }
                        if self.header.len() < need(&self.header) {
                            break;
                        }
                        let parsed = parse_header(&self.header);
                        self.header.clear();
                        parsed
                    }
                };
                if b1 & 0x80 != 0 {
                    return Err("the server sent a masked frame".into());
                }
                match b0 & 0x0f {
                    0x0 | 0x2 => self.data = true,
                    0x1 => return Err("got a text message".into()),
                    0x8 => return Ok(Event::Closed),
                    0x9 | 0xa => self.data = false,
                    op => return Err(format!("unknown opcode {op:#x}")),
                }
                self.left = len;
            }
            Ok(Event::More)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod ws_tests {
    use super::ws::{client_header, split_url, Event, FrameReader};

    /// A server frame (unmasked).
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = client_header(payload.len());
        f[0] = 0x80 | opcode;
        f[1] &= 0x7f;
        f.truncate(f.len() - 4);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn client_headers_encode_each_length_form() {
        assert_eq!(client_header(5), [0x82, 0x85, 0, 0, 0, 0]);
        assert_eq!(client_header(126), [0x82, 0xfe, 0, 126, 0, 0, 0, 0]);
        assert_eq!(
            client_header(65_536)[..10],
            [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn frames_split_anywhere_give_the_payload_in_order() {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, len) in [0usize, 1, 125, 126, 300, 65_535, 65_536, 70_000]
            .iter()
            .enumerate()
        {
            let payload: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
            stream.extend(frame(0x2, &payload));
            expected.extend_from_slice(&payload);
            stream.extend(frame(0x9, b"ping"));
        }
        stream.extend(frame(0x8, &[0x03, 0xe8]));
        stream.extend(b"ignored");
        for chunk in [1, 2, 3, 7, 1000, 1 << 20] {
            let mut reader = FrameReader::default();
            let mut got = Vec::new();
            let mut end = Event::More;
            for piece in stream.chunks(chunk) {
                end = reader
                    .feed(piece, |p| {
                        got.extend_from_slice(p);
                        Ok(())
                    })
                    .unwrap();
                if end == Event::Closed {
                    break;
                }
            }
            assert_eq!(end, Event::Closed, "chunk {chunk}");
            assert!(got == expected, "chunk {chunk}: {} bytes", got.len());
        }
    }

    #[test]
    fn text_and_masked_frames_are_errors() {
        let mut reader = FrameReader::default();
        assert!(reader.feed(&frame(0x1, b"hi"), |_| Ok(())).is_err());
        let mut reader = FrameReader::default();
        assert!(reader.feed(&client_header(3), |_| Ok(())).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:8080/ws?target=x").unwrap(),
            ("127.0.0.1:8080", "/ws?target=x")
        );
        assert_eq!(split_url("ws://[::1]:80").unwrap(), ("[::1]:80", "/"));
        assert!(split_url("wss://h/").is_err());
    }
}
