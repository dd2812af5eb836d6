//! Examples of the address core's behaviour that the docs and the tutorial rely on.
//! (The exhaustive comparison with CPython is `python_oracle.rs`.)
#![allow(clippy::unwrap_used)]

use sockrelay_inet::{self as inet, AddressKind, PyError, PyErrorKind, Subnet, AF_INET, AF_INET6};

fn kind(s: &str) -> &'static str {
    inet::address_facts(s).unwrap().kind.as_str()
}

#[test]
fn errors_print_like_python_tracebacks_end() {
    let e = inet::inet_aton("300.1.1.1").unwrap_err();
    assert_eq!(
        e,
        PyError::new(
            PyErrorKind::OSError,
            "illegal IP address string passed to inet_aton"
        )
    );
    assert_eq!(
        e.to_string(),
        "OSError: illegal IP address string passed to inet_aton"
    );
    let e = inet::inet_ntop(3, &[0; 4]).unwrap_err();
    assert_eq!(e.to_string(), "ValueError: unknown address family 3");
    let e = inet::getservbyport(70000, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OverflowError: getservbyport: port must be 0-65535."
    );
    assert_eq!(PyErrorKind::TypeError.name(), "TypeError");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().starts_with("OverflowError"));
}

#[test]
fn aton_is_glibc_permissive() {
    assert_eq!(inet::inet_aton("192.168.1.190"), Ok([192, 168, 1, 190]));
    assert_eq!(inet::inet_aton("127.1"), Ok([127, 0, 0, 1]));
    assert_eq!(inet::inet_aton("0x7f.1"), Ok([127, 0, 0, 1]));
    assert_eq!(inet::inet_aton("0177.0.0.1"), Ok([127, 0, 0, 1]));
    assert_eq!(inet::inet_aton("1.2.3.4 junk"), Ok([1, 2, 3, 4]));
    assert_eq!(inet::inet_aton("1 .2"), Ok([0, 0, 0, 1]));
    assert!(inet::inet_aton("08.1.1.1").is_err());
    assert!(inet::inet_aton("1.2.3.4.").is_err());
    assert!(inet::inet_aton(" 1.2.3.4").is_err());
    assert_eq!(
        inet::inet_aton("1.2.3.4 \0").unwrap_err().kind,
        PyErrorKind::ValueError
    );
}

#[test]
fn pton_and_ntop_are_glibc_strict_and_canonical() {
    assert!(inet::inet_pton(AF_INET, "01.2.3.4").is_err());
    assert!(inet::inet_pton(AF_INET, "127.1").is_err());
    assert_eq!(
        inet::inet_pton(7, "1.2.3.4").unwrap_err().message,
        "[Errno 97] Address family not supported by protocol"
    );
    let ntop = |s: &str| inet::inet_ntop(AF_INET6, &inet::inet_pton(AF_INET6, s).unwrap());
    assert_eq!(ntop("0:0:0:0:0:0:0:1").unwrap(), "::1");
    assert_eq!(ntop("::2").unwrap(), "::2");
    assert_eq!(ntop("::ffff:0:0").unwrap(), "::ffff:0.0.0.0");
    assert_eq!(ntop("::0.1.0.0").unwrap(), "::0.1.0.0");
    assert_eq!(ntop("::1:0:0").unwrap(), "::1:0:0");
    assert_eq!(ntop("1:0:0:1:0:0:1:0").unwrap(), "1::1:0:0:1:0");
    assert_eq!(ntop("2001:DB8:0:0:1:0:0:1").unwrap(), "2001:db8::1:0:0:1");
    assert_eq!(ntop("1:2:3:4:5:6:7::").unwrap(), "1:2:3:4:5:6:7:0");
    assert_eq!(
        inet::parse_ipv6("::1"),
        Some([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    );
    assert_eq!(inet::parse_ipv4("10.0.0.1"), Some([10, 0, 0, 1]));
    assert_eq!(
        inet::format_ipv6([0xff; 16]),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    );
}

#[test]
fn services_resolve_like_netbase() {
    assert_eq!(inet::getservbyname("http", None), Ok(80));
    assert_eq!(inet::getservbyname("www", Some("tcp")), Ok(80));
    assert_eq!(inet::getservbyname("mysql", Some("tcp")), Ok(3306));
    assert_eq!(inet::getservbyname("domain", Some("udp")), Ok(53));
    assert_eq!(
        inet::getservbyname("http", Some("udp"))
            .unwrap_err()
            .message,
        "service/proto not found"
    );
    assert!(inet::getservbyname("HTTP", None).is_err());
    assert_eq!(inet::getservbyport(80, Some("tcp")), Ok("http"));
    assert_eq!(inet::getservbyport(22, None), Ok("ssh"));
    assert_eq!(
        inet::getservbyport(0, None).unwrap_err().message,
        "port/proto not found"
    );
    assert_eq!(
        inet::getservbyport(1 << 31, None).unwrap_err().message,
        "signed integer is greater than maximum"
    );
}

#[test]
fn facts_of_the_tutorial_address() {
    let f = inet::address_facts("192.168.1.190").unwrap();
    assert_eq!(f.family, AF_INET);
    assert_eq!(f.bytes, [192, 168, 1, 190]);
    assert_eq!(f.canonical, "192.168.1.190");
    assert_eq!(f.integer, "3232235966");
    assert_eq!(f.hex, "0xc0a801be");
    assert_eq!(f.binary, "11000000.10101000.00000001.10111110");
    assert_eq!(f.python_bytes, r"b'\xc0\xa8\x01\xbe'");
    assert_eq!(f.kind, AddressKind::Private);
}

#[test]
fn facts_of_ipv6_and_python_bytes_quoting() {
    let f = inet::address_facts("::1").unwrap();
    assert_eq!(f.family, AF_INET6);
    assert_eq!(f.integer, "1");
    assert_eq!(f.hex, "0x00000000000000000000000000000001");
    assert_eq!(f.binary.split(':').count(), 8);
    assert!(f.binary.ends_with(":0000000000000001"));
    assert_eq!(f.python_bytes, format!("b'{}\\x01'", "\\x00".repeat(15)));
    let max = inet::address_facts("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").unwrap();
    assert_eq!(max.integer, u128::MAX.to_string());
    assert_eq!(
        inet::address_facts("127.0.0.1").unwrap().python_bytes,
        r"b'\x7f\x00\x00\x01'"
    );
    // Printable ASCII is shown as characters; ' switches the quotes unless " is there too.
    assert_eq!(
        inet::address_facts("65.66.9.92").unwrap().python_bytes,
        r"b'AB\t\\'"
    );
    assert_eq!(
        inet::address_facts("39.10.13.97").unwrap().python_bytes,
        r#"b"'\n\ra""#
    );
    assert_eq!(
        inet::address_facts("39.34.0.0").unwrap().python_bytes,
        r#"b'\'"\x00\x00'"#
    );
}

#[test]
fn kinds_follow_the_documented_precedence() {
    assert_eq!(kind("0.0.0.0"), "unspecified");
    assert_eq!(kind("::"), "unspecified");
    assert_eq!(kind("127.255.0.1"), "loopback");
    assert_eq!(kind("::1"), "loopback");
    assert_eq!(kind("::ffff:127.0.0.1"), "loopback");
    assert_eq!(kind("255.255.255.255"), "broadcast");
    assert_eq!(kind("224.0.0.251"), "multicast");
    assert_eq!(kind("ff02::fb"), "multicast");
    assert_eq!(kind("169.254.1.1"), "link-local");
    assert_eq!(kind("fe80::1"), "link-local");
    assert_eq!(kind("192.0.2.1"), "documentation");
    assert_eq!(kind("2001:db8::1"), "documentation");
    assert_eq!(kind("3fff::1"), "documentation");
    assert_eq!(kind("10.0.0.1"), "private");
    assert_eq!(kind("172.31.255.255"), "private");
    assert_eq!(kind("172.32.0.0"), "global");
    assert_eq!(kind("100.64.0.1"), "private");
    assert_eq!(kind("192.0.0.9"), "global");
    assert_eq!(kind("fd00::1"), "private");
    assert_eq!(kind("::ffff:10.0.0.1"), "private");
    assert_eq!(kind("::ffff:8.8.8.8"), "global");
    assert_eq!(kind("8.8.8.8"), "global");
    assert_eq!(kind("2606:4700:4700::1111"), "global");
    assert_eq!(AddressKind::LinkLocal.as_str(), "link-local");
}

#[test]
fn facts_reject_what_pton_rejects() {
    for bad in ["127.1", "fe80::1%eth0", "1.2.3.4/24", "", " ::1"] {
        let e = inet::address_facts(bad).unwrap_err();
        assert_eq!(e.kind, PyErrorKind::ValueError, "{bad:?}");
    }
    assert_eq!(
        inet::address_facts("x").unwrap_err().message,
        "'x' does not appear to be an IPv4 or IPv6 address"
    );
    assert_eq!(
        inet::address_facts("it's").unwrap_err().message,
        "\"it's\" does not appear to be an IPv4 or IPv6 address"
    );
}

/// `repr(s)` as python3 writes it: escapes, the quote it picks, and Latin-1's non-printable
/// characters (U+0080..=U+00A0 and U+00AD, two bytes in UTF-8) next to printable ones.
#[test]
fn python_str_repr_matches_python() {
    for (text, repr) in [
        ("a\u{85}b", "'a\\x85b'"),
        ("\u{a0}\u{a1}\u{ad}\u{ae}", "'\\xa0\u{a1}\\xad\u{ae}'"),
        ("x\u{ff}\u{100}\u{20ac}", "'x\u{ff}\u{100}\u{20ac}'"),
        ("\x7f\x1f\\\t\n\r", "'\\x7f\\x1f\\\\\\t\\n\\r'"),
        ("it's", "\"it's\""),
        ("it's \"q\"", "'it\\'s \"q\"'"),
        ("\u{c2}\u{80}", "'\u{c2}\\x80'"),
        ("\0", "'\\x00'"),
        ("", "''"),
    ] {
        assert_eq!(inet::python_str_repr(text), repr, "{text:?}");
    }
}

#[test]
fn subnet_of_the_tutorial_network() {
    let net = inet::subnet("192.168.1.0/24").unwrap();
    assert_eq!(
        net,
        Subnet {
            family: AF_INET,
            prefix: 24,
            network: "192.168.1.0".into(),
            netmask: "255.255.255.0".into(),
            first_host: "192.168.1.1".into(),
            last_host: "192.168.1.254".into(),
            broadcast: Some("192.168.1.255".into()),
            size: "256".into(),
            hosts: "254".into(),
        }
    );
    assert_eq!(inet::subnet("192.168.1.77/24").unwrap(), net);
    assert_eq!(inet::subnet("192.168.1.190/255.255.255.0").unwrap(), net);
    assert_eq!(inet::subnet("192.168.1.190/0.0.0.255").unwrap(), net);
    assert_eq!(inet::subnet("192.168.1.190/024").unwrap(), net);
}

#[test]
fn subnet_edges_follow_ipaddress_hosts() {
    let s = inet::subnet("10.0.0.7/31").unwrap();
    assert_eq!(
        (
            s.network.as_str(),
            s.first_host.as_str(),
            s.last_host.as_str()
        ),
        ("10.0.0.6", "10.0.0.6", "10.0.0.7")
    );
    assert_eq!(s.hosts, "2");
    let s = inet::subnet("10.0.0.7").unwrap();
    assert_eq!(
        (
            s.prefix,
            s.first_host.as_str(),
            s.last_host.as_str(),
            s.hosts.as_str()
        ),
        (32, "10.0.0.7", "10.0.0.7", "1")
    );
    let s = inet::subnet("0.0.0.0/0").unwrap();
    assert_eq!(
        (s.size.as_str(), s.hosts.as_str()),
        ("4294967296", "4294967294")
    );

    let s = inet::subnet("2001:db8::/32").unwrap();
    assert_eq!(s.family, AF_INET6);
    assert_eq!(s.netmask, "ffff:ffff::");
    assert_eq!(s.first_host, "2001:db8::1");
    assert_eq!(s.last_host, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_eq!(s.broadcast, None);
    assert_eq!(s.size, "79228162514264337593543950336");
    assert_eq!(s.hosts, "79228162514264337593543950335");
    let s = inet::subnet("2001:db8::5/127").unwrap();
    assert_eq!(
        (
            s.first_host.as_str(),
            s.last_host.as_str(),
            s.hosts.as_str()
        ),
        ("2001:db8::4", "2001:db8::5", "2")
    );
    let s = inet::subnet("::1").unwrap();
    assert_eq!(
        (s.prefix, s.size.as_str(), s.hosts.as_str()),
        (128, "1", "1")
    );
    let s = inet::subnet("::/0").unwrap();
    assert_eq!(s.size, "340282366920938463463374607431768211456");
    assert_eq!(s.hosts, u128::MAX.to_string());
    assert_eq!(s.netmask, "::");
    assert_eq!(s.first_host, "::1");
}

#[test]
fn subnet_errors() {
    for bad in [
        "1.2.3.4/33",
        "1.2.3.4/",
        "1.2.3.4/+8",
        "1.2.3.4/255.0.255.0",
        "::/129",
        "::/ffff::",
        "fe80::1%eth0/64",
        "127.1/8",
        "1.2.3.4/24/24",
        "/24",
        "",
    ] {
        let e = inet::subnet(bad).unwrap_err();
        assert_eq!(e.kind, PyErrorKind::ValueError, "{bad:?}");
        assert!(
            e.message
                .ends_with("does not appear to be an IPv4 or IPv6 network"),
            "{bad:?}"
        );
    }
}
