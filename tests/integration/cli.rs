//! The `sockrelay` binary itself: help, config errors, the client and address subcommands.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sockrelay_tests::{TestRelay, EPHEMERAL_PORTS};

fn sockrelay() -> Command {
    Command::new(sockrelay_tests::sockrelay_bin())
}

/// The option entries of a `--help` text: each long flag with its description, whitespace
/// collapsed (clap wraps the text to the terminal's width).
fn help_entries(help: &str) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("--")
            .filter(|_| line.starts_with("  "))
        {
            let flag = rest.split([' ', '=']).next().unwrap_or_default();
            entries.push((format!("--{flag}"), trimmed.to_owned()));
        } else if trimmed.starts_with('-') || !line.starts_with("  ") {
            // `-h, --help` and section headings end the entry before them.
            entries.push((String::new(), String::new()));
        } else if let Some((_, text)) = entries.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    entries.retain(|(flag, _)| !flag.is_empty());
    for (_, text) in &mut entries {
        *text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    entries
}

#[test]
fn help_documents_every_option_with_its_default() {
    let d = sockrelay::config::Settings::default();
    let secs = |t: Duration| t.as_secs().to_string();
    // Every option of `serve`, and what its help must say as its default (from the defaults the
    // relay applies, so the two cannot drift apart); `None`: no default, none may be shown.
    let expected: Vec<(&str, Option<String>)> = vec![
        ("--config", None),
        ("--http", Some(d.http.to_string())),
        ("--echo", Some(d.echo.to_string())),
        ("--ack", Some(d.ack.to_string())),
        ("--ack-reply", Some(format!("{:?}", d.ack_reply))),
        ("--allow", None),
        (
            "--origin",
            Some(
                "pages from localhost, and the relay's own origin when it is addressed by IP"
                    .into(),
            ),
        ),
        ("--token", None),
        ("--max-conns", Some(d.max_conns.to_string())),
        ("--handshake-timeout", Some(secs(d.handshake_timeout))),
        ("--idle-timeout", Some(secs(d.idle_timeout))),
        ("--max-message", Some(d.max_message.to_string())),
        ("--no-splice", None),
        ("--tcp-congestion", None),
        ("--tls-cert", None),
        ("--tls-key", None),
    ];
    assert_eq!(
        (d.max_conns, secs(d.handshake_timeout), secs(d.idle_timeout)),
        (1024, "10".into(), "300".into())
    );
    assert_eq!(d.max_message, 1 << 20);
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = sockrelay().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        let entries = help_entries(&help);
        let flags: Vec<&str> = entries.iter().map(|(flag, _)| flag.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|(flag, _)| *flag).collect();
        assert_eq!(flags, want, "{args:?}: options listed\n{help}");
        for ((flag, text), (_, default)) in entries.iter().zip(&expected) {
            match default {
                Some(value) => assert!(
                    text.ends_with(&format!("[default: {value}]")),
                    "{args:?}: {flag} must end with [default: {value}]: {text}"
                ),
                None => assert!(
                    !text.contains("[default:"),
                    "{args:?}: {flag} has no default: {text}"
                ),
            }
        }
        let token = &entries[7].1;
        assert!(token.contains("[env: SOCKRELAY_TOKEN]"), "{token}");
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

/// A congestion control the kernel does not have stops the relay before it binds anything, with
/// the names it could use; so does a string that cannot be a name.
#[cfg(target_os = "linux")]
#[test]
fn an_unknown_tcp_congestion_control_exits_2_naming_the_available_ones() {
    let out = sockrelay()
        .args(EPHEMERAL_PORTS)
        .args(["--tcp-congestion", "nosuchcc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "invalid setting tcp-congestion: no TCP congestion control named \"nosuchcc\""
        ) && err.contains("available: ")
            && err.contains("reno"),
        "{err}"
    );
    let out = sockrelay()
        .args(["--tcp-congestion", "not a name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid setting tcp-congestion"), "{err}");
}

#[test]
fn binary_starts_on_port_zero_logs_its_url_and_stops_on_sigint() {
    let mut child = sockrelay()
        .args(EPHEMERAL_PORTS)
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
}

/// The JSON a successful `sockrelay ARGS` printed.
fn run_json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run_tool(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    assert_eq!(out.lines().count(), 1, "{args:?}: one line of JSON: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn address_tools_print_json() {
    use serde_json::json;
    assert_eq!(
        run_json(&["inet", "aton", "1.2.3.4", "--json"]),
        json!({ "bytes": [1, 2, 3, 4], "python": r"b'\x01\x02\x03\x04'" })
    );
    assert_eq!(
        run_json(&["inet", "ntoa", "c0a801be", "--json"]),
        json!({ "address": "192.168.1.190" })
    );
    // `--json` is global to `inet`: before the subcommand too.
    assert_eq!(
        run_json(&["inet", "--json", "pton", "AF_INET6", "::1"]),
        json!({
            "bytes": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            "python": r"b'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01'",
        })
    );
    assert_eq!(
        run_json(&["inet", "pton", "4", "192.168.1.190", "--json"]),
        json!({ "bytes": [192, 168, 1, 190], "python": r"b'\xc0\xa8\x01\xbe'" })
    );
    assert_eq!(
        run_json(&[
            "inet",
            "ntop",
            "6",
            "00000000000000000000ffff01020304",
            "--json"
        ]),
        json!({ "address": "::ffff:1.2.3.4" })
    );
    assert_eq!(
        run_json(&["serv", "ssh", "--json"]),
        json!({ "name": "ssh", "port": 22, "proto": null })
    );
    assert_eq!(
        run_json(&["serv", "domain", "--proto", "udp", "--json"]),
        json!({ "name": "domain", "port": 53, "proto": "udp" })
    );
    assert_eq!(
        run_json(&["serv", "443", "--json"]),
        json!({ "port": 443, "name": "https", "proto": null })
    );
    assert_eq!(
        run_json(&["serv", "80", "--proto", "tcp", "--json"]),
        json!({ "port": 80, "name": "http", "proto": "tcp" })
    );
    assert_eq!(
        run_json(&["host", "localhost", "--json"]),
        json!({ "name": "localhost", "address": "127.0.0.1" })
    );
    assert_eq!(
        run_json(&["host", "", "--json"]),
        json!({ "name": "", "address": "0.0.0.0" })
    );
    assert_eq!(
        run_json(&["host", "--json"]),
        json!({ "hostname": uname_n() })
    );
}

/// The host name as `uname -n` gives it (what Python's `socket.gethostname()` returns).
fn uname_n() -> String {
    let out = Command::new("uname").arg("-n").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// `sockrelay host`: what Python's `socket.gethostname()`/`gethostbyname()` print. Only names
/// answered on this machine (no argument, /etc/hosts, special names, literals) or refused by
/// the resolver itself, so no query leaves the machine.
#[test]
fn host_prints_like_python() {
    let hostname = uname_n();
    assert!(!hostname.is_empty());
    // A plain host name: Python's repr of it is the name in single quotes.
    assert!(
        hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
        "{hostname:?}"
    );
    assert_eq!(
        run_tool(&["host"]),
        (0, format!("'{hostname}'\n"), String::new())
    );
    for (name, want) in [
        ("localhost", "'127.0.0.1'"),
        ("", "'0.0.0.0'"),
        ("<broadcast>", "'255.255.255.255'"),
        ("255.255.255.255", "'255.255.255.255'"),
        ("192.168.1.190", "'192.168.1.190'"),
        // Not a dotted quad, so glibc's getaddrinfo reads it as inet_aton does.
        ("127.1", "'127.0.0.1'"),
    ] {
        assert_eq!(
            run_tool(&["host", name]),
            (0, format!("{want}\n"), String::new()),
            "host {name:?}"
        );
    }
}

#[test]
fn host_failures_exit_2_with_pythons_error() {
    let not_known = "socket.gaierror: [Errno -2] Name or service not known";
    let idna =
        "UnicodeError: encoding with 'idna' codec failed (UnicodeError: label empty or too long)";
    for (name, want) in [
        // glibc refuses these as host names before it would ask a DNS server.
        // (Checked with strace: no socket is opened for these.)
        ("bad name", not_known),
        ("-", not_known),
        // Python's idna codec refuses these before any lookup.
        ("a..invalid", idna),
        (
            "::1",
            "socket.gaierror: [Errno -9] Address family for hostname not supported",
        ),
    ] {
        let (code, out, err) = run_tool(&["host", name]);
        assert_eq!(
            (code, out.as_str(), err.trim_end()),
            (2, "", want),
            "host {name:?}"
        );
    }
}

#[test]
fn serv_ports_overflow_as_in_python() {
    for (port, want) in [
        (
            "99999999999999999999",
            "OverflowError: Python int too large to convert to C long",
        ),
        (
            "-99999999999999999999",
            "OverflowError: Python int too large to convert to C long",
        ),
        (
            "2147483648",
            "OverflowError: signed integer is greater than maximum",
        ),
        (
            "-2147483649",
            "OverflowError: signed integer is less than minimum",
        ),
        (
            "65536",
            "OverflowError: getservbyport: port must be 0-65535.",
        ),
        ("-1", "OverflowError: getservbyport: port must be 0-65535."),
        (
            "2147483647",
            "OverflowError: getservbyport: port must be 0-65535.",
        ),
        ("3", "OSError: port/proto not found"),
    ] {
        let (code, out, err) = run_tool(&["serv", port]);
        assert_eq!(
            (code, out.as_str(), err.trim_end()),
            (2, "", want),
            "serv {port}"
        );
    }
    // The range check comes after the protocol, which a terminal can only give as a str.
    let (code, _, err) = run_tool(&["serv", "65536", "--proto", "tcp"]);
    assert_eq!(
        (code, err.trim_end()),
        (2, "OverflowError: getservbyport: port must be 0-65535.")
    );
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
