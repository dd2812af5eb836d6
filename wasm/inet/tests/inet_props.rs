//! Property tests of the address core: round trips, a model of `inet_aton`'s number syntax, and
//! "nothing panics" over arbitrary input (the wasm module must never trap on user text).
#![allow(clippy::unwrap_used)]
// Native only: these use proptest / the file system, which the wasm32 test runner lacks.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use sockrelay_inet::{self as inet, AF_INET, AF_INET6};

/// Text that is mostly IPv6 alphabet, so that a fair share of it parses.
fn v6ish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[0-9a-fA-F:.]{0,45}").unwrap()
}

/// Bytes with long zero runs and IPv4-mapped/-compatible prefixes, where `inet_ntop` has
/// choices to make.
fn v6_bytes() -> impl Strategy<Value = [u8; 16]> {
    let word = prop_oneof![3 => Just(0u16), 1 => Just(0xffff_u16), 2 => any::<u16>()];
    (proptest::array::uniform8(word), 0..4u8).prop_map(|(words, prefix)| {
        let mut b = [0u8; 16];
        for (pair, w) in b.chunks_exact_mut(2).zip(words) {
            pair.copy_from_slice(&w.to_be_bytes());
        }
        match prefix {
            0 => b[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            1 => b[..12].fill(0),
            _ => {}
        }
        b
    })
}

/// One `inet_aton` part for `value` in a C base chosen by `base`, with some leading zeros.
fn c_number(value: u64, base: u8, zeros: usize) -> String {
    match base {
        0 => value.to_string(),
        1 => format!("0{}{value:o}", "0".repeat(zeros)),
        2 => format!("0x{}{value:x}", "0".repeat(zeros)),
        _ => format!("0X{}{value:X}", "0".repeat(zeros)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ntop_then_pton_gives_the_bytes_back_v6(b in v6_bytes()) {
        let text = inet::inet_ntop(AF_INET6, &b).unwrap();
        prop_assert_eq!(inet::inet_pton(AF_INET6, &text).unwrap(), b.to_vec());
    }

    #[test]
    fn ntop_then_pton_gives_the_bytes_back_any16(b in any::<[u8; 16]>()) {
        let text = inet::inet_ntop(AF_INET6, &b).unwrap();
        prop_assert_eq!(inet::inet_pton(AF_INET6, &text).unwrap(), b.to_vec());
    }

    #[test]
    fn v4_round_trips(b in any::<[u8; 4]>()) {
        let text = inet::inet_ntoa(&b).unwrap();
        prop_assert_eq!(inet::inet_ntop(AF_INET, &b).unwrap(), text.clone());
        prop_assert_eq!(inet::inet_aton(&text).unwrap(), b);
        prop_assert_eq!(inet::inet_pton(AF_INET, &text).unwrap(), b.to_vec());
    }

    #[test]
    fn canonical_form_is_a_fixed_point(s in v6ish()) {
        if let Ok(b) = inet::inet_pton(AF_INET6, &s) {
            let canonical = inet::inet_ntop(AF_INET6, &b).unwrap();
            let again = inet::inet_pton(AF_INET6, &canonical).unwrap();
            prop_assert_eq!(&again, &b);
            prop_assert_eq!(inet::inet_ntop(AF_INET6, &again).unwrap(), canonical);
        }
    }

    #[test]
    fn aton_reads_c_numbers(
        value in any::<u32>(),
        nparts in 1..=4usize,
        bases in proptest::array::uniform4(0..4u8),
        zeros in 0..3usize,
        tail in proptest::option::of("[ \t\n\x0b\x0c\r][ -~]{0,5}"),
    ) {
        // Split value into nparts parts as inet_aton reads them: leading parts are bytes, the
        // last part holds the remaining low bits.
        let b = value.to_be_bytes();
        let mut parts: Vec<u64> = b[..nparts - 1].iter().map(|&x| u64::from(x)).collect();
        let rest_bits = 8 * (5 - nparts) as u32;
        parts.push(u64::from(value) & ((1u64 << rest_bits) - 1));
        let text: Vec<String> = parts
            .iter()
            .zip(bases)
            .map(|(&v, base)| c_number(v, base, zeros))
            .collect();
        let text = text.join(".") + tail.as_deref().unwrap_or("");
        prop_assert_eq!(inet::inet_aton(&text), Ok(b), "{:?}", text);
    }

    #[test]
    fn facts_integer_is_the_big_endian_value(b in any::<[u8; 16]>()) {
        let text = inet::inet_ntop(AF_INET6, &b).unwrap();
        let facts = inet::address_facts(&text).unwrap();
        prop_assert_eq!(facts.integer, u128::from_be_bytes(b).to_string());
        prop_assert_eq!(facts.bytes, b.to_vec());
        prop_assert_eq!(facts.canonical, text);
    }

    #[test]
    fn subnet_is_consistent_v4(b in any::<[u8; 4]>(), prefix in 0..=32u32) {
        let addr = u32::from_be_bytes(b);
        let net = inet::subnet(&format!("{}/{prefix}", inet::inet_ntoa(&b).unwrap())).unwrap();
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        let ip = |v: u32| inet::inet_ntoa(&v.to_be_bytes()).unwrap();
        prop_assert_eq!(&net.network, &ip(addr & mask));
        prop_assert_eq!(&net.netmask, &ip(mask));
        prop_assert_eq!(net.broadcast.clone(), Some(ip(addr | !mask)));
        prop_assert_eq!(&net.size, &(1u64 << (32 - prefix)).to_string());
        let size = 1u64 << (32 - prefix);
        let hosts = match prefix { 32 => 1, 31 => 2, _ => size - 2 };
        prop_assert_eq!(&net.hosts, &hosts.to_string());
        // The same network written with its netmask.
        let via_mask = inet::subnet(&format!("{}/{}", ip(addr), ip(mask))).unwrap();
        prop_assert_eq!(via_mask, net);
    }

    #[test]
    fn subnet_is_consistent_v6(b in v6_bytes(), prefix in 0..=128u32) {
        let addr = u128::from_be_bytes(b);
        let text = inet::inet_ntop(AF_INET6, &b).unwrap();
        let net = inet::subnet(&format!("{text}/{prefix}")).unwrap();
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        let ip = |v: u128| inet::inet_ntop(AF_INET6, &v.to_be_bytes()).unwrap();
        prop_assert_eq!(&net.network, &ip(addr & mask));
        prop_assert_eq!(&net.last_host, &ip(addr | !mask));
        prop_assert_eq!(net.broadcast, None);
        if prefix > 0 {
            let size = 1u128 << (128 - prefix);
            prop_assert_eq!(&net.size, &size.to_string());
            let hosts = match prefix { 128 => 1, 127 => 2, _ => size - 1 };
            prop_assert_eq!(&net.hosts, &hosts.to_string());
        }
    }

    // Nothing panics, whatever the input: any text, any bytes, any family or port.

    #[test]
    fn text_functions_never_panic(s in any::<String>(), family in any::<i32>()) {
        let _ = inet::inet_aton(&s);
        let _ = inet::inet_pton(family, &s);
        let _ = inet::inet_pton(AF_INET, &s);
        let _ = inet::inet_pton(AF_INET6, &s);
        let _ = inet::address_facts(&s);
        let _ = inet::subnet(&s);
        let _ = inet::getservbyname(&s, None);
        let _ = inet::getservbyname("http", Some(&s));
        let _ = inet::getservbyport(80, Some(&s));
    }

    #[test]
    fn address_like_text_never_panics(s in "[0-9a-fA-FxX:./% \t\x0b\x00]{0,60}") {
        let _ = inet::inet_aton(&s);
        let _ = inet::inet_pton(AF_INET, &s);
        let _ = inet::inet_pton(AF_INET6, &s);
        let _ = inet::address_facts(&s);
        let _ = inet::subnet(&s);
    }

    #[test]
    fn byte_functions_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40), family in any::<i32>()) {
        let _ = inet::inet_ntoa(&b);
        let _ = inet::inet_ntop(family, &b);
        let _ = inet::inet_ntop(AF_INET, &b);
        let _ = inet::inet_ntop(AF_INET6, &b);
    }

    #[test]
    fn ports_never_panic(port in any::<i64>()) {
        let r = inet::getservbyport(port, None);
        if !(0..=65535).contains(&port) {
            prop_assert_eq!(r.unwrap_err().kind, inet::PyErrorKind::OverflowError);
        }
    }
}
