//! The address core (`sockrelay_inet`): every text parser on the input as (lossy) UTF-8,
//! every byte formatter on the raw input, and round-trip invariants between them.
//!
//! Invariants checked, beyond "no panic":
//! - `inet_pton(f, s) == Ok(b)` implies `inet_pton(f, inet_ntop(f, b)) == Ok(b)`, and `b` has the
//!   family's length; for `AF_INET` the text is already canonical and agrees with std's strict
//!   parser.
//! - `inet_aton(s) == Ok(a)` implies `inet_ntoa(a)` parses back (with `inet_aton` and with
//!   `inet_pton`) to `a`.
//! - `inet_ntoa` / `inet_ntop` succeed exactly for 4 / 16 bytes, and their text parses back.
//! - `address_facts` agrees with `inet_pton`/`inet_ntop`; `subnet` is idempotent on its own
//!   `network/prefix` output and its sizes match its prefix.
//! - `getservbyname(n, p) == Ok(port)` implies `getservbyport(port, p)` finds something.
#![no_main]

use std::net::Ipv4Addr;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sockrelay_inet::{
    address_facts, getservbyname, getservbyport, inet_aton, inet_ntoa, inet_ntop, inet_pton,
    subnet, PyErrorKind, AF_INET, AF_INET6,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    text_apis(&text);
    // Split forms: `name/proto` for the service lookups (as `sockrelay serv` users type them).
    if let Some((name, proto)) = text.split_once('/') {
        services(name, Some(proto));
    }
    services(&text, None);
    byte_apis(data);
});

fn text_apis(text: &str) {
    // inet_aton: permissive, but what it reads is an address that formats and reads back.
    if let Ok(a) = inet_aton(text) {
        let dotted = inet_ntoa(&a).expect("ntoa of 4 bytes");
        assert_eq!(inet_aton(&dotted), Ok(a), "aton(ntoa(aton({text:?})))");
        assert_eq!(
            inet_pton(AF_INET, &dotted).as_deref(),
            Ok(&a[..]),
            "pton(ntoa(aton({text:?})))"
        );
    }

    // inet_pton round trips, for both families and one family it does not support.
    for family in [AF_INET, AF_INET6, 0, -1, 1, 3, 11] {
        match inet_pton(family, text) {
            Ok(b) => {
                let len = match family {
                    AF_INET => 4,
                    AF_INET6 => 16,
                    other => panic!("inet_pton accepted family {other}"),
                };
                assert_eq!(b.len(), len);
                let shown = inet_ntop(family, &b).expect("ntop of pton output");
                assert_eq!(
                    inet_pton(family, &shown).as_ref(),
                    Ok(&b),
                    "pton(ntop(pton({family}, {text:?})))"
                );
                if family == AF_INET {
                    // Strict dotted quad: already canonical, and exactly what std reads.
                    assert_eq!(shown, text);
                }
            }
            Err(e) => assert!(matches!(
                e.kind,
                PyErrorKind::OSError | PyErrorKind::ValueError
            )),
        }
    }
    // Differential: std's strict IPv4 parser must agree with glibc's inet_pton(AF_INET).
    let std_v4 = text.parse::<Ipv4Addr>().ok().map(|ip| ip.octets().to_vec());
    assert_eq!(
        inet_pton(AF_INET, text).ok(),
        std_v4,
        "std and inet_pton disagree on {text:?}"
    );

    if let Ok(facts) = address_facts(text) {
        let packed = inet_pton(facts.family, text).expect("facts imply pton");
        assert_eq!(facts.bytes, packed);
        assert_eq!(
            facts.canonical,
            inet_ntop(facts.family, &packed).expect("ntop")
        );
        let mut int: u128 = 0;
        for &b in &packed {
            int = (int << 8) | u128::from(b);
        }
        assert_eq!(facts.integer, int.to_string());
        let hex: String = packed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(facts.hex, format!("0x{hex}"));
    } else {
        assert!(inet_pton(AF_INET, text).is_err() && inet_pton(AF_INET6, text).is_err());
    }

    if let Ok(net) = subnet(text) {
        let width: u32 = match net.family {
            AF_INET => 32,
            AF_INET6 => 128,
            other => panic!("subnet family {other}"),
        };
        assert!(u32::from(net.prefix) <= width);
        for addr in [&net.network, &net.netmask, &net.first_host, &net.last_host] {
            assert!(
                inet_pton(net.family, addr).is_ok(),
                "subnet({text:?}) wrote {addr:?}"
            );
        }
        let again = subnet(&format!("{}/{}", net.network, net.prefix));
        assert_eq!(
            again.as_ref(),
            Ok(&net),
            "subnet not idempotent on {text:?}"
        );
        let host_bits = width - u32::from(net.prefix);
        let size = if host_bits == 128 {
            "340282366920938463463374607431768211456".to_owned()
        } else {
            (1u128 << host_bits).to_string()
        };
        assert_eq!(net.size, size);
        assert_eq!(net.broadcast.is_some(), net.family == AF_INET);
    }
}

fn services(name: &str, proto: Option<&str>) {
    if let Ok(port) = getservbyname(name, proto) {
        assert!(
            getservbyport(i64::from(port), proto).is_ok(),
            "getservbyname({name:?}, {proto:?}) = {port}, but no service on that port"
        );
    }
}

fn byte_apis(data: &[u8]) {
    // The whole input as packed bytes.
    match inet_ntoa(data) {
        Ok(s) => {
            assert_eq!(data.len(), 4);
            assert_eq!(inet_aton(&s).as_ref().map(|a| &a[..]), Ok(data));
        }
        Err(_) => assert_ne!(data.len(), 4),
    }
    for (family, len) in [(AF_INET, 4), (AF_INET6, 16)] {
        match inet_ntop(family, data) {
            Ok(s) => {
                assert_eq!(data.len(), len);
                assert_eq!(inet_pton(family, &s).as_deref(), Ok(data), "{s:?}");
            }
            Err(e) => {
                assert_ne!(data.len(), len);
                assert_eq!(e.kind, PyErrorKind::ValueError);
            }
        }
    }

    // Structured: an arbitrary family and port, a protocol, and the rest as packed bytes.
    let mut u = Unstructured::new(data);
    let Ok(family) = i32::arbitrary(&mut u) else {
        return;
    };
    let Ok(port) = i64::arbitrary(&mut u) else {
        return;
    };
    let proto = <Option<&str>>::arbitrary(&mut u).unwrap_or(None);
    let packed = u.take_rest();
    if let Ok(s) = inet_ntop(family, packed) {
        assert!(family == AF_INET || family == AF_INET6);
        assert_eq!(inet_pton(family, &s).as_deref(), Ok(packed));
    }
    for p in [port, port & 0xffff, port % 70_000] {
        match getservbyport(p, proto) {
            Ok(name) => {
                assert!((0..=65535).contains(&p));
                assert!(!name.is_empty());
            }
            Err(e) => assert!(matches!(
                e.kind,
                PyErrorKind::OSError | PyErrorKind::OverflowError | PyErrorKind::ValueError
            )),
        }
    }
}
