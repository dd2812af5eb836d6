//! Scale-out: nginx on loopback load-balancing two relay processes, configured from
//! `tests/nginx/nginx.conf.in` (the proxying of `deploy/nginx.conf`, without TLS).
//!
//! Checks that WebSocket bridges work through the proxy with exact echo, that they are spread
//! over both instances, that Origin checks hold behind the proxy, and that killing one relay
//! mid-test drops exactly its own bridges while the other's keep working and new bridges go to
//! the survivor. Skips (with a message) when nginx is not installed (`apt-get install
//! nginx-light`); CI installs it.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{http_get, ws_echo_roundtrip, RelayProcess, Rng, Ws, WAIT};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The page origin the relays are configured for, as a TLS-terminating proxy would serve it.
const SITE: &str = "https://sockrelay.example";

fn find_nginx() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NGINX") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// nginx as a foreground child process with everything it writes in a temporary directory.
struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    fn start(binary: &Path, upstreams: &[SocketAddr]) -> Nginx {
        let dir = std::env::temp_dir().join(format!("sockrelay-nginx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A free loopback port (nginx binds it right after; nothing else here takes ports).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let servers: String = upstreams
            .iter()
            .map(|a| format!("        server {a} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        let template = include_str!("nginx.conf.in");
        let config = template
            .replace("@PREFIX@", dir.to_str().unwrap())
            .replace("@LISTEN@", &addr.to_string())
            .replace("@UPSTREAMS@", servers.trim_end());
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Nginx { child, dir, addr }
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until nginx answers `/healthz` from a relay.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", self.logs());
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && http_get(self.addr, "/healthz").await == (200, "ok\n".into())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx not ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ws_via(proxy: SocketAddr, query: &str, origin: Option<&str>) -> Result<Ws, u16> {
    let mut request = format!("ws://{proxy}/ws{query}")
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        request.headers_mut().insert("Origin", o.parse().unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake through nginx timed out")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("handshake through nginx failed: {e}"),
    }
}

/// Sends one message over an ack bridge and returns the instance name it answers with.
async fn who(ws: &mut Ws) -> Result<String, String> {
    ws.send(Message::text("who?"))
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    while reply.len() < "relay-x".len() {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => reply.extend_from_slice(&b),
            Ok(Some(Ok(Message::Close(f)))) => return Err(format!("closed: {f:?}")),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("end of stream".into()),
            Err(_) => return Err("no reply".into()),
        }
    }
    Ok(String::from_utf8_lossy(&reply[.."relay-x".len()]).into_owned())
}

async fn active_bridges(relay: SocketAddr) -> u64 {
    let (_, text) = http_get(relay, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix("sockrelay_bridges_active "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_balances_two_relays_and_survives_losing_one() {
    let Some(nginx_bin) = find_nginx() else {
        eprintln!(
            "SKIPPED: nginx is not installed (apt-get install nginx-light); \
             the scale-out test needs it"
        );
        return;
    };
    let mut a = RelayProcess::spawn(&["--ack-reply", "relay-a", "--origin", SITE]);
    let b = RelayProcess::spawn(&["--ack-reply", "relay-b", "--origin", SITE]);
    let mut nginx = Nginx::start(&nginx_bin, &[a.http, b.http]);
    nginx.wait_ready().await;
    let proxy = nginx.addr;

    // Echo through the proxy: exact bytes, in order, in random frames.
    let mut echoes = Vec::new();
    for i in 0..20u64 {
        echoes.push(tokio::spawn(async move {
            let ws = ws_via(proxy, "", None).await.unwrap();
            let mut rng = Rng::new(500 + i);
            let payload = rng.bytes(256 * 1024);
            let sizes: Vec<usize> = (0..16).map(|_| rng.range(1, 32 * 1024)).collect();
            let got = ws_echo_roundtrip(ws, &payload, &sizes).await;
            assert!(got == payload, "echo {i} through nginx differs");
        }));
    }
    for e in echoes {
        e.await.unwrap();
    }

    // Origin checks hold behind the proxy (nginx forwards Origin and Host untouched).
    assert!(ws_via(proxy, "", Some(SITE)).await.is_ok());
    for bad in ["https://evil.example", "http://localhost:3000", "null"] {
        assert_eq!(ws_via(proxy, "", Some(bad)).await.err(), Some(403), "{bad}");
    }
    assert_eq!(
        ws_via(proxy, "?target=10.0.0.1:22", None).await.err(),
        Some(403)
    );

    // Long-lived bridges, spread over both instances.
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for _ in 0..40 {
        let mut ws = ws_via(proxy, "?target=ack", None).await.unwrap();
        match who(&mut ws).await.unwrap().as_str() {
            "relay-a" => on_a.push(ws),
            "relay-b" => on_b.push(ws),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let (n_a, n_b) = (on_a.len(), on_b.len());
    assert!(n_a >= 10 && n_b >= 10, "unbalanced: {n_a} on a, {n_b} on b");
    assert_eq!(active_bridges(a.http).await, n_a as u64);
    assert_eq!(active_bridges(b.http).await, n_b as u64);

    // Every bridge keeps talking (ping, reply) while relay a is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let exchanges = Arc::new(AtomicU64::new(0));
    let mut talkers = Vec::new();
    for (expected, bridges) in [("relay-a", on_a), ("relay-b", on_b)] {
        for mut ws in bridges {
            let (stop, killed, exchanges) = (stop.clone(), killed.clone(), exchanges.clone());
            talkers.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let was_killed = killed.load(Ordering::SeqCst);
                    match who(&mut ws).await {
                        Ok(name) => {
                            assert_eq!(name, expected);
                            exchanges.fetch_add(1, Ordering::Relaxed);
                        }
                        // Only a's bridges may fail, and only once a is gone.
                        Err(e) => {
                            assert_eq!(expected, "relay-a", "a bridge on b failed: {e}");
                            assert!(
                                was_killed || killed.load(Ordering::SeqCst),
                                "a bridge on a failed before the kill: {e}"
                            );
                            return (expected, false, ws);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (expected, true, ws)
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kill = exchanges.load(Ordering::Relaxed);
    killed.store(true, Ordering::SeqCst);
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // New bridges all land on b (nginx skips the dead instance) and echo exactly.
    for i in 0..20u64 {
        let mut ws = ws_via(proxy, "?target=ack", None).await.unwrap();
        assert_eq!(who(&mut ws).await.unwrap(), "relay-b", "new bridge {i}");
        ws.close(None).await.unwrap();
        let ws = ws_via(proxy, "", None).await.unwrap();
        let payload = Rng::new(900 + i).bytes(64 * 1024);
        assert!(ws_echo_roundtrip(ws, &payload, &[7000]).await == payload);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);

    let (mut dropped, mut survived) = (0, 0);
    let mut survivors = Vec::new();
    for t in talkers {
        let (instance, alive, ws) = tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
        match (instance, alive) {
            ("relay-a", false) => dropped += 1,
            ("relay-b", true) => {
                survived += 1;
                survivors.push(ws);
            }
            (instance, alive) => panic!("{instance} bridge alive={alive}"),
        }
    }
    assert_eq!((dropped, survived), (n_a, n_b));
    let after_kill = exchanges.load(Ordering::Relaxed) - before_kill;
    assert!(after_kill > 0);

    // The survivors close cleanly and b is left with no bridge.
    for mut ws in survivors {
        ws.close(None).await.unwrap();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
    }
    let deadline = Instant::now() + WAIT;
    while active_bridges(b.http).await != 0 {
        assert!(Instant::now() < deadline, "bridges left open on b");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "scale-out: nginx {} -> 2 relays; 20 echo bridges exact; 40 long-lived bridges split \
         {n_a}/{n_b}; killing a dropped its {dropped} bridges, b's {survived} kept talking \
         ({before_kill} exchanges before, {after_kill} after); 20 new bridges all on b",
        proxy
    );
    drop(nginx);
}
