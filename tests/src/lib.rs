//! Helpers for the integration tests: the real relay on ephemeral loopback ports, in process,
//! and small real clients (raw HTTP, WebSocket).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay::config::Settings;
use sockrelay::metrics::Metrics;
use sockrelay::Relay;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use sockrelay;

pub mod raw;
pub use raw::{http_get, parse_response, raw_http};

/// Bound on any single wait in a test, so a broken relay fails a test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A relay running in this process on 127.0.0.1 with ephemeral ports.
pub struct TestRelay {
    pub http: SocketAddr,
    pub echo: SocketAddr,
    pub ack: SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestRelay {
    /// Starts a relay with default limits.
    pub async fn start() -> TestRelay {
        Self::with(|_| {}).await
    }

    /// Starts a relay after `adjust` changed its settings (addresses stay ephemeral).
    pub async fn with(adjust: impl FnOnce(&mut Settings)) -> TestRelay {
        let mut settings = Settings::ephemeral();
        adjust(&mut settings);
        let relay = Relay::bind(settings).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (http, echo, ack, metrics) = (
            relay.http_addr(),
            relay.echo_addr(),
            relay.ack_addr(),
            relay.metrics(),
        );
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        TestRelay {
            http,
            echo,
            ack,
            metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.http, path_and_query)
    }

    /// Opens a WebSocket to `/ws...` with no Origin (as a non-browser client).
    pub async fn ws(&self, path_and_query: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(self.ws_url(path_and_query)),
        )
        .await
        .unwrap()
        .unwrap();
        ws
    }

    /// Tries a WebSocket handshake with extra headers; returns the HTTP status and body of a
    /// refusal, or `Ok` with the socket.
    pub async fn try_ws(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, (u16, String)> {
        match connect_with(&self.ws_url(path_and_query), headers).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err((response.status().as_u16(), body))
            }
            Err(e) => panic!("handshake failed unexpectedly: {e}"),
        }
    }

    /// Waits until `/metrics` reports no active bridge (bridges close asynchronously).
    pub async fn wait_bridges_closed(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.metrics.bridges_active() != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "bridges still active: {}",
                self.metrics.bridges_active()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the relay as SIGINT would and waits for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(WAIT, task).await??,
            None => Ok(()),
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A WebSocket handshake to `url` with extra headers (name, value), within [`WAIT`]: the socket
/// and the relay's response, or the error the client saw (a refusal is `Error::Http`).
pub async fn connect_with(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
}

/// The bridge's next message, which must be its Close: `(code, reason)`.
pub async fn next_close(ws: &mut Ws) -> (u16, String) {
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => (u16::from(f.code), f.reason.to_string()),
        other => panic!("expected the Close, got {other:?}"),
    }
}

/// Sends `payload` over a WebSocket in frames of the given sizes (cycled), and reads the echo
/// back concurrently; returns what came back once `payload.len()` bytes arrived.
pub async fn ws_echo_roundtrip<S>(
    ws: WebSocketStream<S>,
    payload: &[u8],
    frame_sizes: &[usize],
) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let sizes: Vec<usize> = frame_sizes.iter().map(|&s| s.max(1)).collect();
    let send = async {
        let mut offset = 0;
        let mut i = 0;
        while offset < payload.len() {
            let end = (offset + sizes[i % sizes.len()]).min(payload.len());
            sink.send(Message::binary(payload[offset..end].to_vec()))
                .await
                .unwrap();
            offset = end;
            i += 1;
        }
        sink
    };
    let receive = async {
        let mut got = Vec::with_capacity(payload.len());
        while got.len() < payload.len() {
            match stream.next().await {
                Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
                Some(Ok(Message::Close(f))) => panic!("closed early: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("receive failed: {e}"),
                None => panic!("stream ended after {} bytes", got.len()),
            }
        }
        got
    };
    let (mut sink, got) = tokio::time::timeout(WAIT * 3, async { tokio::join!(send, receive) })
        .await
        .unwrap();
    let _ = sink.close().await;
    got
}

/// Proves the relay at `http` still bridges after whatever a test did to it.
pub async fn still_serves(http: SocketAddr) {
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{http}/ws")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        ws_echo_roundtrip(ws, b"still here", &[3]).await,
        b"still here"
    );
}

/// The value of an unlabelled counter in a Prometheus text exposition; panics if it is not
/// there.
pub fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {metrics}"))
}

/// A loopback port that refuses whatever is sent to it for as long as this value lives.
///
/// The port stays bound, so no other socket gets it while a test runs: not another test's
/// listener, nor a connection's own ephemeral port (a port bound and then released can be
/// handed to either at once, and a test that expected a refusal then finds somebody there).
pub struct ClosedPort {
    pub addr: SocketAddr,
    _held: Box<dyn Send + Sync>,
}

impl ClosedPort {
    /// TCP on 127.0.0.1: bound, never listening, so a connection attempt is reset at once.
    pub fn tcp() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            addr,
            _held: Box::new(socket),
        }
    }

    /// UDP on 127.0.0.1: bound and connected to another port, so a datagram from anyone else
    /// finds no socket and draws ICMP port unreachable.
    pub fn udp() -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect("127.0.0.1:9").unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            addr,
            _held: Box::new(socket),
        }
    }
}

/// A deterministic pseudo-random generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The `sockrelay` binary (built by `cargo build -p sockrelay`; `SOCKRELAY_BIN` overrides).
pub fn sockrelay_bin() -> std::path::PathBuf {
    match std::env::var_os("SOCKRELAY_BIN") {
        Some(p) => p.into(),
        None => {
            let p =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sockrelay");
            assert!(
                p.exists(),
                "{} not found: run `cargo build -p sockrelay` first (make test does)",
                p.display()
            );
            p
        }
    }
}

/// A relay running as its own process, for what must be measured or signalled from outside.
pub struct RelayProcess {
    pub child: std::process::Child,
    pub http: SocketAddr,
    pub echo: SocketAddr,
    /// Every log line the relay wrote after its startup lines.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Flags that put every service of a `sockrelay` process on a free port of 127.0.0.1.
pub const EPHEMERAL_PORTS: [&str; 6] = [
    "--http",
    "127.0.0.1:0",
    "--echo",
    "127.0.0.1:0",
    "--ack",
    "127.0.0.1:0",
];

impl RelayProcess {
    /// Starts `sockrelay` on ephemeral ports with extra `args`, and waits for its startup log.
    pub fn spawn(args: &[&str]) -> RelayProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(sockrelay_bin())
            .args(EPHEMERAL_PORTS)
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let (mut http, mut echo) = (None, None);
        let addr_of = |line: &str| {
            line.split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        while http.is_none() || echo.is_none() {
            let line = lines.next().expect("relay exited during startup").unwrap();
            if line.contains("service=\"http\"") {
                http = addr_of(&line);
            } else if line.contains("service=\"echo\"") {
                echo = addr_of(&line);
            }
        }
        // Keep draining the log so the relay never blocks on a full pipe; keep it for tests.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        RelayProcess {
            child,
            http: http.unwrap(),
            echo: echo.unwrap(),
            log,
        }
    }

    /// The log lines (after startup) written so far that contain every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .cloned()
            .collect()
    }

    /// The first log line (after startup) that contains every one of `needles`, waiting up to
    /// `timeout` for it to be written.
    pub fn wait_for_log(&self, needles: &[&str], timeout: std::time::Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let found = self.log_lines(needles).into_iter().next();
            if found.is_some() || std::time::Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Resident memory of the relay process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
