//! The `/ws` gatekeepers: the strict `HOST:PORT` parser and allow-list, and the Origin check.
//!
//! The input is (lossy) UTF-8 text split at `\n` into fields:
//! `TARGET \n ORIGIN-SETTING \n ORIGIN \n HOST`; a missing field is absent.
//!
//! Invariants checked, beyond "no panic":
//! - a parsed spec's `Display` form parses to an equal spec and is a fixed point;
//! - the parser never accepts a host that `inet_aton` reads as an IPv4 address unless it is
//!   the strict dotted quad (so `127.1`, `0x7f.1`, `2130706433` cannot pass as names);
//!   names are lowercase LDH labels, IPv6 only in brackets, ports 1..=65535 in plain decimal;
//! - the allow-list grants only its own entries, spelled exactly, and only their addresses;
//! - the Origin check: no Origin header always passes, a listed origin passes its own policy,
//!   the check ignores ASCII case, and anything it lets through is an http(s) origin.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sockrelay::bridge::Dest;
use sockrelay::origin::{validate_origin_setting, OriginPolicy};
use sockrelay::target::{AllowList, Host, Proto, TargetSpec};
use sockrelay_inet::{inet_aton, inet_pton, AF_INET};

const ECHO: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 65432);
const ACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8001);

struct Fixture {
    rt: tokio::runtime::Runtime,
    /// Built-ins plus numeric `--allow` entries only: a named entry would make `check` resolve.
    allow: AllowList,
    allowed_addrs: Vec<SocketAddr>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let extra = ["127.0.0.1:7".to_owned(), "[::1]:7".to_owned()];
        let allow = rt
            .block_on(AllowList::build(
                &[("echo", Proto::Tcp, ECHO), ("ack", Proto::Tcp, ACK)],
                &extra,
            ))
            .expect("allow-list");
        let allowed_addrs = vec![
            ECHO,
            ACK,
            "127.0.0.1:7".parse().expect("addr"),
            "[::1]:7".parse().expect("addr"),
        ];
        Fixture {
            rt,
            allow,
            allowed_addrs,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let target = fields.next().unwrap_or("");
    let setting = fields.next();
    let origin = fields.next();
    let host = fields.next();

    check_target(target);
    // The whole text too: most of the parser's input space has no newline in it.
    if text.len() != target.len() {
        check_target(&text);
    }
    check_allow_list(target);
    check_origin(setting, origin, host);
});

fn check_target(text: &str) {
    let Ok(spec) = TargetSpec::parse(text) else {
        return;
    };
    let shown = spec.to_string();
    assert_eq!(
        TargetSpec::parse(&shown).as_ref(),
        Ok(&spec),
        "{text:?} -> {shown:?}"
    );
    assert_eq!(
        TargetSpec::parse(&shown).map(|s| s.to_string()).as_deref(),
        Ok(shown.as_str())
    );
    assert_ne!(spec.port, 0);

    let port_text = spec.port.to_string();
    assert!(
        text.ends_with(&format!(":{port_text}")),
        "port of {text:?} is not plain decimal"
    );
    let host_text = &text[..text.len() - port_text.len() - 1];
    match &spec.host {
        Host::Ip(IpAddr::V4(ip)) => {
            // Only the strict dotted quad, spelled exactly as it formats.
            assert_eq!(host_text, ip.to_string(), "{text:?}");
            assert_eq!(
                inet_pton(AF_INET, host_text).as_deref(),
                Ok(&ip.octets()[..])
            );
        }
        Host::Ip(IpAddr::V6(_)) => {
            assert!(host_text.starts_with('[') && host_text.ends_with(']'));
            assert!(!host_text.contains('%'), "zone id accepted: {text:?}");
        }
        Host::Name(name) => {
            // Nothing the resolver could read as a number.
            assert!(inet_aton(host_text).is_err(), "numeric name {text:?}");
            assert!(inet_aton(name).is_err(), "numeric name {text:?}");
            assert!(name.parse::<IpAddr>().is_err(), "address as name {text:?}");
            assert_eq!(name.as_str(), host_text.to_ascii_lowercase());
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
            assert!(!name.ends_with('.') && !name.is_empty() && name.len() <= 253);
        }
    }
    // The headline invariant, stated once more on the raw host text.
    if inet_aton(host_text).is_ok() {
        assert!(
            matches!(spec.host, Host::Ip(IpAddr::V4(_))),
            "inet_aton reads {host_text:?} as IPv4 but the parser accepted it as {:?}",
            spec.host
        );
    }
}

fn check_allow_list(requested: &str) {
    let f = fixture();
    let Ok(dest) = f.rt.block_on(f.allow.check(requested)) else {
        return;
    };
    // The list holds TCP entries only.
    let (name, addrs) = match dest {
        Dest::Tcp(t) => (t.name, t.addrs),
        other => panic!("{requested:?} was granted as {other:?}"),
    };
    assert!(!addrs.is_empty());
    for a in &addrs {
        assert!(
            f.allowed_addrs.contains(a),
            "{requested:?} granted {a} outside the allow-list"
        );
    }
    let allowed_spelling = matches!(
        requested,
        "echo" | "ack" | "127.0.0.1:65432" | "127.0.0.1:8001" | "127.0.0.1:7" | "[::1]:7"
    ) || TargetSpec::parse(requested).is_ok_and(|s| {
        // Other spellings of an IPv6 entry ([0::1]:7) are the same spec: allowed.
        matches!(s.host, Host::Ip(IpAddr::V6(_))) && s.to_string() == "[::1]:7"
    });
    assert!(
        allowed_spelling,
        "{requested:?} was granted as {name:?} -> {addrs:?}"
    );
}

fn check_origin(setting: Option<&str>, origin: Option<&str>, host: Option<&str>) {
    let settings: Vec<String> = setting.into_iter().map(str::to_owned).collect();
    let valid = setting.map(validate_origin_setting);
    let policy = OriginPolicy::new(&settings);
    let default = OriginPolicy::new(&[]);

    for tls in [false, true] {
        assert!(policy.check(None, host, tls).is_ok());
        let verdict = policy.check(origin, host, tls).is_ok();
        // Case-insensitive, as origins and host names are.
        let upper_origin = origin.map(str::to_ascii_uppercase);
        let upper_host = host.map(str::to_ascii_uppercase);
        assert_eq!(
            policy
                .check(upper_origin.as_deref(), upper_host.as_deref(), tls)
                .is_ok(),
            verdict,
            "case changes the verdict on origin {origin:?} host {host:?} setting {setting:?}"
        );
        let wildcard = settings.iter().any(|s| s == "*");
        if verdict && !wildcard {
            if let Some(o) = origin {
                let lower = o.to_ascii_lowercase();
                assert!(
                    lower.starts_with("http://") || lower.starts_with("https://"),
                    "non-http origin {o:?} allowed (setting {setting:?}, host {host:?})"
                );
            }
        }
        if let (Some(Ok(())), Some(s)) = (&valid, setting) {
            // A valid listed origin is allowed by its own policy, whatever the Host.
            assert!(
                policy.check(Some(s), host, tls).is_ok(),
                "listed origin {s:?} refused"
            );
        }
        let _ = default.check(origin, host, tls);
    }
}
