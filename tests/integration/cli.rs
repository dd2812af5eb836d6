//! The `sockrelay` binary itself: help, config errors, the client and address subcommands.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sockrelay_tests::{TestRelay, EPHEMERAL_PORTS};

fn sockrelay() -> Command {
    Command::new(sockrelay_tests::sockrelay_bin())
}

/// `sockrelay client TARGET` with stdin a pipe the test writes and stdout going to `stdout`.
fn spawn_client(target: &str, stdout: impl Into<Stdio>) -> std::process::Child {
    sockrelay()
        .args(["client", target])
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the relay's log (its stderr, taken from `child`) until the line that says it is
/// ready, and returns the URL to open, with the log's reader (dropping it closes the pipe).
fn ready_url(child: &mut std::process::Child) -> (String, impl Iterator) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("exited before it was ready").unwrap();
        if let Some(i) = line.find("ready: open http://") {
            break line[i + 12..].trim().to_owned();
        }
    };
    (url, lines)
}

/// Sends SIGINT to `child` and waits (bounded) for it to exit.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    wait_exit(child)
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
        ("--target-tokens", None),
        ("--proxy-protocol", None),
        ("--trusted-proxy", None),
        ("--web", None),
        ("--no-builtins", None),
        ("--ws-any-path", None),
        ("--plain-too", None),
        ("--token", None),
        ("--frame-ancestors", Some("'self'".into())),
        ("--max-conns", Some(d.max_conns.to_string())),
        ("--max-heads", Some(d.max_heads.to_string())),
        ("--handshake-timeout", Some(secs(d.handshake_timeout))),
        ("--idle-timeout", Some(secs(d.idle_timeout))),
        ("--ping-interval", Some(secs(d.ping_interval))),
        ("--ping-timeout", Some(secs(d.ping_timeout))),
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
    assert_eq!(
        (secs(d.ping_interval), secs(d.ping_timeout)),
        ("30".into(), "30".into())
    );
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
        let (_, token) = entries.iter().find(|(flag, _)| flag == "--token").unwrap();
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
    let (url, _log) = ready_url(&mut child);
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.contains(":0/"),
        "{url}"
    );
    let status = interrupt(&mut child);
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn client_subcommand_works_with_pipes() {
    let relay = TestRelay::start().await;
    let echo = relay.echo.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = spawn_client(&echo, Stdio::piped());
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

/// A pipe whose read end is already closed: the first write to it fails with EPIPE, as
/// `| head -c0` makes it fail, without the race of when `head` exits.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Waits (bounded) for `child` to exit.
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + sockrelay_tests::WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{child:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Regression: `sockrelay inet aton 1.2.3.4 | head -c0` panicked in `println!` (status 101 and
/// a panic message). A reader that goes away is a quiet exit with status 0, as ripgrep's; clap
/// already swallowed it for --help and --version, kept here so that it stays so.
#[test]
fn a_closed_stdout_is_a_quiet_exit_with_status_0() {
    for args in [
        &["inet", "aton", "1.2.3.4"][..],
        &["inet", "ntoa", "7f000001", "--json"],
        &["inet", "pton", "AF_INET6", "::1"],
        &["inet", "ntop", "4", "7f000001"],
        &["serv", "ssh"],
        &["serv", "80", "--json"],
        &["host"],
        &["host", "localhost", "--json"],
        &["--help"],
        &["--version"],
        &["inet", "--help"],
    ] {
        let out = sockrelay()
            .args(args)
            .stdout(closed_pipe())
            .output()
            .unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            (Some(0), ""),
            "{args:?}"
        );
    }
}

/// Any other failure to write the answer is a runtime error: one line, status 1 (it panicked).
#[test]
fn a_full_stdout_is_one_line_and_status_1() {
    let out = sockrelay()
        .args(["inet", "aton", "1.2.3.4"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (
            Some(1),
            "sockrelay: cannot write to stdout: No space left on device (os error 28)\n"
        )
    );
}

/// Regression: the client reported a closed stdout as `receiving failed: Broken pipe` with
/// status 1.
#[tokio::test]
async fn a_closed_stdout_ends_the_client_quietly_with_status_0() {
    let relay = TestRelay::start().await;
    let echo = relay.echo.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = spawn_client(&echo, closed_pipe());
        // Stdin stays open: the echo's reply alone must end the client.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"Hello, world\n").unwrap();
        let status = wait_exit(&mut child);
        drop(stdin);
        (status, child.wait_with_output().unwrap().stderr)
    })
    .await
    .unwrap();
    assert_eq!(
        (out.0.code(), String::from_utf8_lossy(&out.1).as_ref()),
        (Some(0), "")
    );
}

/// Regression: the client waited for the next line of input after the server had closed
/// (dropping the runtime waited for the blocking read of stdin).
#[test]
fn the_client_exits_when_the_server_closes_while_stdin_stays_open() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = spawn_client(&server.local_addr().unwrap().to_string(), Stdio::piped());
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"bye").unwrap();
    drop(conn);
    let stdin = child.stdin.take();
    let status = wait_exit(&mut child);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(out.stdout, b"bye");
}

/// Bad input is status 2 (a target that is not HOST:PORT, as a bad flag); a failure while
/// running is 1. Regression: a malformed target was 1, reported as `cannot connect`.
#[test]
fn client_exit_status_by_error_kind() {
    for (target, code, message) in [
        (
            "nonsense",
            2,
            "sockrelay client: invalid target \"nonsense\": invalid socket address",
        ),
        (
            "127.0.0.1:99999",
            2,
            "sockrelay client: invalid target \"127.0.0.1:99999\": invalid port value",
        ),
        (
            "127.0.0.1:1",
            1,
            "sockrelay client: cannot connect to 127.0.0.1:1: Connection refused (os error 111)",
        ),
    ] {
        let out = sockrelay()
            .args(["client", target])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim_end()
            ),
            (Some(code), message),
            "{target}"
        );
    }
}

/// Regression: a fatal startup error was printed twice, as a log line and as a plain line.
/// A port in use is a runtime failure: status 1.
#[test]
fn a_fatal_startup_error_is_printed_once_with_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ack = taken.local_addr().unwrap().to_string();
    let out = sockrelay()
        .args([
            "--http",
            "127.0.0.1:0",
            "--echo",
            "127.0.0.1:0",
            "--ack",
            &ack,
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot listen for the acknowledge server"))
        .collect();
    assert_eq!(
        lines,
        [format!(
            "sockrelay: cannot listen for the acknowledge server on {ack}: \
             Address already in use (os error 98)"
        )],
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
}

/// Regression: a token source that cannot be read at startup was logged as a warning saying
/// every token is refused until it can be read, and then the start failed: the error alone now.
#[test]
fn an_unreadable_token_source_stops_the_start_with_one_message() {
    let missing = std::env::temp_dir().join(format!("sockrelay-no-tokens-{}", std::process::id()));
    let out = sockrelay()
        .args(EPHEMERAL_PORTS)
        .arg("--target-tokens")
        .arg(&missing)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let about: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("sockrelay-no-tokens"))
        .collect();
    assert_eq!(about.len(), 1, "{err}");
    assert!(
        about[0].starts_with("sockrelay: --target-tokens: "),
        "{err}"
    );
}

/// Regression: once whoever read the relay's log went away (`sockrelay 2>&1 | head`), its next
/// log line panicked (the subscriber reports a failed write with `eprintln!`), and the relay
/// exited with status 101. It keeps serving, and stops on SIGINT with status 0.
#[test]
fn a_relay_whose_log_is_closed_keeps_serving() {
    let mut child = sockrelay()
        .args(EPHEMERAL_PORTS)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (url, log) = ready_url(&mut child);
    drop(log);
    let http = url.trim_start_matches("http://").trim_end_matches('/');
    // Requests and the shutdown itself log lines (debug and info) into the closed pipe.
    for _ in 0..3 {
        let mut conn = std::net::TcpStream::connect(http).unwrap();
        conn.set_read_timeout(Some(sockrelay_tests::WAIT)).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut conn, &mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let status = interrupt(&mut child);
    assert!(status.success(), "{status}");
}

/// Sends `lines` to a `sockrelay client` of the acknowledge server, each only once the reply
/// to the one before was printed (so each reply is a read of its own), then ends the input;
/// returns everything `stdout` showed by the time `child` exited.
fn converse_with_ack(
    mut child: std::process::Child,
    mut input: impl Write,
    stdout: impl std::io::Read + Send + 'static,
    lines: &[&str],
) -> Vec<u8> {
    let reply = sockrelay::config::Settings::default().ack_reply;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut shown = Vec::new();
    let deadline = Instant::now() + sockrelay_tests::WAIT;
    let replies = |shown: &[u8]| {
        shown
            .windows(reply.len())
            .filter(|w| *w == reply.as_bytes())
            .count()
    };
    for (i, line) in lines.iter().enumerate() {
        input.write_all(format!("{line}\n").as_bytes()).unwrap();
        input.flush().unwrap();
        while replies(&shown) <= i {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => shown.extend_from_slice(&chunk),
                Err(e) => panic!("reply {} not shown ({e}): {shown:?}", i + 1),
            }
        }
    }
    drop(input);
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status}");
    reader.join().unwrap();
    shown.extend(rx.try_iter().flatten());
    shown
}

/// Regression: on a terminal the acknowledge server's replies ran together
/// (`server received you message.server received you message.`) unless stdin was a terminal
/// too. Stdout is a real terminal here (util-linux's `script` gives the client a pty, whose
/// line discipline shows `\n` as `\r\n`); stdin is a FIFO the test writes, as in
/// `printf ... | sockrelay client`.
#[tokio::test]
async fn client_ends_each_reply_with_a_newline_on_a_terminal() {
    let relay = TestRelay::start().await;
    let ack = relay.ack.to_string();
    let shown = tokio::task::spawn_blocking(move || {
        let fifo = std::env::temp_dir().join(format!("sockrelay-client-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        // Read and write: opening a FIFO so does not wait for its reader (Linux).
        let input = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let bin = sockrelay_tests::sockrelay_bin();
        let quote = |p: &std::path::Path| {
            let p = p.to_str().unwrap();
            assert!(!p.contains('\''), "{p}");
            format!("'{p}'")
        };
        let command = format!("exec {} client {ack} < {}", quote(&bin), quote(&fifo));
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("util-linux's script (Debian's bsdutils) runs the client on a pty");
        // Held open until the end: script ends the session when its own input ends.
        let script_stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let shown = converse_with_ack(child, input, stdout, &["one", "two"]);
        drop(script_stdin);
        let _ = std::fs::remove_file(&fifo);
        shown
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown),
        "server received you message.\r\nserver received you message.\r\n"
    );
}

/// Through a pipe the bytes are exactly the server's: nothing added between the replies.
#[tokio::test]
async fn client_prints_replies_exactly_through_a_pipe() {
    let relay = TestRelay::start().await;
    let ack = relay.ack.to_string();
    let shown = tokio::task::spawn_blocking(move || {
        let mut child = spawn_client(&ack, Stdio::piped());
        let input = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        converse_with_ack(child, input, stdout, &["one", "two"])
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown),
        "server received you message.server received you message."
    );
}
