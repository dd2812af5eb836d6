//! The `sockrelay` binary itself: help, config errors, the client and address subcommands.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sockrelay_tests::TestRelay;

fn sockrelay() -> Command {
    Command::new(sockrelay_tests::sockrelay_bin())
}

#[test]
fn help_documents_every_option_with_its_default() {
    let out = sockrelay().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--http",
        "--echo",
        "--ack",
        "--allow",
        "--origin",
        "--token",
        "--max-conns",
        "--handshake-timeout",
        "--idle-timeout",
        "--max-message",
        "--tls-cert",
        "--tls-key",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing");
    }
    for default in [
        "127.0.0.1:8080",
        "127.0.0.1:65432",
        "127.0.0.1:8001",
        "1048576",
    ] {
        assert!(help.contains(default), "default {default} missing");
    }
}

#[test]
fn invalid_config_file_names_the_key_and_exits_2() {
    let path = std::env::temp_dir().join(format!("sockrelay-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "http = \"127.0.0.1:0\"\nmax-conns = \"lots\"\n").unwrap();
    let out = sockrelay().arg("--config").arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max-conns"), "{err}");
}

#[test]
fn binary_starts_on_port_zero_logs_its_url_and_stops_on_sigint() {
    let mut child = sockrelay()
        .args([
            "--http",
            "127.0.0.1:0",
            "--echo",
            "127.0.0.1:0",
            "--ack",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("exited before logging its URL")
            .unwrap();
        if let Some(i) = line.find("open http://") {
            break line[i + 5..].trim().to_owned();
        }
    };
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains(":0/"),
        "{url}"
    );
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn client_subcommand_works_with_pipes() {
    let relay = TestRelay::start().await;
    let echo = relay.echo.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = sockrelay()
            .args(["client", &echo])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Hello, world\nsecond line\n")
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Hello, world\nsecond line\n"
    );

    let out = sockrelay()
        .args(["client", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

fn run_tool(args: &[&str]) -> (i32, String, String) {
    let out = sockrelay().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn address_tools_print_like_python() {
    assert_eq!(
        run_tool(&["inet", "aton", "127.1"]).1.trim(),
        r"b'\x7f\x00\x00\x01'"
    );
    assert_eq!(
        run_tool(&["inet", "ntoa", "c0a801be"]).1.trim(),
        "'192.168.1.190'"
    );
    assert_eq!(
        run_tool(&["inet", "pton", "AF_INET6", "::1"]).1.trim(),
        r"b'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01'"
    );
    assert_eq!(
        run_tool(&["inet", "ntop", "6", "20010db8000000000000000000000001"])
            .1
            .trim(),
        "'2001:db8::1'"
    );
    assert_eq!(run_tool(&["serv", "ssh"]).1.trim(), "22");
    assert_eq!(
        run_tool(&["serv", "80", "--proto", "tcp"]).1.trim(),
        "'http'"
    );
    let (code, out, _) = run_tool(&["inet", "aton", "1.2.3.4", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bytes"], serde_json::json!([1, 2, 3, 4]));
}

#[test]
fn address_tools_reject_bad_input_with_exit_2() {
    let (code, _, err) = run_tool(&["inet", "aton", "256.1.1.1.1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("OSError: illegal IP address string passed to inet_aton"),
        "{err}"
    );
    let (code, _, err) = run_tool(&["inet", "ntoa", "zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("hex"), "{err}");
    let (code, _, err) = run_tool(&["serv", "no-such-service"]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");
    let (code, _, err) = run_tool(&["serv", "70000"]);
    assert_eq!(code, 2);
    assert!(err.contains("OverflowError"), "{err}");
}
