//! Hostile input: every other spelling of a target the relay must not reach, Origin and token
//! abuse, oversized and malformed handshakes and frames, slowloris clients, path traversal.
//!
//! Each test prints how many inputs it tried (RELIABILITY.md cites them):
//! `cargo test -p sockrelay-tests --test integration hostile -- --nocapture`.
//! Everything goes to 127.0.0.1; addresses such as 10.0.0.1 only ever appear in requests the
//! relay must refuse before connecting anywhere (it connects only after answering 101).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockrelay_tests::raw::{exchange, frame, read_server_frames, upgrade};
use sockrelay_tests::{still_serves, RelayProcess, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Percent-encodes every byte outside RFC 3986's unreserved set, so the relay's query decoder
/// hands the target string to the allow-list exactly as written here.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A listener that counts the connections it accepts (and closes them).
async fn counting_listener() -> (TcpListener, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (listener, Arc::new(AtomicUsize::new(0)))
}

fn count_accepts(listener: TcpListener, count: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
}

/// Other spellings of an IPv4 address: numeric forms glibc's inet_aton and browsers accept,
/// IPv6 forms that embed it, zone ids, trailing dots, whitespace and control characters,
/// URL-ish decorations, non-ASCII digits and dots, and wildcard-DNS names that resolve to it.
fn ipv4_spellings(ip: [u8; 4]) -> Vec<String> {
    let [a, b, c, d] = ip;
    let n = u32::from_be_bytes(ip);
    let (hi, lo) = (n >> 16, n & 0xffff);
    let q = format!("{a}.{b}.{c}.{d}");
    let low24 = n & 0x00ff_ffff;
    let low16 = n & 0xffff;
    let fullwidth: String = q
        .chars()
        .map(|ch| match ch.to_digit(10) {
            Some(v) => char::from_u32(0xff10 + v).unwrap(),
            None => ch,
        })
        .collect();
    let arabic: String = q
        .chars()
        .map(|ch| match ch.to_digit(10) {
            Some(v) => char::from_u32(0x0660 + v).unwrap(),
            None => ch,
        })
        .collect();
    vec![
        // One number: decimal, hex, octal.
        n.to_string(),
        format!("0x{n:x}"),
        format!("0X{n:X}"),
        format!("0x{n:010x}"),
        format!("0{n:o}"),
        format!("000{n:o}"),
        // Dotted, with hex, octal and zero-padded parts.
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0x{a:02X}.{b}.{c}.{d}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("0{a:o}.{b}.{c}.{d}"),
        format!("{a:03}.{b:03}.{c:03}.{d:03}"),
        format!("{a}.{b}.{c}.0{d}"),
        format!("{a}.{b}.{c}.{}", d as u32 + 256),
        // Short forms.
        format!("{a}.{low24}"),
        format!("{a}.{b}.{low16}"),
        format!("0x{a:x}.{low24}"),
        format!("0x{a:x}.0x{low24:x}"),
        format!("{a}.0x{low24:x}"),
        format!("0{a:o}.{b}.0x{low16:x}"),
        // Dots and brackets.
        format!("{q}."),
        format!("{q}.."),
        format!(".{q}"),
        format!("{a}..{b}.{c}.{d}"),
        format!("[{q}]"),
        // IPv6 forms embedding it: mapped, compatible, NAT64, 6to4, SIIT, with zones.
        format!("[::ffff:{q}]"),
        format!("[::FFFF:{q}]"),
        format!("[0:0:0:0:0:ffff:{q}]"),
        format!("[::ffff:{hi:x}:{lo:x}]"),
        format!("[::{q}]"),
        format!("[::{hi:x}:{lo:x}]"),
        format!("[64:ff9b::{q}]"),
        format!("[2002:{hi:x}:{lo:x}::]"),
        format!("[::ffff:0:{q}]"),
        format!("[::ffff:{q}%lo]"),
        format!("[::ffff:{q}%25lo]"),
        format!("[::ffff:{q}%1]"),
        format!("::ffff:{q}"),
        // Whitespace, control characters, and text after the address (glibc ignores it).
        format!(" {q}"),
        format!("{q} "),
        format!("{q}\t"),
        format!("{q}\n"),
        format!("{q}\r\nX-Injected: 1"),
        format!("{q}\0"),
        format!("{q} junk"),
        format!("{q}%2e"),
        // URL decorations.
        format!("x@{q}"),
        format!("{q}@evil.example"),
        format!("tcp://{q}"),
        format!("//{q}"),
        format!("{q}/"),
        format!("{q}#"),
        format!("{q}\\"),
        // Non-ASCII digits and dots (IDNA maps several of them to ASCII).
        fullwidth,
        arabic,
        q.replace('.', "\u{3002}"),
        q.replace('.', "\u{ff0e}"),
        q.replace('.', "\u{ff61}"),
        // Wildcard-DNS names that resolve to it (refused by spelling; the relay never looks
        // them up, so these tests send nothing off the machine).
        format!("{q}.nip.io"),
        format!("{n:08x}.nip.io"),
        format!("{a}-{b}-{c}-{d}.sslip.io"),
    ]
}

/// Other spellings of a port.
fn port_spellings(p: u16) -> Vec<String> {
    let fullwidth: String = p
        .to_string()
        .chars()
        .map(|ch| char::from_u32(0xff10 + ch.to_digit(10).unwrap()).unwrap())
        .collect();
    vec![
        format!("+{p}"),
        format!("0{p}"),
        format!("00000{p}"),
        format!("{p}.0"),
        format!("{p}."),
        format!(" {p}"),
        format!("{p} "),
        format!("{p}\n"),
        format!("{p}\0"),
        format!("0x{p:x}"),
        format!("0{p:o}"),
        format!("{}", u32::from(p) + 65536),
        format!("{}", u64::from(p) + (1u64 << 32)),
        format!("-{p}"),
        format!("{p}#"),
        format!("{p}/"),
        format!("{p}?x"),
        format!("{p}:{p}"),
        format!("{p}e0"),
        format!("{p}%00"),
        fullwidth,
        "".into(),
        "0".into(),
        "*".into(),
    ]
}

/// Sends one `/ws?target=` request per spelling and asserts each is refused with 403 and a JSON
/// reason. Returns how many were tried.
async fn assert_all_refused(http: SocketAddr, targets: &[String]) -> usize {
    for target in targets {
        let request = upgrade(
            &http.to_string(),
            &format!("/ws?target={}", encode(target)),
            "",
        );
        let answer = exchange(http, request.as_bytes()).await;
        assert_eq!(
            answer.status, 403,
            "{target:?} was not refused: {}",
            answer.head
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{target:?}: body {:?}: {e}", answer.body));
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{target:?}: {body}"
        );
    }
    targets.len()
}

fn machine_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[tokio::test]
async fn open_relay_attempts_are_all_refused() {
    // A: allowed as 127.0.0.1:P. D: an unlisted listener on the same loopback.
    let (allowed, allowed_hits) = counting_listener().await;
    let (other, other_hits) = counting_listener().await;
    let p = allowed.local_addr().unwrap().port();
    let dport = other.local_addr().unwrap().port();
    count_accepts(allowed, allowed_hits.clone());
    count_accepts(other, other_hits.clone());
    let relay = TestRelay::with(|s| s.allow = vec![format!("127.0.0.1:{p}")]).await;
    let e = relay.echo.port();

    let mut targets = Vec::new();
    // Every other spelling of an allowed target (A and the built-in echo) and of the unlisted
    // one, with the port written normally...
    for port in [p, e, dport] {
        for host in ipv4_spellings([127, 0, 0, 1]) {
            targets.push(format!("{host}:{port}"));
        }
        // ...the right address with the port written oddly...
        for odd in port_spellings(port) {
            targets.push(format!("127.0.0.1:{odd}"));
        }
        // ...and names and other loopback and wildcard addresses.
        let mut names = vec![
            "localhost",
            "LOCALHOST",
            "localhost.",
            "localhost.localdomain",
            "ip6-localhost",
            "ip6-loopback",
            "localtest.me",
            "lvh.me",
            "0",
            "0.0.0.0",
            "127.0.0.2",
            "127.1.2.3",
            "127.255.255.254",
            "[::]",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[::1%lo]",
            "[::1%251]",
            "[fe80::1%lo]",
            "::1",
            "[::1",
            "::1]",
            "[[::1]]",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        // Names that resolve to loopback on this machine (/etc/hosts): refused by spelling.
        names.extend(machine_hostname());
        for host in names {
            targets.push(format!("{host}:{port}"));
        }
    }
    // The unlisted listener, spelled canonically, and a port next to an allowed one.
    targets.push(format!("127.0.0.1:{dport}"));
    targets.push(format!("127.0.0.1:{}", p.wrapping_add(1).max(1)));
    // Private, link-local, cloud-metadata, broadcast and multicast addresses and names.
    for (ip, port) in [
        ([10, 0, 0, 1], 22),
        ([169, 254, 169, 254], 80),
        ([192, 168, 1, 1], 80),
    ] {
        targets.push(format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]));
        for host in ipv4_spellings(ip) {
            targets.push(format!("{host}:{port}"));
        }
    }
    for t in [
        "172.16.0.1:80",
        "100.100.100.200:80",
        "255.255.255.255:80",
        "224.0.0.1:80",
        "[fd00::1]:22",
        "[fd00:ec2::254]:80",
        "[fe80::a9fe:a9fe]:80",
        "[::ffff:169.254.169.254]:80",
        "metadata.google.internal:80",
        "metadata:80",
        "instance-data:80",
    ] {
        targets.push(t.to_owned());
    }
    // Not HOST:PORT at all.
    for t in [
        "", ":", ":80", "[]:80", "@", "%", "\0", "echo:1", "ECHO", "echo ", " ack",
    ] {
        targets.push(t.to_owned());
    }

    let tried = assert_all_refused(relay.http, &targets).await;
    let metrics = relay.metrics.encode();
    assert!(
        metrics.contains(&format!(
            "sockrelay_refusals_total{{reason=\"target\"}} {tried}"
        )),
        "{metrics}"
    );

    // Query-string tricks: repeated, empty, array-style or encoded-twice targets.
    let host = relay.http.to_string();
    let mut query_tricks = vec![
        format!("/ws?target=127.0.0.1:{p}&target=10.0.0.1:22"),
        format!("/ws?target=10.0.0.1:22&target=127.0.0.1:{p}"),
        format!("/ws?target=127.0.0.1:{dport}&target=echo"),
        "/ws?target=echo&target=10.0.0.1:22".into(),
        "/ws?target".into(),
        "/ws?target=".into(),
        "/ws?target=%".into(),
        "/ws?target=%zz".into(),
        format!("/ws?target=127.0.0.1%253A{dport}"),
        format!("/ws?target=127.0.0.1:{dport}%23"),
        format!("/ws?target=127.0.0.1:{dport};target=echo"),
        format!("/ws?target=127%2E0%2E0%2E1%3A{dport}"),
    ];
    query_tricks.push(format!("/ws?target={}", "9".repeat(10_000)));
    for path in &query_tricks {
        let answer = exchange(relay.http, upgrade(&host, path, "").as_bytes()).await;
        assert!(
            answer.status == 400 || answer.status == 403,
            "{path}: {}",
            answer.head
        );
    }
    let tried = tried + query_tricks.len();

    // Nothing was ever connected to, allowed or not.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 0);
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    // Control: the exact spelling of the allowed target does connect.
    let answer = exchange(
        relay.http,
        upgrade(&host, &format!("/ws?target=127.0.0.1:{p}"), "").as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 101, "{}", answer.head);
    let deadline = Instant::now() + WAIT;
    while allowed_hits.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the allowed target was not reached"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
    drop(answer);
    println!("hostile open-relay: {tried} target spellings and query tricks tried, all refused");
    still_serves(relay.http).await;
}

#[tokio::test]
async fn named_allow_entry_matches_only_its_own_spelling() {
    // `--allow localhost:P`: the name is the entry; the address it resolves to is not.
    let (allowed, hits) = counting_listener().await;
    let p = allowed.local_addr().unwrap().port();
    count_accepts(allowed, hits.clone());
    let relay = TestRelay::with(|s| s.allow = vec![format!("localhost:{p}")]).await;
    let mut targets: Vec<String> = ipv4_spellings([127, 0, 0, 1])
        .into_iter()
        .map(|h| format!("{h}:{p}"))
        .collect();
    targets.extend(
        [
            "127.0.0.1",
            "[::1]",
            "localhost.",
            "localhost..",
            "localhost.localdomain",
            "xlocalhost",
            "localhost.nip.io",
            "local%68ost",
        ]
        .iter()
        .map(|h| format!("{h}:{p}")),
    );
    targets.extend(port_spellings(p).iter().map(|o| format!("localhost:{o}")));
    let tried = assert_all_refused(relay.http, &targets).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // Names are case-insensitive: the same name in capitals is the same entry.
    for spelling in ["localhost", "LocalHost"] {
        let answer = exchange(
            relay.http,
            upgrade(
                &relay.http.to_string(),
                &format!("/ws?target={spelling}:{p}"),
                "",
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(answer.status, 101, "{spelling}: {}", answer.head);
    }
    println!("hostile named entry: {tried} spellings refused");
}

/// Status of a `/ws` upgrade with the given Host and Origin.
async fn origin_status(http: SocketAddr, host: &str, origin: &str) -> u16 {
    let extra = format!("Origin: {origin}\r\n");
    exchange(http, upgrade(host, "/ws", &extra).as_bytes())
        .await
        .status
}

#[tokio::test]
async fn foreign_and_malformed_origins_are_refused() {
    let relay = TestRelay::start().await;
    let host = relay.http.to_string();
    let port = relay.http.port();
    let refused = [
        "http://evil.example".to_owned(),
        "https://evil.example".into(),
        format!("http://evil.example:{port}"),
        format!("ws://{host}"),
        format!("wss://{host}"),
        "http://localhost.evil.example".into(),
        "http://127.0.0.1.nip.io".into(),
        format!("http://127.0.0.1.evil.example:{port}"),
        "http://evil.example#@127.0.0.1".into(),
        "http://127.0.0.1@evil.example".into(),
        "http://localhost@evil.example".into(),
        "http://evil.example/127.0.0.1".into(),
        "http://evil.example?localhost".into(),
        "http://evil.example\\@localhost".into(),
        "http://[::ffff:127.0.0.1]".into(),
        "http://0x7f000001".into(),
        "http://2130706433".into(),
        "http://127.1".into(),
        "http://localhost%2eevil.example".into(),
        "HTTP://EVIL.EXAMPLE".into(),
        "http://xn--localhost-.evil.example".into(),
        "null".into(),
        "*".into(),
        "http://".into(),
        "https://".into(),
        "file://".into(),
        "file:///etc/passwd".into(),
        "chrome-extension://abcdefghijklmnop".into(),
        "moz-extension://0f1e2d3c".into(),
        "evil.example".into(),
        "localhost".into(),
        "//localhost".into(),
    ];
    for origin in &refused {
        let status = origin_status(relay.http, &host, origin).await;
        assert_eq!(status, 403, "origin {origin:?} was not refused");
    }
    // Header values a parser must reject outright.
    let mut raw_tried = 0;
    for origin in ["http://evil.example\0", "http://evil.example\x7f"] {
        let status = origin_status(relay.http, &host, origin).await;
        assert!(status == 400 || status == 403, "{origin:?}: {status}");
        raw_tried += 1;
    }
    // The controls: the relay's own origin and local pages.
    for origin in [
        format!("http://{host}"),
        "http://localhost:3000".into(),
        "HTTP://LOCALHOST".into(),
        "http://[::1]:5000".into(),
    ] {
        assert_eq!(
            origin_status(relay.http, &host, &origin).await,
            101,
            "{origin}"
        );
    }

    // With --origin, only the listed origins (and the relay's own) pass; localhost no longer does.
    let listed = TestRelay::with(|s| s.origin = vec!["https://docs.example".into()]).await;
    let lhost = listed.http.to_string();
    let listed_refused = [
        "http://docs.example",
        "https://docs.example:444",
        "https://docs.example.evil.example",
        "https://evil-docs.example",
        "https://sub.docs.example",
        "https://docs.example@evil.example",
        "https://docs.examplf",
        "http://localhost:3000",
        "http://127.0.0.1",
    ];
    for origin in listed_refused {
        assert_eq!(
            origin_status(listed.http, &lhost, origin).await,
            403,
            "{origin}"
        );
    }
    for origin in ["https://docs.example", "HTTPS://DOCS.EXAMPLE:443"] {
        assert_eq!(
            origin_status(listed.http, &lhost, origin).await,
            101,
            "{origin}"
        );
    }
    let tried = refused.len() + raw_tried + listed_refused.len();
    println!("hostile origins: {tried} foreign or malformed origins refused");
    still_serves(relay.http).await;
}

#[tokio::test]
async fn dns_rebinding_page_cannot_open_bridges() {
    // A page at http://rebind.attacker.example:PORT/ whose name is re-pointed at 127.0.0.1
    // after it loaded: the browser then connects to the loopback relay with Host and Origin
    // both naming the attacker's site. Were that counted as the relay's own origin, the page
    // could bridge to whatever the relay allows (an --allow'ed database, say). Found by this
    // test; the relay now counts only IP-literal and localhost Hosts as its own origin.
    for origins in [vec![], vec!["https://docs.example".to_owned()]] {
        let relay = TestRelay::with(|s| s.origin = origins.clone()).await;
        let host = format!("rebind.attacker.example:{}", relay.http.port());
        let status = origin_status(relay.http, &host, &format!("http://{host}")).await;
        assert_eq!(
            status, 403,
            "a DNS-rebinding page opened a bridge (--origin {origins:?})"
        );
    }
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_refused() {
    const TOKEN: &str = "s3cret-Token_42";
    let relay = TestRelay::with(|s| s.token = Some(TOKEN.into())).await;
    let host = relay.http.to_string();
    let queries = [
        "".to_owned(),
        "?token=".into(),
        "?token".into(),
        "?token=s3cret".into(),
        format!("?token={TOKEN}x"),
        format!("?token={}", TOKEN.to_uppercase()),
        format!("?token=%20{TOKEN}"),
        format!("?token={TOKEN}%20"),
        format!("?token={TOKEN}%00"),
        format!("?token={}", &TOKEN[1..]),
        format!("?TOKEN={TOKEN}"),
        format!("?token%5B%5D={TOKEN}"),
        format!("?tok%65n={}", "x".repeat(TOKEN.len())),
        format!("?token={}", "A".repeat(100_000)),
    ];
    let headers = [
        "Authorization: Bearer\r\n".to_owned(),
        "Authorization: Bearer \r\n".into(),
        // Two spaces after the scheme are allowed (RFC 9110, 11.4); two tokens are not one.
        format!("Authorization: Bearer {TOKEN} {TOKEN}\r\n"),
        format!("Authorization: Basic {TOKEN}\r\n"),
        format!("Authorization: Token {TOKEN}\r\n"),
        format!("Authorization: {TOKEN}\r\n"),
        format!("Authorization: Bearer {}\r\n", &TOKEN[..TOKEN.len() - 1]),
        format!("Cookie: token={TOKEN}\r\n"),
        format!("X-Token: {TOKEN}\r\n"),
        format!("Sec-WebSocket-Protocol: {TOKEN}\r\n"),
    ];
    let mut tried = 0;
    for query in &queries {
        let answer = exchange(
            relay.http,
            upgrade(&host, &format!("/ws{query}"), "").as_bytes(),
        )
        .await;
        assert!(
            [400, 401, 414, 431].contains(&answer.status),
            "{query:.80}: {}",
            answer.head
        );
        assert!(!answer.body.contains(TOKEN), "{}", answer.body);
        tried += 1;
    }
    for header in &headers {
        let answer = exchange(relay.http, upgrade(&host, "/ws", header).as_bytes()).await;
        assert_eq!(answer.status, 401, "{header}: {}", answer.head);
        assert!(answer
            .head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"));
        tried += 1;
    }
    // A wrong token never gets as far as the target check (no allow-list oracle).
    let answer = exchange(
        relay.http,
        upgrade(&host, "/ws?token=wrong&target=10.0.0.1:22", "").as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 401);
    tried += 1;
    // Controls.
    let ok = exchange(
        relay.http,
        upgrade(&host, &format!("/ws?token={TOKEN}"), "").as_bytes(),
    )
    .await;
    assert_eq!(ok.status, 101);
    let ok = exchange(
        relay.http,
        upgrade(&host, "/ws", &format!("Authorization: Bearer {TOKEN}\r\n")).as_bytes(),
    )
    .await;
    assert_eq!(ok.status, 101);
    println!("hostile tokens: {tried} missing or wrong tokens refused");
}

#[tokio::test]
async fn oversized_and_malformed_handshakes_are_refused() {
    let relay = TestRelay::start().await;
    let host = relay.http.to_string();
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "200 headers",
            upgrade(&host, "/ws", &many_headers).into_bytes(),
        ),
        (
            "70 KB request line",
            upgrade(&host, &format!("/ws?x={}", "a".repeat(70_000)), "").into_bytes(),
        ),
        (
            "1 MB key",
            format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\n\r\n",
                "A".repeat(1 << 20)
            )
            .into_bytes(),
        ),
        (
            "5000 subprotocols",
            upgrade(
                &host,
                "/ws",
                &format!(
                    "Sec-WebSocket-Protocol: {}\r\n",
                    vec!["binary"; 5000].join(", ")
                ),
            )
            .into_bytes(),
        ),
        (
            "obs-fold",
            upgrade(&host, "/ws", "X-Folded: a\r\n  b\r\n").into_bytes(),
        ),
        (
            "bad header name",
            upgrade(&host, "/ws", "Bad Header: x\r\n").into_bytes(),
        ),
        (
            "NUL in header",
            upgrade(&host, "/ws", "X-Nul: a\0b\r\n").into_bytes(),
        ),
        (
            "bare CR",
            upgrade(&host, "/ws", "X-A: a\rb\r\n").into_bytes(),
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/9",
            upgrade(&host, "/ws", "")
                .replace("HTTP/1.1", "HTTP/9.9")
                .into_bytes(),
        ),
        ("binary garbage", (0u8..=255).cycle().take(4096).collect()),
    ];
    let mut tried = 0;
    for (name, request) in &cases {
        let answer = exchange(relay.http, request).await;
        assert!(
            answer.status == 0 || (400..500).contains(&answer.status),
            "{name}: {}",
            answer.head
        );
        tried += 1;
    }
    // A large header dripped in 1 KiB writes still hits the limit.
    let mut stream = TcpStream::connect(relay.http).await.unwrap();
    let head = format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nX-Big: ");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 1024];
    for _ in 0..100 {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 4"),
        "{response:.200}"
    );
    tried += 1;
    println!("hostile handshakes: {tried} oversized or malformed requests refused");
    still_serves(relay.http).await;
}

/// Close codes accepted as "refused as a protocol error"; `None` is a dropped connection.
const PROTOCOL: &[Option<u16>] = &[Some(1002), None];

#[tokio::test]
async fn malformed_and_oversized_frames_end_only_their_own_bridge() {
    let relay = TestRelay::with(|s| s.max_message = 1000).await;
    let host = relay.http.to_string();
    let huge_len = {
        let mut f = vec![0x82, 0xff];
        f.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        f
    };
    let msb_len = {
        let mut f = vec![0x82, 0xff];
        f.extend_from_slice(&((1u64 << 63) | 16).to_be_bytes());
        f.extend_from_slice(&[1, 2, 3, 4]);
        f
    };
    // A 2-byte message with its length in the 16-bit form; a relay may accept it (then the
    // Close after it ends the bridge normally) or refuse it.
    let non_minimal_len = {
        let mut f = vec![0x82, 0xfe, 0, 2, 0, 0, 0, 0];
        f.extend_from_slice(b"ok");
        f.extend_from_slice(&frame(0x88, &1000u16.to_be_bytes(), true));
        f
    };
    let over_limit_in_pieces = [
        frame(0x02, &[1u8; 600], true),
        frame(0x00, &[2u8; 600], true),
        frame(0x80, &[3u8; 10], true),
    ]
    .concat();
    let close_with = |code: u16, reason: &[u8]| {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        frame(0x88, &p, true)
    };
    type Case = (&'static str, Vec<u8>, &'static [Option<u16>]);
    let cases: Vec<Case> = vec![
        ("2^63-1 byte frame", huge_len, &[Some(1009)]),
        (
            "length with the top bit set",
            msb_len,
            &[Some(1002), Some(1009), None],
        ),
        (
            "message over the limit in fragments",
            over_limit_in_pieces,
            &[Some(1009)],
        ),
        (
            "single frame over the limit",
            frame(0x82, &[0u8; 1001], true),
            &[Some(1009)],
        ),
        (
            "unmasked client frame",
            frame(0x82, b"hello", false),
            PROTOCOL,
        ),
        ("126-byte ping", frame(0x89, &[0u8; 126], true), PROTOCOL),
        ("fragmented ping", frame(0x09, b"p", true), PROTOCOL),
        (
            "RSV1 without an extension",
            frame(0xc2, b"x", true),
            PROTOCOL,
        ),
        ("RSV3", frame(0x92, b"x", true), PROTOCOL),
        ("reserved data opcode 3", frame(0x83, b"x", true), PROTOCOL),
        (
            "reserved control opcode 11",
            frame(0x8b, b"x", true),
            PROTOCOL,
        ),
        (
            "continuation without a start",
            frame(0x80, b"x", true),
            PROTOCOL,
        ),
        (
            "new message inside a fragmented one",
            [frame(0x02, b"ab", true), frame(0x82, b"cd", true)].concat(),
            PROTOCOL,
        ),
        (
            "invalid UTF-8 text",
            frame(0x81, &[0xff, 0xfe, 0xfd], true),
            &[Some(1002), Some(1007), None],
        ),
        (
            "text split inside a UTF-8 sequence, then invalid",
            [frame(0x01, &[0xe2, 0x82], true), frame(0x80, &[0x41], true)].concat(),
            &[Some(1002), Some(1007), None],
        ),
        (
            "close with a 1-byte body",
            frame(0x88, &[3], true),
            &[Some(1002), None],
        ),
        ("close code 999", close_with(999, b""), &[Some(1002), None]),
        (
            "close code 1005",
            close_with(1005, b""),
            &[Some(1002), None],
        ),
        (
            "close code 1015",
            close_with(1015, b""),
            &[Some(1002), None],
        ),
        (
            "close code 5000",
            close_with(5000, b""),
            &[Some(1002), None],
        ),
        (
            "close reason not UTF-8",
            close_with(1000, &[0xff, 0xfe]),
            &[Some(1002), Some(1007), None],
        ),
        (
            "126-byte close",
            close_with(1000, &[b'a'; 124]),
            &[Some(1002), None],
        ),
        (
            "non-minimal length encoding",
            non_minimal_len,
            &[Some(1000), Some(1002), None],
        ),
    ];
    let mut tried = 0;
    let mut observed = Vec::new();
    for (name, bytes, expected) in &cases {
        let mut answer = exchange(relay.http, upgrade(&host, "/ws", "").as_bytes()).await;
        assert_eq!(answer.status, 101, "{name}: {}", answer.head);
        answer.stream.write_all(bytes).await.unwrap();
        let mut data = Vec::new();
        let code = read_server_frames(&mut answer.stream, &mut data).await;
        assert!(
            expected.contains(&code),
            "{name}: close code {code:?}, expected one of {expected:?}"
        );
        let code = code.map_or("dropped".to_owned(), |c| c.to_string());
        observed.push(format!("{name}: {code}"));
        tried += 1;
    }

    // Floods that stay within the protocol: pings never read, and endless empty fragments.
    let mut answer = exchange(relay.http, upgrade(&host, "/ws", "").as_bytes()).await;
    assert_eq!(answer.status, 101);
    let ping = frame(0x89, &[7u8; 125], true);
    let pings: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 20_000)
        .collect();
    let (mut r, mut w) = answer.stream.split();
    let writer = async {
        w.write_all(&pings).await.unwrap();
        let fragments: Vec<u8> = [
            frame(0x02, b"", true)
                .into_iter()
                .chain(frame(0x00, b"", true).repeat(5000))
                .collect::<Vec<u8>>(),
            frame(0x80, b"after the flood", true),
        ]
        .concat();
        w.write_all(&fragments).await.unwrap();
    };
    let reader = async {
        // Read (and drop) pongs until the echo of the message after the flood arrives.
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !seen
            .windows(b"after the flood".len())
            .any(|w| w == b"after the flood")
        {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed during the ping flood");
            seen.extend_from_slice(&buf[..n]);
            if seen.len() > 64 * 1024 {
                seen.drain(..seen.len() - 32);
            }
        }
    };
    tokio::time::timeout(WAIT * 3, async { tokio::join!(writer, reader) })
        .await
        .expect("flood not handled");
    tried += 2;
    drop(answer);

    relay.wait_bridges_closed().await;
    println!(
        "hostile frames: {tried} malformed, oversized or flooding frame sequences handled; \
         close codes: {}",
        observed.join("; ")
    );
    still_serves(relay.http).await;
    relay.wait_bridges_closed().await;
}

/// At the largest `--max-message` the relay takes (1 GiB), frames that claim far more (a 14-byte
/// header asking for 2^47 bytes, or 2^63 - 1) close their bridge with 1009 before any memory is
/// set aside for them: the codec makes room for a frame's declared size when its header
/// arrives, and a limit near the address space let such a header abort the whole relay.
#[tokio::test]
async fn frames_claiming_more_than_the_largest_limit_end_only_their_bridge() {
    let largest = sockrelay::config::MAX_MESSAGE_LIMIT;
    let relay = TestRelay::with(|s| s.max_message = largest).await;
    let host = relay.http.to_string();
    for claim in [largest as u64 + 1, 1 << 47, u64::MAX >> 1] {
        let mut header = vec![0x82, 0xff];
        header.extend_from_slice(&claim.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        let mut answer = exchange(relay.http, upgrade(&host, "/ws", "").as_bytes()).await;
        assert_eq!(answer.status, 101, "{}", answer.head);
        answer.stream.write_all(&header).await.unwrap();
        let mut data = Vec::new();
        let code = read_server_frames(&mut answer.stream, &mut data).await;
        assert_eq!(code, Some(1009), "a frame of {claim} bytes");
    }
    relay.wait_bridges_closed().await;
    still_serves(relay.http).await;
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off_and_release_their_sockets() {
    let relay = RelayProcess::spawn(&["--handshake-timeout", "2"]);
    let http = relay.http;
    let pid = relay.child.id();
    still_serves(http).await;
    let baseline = fd_count(pid);

    const EACH: usize = 100;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for kind in 0..4 {
        for i in 0..EACH {
            tasks.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(http).await.unwrap();
                let request = upgrade(&http.to_string(), "/ws", "");
                match kind {
                    // Says nothing at all.
                    0 => {}
                    // Drips a handshake, one byte every 300 ms.
                    1 => {
                        for b in request.as_bytes() {
                            if s.write_all(&[*b]).await.is_err() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                    }
                    // Sends all but the final CRLF.
                    2 => {
                        let _ = s.write_all(&request.as_bytes()[..request.len() - 2]).await;
                    }
                    // Keeps a connection open after one request, never sending another.
                    _ => {
                        let _ = s
                            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                            .await;
                    }
                }
                // The relay must end the connection; a drip writer notices by a failed write.
                let mut sink = Vec::new();
                tokio::time::timeout(WAIT, s.read_to_end(&mut sink))
                    .await
                    .unwrap_or_else(|_| panic!("slowloris kind {kind} #{i} still open"))
                    .ok();
            }));
        }
    }
    // Legitimate clients are served while the slow ones wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        still_serves(http).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    // Every socket of theirs is released.
    let deadline = Instant::now() + WAIT;
    let mut now = fd_count(pid);
    while now > baseline {
        assert!(
            Instant::now() < deadline,
            "relay holds {now} fds, {baseline} before the slowloris clients"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = fd_count(pid);
    }
    println!(
        "hostile slowloris: {} slow clients (4 kinds) cut off in {:.1} s; relay fds {baseline} -> {now}",
        4 * EACH,
        elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn static_paths_cannot_escape_the_embedded_files() {
    let relay = TestRelay::start().await;
    let paths = [
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/Cargo.toml",
        "/.%2e/Cargo.toml",
        "/%2e./Cargo.toml",
        "/%252e%252e/Cargo.toml",
        "/%c0%ae%c0%ae/Cargo.toml",
        "/%e0%80%ae%e0%80%ae/Cargo.toml",
        "/..%5cCargo.toml",
        "/..\\Cargo.toml",
        "/..%255cCargo.toml",
        "/pkg/%2e%2e/%2e%2e/Cargo.toml",
        "/pkg/..%2f..%2fCargo.toml",
        "/css/../../native/src/lib.rs",
        "/./../Cargo.toml",
        "//..//..//Cargo.toml",
        "/....//....//Cargo.toml",
        "/%2f%2fetc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/proc/self/environ",
        "/proc/self/cmdline",
        "/Cargo.toml",
        "/native/src/lib.rs",
        "/web/index.html",
        "/.git/config",
        "/.env",
        "/index.html%00.png",
        "/index.html/..",
        "/index.html/../../Cargo.toml",
        "/~root/.bashrc",
        "/C:/Windows/win.ini",
        "/..;/Cargo.toml",
        "/%u002e%u002e/Cargo.toml",
    ];
    let secrets = [
        "[workspace]",
        "[package]",
        "root:",
        "pub mod",
        "[core]",
        "PATH=",
    ];
    let mut tried = 0;
    for path in paths {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = exchange(relay.http, request.as_bytes()).await;
        assert!(
            answer.status == 404 || answer.status == 400,
            "{path}: {}",
            answer.head
        );
        for s in secrets {
            assert!(
                !answer.body.contains(s),
                "{path} leaked {s}: {}",
                answer.body
            );
        }
        tried += 1;
    }
    // Absolute-form and other request targets: refused, or read as the path `/` (hyper takes
    // `Cargo.toml` as an authority), which is the web client.
    let (_, index) = sockrelay_tests::http_get(relay.http, "/").await;
    for target in [
        "http://127.0.0.1/../../Cargo.toml",
        "http://evil.example/etc/passwd",
        "file:///etc/passwd",
        "../Cargo.toml",
        "Cargo.toml",
        "*",
        "C:\\Windows\\win.ini",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = exchange(relay.http, request.as_bytes()).await;
        assert!(
            [0, 400, 404].contains(&answer.status)
                || (answer.status == 200 && answer.body == index),
            "{target}: {}",
            answer.head
        );
        for s in secrets {
            assert!(!answer.body.contains(s), "{target} leaked {s}");
        }
        tried += 1;
    }
    println!("hostile paths: {tried} traversal attempts, none reached a file outside web/");
}
