//! Scale-out: nginx on loopback load-balancing two relay processes, configured from
//! `tests/nginx/nginx.conf.in` (the proxying of `deploy/nginx.conf`, without TLS).
//!
//! Checks that WebSocket bridges work through the proxy with exact echo, that they are spread
//! over both instances, that Origin checks hold behind the proxy, and that killing one relay
//! mid-test drops exactly its own bridges while the other's keep working and new bridges go to
//! the survivor. Also checks `deploy/nginx.conf` itself with `nginx -t` (with a throwaway
//! certificate and loopback ports), and that its WebSocket proxying is the test config's.
//!
//! The tests that need nginx skip (with a message) when it is not installed (`apt-get install
//! nginx-light`), except under CI (`CI` set) or with `SOCKRELAY_REQUIRE_NGINX=1`, where a
//! missing nginx fails them: scripts/setup.sh installs it.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
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

/// Whether a missing nginx is a failure rather than a skip: under CI (`CI` set to anything but
/// empty, `0` or `false`; CI sets `CI=true`) or with `SOCKRELAY_REQUIRE_NGINX` set likewise.
fn nginx_required(ci: Option<&str>, require: Option<&str>) -> bool {
    let set = |v: Option<&str>| {
        v.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
    };
    set(ci) || set(require)
}

/// The nginx binary, or `None` (after saying so) when it is missing and that is allowed.
fn nginx_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(bin) = find_nginx() {
        return Some(bin);
    }
    let env = |k| std::env::var(k).ok();
    if nginx_required(
        env("CI").as_deref(),
        env("SOCKRELAY_REQUIRE_NGINX").as_deref(),
    ) {
        panic!(
            "{test}: nginx is not installed, and CI or SOCKRELAY_REQUIRE_NGINX requires it \
             (scripts/setup.sh installs nginx-light; NGINX=/path/to/nginx points at another)"
        );
    }
    eprintln!(
        "SKIPPED {test}: nginx is not installed (apt-get install nginx-light); set \
         SOCKRELAY_REQUIRE_NGINX=1 to make this a failure"
    );
    None
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
    let Some(nginx_bin) = nginx_or_skip("nginx_balances_two_relays_and_survives_losing_one") else {
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

#[test]
fn a_missing_nginx_fails_under_ci_or_when_required() {
    assert!(!nginx_required(None, None));
    assert!(nginx_required(Some("true"), None));
    assert!(nginx_required(Some("1"), None));
    assert!(nginx_required(None, Some("1")));
    assert!(nginx_required(Some("false"), Some("1")));
    for unset in ["", "0", "false", "FALSE"] {
        assert!(!nginx_required(Some(unset), Some(unset)), "{unset:?}");
    }
}

/// The deploy config, as `include`d in `http {}` (it is a Debian `sites-available` file).
const DEPLOY_CONF: &str = include_str!("../../deploy/nginx.conf");
const TEST_CONF: &str = include_str!("nginx.conf.in");

/// The text without `#` comments (neither config has `#` inside a string).
fn strip_comments(conf: &str) -> String {
    conf.lines()
        .map(|l| l.split_once('#').map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body of the first block that starts with `head {`, comments stripped.
fn block<'a>(conf: &'a str, head: &str) -> &'a str {
    let open = format!("{head} {{");
    let start = conf
        .find(&open)
        .unwrap_or_else(|| panic!("no `{open}` block"))
        + open.len();
    let mut depth = 1;
    for (i, c) in conf[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &conf[start..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("`{open}` block not closed");
}

/// The directives of a block body (one level, blocks inside left out), whitespace normalized.
fn directives(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '{' => {
                depth += 1;
                current.clear();
            }
            '}' => depth -= 1,
            ';' if depth == 0 => {
                out.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
                current.clear();
            }
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    out
}

/// An nginx time such as `1h`, `90s` or `300`, in seconds.
fn nginx_secs(value: &str) -> u64 {
    let (digits, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("bad nginx time {value:?}"));
    n * match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => panic!("unexpected nginx time unit in {value:?}"),
    }
}

#[test]
fn websocket_proxying_is_the_same_in_the_deploy_and_test_configs() {
    let deploy = strip_comments(DEPLOY_CONF);
    let test = strip_comments(TEST_CONF);
    let proxy_directives = |conf: &str| -> Vec<String> {
        directives(block(conf, "location /"))
            .into_iter()
            .filter(|d| d.starts_with("proxy_"))
            .collect()
    };
    let (deploy_proxy, test_proxy) = (proxy_directives(&deploy), proxy_directives(&test));
    for required in [
        "proxy_pass http://sockrelay",
        "proxy_http_version 1.1",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
        "proxy_set_header Host $http_host",
        "proxy_buffering off",
    ] {
        for (name, found) in [
            ("deploy/nginx.conf", &deploy_proxy),
            ("tests/nginx/nginx.conf.in", &test_proxy),
        ] {
            assert!(
                found.iter().any(|d| d == required),
                "{name}: `location /` lacks `{required};` (has {found:#?})"
            );
        }
    }
    // nginx's default of 60 s would cut quiet bridges long before the relay's idle timeout.
    let read_timeout = |found: &[String]| -> u64 {
        let values: Vec<u64> = found
            .iter()
            .filter_map(|d| d.strip_prefix("proxy_read_timeout "))
            .map(nginx_secs)
            .collect();
        assert_eq!(
            values.len(),
            1,
            "one proxy_read_timeout expected in {found:#?}"
        );
        values[0]
    };
    let relay_idle = sockrelay_tests::sockrelay::config::Settings::default()
        .idle_timeout
        .as_secs();
    for found in [&deploy_proxy, &test_proxy] {
        let secs = read_timeout(found);
        assert!(
            secs >= relay_idle,
            "proxy_read_timeout {secs} s is shorter than the relay's idle timeout ({relay_idle} s)"
        );
    }
    // No drift at all: the same proxy_* directives, in the same order.
    assert_eq!(
        deploy_proxy, test_proxy,
        "the proxying of deploy/nginx.conf and tests/nginx/nginx.conf.in differ"
    );
    // The same Upgrade to Connection mapping and balancing.
    let map = "map $http_upgrade $connection_upgrade";
    assert_eq!(
        directives(block(&deploy, map)),
        directives(block(&test, map))
    );
    assert_eq!(
        directives(block(&deploy, map)),
        ["default upgrade", "'' close"]
    );
    for conf in [&deploy, &test] {
        assert!(
            directives(block(conf, "upstream sockrelay"))
                .iter()
                .any(|d| d == "least_conn"),
            "upstream sockrelay without least_conn"
        );
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `deploy/nginx.conf` made testable here: every `listen` on a free loopback port instead of
/// 80/443 on all addresses, the certificate a throwaway one and the log in `dir`. Panics on
/// anything it does not know how to relocate, so a new absolute path or listen form in the
/// deploy config is noticed here rather than silently tested as something else.
fn relocate_deploy_conf(conf: &str, dir: &Path, cert: &Path, key: &Path) -> String {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    // Held until the end so that every port handed out is a different one.
    let mut held = Vec::new();
    let mut ports: HashMap<(bool, u16), u16> = HashMap::new();
    let mut free_port = |v6: bool, port: u16| -> u16 {
        *ports.entry((v6, port)).or_insert_with(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            held.push(l);
            port
        })
    };
    let mut out = Vec::new();
    let (mut listens, mut certs, mut keys) = (0, 0, 0);
    for line in conf.lines() {
        let code = line.split_once('#').map_or(line, |(code, _)| code).trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let words: Vec<&str> = code.trim_end_matches(';').split_whitespace().collect();
        let relocated: Option<Vec<String>> = match words.as_slice() {
            ["listen", addr, rest @ ..] => {
                listens += 1;
                let (v6, port) = match addr.strip_prefix("[::]:") {
                    Some(port) => (true, port),
                    None => (false, addr.strip_prefix("*:").unwrap_or(addr)),
                };
                let port: u16 = port
                    .parse()
                    .unwrap_or_else(|_| panic!("unexpected listen address in: {line}"));
                // Without IPv6 on this machine, the [::] listens take loopback ports of their own.
                let host = if v6 && ipv6 { "[::1]" } else { "127.0.0.1" };
                let mut new = vec![
                    "listen".to_owned(),
                    format!("{host}:{}", free_port(v6, port)),
                ];
                new.extend(rest.iter().map(|w| w.to_string()));
                Some(new)
            }
            ["ssl_certificate", _] => {
                certs += 1;
                Some(vec!["ssl_certificate".into(), cert.display().to_string()])
            }
            ["ssl_certificate_key", _] => {
                keys += 1;
                Some(vec![
                    "ssl_certificate_key".into(),
                    key.display().to_string(),
                ])
            }
            [directive @ ("access_log" | "error_log"), path, rest @ ..]
                if path.starts_with('/') =>
            {
                let file = dir.join(Path::new(path).file_name().unwrap());
                let mut new = vec![directive.to_string(), file.display().to_string()];
                new.extend(rest.iter().map(|w| w.to_string()));
                Some(new)
            }
            _ => None,
        };
        match relocated {
            Some(words) => {
                assert!(
                    code.ends_with(';'),
                    "a directive over several lines: {line}"
                );
                out.push(format!("{indent}{};", words.join(" ")));
            }
            None => {
                for root in ["/etc/", "/var/", "/run/", "/usr/", "/srv/", "/home/"] {
                    assert!(
                        !code.contains(root),
                        "deploy/nginx.conf has a path this test does not relocate: {line}"
                    );
                }
                out.push(line.to_owned());
            }
        }
    }
    assert!(
        listens > 0 && certs > 0 && keys > 0,
        "deploy/nginx.conf should listen and serve TLS ({listens} listen, {certs} \
         ssl_certificate, {keys} ssl_certificate_key)"
    );
    out.join("\n")
}

#[test]
fn deploy_config_passes_nginx_t() {
    let Some(nginx_bin) = nginx_or_skip("deploy_config_passes_nginx_t") else {
        return;
    };
    let dir =
        TempDir(std::env::temp_dir().join(format!("sockrelay-nginx-t-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["relay.example.org".into()]).unwrap();
    let (cert, key) = (dir.0.join("fullchain.pem"), dir.0.join("privkey.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let site = dir.0.join("sockrelay.conf");
    std::fs::write(
        &site,
        relocate_deploy_conf(DEPLOY_CONF, &dir.0, &cert, &key),
    )
    .unwrap();
    // What Debian's /etc/nginx/nginx.conf provides around sites-enabled, in the temporary
    // directory.
    let d = dir.0.display();
    let main = format!(
        "pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\n\
         events {{}}\n\
         http {{\n\
         \x20   access_log {d}/access.log;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {};\n\
         }}\n",
        site.display()
    );
    let conf = dir.0.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let output = Command::new(&nginx_bin)
        .arg("-t")
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.contains("test is successful"),
        "nginx -t rejected deploy/nginx.conf ({}):\n{said}\n--- as tested:\n{}",
        output.status,
        std::fs::read_to_string(&site).unwrap_or_default()
    );
    assert!(!said.contains("[emerg]"), "{said}");
}
