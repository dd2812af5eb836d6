//! websockify's ways: token-file targets on `/ws` and `/websockify`, the `binary` subprotocol,
//! `sockrelay websockify`'s command line, PROXY protocol v2 headers and trusted proxies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{
    connect_with, http_get, raw, sockrelay_bin, ClosedPort, TestRelay, Ws, WAIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A TCP target that greets each connection with `name` and a newline, then echoes.
async fn named_target(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(format!("{name}\n").as_bytes()).await;
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockrelay-ws-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first message of a bridge, as text.
async fn greeting(ws: &mut Ws) -> String {
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("expected the target's greeting, got {other:?}"),
    }
}

async fn relay_with_tokens(file: &Path, token: Option<&str>) -> TestRelay {
    let file = file.to_owned();
    let token = token.map(str::to_owned);
    TestRelay::with(move |s| {
        s.target_tokens = Some(file);
        s.token = token;
    })
    .await
}

#[tokio::test]
async fn a_token_picks_its_target_on_ws_and_websockify_with_the_binary_subprotocol() {
    let (a, b) = (named_target("alpha").await, named_target("bravo").await);
    let dir = scratch("pick");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("# two desktops\nalpha: {a}\n\nbravo: {b}\n")).unwrap();
    let relay = relay_with_tokens(&file, None).await;

    let mut ws = relay.ws("/ws?token=alpha").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");

    // noVNC's request: its default path, and the `binary` subprotocol.
    let url = relay.ws_url("/websockify?token=bravo");
    let (mut ws, response) = connect_with(&url, &[("sec-websocket-protocol", "binary")])
        .await
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "binary");
    assert_eq!(greeting(&mut ws).await, "bravo\n");
    ws.send(Message::binary(b"RFB 003.008\n".to_vec()))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"RFB 003.008\n"),
        other => panic!("expected the echo, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn unknown_tokens_are_refused_and_nothing_else_widens() {
    let a = named_target("alpha").await;
    let dir = scratch("unknown");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("alpha: {a}\n")).unwrap();
    let relay = relay_with_tokens(&file, None).await;

    let (status, body) = relay
        .try_ws("/websockify?token=nope", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"],
        "unknown target token: ask the relay's operator for a valid one"
    );
    // A token's target is not thereby allowed by `?target=`.
    let (status, _) = relay
        .try_ws(&format!("/ws?target={a}"), &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 403);
    let (status, body) = relay
        .try_ws("/ws?token=alpha&target=echo", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 400, "{body}");
    // The built-ins stay what they were.
    let mut ws = relay.ws("/ws").await;
    ws.send(Message::binary(b"hi".to_vec())).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(WAIT, ws.next()).await.unwrap(),
        Some(Ok(Message::Binary(b))) if &b[..] == b"hi"
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_target_that_refuses_the_connection_closes_the_bridge_with_1011() {
    let dir = scratch("refused");
    let file = dir.join("tokens");
    let closed = ClosedPort::tcp();
    std::fs::write(&file, format!("gone: {}\n", closed.addr)).unwrap();
    let relay = relay_with_tokens(&file, None).await;
    let mut ws = relay.ws("/websockify?token=gone").await;
    assert_eq!(
        sockrelay_tests::next_close(&mut ws).await,
        (1011, "target unreachable: connection refused".into())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What the relay answers on `path` once it has seen a change of its token files (it looks at
/// most once a second): the first answer that `seen` accepts, asked again until WAIT passes.
async fn once_seen(
    relay: &TestRelay,
    path: &str,
    seen: impl Fn(&Result<String, (u16, String)>) -> bool,
) -> Result<String, (u16, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = match relay.try_ws(path, &[]).await {
            Ok(mut ws) => Ok(greeting(&mut ws).await),
            Err(refused) => Err(refused),
        };
        if seen(&answer) || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_changed_token_file_is_read_again_without_a_restart() {
    let (a, b) = (named_target("alpha").await, named_target("bravo").await);
    let dir = scratch("reread");
    std::fs::write(dir.join("one"), format!("desk: {a}\n")).unwrap();
    let relay = relay_with_tokens(&dir, None).await;
    let mut ws = relay.ws("/ws?token=desk").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");

    // The token moves to another desktop, and a new file adds one: a directory means every
    // file in it.
    std::fs::write(dir.join("one"), format!("desk: {b}\n# moved\n")).unwrap();
    std::fs::write(dir.join("two"), format!("other: {a}\n")).unwrap();
    let moved = once_seen(&relay, "/ws?token=desk", |r| r.as_deref() == Ok("bravo\n")).await;
    assert_eq!(moved.unwrap(), "bravo\n");
    let mut ws = relay.ws("/ws?token=other").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");

    std::fs::remove_file(dir.join("two")).unwrap();
    let gone = once_seen(&relay, "/ws?token=other", Result::is_err).await;
    assert_eq!(gone.err().unwrap().0, 403);
    // A file that cannot be read while the relay runs: its token is refused with 503, without
    // the operator's details, and the other files' tokens still work.
    std::fs::write(dir.join("two"), format!("other: {a}\n")).unwrap();
    std::fs::write(dir.join("one"), b"desk: 127.0.0.1:1\n\xff\n").unwrap();
    let broken = once_seen(&relay, "/ws?token=desk", Result::is_err).await;
    let (status, body) = broken.err().unwrap();
    assert_eq!(status, 503);
    assert!(
        !body.contains("UTF") && !body.contains("sockrelay-ws"),
        "{body}"
    );
    let mut ws = relay.ws("/ws?token=other").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn with_target_tokens_the_auth_token_comes_as_auth_or_bearer() {
    let a = named_target("alpha").await;
    let dir = scratch("auth");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("alpha: {a}\n")).unwrap();
    let relay = relay_with_tokens(&file, Some("s3cret")).await;

    // ?token= names the target; without the auth token the request is refused.
    let (status, body) = relay
        .try_ws("/websockify?token=alpha", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("?auth="), "{body}");
    // The auth token as ?token= is a target's name here, not the auth token.
    let (status, _) = relay.try_ws("/ws?token=s3cret", &[]).await.err().unwrap();
    assert_eq!(status, 401);

    let mut ws = relay.ws("/websockify?token=alpha&auth=s3cret").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    let mut ws = relay
        .try_ws("/ws?token=alpha", &[("authorization", "Bearer s3cret")])
        .await
        .unwrap();
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    let (status, _) = relay
        .try_ws("/ws?token=alpha&auth=wrong", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    // /api/* has no target to name: ?token= is still the auth token there, and ?auth= too.
    assert_eq!(
        http_get(relay.http, "/api/targets?token=s3cret").await.0,
        200
    );
    assert_eq!(
        http_get(relay.http, "/api/targets?auth=s3cret").await.0,
        200
    );
    assert_eq!(
        http_get(relay.http, "/api/targets?token=alpha").await.0,
        401
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_token_source_that_cannot_be_read_stops_the_relay_at_startup_and_a_bad_line_does_not() {
    let dir = scratch("broken");
    let file = dir.join("tokens");
    let mut settings = sockrelay_tests::sockrelay::config::Settings::ephemeral();
    settings.target_tokens = Some(file.clone());
    let e = sockrelay_tests::sockrelay::Relay::bind(settings)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("--target-tokens"), "{e}");
    // websockify skips a line it cannot parse, and serves the others.
    let a = named_target("alpha").await;
    std::fs::write(&file, format!("alpha 127.0.0.1:5900\nalpha: {a}\n")).unwrap();
    let relay = relay_with_tokens(&file, None).await;
    let mut ws = relay.ws("/ws?token=alpha").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: the first definition of a token won. websockify's plugin fills a dictionary
/// line by line, file by file in name order, so its last one does.
#[tokio::test]
async fn the_last_definition_of_a_token_wins_as_in_websockify() {
    let (a, b, c) = (
        named_target("alpha").await,
        named_target("bravo").await,
        named_target("charlie").await,
    );
    let dir = scratch("last-wins");
    std::fs::write(dir.join("1-old"), format!("desk: {a}\nlab: {a}\n")).unwrap();
    std::fs::write(dir.join("2-new"), format!("desk: {b}\n")).unwrap();
    std::fs::write(dir.join("3-same"), format!("lab: {b}\nlab: {c}\n")).unwrap();
    let relay = relay_with_tokens(&dir, None).await;
    for (token, target) in [("desk", "bravo\n"), ("lab", "charlie\n")] {
        let mut ws = relay.ws(&format!("/websockify?token={token}")).await;
        assert_eq!(greeting(&mut ws).await, target, "{token}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: the names in the files were resolved when they were read, and one that did not
/// resolve failed every token (at startup, the relay did not start). It fails its own token
/// now, with 503, and the name is resolved when its token is asked for.
#[tokio::test]
async fn a_name_that_does_not_resolve_fails_its_own_token_only() {
    let a = named_target("alpha").await;
    let dir = scratch("unresolved");
    let file = dir.join("tokens");
    // `.invalid` never resolves (RFC 6761).
    std::fs::write(&file, format!("gone: nowhere.invalid:5900\nalpha: {a}\n")).unwrap();
    let relay = relay_with_tokens(&file, None).await;
    let mut ws = relay.ws("/ws?token=alpha").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    let (status, body) = relay
        .try_ws("/websockify?token=gone", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("does not resolve") && !body.contains("nowhere"),
        "{body}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: up to 1,024 files of 1 MiB were read, 1 GiB in all. The relay reads 8 MiB of
/// token files at most: the file that would go past it, and those after it, are not read,
/// and their tokens (and any token not found) are refused with 503 rather than 403.
#[tokio::test]
async fn token_files_past_8_mib_in_all_are_not_read() {
    let a = named_target("alpha").await;
    let dir = scratch("total");
    // Nine files of 1,000,000 bytes: eight fit in 8 MiB, the ninth does not.
    for n in 0..9 {
        let mut text = format!("t{n}: {a}\n");
        text.push_str(&"#".repeat(999_999 - text.len()));
        text.push('\n');
        std::fs::write(dir.join(format!("f{n}")), text).unwrap();
    }
    let relay = relay_with_tokens(&dir, None).await;
    let mut ws = relay.ws("/ws?token=t7").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    for token in ["t8", "nope"] {
        let (status, _) = relay
            .try_ws(&format!("/ws?token={token}"), &[])
            .await
            .err()
            .unwrap();
        assert_eq!(status, 503, "{token}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sockrelay websockify ARGS`, typed as a websockify user would, its HTTP address once it logs
/// it, and its log lines so far.
struct Websockify {
    child: std::process::Child,
    http: SocketAddr,
    startup: Vec<String>,
}

impl Websockify {
    fn spawn(args: &[&str]) -> Websockify {
        Self::spawn_with_env(args, &[])
    }

    fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Websockify {
        let mut command = std::process::Command::new(sockrelay_bin());
        command.arg("websockify");
        Self::spawn_command(command, args, env)
    }

    fn spawn_command(
        mut command: std::process::Command,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Websockify {
        use std::io::BufRead;
        let mut child = command
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut startup = Vec::new();
        let http = loop {
            let line = lines.next().expect("relay exited during startup").unwrap();
            startup.push(line.clone());
            if line.contains("ready: open") {
                let addr = startup
                    .iter()
                    .find(|l| l.contains("service=\"http\""))
                    .and_then(|l| l.split("addr=").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .unwrap();
                break addr;
            }
        };
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Websockify {
            child,
            http,
            startup,
        }
    }

    async fn ws(&self, path: &str) -> Ws {
        let url = format!("ws://{}{path}", self.http);
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap()
            .0
    }

    /// Waits (bounded) for the process to exit by itself.
    async fn exit_status(&mut self) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Websockify {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression: SOCKRELAY_TOKEN (a service's EnvironmentFile) was read by `serve` only, so a
/// unit whose command became `sockrelay websockify ...` opened its bridges and API to anyone.
#[tokio::test]
async fn sockrelay_token_from_the_environment_guards_websockify_mode_too() {
    let a = named_target("alpha").await;
    let relay = Websockify::spawn_with_env(
        &["127.0.0.1:0", &a.to_string()],
        &[("SOCKRELAY_TOKEN", "s3cret")],
    );
    assert_eq!(http_get(relay.http, "/api/targets").await.0, 401);
    assert_eq!(
        http_get(relay.http, "/api/targets?token=s3cret").await.0,
        200
    );
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/websockify", relay.http)).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "{refused:?}"
    );
    let mut ws = relay.ws("/websockify?token=s3cret").await;
    assert_eq!(greeting(&mut ws).await.trim_end(), "alpha");
}

#[tokio::test]
async fn one_target_mode_sends_every_connection_to_it_and_opens_nothing_else() {
    let a = named_target("alpha").await;
    let relay = Websockify::spawn(&["127.0.0.1:0", &a.to_string()]);
    let services: Vec<&String> = relay
        .startup
        .iter()
        .filter(|l| l.contains("listening"))
        .collect();
    assert_eq!(services.len(), 1, "only the HTTP listener: {services:?}");
    // websockify takes an upgrade on any path: a proxy in front may have rewritten noVNC's
    // `/websockify` to `/` (nginx's `proxy_pass http://127.0.0.1:6080/;`), or to its own.
    for path in ["/websockify", "/ws", "/", "/vnc/socket?x=1"] {
        let mut ws = relay.ws(path).await;
        assert_eq!(greeting(&mut ws).await, "alpha\n", "{path}");
    }
    // No built-in is reachable, and nothing but the target is allowed.
    let body = http_get(relay.http, "/api/targets").await.1;
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(targets.as_array().unwrap().len(), 1, "{targets}");
    assert_eq!(targets[0]["target"], a.to_string());
    for refused in [
        "/ws?target=echo",
        "/ws?target=ack",
        "/ws?target=127.0.0.1:1",
    ] {
        let url = format!("ws://{}{refused}", relay.http);
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 403, "{refused}")
            }
            other => panic!("{refused}: {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn a_token_file_from_websockify_s_command_line() {
    let a = named_target("alpha").await;
    let dir = scratch("cli-tokens");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("vnc: {a}\n")).unwrap();
    let relay = Websockify::spawn(&[
        "--token-plugin",
        "TokenFile",
        "--token-source",
        file.to_str().unwrap(),
        "127.0.0.1:0",
    ]);
    let mut ws = relay.ws("/websockify?token=vnc").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    // With tokens only, a request without one has nowhere to go.
    let url = format!("ws://{}/websockify", relay.http);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("{:?}", other.map(|_| ())),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn websockify_options_sockrelay_cannot_honour_are_refused_by_name() {
    for (args, option) in [
        (&["--daemon", "6080", "127.0.0.1:5900"][..], "--daemon"),
        (
            &["--record", "/tmp/x", "6080", "127.0.0.1:5900"][..],
            "--record",
        ),
        (
            &["--ssl-target", "6080", "127.0.0.1:5900"][..],
            "--ssl-target",
        ),
        (
            &["--auth-plugin", "BasicHTTPAuth", "6080", "127.0.0.1:5900"][..],
            "--auth-plugin",
        ),
        (
            &[
                "--token-plugin",
                "TokenRedis",
                "--token-source",
                "x",
                "6080",
            ][..],
            "--token-plugin TokenRedis",
        ),
    ] {
        let out = std::process::Command::new(sockrelay_bin())
            .arg("websockify")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "sockrelay websockify: websockify option {option} is not supported: "
            )),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A link named `websockify` to the binary is websockify's command line: scripts that run
/// `websockify` by name (noVNC's `novnc_proxy`) run the relay unchanged.
#[tokio::test]
async fn a_link_named_websockify_takes_websockify_s_command_line() {
    let dir = scratch("argv0");
    let link = dir.join("websockify");
    std::os::unix::fs::symlink(sockrelay_bin(), &link).unwrap();
    let out = std::process::Command::new(&link)
        .args(["--daemon", "6080"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("sockrelay websockify: websockify option --daemon is not supported"),
        "{stderr}"
    );
    let a = named_target("alpha").await;
    let relay = Websockify::spawn_command(
        std::process::Command::new(&link),
        &["127.0.0.1:0", &a.to_string()],
        &[],
    );
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    drop(relay);
    // Under its own name, the first word is still the subcommand.
    let out = std::process::Command::new(sockrelay_bin())
        .args(["127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn idle_timeout_exits_once_no_connection_is_open_as_websockify_does() {
    let a = named_target("alpha").await;
    let mut relay = Websockify::spawn(&["--idle-timeout", "1", "127.0.0.1:0", &a.to_string()]);
    // An open bridge keeps it running past the timeout.
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        relay.child.try_wait().unwrap().is_none(),
        "exited with a bridge open"
    );
    ws.close(None).await.unwrap();
    let status = relay.exit_status().await;
    assert_eq!(status.code(), Some(0));
}

/// Waits (bounded) until `addr` refuses connections: the relay's listener has closed.
async fn until_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still takes connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One echo through `ws`: the bridge is still open and moving bytes.
async fn echoes(ws: &mut Ws, text: &str) {
    ws.send(Message::binary(text.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(greeting(ws).await, text);
}

#[tokio::test]
async fn run_once_serves_one_websocket_connection_and_exits_when_it_ends() {
    let a = named_target("alpha").await;
    let mut relay = Websockify::spawn(&["--run-once", "127.0.0.1:0", &a.to_string()]);
    // Plain HTTP requests before it are served and do not count.
    assert_eq!(http_get(relay.http, "/healthz").await.0, 200);
    assert_eq!(http_get(relay.http, "/healthz").await.0, 200);
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    // Nothing else is taken now, and the one connection goes on.
    until_refused(relay.http).await;
    echoes(&mut ws, "still here").await;
    assert!(relay.child.try_wait().unwrap().is_none(), "exited too soon");
    ws.close(None).await.unwrap();
    assert_eq!(relay.exit_status().await.code(), Some(0));
}

/// Regression: the relay exited while its one bridge was still dialing a slow target (the
/// client got Close 1001). The target's accept queue is full when the bridge dials, so the
/// kernel drops the relay's SYN and it connects on the retry, about a second later.
#[tokio::test]
async fn run_once_waits_for_a_bridge_that_is_still_dialing() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let target = listener.local_addr().unwrap();
    // Fill the accept queue (a backlog of 1 holds two on Linux).
    let mut fillers = Vec::new();
    for _ in 0..2 {
        fillers.push(tokio::net::TcpStream::connect(target).await.unwrap());
    }
    let mut relay = Websockify::spawn(&["--run-once", "127.0.0.1:0", &target.to_string()]);
    let mut ws = relay.ws("/websockify").await;
    // Let the relay's first SYN be dropped, then make room and greet every connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(b"slow\n").await;
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    assert_eq!(greeting(&mut ws).await, "slow\n");
    echoes(&mut ws, "here").await;
    ws.close(None).await.unwrap();
    assert_eq!(relay.exit_status().await.code(), Some(0));
    drop(fillers);
}

/// Regression: a keep-alive connection opened before the one bridge could open a second
/// bridge after the listener had closed.
#[tokio::test]
async fn run_once_refuses_an_upgrade_on_a_connection_that_was_already_open() {
    let a = named_target("alpha").await;
    let mut relay = Websockify::spawn(&["--run-once", "127.0.0.1:0", &a.to_string()]);
    let host = relay.http.to_string();
    let health = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let early = raw::exchange(relay.http, health).await;
    assert_eq!(early.status, 200, "{}", early.head);
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    until_refused(relay.http).await;
    let upgrade = raw::exchange_on(early.stream, raw::upgrade(&host, "/websockify", "")).await;
    assert_eq!(upgrade.status, 503, "{}", upgrade.head);
    ws.close(None).await.unwrap();
    assert_eq!(relay.exit_status().await.code(), Some(0));
}

/// As websockify, a connection whose target cannot be reached is the one connection too.
#[tokio::test]
async fn run_once_ends_after_a_connection_whose_target_is_unreachable() {
    let closed = ClosedPort::tcp();
    let mut relay = Websockify::spawn(&["--run-once", "127.0.0.1:0", &closed.addr.to_string()]);
    let mut ws = relay.ws("/websockify").await;
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1011),
        other => panic!("expected Close 1011, got {other:?}"),
    }
    assert_eq!(relay.exit_status().await.code(), Some(0));
}

#[tokio::test]
async fn timeout_closes_the_listener_and_exits_once_the_open_connections_end() {
    let a = named_target("alpha").await;
    let mut relay = Websockify::spawn(&["--timeout", "2", "127.0.0.1:0", &a.to_string()]);
    let mut first = relay.ws("/websockify").await;
    let mut second = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut first).await, "alpha\n");
    assert_eq!(greeting(&mut second).await, "alpha\n");
    // After the timeout no connection is taken; those open go on, and it waits for both.
    until_refused(relay.http).await;
    echoes(&mut first, "one").await;
    first.close(None).await.unwrap();
    echoes(&mut second, "two").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        relay.child.try_wait().unwrap().is_none(),
        "exited with a bridge open"
    );
    second.close(None).await.unwrap();
    assert_eq!(relay.exit_status().await.code(), Some(0));
}

#[tokio::test]
async fn log_file_gets_the_log_as_well_as_stderr() {
    let dir = scratch("logfile");
    let log = dir.join("websockify.log");
    std::fs::write(&log, "an earlier line\n").unwrap();
    let a = named_target("alpha").await;
    let relay = Websockify::spawn(&[
        "--log-file",
        log.to_str().unwrap(),
        "127.0.0.1:0",
        &a.to_string(),
    ]);
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    ws.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("bridge closed") {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Appended, in plain text, with what stderr showed at startup.
    assert!(text.starts_with("an earlier line\n"), "{text}");
    assert!(text.contains("ready: open http://127.0.0.1:"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(relay.startup.iter().any(|l| l.contains("ready: open")));
    drop(relay);
    // A file that cannot be opened stops it at once, with the reason.
    let out = std::process::Command::new(sockrelay_bin())
        .args(["websockify", "--log-file"])
        .arg(dir.join("no-such-dir").join("x.log"))
        .args(["127.0.0.1:0", &a.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot open the log file"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A target that reads a PROXY protocol v2 header (if `expect_header`) and answers with the
/// source address it names (`src=ADDR\n`), or with the first bytes it got (`raw=...\n`).
async fn proxy_target(expect_header: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let answer = if expect_header {
                    match read_proxy_v2(&mut stream).await {
                        Ok((src, _)) => format!("src={src}\n"),
                        Err(e) => format!("bad header: {e}\n"),
                    }
                } else {
                    let mut first = [0u8; 4];
                    let _ = stream.read_exact(&mut first).await;
                    format!("raw={}\n", String::from_utf8_lossy(&first))
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// Parses a PROXY protocol v2 header (haproxy's proxy-protocol.txt, 2.2): the signature,
/// version 2 and command PROXY, TCP over IPv4 or IPv6, and the source and destination.
async fn read_proxy_v2(
    stream: &mut tokio::net::TcpStream,
) -> Result<(SocketAddr, SocketAddr), String> {
    let mut head = [0u8; 16];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    if head[..12] != *b"\r\n\r\n\0\r\nQUIT\n" {
        return Err(format!("no signature: {:?}", &head[..12]));
    }
    if head[12] != 0x21 {
        return Err(format!("version/command {:#x}", head[12]));
    }
    let len = u16::from_be_bytes([head[14], head[15]]) as usize;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    match (head[13], len) {
        (0x11, 12) => {
            let src: [u8; 4] = body[0..4].try_into().unwrap();
            let dst: [u8; 4] = body[4..8].try_into().unwrap();
            let ports = [8, 10].map(|at| u16::from_be_bytes([body[at], body[at + 1]]));
            Ok((
                SocketAddr::from((src, ports[0])),
                SocketAddr::from((dst, ports[1])),
            ))
        }
        (0x21, 36) => {
            let src: [u8; 16] = body[0..16].try_into().unwrap();
            let dst: [u8; 16] = body[16..32].try_into().unwrap();
            let ports = [32, 34].map(|at| u16::from_be_bytes([body[at], body[at + 1]]));
            Ok((
                SocketAddr::from((src, ports[0])),
                SocketAddr::from((dst, ports[1])),
            ))
        }
        (family, len) => Err(format!("family {family:#x} with {len} bytes")),
    }
}

fn local_addr(ws: &Ws) -> SocketAddr {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.local_addr().unwrap(),
        _ => panic!("plain TCP expected"),
    }
}

#[tokio::test]
async fn a_target_that_opts_in_gets_a_proxy_v2_header_with_the_client_s_address_and_port() {
    let (with, without) = (proxy_target(true).await, proxy_target(false).await);
    let relay = TestRelay::with(|s| {
        s.allow = vec![with.to_string(), without.to_string()];
        s.proxy_protocol = vec![with.to_string()];
    })
    .await;
    let mut ws = relay.ws(&format!("/ws?target={with}")).await;
    let client = local_addr(&ws);
    assert_eq!(greeting(&mut ws).await, format!("src={client}\n"));

    // A target that did not opt in sees the client's bytes first, nothing else.
    let mut ws = relay.ws(&format!("/ws?target={without}")).await;
    ws.send(Message::binary(b"RFB ".to_vec())).await.unwrap();
    assert_eq!(greeting(&mut ws).await, "raw=RFB \n");
}

#[tokio::test]
async fn a_token_line_opts_its_target_in() {
    let with = proxy_target(true).await;
    let dir = scratch("proxy-token");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("desk: {with} proxy-protocol\n")).unwrap();
    let relay = relay_with_tokens(&file, None).await;
    let mut ws = relay.ws("/websockify?token=desk").await;
    let client = local_addr(&ws);
    assert_eq!(greeting(&mut ws).await, format!("src={client}\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A target that reads a PROXY protocol v2 header and answers with both of its addresses
/// (`src=ADDR dst=ADDR\n`), or says what was wrong with it.
async fn proxy_v2_target() -> SocketAddr {
    proxy_v2_target_on(TcpListener::bind("127.0.0.1:0").await.unwrap())
}

/// The same, on `listener`.
fn proxy_v2_target_on(listener: TcpListener) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let answer = match read_proxy_v2(&mut stream).await {
                    Ok((src, dst)) => format!("src={src} dst={dst}\n"),
                    Err(e) => format!("bad header: {e}\n"),
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// Regression: the header went to a target only when the request spelled it as its
/// `--proxy-protocol` entry, so another `--allow` entry or token for the same address reached it
/// without one (and the client's first bytes could be a forged header).
#[tokio::test]
async fn proxy_header_goes_to_an_opted_in_address_however_it_is_named() {
    let target = proxy_target(true).await;
    let by_name = format!("localhost:{}", target.port());
    let relay = TestRelay::with(|s| {
        s.allow = vec![target.to_string(), by_name.clone()];
        s.proxy_protocol = vec![target.to_string()];
    })
    .await;
    for spelling in [target.to_string(), by_name.clone()] {
        let mut ws = relay.ws(&format!("/ws?target={spelling}")).await;
        let client = local_addr(&ws);
        assert_eq!(
            greeting(&mut ws).await,
            format!("src={client}\n"),
            "?target={spelling}"
        );
    }

    // A token line that opts in covers the address for other tokens and `--allow` entries.
    let dir = scratch("proxy-spellings");
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        format!("plain: {by_name}\nopted: {target} proxy-protocol\n"),
    )
    .unwrap();
    let relay = TestRelay::with(|s| {
        s.allow = vec![target.to_string()];
        s.target_tokens = Some(file.clone());
    })
    .await;
    for path in [
        "/websockify?token=plain".to_owned(),
        format!("/ws?target={target}"),
    ] {
        let mut ws = relay.ws(&path).await;
        let client = local_addr(&ws);
        assert_eq!(greeting(&mut ws).await, format!("src={client}\n"), "{path}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression: a server listening on `[::]` that opted in as `127.0.0.1:PORT` also took bridges
/// to `[::1]:PORT`, which went without the header, so a client's first bytes could be a header
/// naming any address it liked. Every address of this host at an opted-in port now gets it (a
/// listener on `[::1]` stands for the one on `[::]` here), and a client's header is only data.
#[tokio::test]
async fn another_address_of_this_host_gets_the_header_and_a_client_s_own_is_only_data() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let target = proxy_v2_target_on(listener);
    let opted = SocketAddr::from(([127, 0, 0, 1], target.port()));
    let relay = TestRelay::with(|s| {
        s.allow = vec![target.to_string(), opted.to_string()];
        s.proxy_protocol = vec![opted.to_string()];
    })
    .await;
    let mut ws = relay.ws(&format!("/ws?target={target}")).await;
    let client = local_addr(&ws);
    // What a client would send to pass for 203.0.113.7.
    let mut forged = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    forged.extend_from_slice(&[203, 0, 113, 7, 127, 0, 0, 1, 0, 1, 0, 2]);
    ws.send(Message::binary(forged)).await.unwrap();
    let answer = greeting(&mut ws).await;
    assert!(answer.starts_with(&format!("src={client} ")), "{answer}");
}

/// Regression: the header's destination was the listening address (`0.0.0.0` for
/// websockify's default listen), not the one the client connected to.
#[tokio::test]
async fn proxy_header_names_the_address_the_client_reached() {
    let target = proxy_v2_target().await;
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let relay = TestRelay::with(|s| {
            s.http = listen.parse().unwrap();
            s.allow = vec![target.to_string()];
            s.proxy_protocol = vec![target.to_string()];
        })
        .await;
        let reached = SocketAddr::from(([127, 0, 0, 1], relay.http.port()));
        let url = format!("ws://{reached}/ws?target={target}");
        let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        let client = local_addr(&ws);
        assert_eq!(
            greeting(&mut ws).await,
            format!("src={client} dst={reached}\n"),
            "listening on {listen}"
        );
    }
}

#[tokio::test]
async fn forwarded_addresses_count_from_trusted_proxies_only() {
    let with = proxy_target(true).await;
    let forged = [("x-forwarded-for", "203.0.113.9")];

    // No trusted proxy, or one elsewhere: a forged header changes nothing.
    for trusted in [vec![], vec!["10.0.0.0/8".to_owned()]] {
        let relay = TestRelay::with(|s| {
            s.allow = vec![with.to_string()];
            s.proxy_protocol = vec![with.to_string()];
            s.trusted_proxy = trusted;
        })
        .await;
        let mut ws = relay
            .try_ws(&format!("/ws?target={with}"), &forged)
            .await
            .unwrap();
        let client = local_addr(&ws);
        assert_eq!(greeting(&mut ws).await, format!("src={client}\n"));
    }

    // From a trusted proxy (this test's loopback), the header names the client.
    let relay = TestRelay::with(|s| {
        s.allow = vec![with.to_string()];
        s.proxy_protocol = vec![with.to_string()];
        s.trusted_proxy = vec!["127.0.0.1/32".to_owned()];
    })
    .await;
    let mut ws = relay
        .try_ws(&format!("/ws?target={with}"), &forged)
        .await
        .unwrap();
    assert_eq!(greeting(&mut ws).await, "src=203.0.113.9:0\n");
    let forwarded = [("forwarded", "for=198.51.100.1, for=\"[2001:db8::7]:4711\"")];
    let mut ws = relay
        .try_ws(&format!("/ws?target={with}"), &forwarded)
        .await
        .unwrap();
    assert_eq!(greeting(&mut ws).await, "src=[2001:db8::7]:4711\n");
}

#[tokio::test]
async fn unix_target_and_heartbeat_from_websockify_s_command_line() {
    let dir = scratch("unix");
    let path = dir.join("vnc.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.write_all(b"unix\n").await;
                // Open until the relay closes it.
                let _ = stream.read_to_end(&mut Vec::new()).await;
            });
        }
    });
    let relay = Websockify::spawn(&[
        "--heartbeat",
        "1",
        "--unix-target",
        path.to_str().unwrap(),
        "127.0.0.1:0",
    ]);
    let mut ws = relay.ws("/websockify").await;
    assert_eq!(greeting(&mut ws).await, "unix\n");
    // --heartbeat 1: a Ping within a few seconds.
    let ping = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_))) => return true,
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(ping, Ok(true));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn web_serves_a_directory_and_nothing_outside_it() {
    let dir = scratch("web");
    let web = dir.join("novnc");
    std::fs::create_dir_all(web.join("core")).unwrap();
    // noVNC's pages start with an inline style and module script.
    std::fs::write(
        web.join("vnc.html"),
        "<!doctype html><title>vnc</title><style>b{}</style>\n\
         <script type=\"module\">alert(1)</script>",
    )
    .unwrap();
    std::fs::write(web.join("other.html"), "<script>alert(2)</script>").unwrap();
    std::fs::write(web.join("core/rfb.js"), "export default class RFB {}").unwrap();
    std::fs::write(web.join(".htpasswd"), "admin:secret").unwrap();
    std::fs::write(dir.join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), web.join("link.txt")).unwrap();
    let relay = TestRelay::with(|s| s.web = Some(web.clone())).await;

    let page = sockrelay_tests::raw::exchange(
        relay.http,
        format!("GET /vnc.html HTTP/1.1\r\nHost: {}\r\n\r\n", relay.http),
    )
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // Its own inline blocks are allowed by their hashes (CSP's example hash of `alert(1)`, and
    // that of `b{}`), and nothing else inline: no `'unsafe-inline'`, which let any page of the
    // directory run any inline code, injected or not.
    let alert_1 = "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='";
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!(
            "script-src 'self' 'wasm-unsafe-eval' {alert_1}; \
             style-src 'self' 'sha256-7yqHVAesot11p6HczDsgKRipvI5UPgs97z80zNXlans='; \
             img-src 'self' data: blob:;"
        )),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // Another page has its own hashes, not this one's; a script file has none.
    for (path, hashes) in [("/other.html", 1), ("/core/rfb.js", 0)] {
        let answer = sockrelay_tests::raw::exchange(
            relay.http,
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", relay.http),
        )
        .await;
        let csp = answer.header("content-security-policy").unwrap();
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains(alert_1),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), hashes, "{path}: {csp}");
    }
    assert!(
        csp.contains(&format!(
            "connect-src 'self' ws://{0} wss://{0};",
            relay.http
        )),
        "{csp}"
    );
    let (status, body) = http_get(relay.http, "/core/rfb.js").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "export default class RFB {}")
    );
    // A directory is reached by its slash (so that its page's relative links work); a part of
    // a file by `Range`; a file that changed fails `If-Match`.
    let ask = |head: &str| {
        sockrelay_tests::raw::exchange(
            relay.http,
            format!("{head}Host: {}\r\nConnection: close\r\n\r\n", relay.http),
        )
    };
    let moved = ask("GET /core?a=1 HTTP/1.1\r\n").await;
    assert_eq!(moved.status, 404, "core/ has no index.html");
    std::fs::write(web.join("core/index.html"), "<p>core</p>").unwrap();
    let moved = ask("GET /core?a=1 HTTP/1.1\r\n").await;
    assert_eq!(
        (moved.status, moved.header("location")),
        (301, Some("/core/?a=1"))
    );
    let part = ask("GET /core/rfb.js HTTP/1.1\r\nRange: bytes=7-13\r\n").await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 7-13/27"));
    assert_eq!(part.body, "default");
    let changed = ask("GET /core/rfb.js HTTP/1.1\r\nIf-Match: \"old\"\r\n").await;
    assert_eq!(changed.status, 412);
    assert_eq!(ask("GET /core/rfb.js/ HTTP/1.1\r\n").await.status, 404);

    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/core/%2E%2E/%2e%2e/secret.txt",
        "/.htpasswd",
        "/link.txt",
        "//etc/passwd",
    ] {
        let (status, body) = http_get(relay.http, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            !body.contains("outside") && !body.contains("admin"),
            "{path}: {body}"
        );
    }
    // The relay's own pages are still there, under their own (strict) policy.
    let icon = sockrelay_tests::raw::exchange(
        relay.http,
        format!("GET /favicon.ico HTTP/1.1\r\nHost: {}\r\n\r\n", relay.http),
    )
    .await;
    assert_eq!(icon.status, 200);
    let csp = icon.header("content-security-policy").unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The status of a WebSocket handshake to `url` with an `Origin`.
async fn status_with_origin(url: &str, origin: &str) -> u16 {
    match connect_with(url, &[("origin", origin)]).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn websockify_mode_keeps_the_origin_rule_and_origin_widens_it() {
    let a = named_target("alpha").await;
    let relay = Websockify::spawn(&["127.0.0.1:0", &a.to_string()]);
    let url = format!("ws://{}/websockify", relay.http);
    assert_eq!(
        status_with_origin(&url, &format!("http://{}", relay.http)).await,
        101
    );
    assert_eq!(
        status_with_origin(&url, "https://vnc.example.org").await,
        403
    );
    drop(relay);

    let relay = Websockify::spawn(&[
        "--origin",
        "https://vnc.example.org",
        "127.0.0.1:0",
        &a.to_string(),
    ]);
    let url = format!("ws://{}/websockify", relay.http);
    assert_eq!(
        status_with_origin(&url, "https://vnc.example.org").await,
        101
    );
    assert_eq!(status_with_origin(&url, "https://evil.example").await, 403);
}

#[tokio::test]
async fn the_log_line_names_the_client_a_trusted_proxy_forwarded() {
    let a = named_target("alpha").await;
    let relay = sockrelay_tests::RelayProcess::spawn(&[
        "--allow",
        &a.to_string(),
        "--trusted-proxy",
        "127.0.0.1/32",
    ]);
    let url = format!("ws://{}/ws?target={a}", relay.http);
    let (mut ws, _) = connect_with(&url, &[("x-forwarded-for", "192.0.2.44")])
        .await
        .unwrap();
    assert_eq!(greeting(&mut ws).await, "alpha\n");
    ws.close(None).await.unwrap();
    let line = relay.wait_for_log(&["bridge closed"], WAIT).unwrap();
    assert!(line.contains("peer=192.0.2.44:0"), "{line}");
}
