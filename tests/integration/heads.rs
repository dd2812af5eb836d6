//! Connections that never finish their request head, above the connection cap: the relay keeps
//! serving everybody else.
//!
//! Two tests hold thousands of slowloris connections (10,000 where the open-file limit allows)
//! against a relay process, in plain HTTP and over TLS, one test at a time; they print how long
//! the prompt clients' upgrades took (`-- --nocapture`). The others check in process which
//! connections the relay closes when its budget of unfinished heads (`--max-heads`) is full.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use sockrelay_tests::raw::{ask_health, read_answer, upgrade_lines};
use sockrelay_tests::sockrelay::accept::raise_open_file_limit;
use sockrelay_tests::sockrelay::config::TlsFiles;
use sockrelay_tests::{ws_echo_roundtrip, RelayProcess, TestRelay, WAIT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

/// Slowloris connections of the two big tests: the figure, fewer where this process'
/// open-file limit cannot hold them beside the other tests.
const SLOWLORIS: usize = 10_000;

/// Descriptors left to the tests that run beside the big ones.
const SPARE_FDS: u64 = 1_500;

/// How long a prompt client's upgrade may take while the slowloris connections are open. Before
/// the budget of unfinished heads it took 9.5 s with 1,100 of them and 40 s (median) with
/// 10,000 (RELIABILITY.md); scripts/slowloris.py measures the goal of 1 s, and this bound
/// leaves room for a loaded CI machine.
const UPGRADE_BOUND: Duration = Duration::from_secs(5);

/// The big tests run one at a time: each holds up to 10,000 descriptors in this process.
static BIG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A self-signed certificate for `localhost` in a directory of its own, removed on drop.
struct Certificate {
    dir: PathBuf,
    files: TlsFiles,
    connector: TlsConnector,
}

impl Certificate {
    fn new(name: &str) -> Certificate {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir =
            std::env::temp_dir().join(format!("sockrelay-heads-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, certified.cert.pem()).unwrap();
        std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Certificate {
            dir,
            files,
            connector: TlsConnector::from(Arc::new(config)),
        }
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn localhost() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").unwrap()
}

/// The first flight of a TLS client: a ClientHello record.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut client = rustls::ClientConnection::new(Arc::new(config), localhost()).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    hello
}

/// The start of a WebSocket upgrade request, without the empty line that would end its head.
fn unfinished_head(http: SocketAddr) -> Vec<u8> {
    upgrade_lines(&http.to_string(), "/ws", "").into_bytes()
}

/// A prompt client: connects, upgrades (over TLS with `tls`) and echoes a message through the
/// bridge; returns how long it took from connecting to the 101.
async fn prompt_upgrade(http: SocketAddr, tls: Option<&TlsConnector>) -> Duration {
    async fn upgrade<S>(url: String, stream: S, started: Instant) -> Duration
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        let took = started.elapsed();
        assert_eq!(ws_echo_roundtrip(ws, b"prompt", &[6]).await, b"prompt");
        took
    }
    let started = Instant::now();
    let tcp = TcpStream::connect(http).await.unwrap();
    match tls {
        None => upgrade(format!("ws://{http}/ws"), tcp, started).await,
        Some(connector) => {
            let stream = connector.connect(localhost(), tcp).await.unwrap();
            let url = format!("wss://localhost:{}/ws", http.port());
            upgrade(url, stream, started).await
        }
    }
}

/// Connections that each send one byte a second and never finish (a request head that gets
/// header line after header line, or all of a ClientHello but its last byte), reopened when
/// the relay closes them. Dropping it resets them all.
struct Slowloris {
    /// Aborted, with their connections, when dropped.
    _tasks: JoinSet<()>,
    open: Arc<AtomicUsize>,
}

impl Slowloris {
    fn start(http: SocketAddr, count: usize, hello: Option<Arc<Vec<u8>>>) -> Slowloris {
        let open = Arc::new(AtomicUsize::new(0));
        // A few handshakes at a time, as a flood ramps up: thousands at once would overflow
        // the listen backlog (the kernel then drops SYNs), whatever the relay does.
        let connecting = Arc::new(Semaphore::new(256));
        let mut tasks = JoinSet::new();
        for i in 0..count {
            let bytes = match &hello {
                Some(hello) => hello[..hello.len() - 1].to_vec(),
                None => unfinished_head(http),
            };
            let endless = hello.is_none();
            let (open, connecting) = (open.clone(), connecting.clone());
            tasks.spawn(async move {
                loop {
                    let connected = {
                        let _turn = connecting.acquire().await.unwrap();
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(http)).await
                    };
                    let Ok(Ok(mut stream)) = connected else {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    };
                    // Reset when dropped: no TIME_WAIT left behind for the next test's ports.
                    let _ = stream.set_zero_linger();
                    open.fetch_add(1, Ordering::Relaxed);
                    // The drips of all of them spread over each second.
                    tokio::time::sleep(Duration::from_millis((i * 7919 % 1000) as u64)).await;
                    drip(&mut stream, &bytes, endless).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            });
        }
        Slowloris {
            _tasks: tasks,
            open,
        }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Sends `bytes` one a second (then `X-Drip` header lines if `endless`, else nothing) until
/// the relay answers or closes.
async fn drip(stream: &mut TcpStream, bytes: &[u8], endless: bool) {
    const MORE: &[u8] = b"X-Drip: 1\r\n";
    for n in 0.. {
        let byte = match bytes.get(n) {
            Some(b) => Some(*b),
            None if endless => Some(MORE[(n - bytes.len()) % MORE.len()]),
            None => None,
        };
        if let Some(b) = byte {
            if stream.write_all(&[b]).await.is_err() {
                return;
            }
        }
        let mut answer = [0u8; 1];
        if tokio::time::timeout(Duration::from_secs(1), stream.read(&mut answer))
            .await
            .is_ok()
        {
            return;
        }
    }
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Holds up to 10,000 slowloris connections against a relay process (default settings but a
/// `--max-conns` below their number), then times three prompt clients' upgrades.
async fn prompt_clients_upgrade_past_slowloris(tls: bool) {
    let _one_at_a_time = BIG.lock().await;
    let limit = raise_open_file_limit().unwrap();
    let count = SLOWLORIS.min(usize::try_from(limit.saturating_sub(SPARE_FDS)).unwrap());
    // Unfinished heads used to share the cap of --max-conns (default 1024): stay above it.
    let max_conns = (count / 2).clamp(1, 1024).to_string();
    let certificate = tls.then(|| Certificate::new("big"));
    let mut args = vec!["--max-conns", &max_conns];
    if let Some(c) = &certificate {
        args.extend(["--tls-cert", c.files.cert.to_str().unwrap()]);
        args.extend(["--tls-key", c.files.key.to_str().unwrap()]);
    }
    let relay = RelayProcess::spawn(&args);
    let connector = certificate.as_ref().map(|c| &c.connector);
    prompt_upgrade(relay.http, connector).await;

    let hello = tls.then(|| Arc::new(client_hello()));
    let flood = Slowloris::start(relay.http, count, hello);
    // Until the relay holds them (rather than the listen backlog), so that the flood is real.
    // Its budget is at least half its open-file limit, which is this process' (both raise it
    // to the hard limit).
    let expected = usize::try_from(limit / 2).unwrap().min(count) * 9 / 10;
    let deadline = Instant::now() + WAIT;
    let mut held = fd_count(relay.child.id());
    while (flood.open() < count || held < expected) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        held = fd_count(relay.child.id());
    }
    let mut took = Vec::new();
    for _ in 0..3 {
        let upgrade = tokio::time::timeout(UPGRADE_BOUND, prompt_upgrade(relay.http, connector));
        took.push(upgrade.await.unwrap_or_else(|_| {
            panic!(
                "a prompt client's upgrade took over {UPGRADE_BOUND:?} with {} of {count} \
                 slowloris connections open (the relay holding {held} descriptors)",
                flood.open()
            )
        }));
    }
    println!(
        "{} of {count} slowloris connections open{}, the relay holding {held} descriptors: \
         prompt upgrades took {took:?}",
        flood.open(),
        if tls { " (TLS)" } else { "" },
    );
    assert!(
        held >= expected,
        "the relay held {held} descriptors for {count} slowloris connections"
    );
    drop(flood);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_client_upgrades_past_10000_slowloris_connections() {
    prompt_clients_upgrade_past_slowloris(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_client_upgrades_over_tls_past_10000_unfinished_client_hellos() {
    prompt_clients_upgrade_past_slowloris(true).await;
}

/// Opens `count` connections, one after the other, that each send the first half of `bytes`.
async fn half_sent(http: SocketAddr, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(http).await.unwrap();
        stream.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
        streams.push(stream);
    }
    streams
}

/// Whether the relay closes `stream` within `wait`.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, wait: Duration) -> bool {
    let mut sink = [0u8; 256];
    let read_to_end = async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(wait, read_to_end).await.is_ok()
}

/// A full budget of unfinished heads: the connections that waited longest for one are closed,
/// a keep-alive connection between requests among them, and a prompt client gets in.
async fn the_longest_waiting_heads_are_closed_first(tls: bool) {
    const BUDGET: usize = 100;
    const OLDER: usize = 40;
    let certificate = tls.then(|| Certificate::new("shed"));
    let files = certificate.as_ref().map(|c| c.files.clone());
    let relay = TestRelay::with(|s| {
        s.max_heads = BUDGET;
        // Nobody times out during the test: only the budget closes connections.
        s.handshake_timeout = Duration::from_secs(60);
        s.tls = files;
    })
    .await;
    let connector = certificate.as_ref().map(|c| &c.connector);

    // A keep-alive connection after its answer waits for a head as well: the oldest here.
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let tcp = TcpStream::connect(relay.http).await.unwrap();
    let mut keep_alive: Box<dyn AsyncReadWrite> = match connector {
        None => Box::new(tcp),
        Some(c) => Box::new(c.connect(localhost(), tcp).await.unwrap()),
    };
    keep_alive.write_all(request).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, keep_alive.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let unfinished = if tls {
        client_hello()
    } else {
        unfinished_head(relay.http)
    };
    let mut older = half_sent(relay.http, OLDER, &unfinished).await;
    let mut newer = half_sent(relay.http, BUDGET, &unfinished).await;
    assert!(
        closed_within(&mut keep_alive, WAIT).await,
        "the idle keep-alive connection is still open"
    );
    for (i, stream) in older.iter_mut().enumerate() {
        assert!(closed_within(stream, WAIT).await, "older #{i} still open");
    }
    for (i, stream) in newer.iter_mut().enumerate() {
        let closed = closed_within(stream, Duration::from_millis(20)).await;
        assert!(
            !closed,
            "newer #{i} closed while older ones were there to close"
        );
    }

    let took = tokio::time::timeout(WAIT, prompt_upgrade(relay.http, connector))
        .await
        .unwrap();
    println!("prompt upgrade past a full budget: {took:?}");
    // It took the place of the newer connection that had waited longest.
    assert!(
        closed_within(&mut newer[0], WAIT).await,
        "newer #0 still open"
    );
    assert!(!closed_within(&mut newer[1], Duration::from_millis(100)).await);
    relay.shutdown().await.unwrap();
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

#[tokio::test]
async fn the_longest_waiting_heads_are_closed_first_when_the_budget_is_full() {
    the_longest_waiting_heads_are_closed_first(false).await;
}

#[tokio::test]
async fn the_longest_waiting_client_hellos_are_closed_first_when_the_budget_is_full() {
    the_longest_waiting_heads_are_closed_first(true).await;
}

/// A `GET /healthz` on `stream` that closes the connection after it, and its whole answer.
async fn health(stream: &mut TcpStream) -> String {
    ask_health(stream, "127.0.0.1").await;
    read_answer(stream, WAIT).await.unwrap()
}

#[tokio::test]
async fn open_bridges_are_not_in_the_budget_of_unfinished_heads() {
    let relay = TestRelay::with(|s| {
        s.max_heads = 2;
        s.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    // A bridge gives its HTTP connection's place back once it is upgraded.
    let ws = relay.ws("/ws").await;
    // Two connections that never send a request take every place...
    let mut idle_a = TcpStream::connect(relay.http).await.unwrap();
    let mut idle_b = TcpStream::connect(relay.http).await.unwrap();
    // ... and a prompt request is answered at once all the same, in the place of the one that
    // waited longest; had the bridge counted, `idle_b` would have gone too.
    let mut prompt = TcpStream::connect(relay.http).await.unwrap();
    let response = health(&mut prompt).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(closed_within(&mut idle_a, WAIT).await);
    assert!(!closed_within(&mut idle_b, Duration::from_millis(100)).await);
    assert_eq!(ws_echo_roundtrip(ws, b"still", &[2]).await, b"still");
}

/// Pipelined requests whose answers (megabytes) the client never reads: hyper's writes stall.
async fn hog(http: SocketAddr) -> TcpStream {
    let mut hog = TcpStream::connect(http).await.unwrap();
    let requests = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(3000);
    hog.write_all(requests.as_bytes()).await.unwrap();
    hog
}

#[tokio::test]
async fn a_connection_that_never_reads_its_answers_gives_its_place_to_a_new_one() {
    let relay = TestRelay::with(|s| {
        s.max_heads = 1;
        s.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let mut hog = hog(relay.http).await;
    // Its only place is taken by a request being answered, and no connection waits for a
    // head: the one answered longest gives its place.
    let mut prompt = TcpStream::connect(relay.http).await.unwrap();
    let response = health(&mut prompt).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(
        closed_within(&mut hog, WAIT).await,
        "the hog is still served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_reads_its_answers_is_closed_after_its_lifetime() {
    let relay = RelayProcess::spawn(&["--handshake-timeout", "1"]);
    let pid = relay.child.id();
    let before = fd_count(pid);
    let started = Instant::now();
    let _hog = hog(relay.http).await;
    let deadline = started + WAIT;
    while fd_count(pid) == before {
        assert!(Instant::now() < deadline, "the hog was never accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Closed after its lifetime (6 handshake timeouts) and the drain (5 s) have passed.
    while fd_count(pid) > before {
        assert!(Instant::now() < deadline, "the hog is still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = started.elapsed();
    assert!(
        held >= Duration::from_secs(5),
        "closed after {held:?}: the hog was not kept for its lifetime"
    );
}

/// A client whose writes go out `PIECE` bytes at a time, [`PAUSE`] apart: slow, but it gets
/// there.
struct Pieces<S> {
    inner: S,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

const PIECE: usize = 40;
const PAUSE: Duration = Duration::from_millis(30);

impl<S: AsyncWrite + Unpin> AsyncWrite for Pieces<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(pause) = &mut self.pause {
            ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let piece = &buf[..buf.len().min(PIECE)];
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, piece))?;
        self.pause = Some(Box::pin(tokio::time::sleep(PAUSE)));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Pieces<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[tokio::test]
async fn heads_and_client_hellos_that_arrive_in_pieces_are_served() {
    // The relay leaves a first head (or ClientHello) in the socket until it is whole: each
    // piece must wake it.
    let relay = TestRelay::start().await;
    let tcp = TcpStream::connect(relay.http).await.unwrap();
    let stream = Pieces {
        inner: tcp,
        pause: None,
    };
    let url = format!("ws://{}/ws", relay.http);
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(ws_echo_roundtrip(ws, b"slowly", &[6]).await, b"slowly");

    let certificate = Certificate::new("pieces");
    let files = certificate.files.clone();
    let relay = TestRelay::with(|s| s.tls = Some(files)).await;
    let tcp = TcpStream::connect(relay.http).await.unwrap();
    let stream = Pieces {
        inner: tcp,
        pause: None,
    };
    assert!(client_hello().len() > 2 * PIECE);
    let tls = certificate
        .connector
        .connect(localhost(), stream)
        .await
        .unwrap();
    let url = format!("wss://localhost:{}/ws", relay.http.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    assert_eq!(ws_echo_roundtrip(ws, b"slowly", &[6]).await, b"slowly");
}
