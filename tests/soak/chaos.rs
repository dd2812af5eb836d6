//! The soak's moving parts: deterministic byte streams, a chaos target server whose behaviour
//! each bridge chooses in its first message, and the client scenarios.
//!
//! Every byte stream is generated from a seed, so both ends can check what they receive as it
//! arrives, without keeping copies: whatever arrives must be an exact prefix of what was sent,
//! on every bridge, however it ends; on a cleanly closed bridge it must be all of it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use sockrelay_tests::{Rng, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The first message of a bridge to the chaos target: magic, id, seed, mode, two parameters.
pub const HEADER_LEN: usize = 32;
const MAGIC: &[u8; 4] = b"SOAK";
/// Target-to-client streams use a different seed from client-to-target ones.
const DOWN_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// What the chaos target does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Echo every byte (checking it); with `a > 0`, reset after receiving `a` bytes.
    Echo = 0,
    /// Send `a` bytes, then close (`b == 0`) or reset (`b == 1`); then drain until EOF.
    Source = 1,
    /// Send bytes as fast as the relay takes them, `a` bytes at most (0: no limit).
    Flood = 2,
    /// Neither read nor write for `a` ms, then close (`b == 0`) or reset (`b == 1`).
    Stall = 3,
}

pub fn header(id: u64, seed: u64, mode: Mode, a: u32, b: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&seed.to_le_bytes());
    h.push(mode as u8);
    h.extend_from_slice(&a.to_le_bytes());
    h.extend_from_slice(&b.to_le_bytes());
    h.resize(HEADER_LEN, 0);
    h
}

/// An endless deterministic byte stream.
pub struct ByteStream {
    rng: Rng,
    word: [u8; 8],
    used: usize,
    scratch: Vec<u8>,
}

impl ByteStream {
    pub fn new(seed: u64) -> ByteStream {
        ByteStream {
            rng: Rng::new(seed),
            word: [0; 8],
            used: 8,
            scratch: Vec::new(),
        }
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while self.used < 8 && i < out.len() {
            out[i] = self.word[self.used];
            self.used += 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.word = self.rng.next_u64().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&self.word[..n]);
            self.used = n;
        }
    }

    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    /// True if `got` is the next `got.len()` bytes of the stream.
    pub fn check(&mut self, got: &[u8]) -> bool {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(got.len(), 0);
        self.fill(&mut scratch);
        let same = scratch == got;
        self.scratch = scratch;
        same
    }
}

/// What the chaos target saw on one connection, recorded when the connection ends.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Payload bytes received after the header.
    pub received: u64,
    /// Every received byte matched the stream.
    pub intact: bool,
    /// The relay ended the connection with EOF (rather than the target giving up or resetting).
    pub eof: bool,
}

impl Record {
    /// A connection that received nothing to check.
    fn untouched() -> Record {
        Record {
            received: 0,
            intact: true,
            eof: false,
        }
    }
}

/// The chaos target server.
pub struct Targets {
    pub addr: SocketAddr,
    records: Mutex<HashMap<u64, Record>>,
    /// Bytes written by flood connections (to see when stalled readers have stalled them).
    pub flood_written: AtomicU64,
    pub connections: AtomicU64,
    pub open: AtomicU64,
}

impl Targets {
    pub async fn start() -> Arc<Targets> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let targets = Arc::new(Targets {
            addr: listener.local_addr().unwrap(),
            records: Mutex::default(),
            flood_written: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
        });
        let t = targets.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let t = t.clone();
                t.connections.fetch_add(1, Relaxed);
                t.open.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    // Every target connection ends on its own, whatever the relay does.
                    let _ = tokio::time::timeout(Duration::from_secs(180), t.handle(stream)).await;
                    t.open.fetch_sub(1, Relaxed);
                });
            }
        });
        targets
    }

    pub fn record(&self, id: u64) -> Option<Record> {
        self.records.lock().unwrap().get(&id).copied()
    }

    pub fn records(&self) -> Vec<(u64, Record)> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    fn put(&self, id: u64, record: Record) {
        self.records.lock().unwrap().insert(id, record);
    }

    async fn handle(&self, mut s: TcpStream) {
        let _ = s.set_nodelay(true);
        let mut h = [0u8; HEADER_LEN];
        if s.read_exact(&mut h).await.is_err() || &h[..4] != MAGIC {
            return;
        }
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let (id, seed, mode, a, b) = (u64_at(4), u64_at(12), h[20], u32_at(21), u32_at(25));
        match mode {
            0 => self.echo(s, id, seed, u64::from(a)).await,
            1 => self.source(s, id, seed, u64::from(a), b == 1).await,
            2 => self.flood(s, id, seed, u64::from(a)).await,
            _ => {
                tokio::time::sleep(Duration::from_millis(u64::from(a))).await;
                self.put(id, Record::untouched());
                if b == 1 {
                    reset(s);
                }
            }
        }
    }

    async fn echo(&self, mut s: TcpStream, id: u64, seed: u64, reset_after: u64) {
        let mut expected = ByteStream::new(seed);
        let mut buf = vec![0u8; 64 * 1024];
        let mut r = Record::untouched();
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) => {
                    r.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(_) => break,
            };
            r.intact &= expected.check(&buf[..n]);
            r.received += n as u64;
            if reset_after > 0 && r.received >= reset_after {
                self.put(id, r);
                reset(s);
                return;
            }
            if s.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        self.put(id, r);
        let _ = s.shutdown().await;
    }

    async fn source(&self, mut s: TcpStream, id: u64, seed: u64, len: u64, end_with_reset: bool) {
        let mut data = ByteStream::new(seed ^ DOWN_SALT);
        let mut rng = Rng::new(seed);
        let mut sent = 0;
        while sent < len {
            let n = (rng.range(1, 48 * 1024) as u64).min(len - sent) as usize;
            if s.write_all(&data.take(n)).await.is_err() {
                self.put(id, Record::untouched());
                return;
            }
            sent += n as u64;
        }
        if end_with_reset {
            self.put(id, Record::untouched());
            reset(s);
            return;
        }
        let _ = s.shutdown().await;
        // Wait for the relay to let go, so the close is a FIN and not a reset.
        let mut sink = [0u8; 4096];
        let mut r = Record::untouched();
        loop {
            match s.read(&mut sink).await {
                Ok(0) => {
                    r.eof = true;
                    break;
                }
                Ok(n) => r.received += n as u64,
                Err(_) => break,
            }
        }
        self.put(id, r);
    }

    async fn flood(&self, mut s: TcpStream, id: u64, seed: u64, cap: u64) {
        let mut data = ByteStream::new(seed ^ DOWN_SALT);
        let cap = if cap == 0 { u64::MAX } else { cap };
        let mut sent = 0u64;
        let mut chunk = vec![0u8; 32 * 1024];
        while sent < cap {
            let n = (chunk.len() as u64).min(cap - sent) as usize;
            data.fill(&mut chunk[..n]);
            if s.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n as u64;
            self.flood_written.fetch_add(n as u64, Relaxed);
        }
        self.put(id, Record::untouched());
        let _ = s.shutdown().await;
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

/// Closes with RST: SO_LINGER 0, then drop (non-blocking, so the drop does not wait).
#[allow(deprecated)]
pub fn reset(s: TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// Counters for the report.
#[derive(Default)]
pub struct Stats {
    pub bridges: AtomicU64,
    pub upgraded: AtomicU64,
    pub clean: AtomicU64,
    /// Bytes clients sent that a target confirmed receiving intact.
    pub up_bytes: AtomicU64,
    /// Bytes clients received and checked.
    pub down_bytes: AtomicU64,
    /// Of those, bytes on bridges that closed cleanly (checked complete, both ways).
    pub clean_bytes: AtomicU64,
    scenarios: Mutex<BTreeMap<&'static str, u64>>,
    faults: Mutex<BTreeMap<&'static str, u64>>,
    endings: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<Vec<String>>,
    pub peak_concurrency: AtomicU64,
}

impl Stats {
    pub fn scenario(&self, name: &'static str) {
        *self.scenarios.lock().unwrap().entry(name).or_default() += 1;
    }
    pub fn fault(&self, name: &'static str) {
        *self.faults.lock().unwrap().entry(name).or_default() += 1;
    }
    pub fn ending(&self, scenario: &str, ending: &End) {
        let key = format!("{scenario}: {}", ending.label());
        *self.endings.lock().unwrap().entry(key).or_default() += 1;
    }
    pub fn error(&self, e: String) {
        self.errors.lock().unwrap().push(e);
    }
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
    pub fn scenarios(&self) -> BTreeMap<&'static str, u64> {
        self.scenarios.lock().unwrap().clone()
    }
    pub fn faults(&self) -> BTreeMap<&'static str, u64> {
        self.faults.lock().unwrap().clone()
    }
    pub fn endings(&self) -> BTreeMap<String, u64> {
        self.endings.lock().unwrap().clone()
    }
}

/// How the relay ended a bridge, as the client saw it.
#[derive(Debug, Clone)]
pub enum End {
    Close(u16, String),
    /// The connection ended without a Close frame.
    Dropped(String),
}

impl End {
    fn label(&self) -> String {
        match self {
            End::Close(code, _) => format!("close {code}"),
            End::Dropped(why) => format!("dropped ({why})"),
        }
    }
    fn code(&self) -> Option<u16> {
        match self {
            End::Close(code, _) => Some(*code),
            End::Dropped(_) => None,
        }
    }
}

/// Everything a scenario needs.
pub struct Ctx {
    pub http: SocketAddr,
    pub targets: Arc<Targets>,
    /// Allowed, but nothing listens there.
    pub unreachable: SocketAddr,
    pub max_message: usize,
    pub idle_timeout: Duration,
    pub stats: Stats,
}

pub type Client = WebSocketStream<TcpStream>;

pub async fn connect(http: SocketAddr, query: &str) -> Result<Client, WsError> {
    connect_with(http, query, None).await
}

/// `connect`, with the client socket's receive buffer set to `rcvbuf` bytes.
pub async fn connect_with(
    http: SocketAddr,
    query: &str,
    rcvbuf: Option<u32>,
) -> Result<Client, WsError> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(WsError::Io)?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).map_err(WsError::Io)?;
    }
    let tcp = socket.connect(http).await.map_err(WsError::Io)?;
    let _ = tcp.set_nodelay(true);
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{http}/ws{query}"), tcp).await?;
    Ok(ws)
}

/// Opens a bridge to the chaos targets and sends the header that tells the target what to do.
async fn begin(ctx: &Ctx, query: &str, header: Vec<u8>) -> Result<Client, String> {
    let mut ws = connect(ctx.http, query)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    ctx.stats.upgraded.fetch_add(1, Relaxed);
    ws.send(Message::binary(header))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Ends a client abruptly: RST (`rst`) or FIN, without a Close frame.
fn abort(ws: Client, rst: bool) {
    let tcp = ws.into_inner();
    if rst {
        reset(tcp);
    }
}

/// Reads binary frames, checking them against `expected`, until `limit` bytes came (`None`) or
/// the bridge ended (`Some`). Adds the bytes to `got`.
async fn read_checked<S>(
    stream: &mut S,
    expected: &mut ByteStream,
    got: &mut u64,
    limit: u64,
    stats: &Stats,
) -> Result<Option<End>, String>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    while *got < limit {
        match stream.next().await {
            Some(Ok(Message::Binary(b))) => {
                if !expected.check(&b) {
                    return Err(format!(
                        "{} bytes at offset {} differ from what was sent",
                        b.len(),
                        *got
                    ));
                }
                *got += b.len() as u64;
                stats.down_bytes.fetch_add(b.len() as u64, Relaxed);
            }
            Some(Ok(Message::Close(f))) => {
                return Ok(Some(match f {
                    Some(f) => End::Close(u16::from(f.code), f.reason.to_string()),
                    None => End::Close(1005, String::new()),
                }))
            }
            Some(Ok(Message::Text(_))) => return Err("text frame from the relay".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Ok(Some(End::Dropped(e.to_string()))),
            None => return Ok(Some(End::Dropped("end of stream".into()))),
        }
    }
    Ok(None)
}

/// After a Close from either side: reads until the stream ends (bounded).
async fn finish(ws: &mut Client) {
    let _ = tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// Sends our Close and reads until the relay's answer and the end of the stream; data still
/// arriving is checked against `expected`. Returns whether the close handshake completed.
async fn close_cleanly(
    ws: &mut Client,
    expected: &mut ByteStream,
    got: &mut u64,
    stats: &Stats,
) -> Result<bool, String> {
    if ws.send(Message::Close(None)).await.is_err() {
        return Ok(false);
    }
    let end = tokio::time::timeout(WAIT, read_checked(ws, expected, got, u64::MAX, stats))
        .await
        .map_err(|_| "no answer to our Close".to_owned())??;
    finish(ws).await;
    Ok(matches!(end, Some(End::Close(..))))
}

/// Waits (bounded) until the chaos target recorded bridge `id`.
async fn target_record(targets: &Targets, id: u64) -> Option<Record> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(r) = targets.record(id) {
            return Some(r);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Random message sizes: mostly small, some medium, a few up to `max`.
fn message_sizes(rng: &mut Rng, count: usize, max: usize) -> Vec<usize> {
    (0..count)
        .map(|_| match rng.range(0, 9) {
            0..=5 => rng.range(1, 2048),
            6..=8 => rng.range(2048, 32 * 1024),
            _ => rng.range(32 * 1024, max),
        })
        .collect()
}

/// The scenarios, with their weights.
pub const SCENARIOS: &[(&str, usize)] = &[
    ("echo, clean close", 24),
    ("built-in echo, clean close", 8),
    ("target sends then closes", 12),
    ("client aborts (RST)", 8),
    ("client aborts (FIN, no Close)", 4),
    ("client sends Close and leaves", 4),
    ("client stops reading, resumes", 6),
    ("client stops reading, aborts", 4),
    ("slow reader, echo", 4),
    ("target stalls", 6),
    ("target resets mid-echo", 6),
    ("target resets mid-send", 3),
    ("message over --max-message", 2),
    ("idle bridge", 1),
    ("target unreachable", 2),
    ("disallowed target", 3),
    ("client drops mid-handshake", 3),
];

pub fn pick(rng: &mut Rng) -> &'static str {
    let total: usize = SCENARIOS.iter().map(|s| s.1).sum();
    let mut x = rng.range(0, total - 1);
    for (name, weight) in SCENARIOS {
        if x < *weight {
            return name;
        }
        x -= weight;
    }
    SCENARIOS[0].0
}

/// Runs one bridge of the given scenario; `Err` is a broken promise of the relay.
pub async fn run(ctx: &Ctx, scenario: &'static str, id: u64) -> Result<(), String> {
    let mut rng = Rng::new(id.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let seed = rng.next_u64();
    let target = ctx.targets.addr;
    let chaos = format!("?target={target}");
    let stats = &ctx.stats;
    stats.scenario(scenario);
    match scenario {
        "echo, clean close" | "built-in echo, clean close" | "slow reader, echo" => {
            let builtin = scenario.starts_with("built-in");
            let slow = scenario.starts_with("slow");
            let mut ws = connect(ctx.http, if builtin { "" } else { &chaos })
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            stats.upgraded.fetch_add(1, Relaxed);
            if !builtin {
                ws.send(Message::binary(header(id, seed, Mode::Echo, 0, 0)))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let count = if slow {
                rng.range(40, 120)
            } else {
                rng.range(1, 24)
            };
            let sizes = message_sizes(&mut rng, count, ctx.max_message.min(256 * 1024));
            let total: u64 = sizes.iter().map(|&s| s as u64).sum();
            let pause = Duration::from_millis(if slow { rng.range(500, 2500) as u64 } else { 0 });
            if slow {
                stats.fault("client stopped reading (echo)");
            }
            let (mut sink, mut stream) = ws.split();
            let mut up = ByteStream::new(seed);
            let send = async {
                for &n in &sizes {
                    sink.send(Message::binary(up.take(n)))
                        .await
                        .map_err(|e| format!("send: {e}"))?;
                }
                Ok::<_, String>(())
            };
            let mut down = ByteStream::new(seed);
            let mut got = 0;
            let receive = async {
                tokio::time::sleep(pause).await;
                read_checked(&mut stream, &mut down, &mut got, total, stats).await
            };
            let (sent, end) = tokio::join!(send, receive);
            if let Some(end) = end? {
                return Err(format!("ended early after {got} of {total} bytes: {end:?}"));
            }
            sent?;
            let mut ws = sink.reunite(stream).map_err(|e| e.to_string())?;
            if !close_cleanly(&mut ws, &mut down, &mut got, stats).await? {
                return Err("the Close was not answered".into());
            }
            stats.ending(scenario, &End::Close(1000, String::new()));
            if !builtin {
                let r = target_record(&ctx.targets, id)
                    .await
                    .ok_or("the target never saw the bridge end")?;
                if !(r.intact && r.eof && r.received == total) {
                    return Err(format!("target got {r:?}, {total} bytes sent"));
                }
                stats.up_bytes.fetch_add(total, Relaxed);
            }
            stats.clean.fetch_add(1, Relaxed);
            stats.clean_bytes.fetch_add(2 * total, Relaxed);
            Ok(())
        }
        "target sends then closes" | "target resets mid-send" => {
            let resets = scenario.contains("resets");
            let len = match rng.range(0, 9) {
                0 => 0,
                1..=6 => rng.range(1, 256 * 1024),
                _ => rng.range(256 * 1024, 3 << 20),
            } as u32;
            let mut ws = begin(
                ctx,
                &chaos,
                header(id, seed, Mode::Source, len, u32::from(resets)),
            )
            .await?;
            stats.fault(if resets {
                "target reset after sending"
            } else {
                "target closed (EOF)"
            });
            let mut down = ByteStream::new(seed ^ DOWN_SALT);
            let mut got = 0;
            let end = read_checked(&mut ws, &mut down, &mut got, u64::MAX, stats)
                .await?
                .ok_or("stream without end")?;
            finish(&mut ws).await;
            stats.ending(scenario, &end);
            if resets {
                // The reset may overtake bytes still in the kernel's buffers: a prefix (checked
                // above) and a 1011, or everything and a normal end if the reset came late.
                if !matches!(end.code(), Some(1011) | Some(1000)) {
                    return Err(format!("after a target reset: {end:?}"));
                }
            } else {
                if end.code() != Some(1000) || got != u64::from(len) {
                    return Err(format!("got {got} of {len} bytes, then {end:?}"));
                }
                stats.clean.fetch_add(1, Relaxed);
                stats.clean_bytes.fetch_add(got, Relaxed);
            }
            Ok(())
        }
        "client aborts (RST)"
        | "client aborts (FIN, no Close)"
        | "client sends Close and leaves"
        | "target resets mid-echo" => {
            let target_resets = scenario.starts_with("target");
            let count = rng.range(1, 24);
            let sizes = message_sizes(&mut rng, count, 128 * 1024);
            let total: u64 = sizes.iter().map(|&s| s as u64).sum();
            let reset_after = if target_resets {
                rng.range(1, total as usize) as u32
            } else {
                0
            };
            let read_first = rng.range(0, total as usize) as u64;
            let ws = begin(ctx, &chaos, header(id, seed, Mode::Echo, reset_after, 0)).await?;
            let (mut sink, mut stream) = ws.split();
            let mut up = ByteStream::new(seed);
            let send = async {
                for &n in &sizes {
                    if sink.send(Message::binary(up.take(n))).await.is_err() {
                        break;
                    }
                }
            };
            let mut down = ByteStream::new(seed);
            let mut got = 0;
            let limit = if target_resets { u64::MAX } else { read_first };
            let receive = read_checked(&mut stream, &mut down, &mut got, limit, stats);
            let end = if target_resets {
                let (_, end) = tokio::join!(send, receive);
                end?
            } else {
                // Stop at a random point: after reading `read_first` bytes, with sends in flight.
                tokio::select! {
                    () = send => None,
                    end = receive => end?,
                }
            };
            let ws = sink.reunite(stream).map_err(|e| e.to_string())?;
            match scenario {
                "client aborts (RST)" => {
                    stats.fault("client reset (RST)");
                    abort(ws, true);
                }
                "client aborts (FIN, no Close)" => {
                    stats.fault("client left without Close (FIN)");
                    abort(ws, false);
                }
                "client sends Close and leaves" => {
                    stats.fault("client sent Close and left");
                    let mut ws = ws;
                    let _ = ws.send(Message::Close(None)).await;
                    abort(ws, false);
                }
                _ => {
                    stats.fault("target reset mid-echo");
                    let end = end.ok_or("stream without end")?;
                    let mut ws = ws;
                    finish(&mut ws).await;
                    stats.ending(scenario, &end);
                    if !matches!(end.code(), Some(1011)) {
                        return Err(format!("after a target reset: {end:?}"));
                    }
                }
            }
            // Whatever reached the target was exact (its record says so); checked at the end
            // for all bridges.
            Ok(())
        }
        "client stops reading, resumes" | "client stops reading, aborts" => {
            let resumes = scenario.ends_with("resumes");
            // A target that sends more than every buffer on the way can hold.
            let cap = if resumes {
                rng.range(2 << 20, 6 << 20) as u32
            } else {
                0
            };
            let mut ws = begin(ctx, &chaos, header(id, seed, Mode::Flood, cap, 0)).await?;
            stats.fault("client stopped reading (flood)");
            let mut down = ByteStream::new(seed ^ DOWN_SALT);
            let mut got = 0;
            let first = rng.range(0, 1 << 20) as u64;
            if let Some(end) = read_checked(&mut ws, &mut down, &mut got, first, stats).await? {
                return Err(format!("ended while reading: {end:?}"));
            }
            // Stall well inside the idle timeout: the relay must wait, not drop or buffer.
            let stall = ctx.idle_timeout.as_millis() as usize / 4;
            tokio::time::sleep(Duration::from_millis(rng.range(stall / 4, stall) as u64)).await;
            if !resumes {
                abort(ws, rng.range(0, 1) == 0);
                return Ok(());
            }
            let end = read_checked(&mut ws, &mut down, &mut got, u64::MAX, stats)
                .await?
                .ok_or("stream without end")?;
            finish(&mut ws).await;
            stats.ending(scenario, &end);
            if end.code() != Some(1000) || got != u64::from(cap) {
                return Err(format!("got {got} of {cap} bytes, then {end:?}"));
            }
            stats.clean.fetch_add(1, Relaxed);
            stats.clean_bytes.fetch_add(got, Relaxed);
            Ok(())
        }
        "target stalls" | "idle bridge" => {
            let idle = scenario == "idle bridge";
            let stall_ms = if idle {
                // Long enough for the relay's idle timeout to act first.
                (ctx.idle_timeout.as_millis() * 3 / 2) as u32
            } else {
                rng.range(500, ctx.idle_timeout.as_millis() as usize / 2) as u32
            };
            let then_reset = rng.range(0, 1) as u32;
            let mut ws = begin(
                ctx,
                &chaos,
                header(id, seed, Mode::Stall, stall_ms, then_reset),
            )
            .await?;
            stats.fault(if idle {
                "idle bridge"
            } else {
                "target stalled"
            });
            if !idle && rng.range(0, 2) == 0 {
                // Some clients give up on the stalled target.
                let (mut sink, _stream) = ws.split();
                let mut up = ByteStream::new(seed);
                let _ = tokio::time::timeout(
                    Duration::from_millis(rng.range(200, 2000) as u64),
                    async {
                        loop {
                            if sink
                                .send(Message::binary(up.take(32 * 1024)))
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    },
                )
                .await;
                stats.fault("client gave up on a stalled target");
                return Ok(());
            }
            let mut got = 0;
            let mut down = ByteStream::new(seed);
            let end = tokio::time::timeout(
                Duration::from_millis(u64::from(stall_ms)) + WAIT,
                read_checked(&mut ws, &mut down, &mut got, u64::MAX, stats),
            )
            .await
            .map_err(|_| "the bridge to a stalled target never ended".to_owned())??
            .ok_or("stream without end")?;
            finish(&mut ws).await;
            stats.ending(scenario, &end);
            let ok = if idle {
                end.code() == Some(1001)
            } else {
                matches!(end.code(), Some(1000) | Some(1011))
            };
            if !ok {
                return Err(format!("{end:?}"));
            }
            Ok(())
        }
        "message over --max-message" => {
            let mut ws = connect(ctx.http, "")
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            stats.upgraded.fetch_add(1, Relaxed);
            stats.fault("message over --max-message");
            let mut up = ByteStream::new(seed);
            let big = rng.range(ctx.max_message + 1, ctx.max_message + 70_000);
            let _ = ws.send(Message::binary(up.take(big))).await;
            let mut got = 0;
            let mut down = ByteStream::new(seed);
            let end = read_checked(&mut ws, &mut down, &mut got, u64::MAX, stats)
                .await?
                .ok_or("stream without end")?;
            finish(&mut ws).await;
            stats.ending(scenario, &end);
            if end.code() != Some(1009) || got != 0 {
                return Err(format!("{got} bytes, then {end:?}"));
            }
            Ok(())
        }
        "target unreachable" => {
            let mut ws = connect(ctx.http, &format!("?target={}", ctx.unreachable))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            stats.upgraded.fetch_add(1, Relaxed);
            stats.fault("target unreachable");
            let mut got = 0;
            let mut down = ByteStream::new(seed);
            let end = read_checked(&mut ws, &mut down, &mut got, u64::MAX, stats)
                .await?
                .ok_or("stream without end")?;
            finish(&mut ws).await;
            stats.ending(scenario, &end);
            match &end {
                End::Close(1011, reason) if reason.contains("unreachable") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
        "disallowed target" => {
            stats.fault("disallowed target");
            let t = [
                "10.0.0.1:22".to_owned(),
                format!("127.1:{}", target.port()),
                format!("localhost:{}", target.port()),
                format!("%5B%3A%3Affff%3A127.0.0.1%5D:{}", target.port()),
            ];
            match connect(ctx.http, &format!("?target={}", t[rng.range(0, 3)])).await {
                Err(WsError::Http(r)) if r.status() == 403 => Ok(()),
                Err(e) => Err(format!("refusal: {e}")),
                Ok(_) => Err("a disallowed target was bridged".into()),
            }
        }
        "client drops mid-handshake" => {
            stats.fault("client dropped mid-handshake");
            let mut s = TcpStream::connect(ctx.http)
                .await
                .map_err(|e| e.to_string())?;
            let request = sockrelay_tests::raw::upgrade(
                &ctx.http.to_string(),
                &format!("/ws?target={target}"),
                "",
            );
            let cut = rng.range(0, request.len() - 1);
            let _ = s.write_all(&request.as_bytes()[..cut]).await;
            if rng.range(0, 1) == 0 {
                reset(s);
            }
            Ok(())
        }
        other => Err(format!("unknown scenario {other}")),
    }
}
