//! The converter panel's answers, as rows of label and value: each Python call written as
//! Python would (`inet_aton('127.1')` and its `repr`), then the facts about the address
//! (dotted or colon text, integer, hex, binary, Python bytes literal, kind) and subnet facts.
//! All of it from [`crate::inet`], the code behind the converter module and the native CLI.

use crate::inet::{self, AddressFacts, PyError, AF_INET, AF_INET6};

use super::bytes::parse_packed;

/// One line of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// A Python call (`inet_aton('127.1')`), or the name of a fact.
    pub label: String,
    /// Whether `label` is code (a call) rather than words.
    pub call: bool,
    /// The result as Python's `repr`, or the error as Python prints it (`OSError: ...`).
    pub value: Result<String, String>,
}

fn call(label: String, value: Result<String, PyError>) -> Row {
    Row {
        label,
        call: true,
        value: value.map_err(|error| error.to_string()),
    }
}

fn fact(label: &str, value: impl Into<String>) -> Row {
    Row {
        label: label.to_owned(),
        call: false,
        value: Ok(value.into()),
    }
}

fn family_name(family: i32) -> &'static str {
    if family == AF_INET6 {
        "AF_INET6"
    } else {
        "AF_INET"
    }
}

/// Answers for typed address text: the parsers' results and the address facts; for a network
/// (`10.0.0.0/8`, `192.168.1.77/255.255.255.0`), the subnet and the facts of its address.
pub fn address_rows(input: &str) -> Vec<Row> {
    if input.is_empty() {
        return Vec::new();
    }
    let arg = inet::python_str_repr(input);
    let mut rows = Vec::new();
    if let Some((address, _)) = input.split_once('/') {
        match inet::subnet(input) {
            Ok(net) => {
                rows.push(fact("network", format!("{}/{}", net.network, net.prefix)));
                rows.push(fact("netmask", net.netmask));
                rows.push(fact("first host", net.first_host));
                rows.push(fact("last host", net.last_host));
                if let Some(broadcast) = net.broadcast {
                    rows.push(fact("broadcast", broadcast));
                }
                rows.push(fact("addresses", net.size));
                rows.push(fact("usable hosts", net.hosts));
            }
            Err(error) => rows.push(call(format!("ip_network({arg}, strict=False)"), Err(error))),
        }
        if let Ok(facts) = inet::address_facts(address) {
            push_facts(&mut rows, &facts);
        }
        return rows;
    }

    let aton = inet::inet_aton(input);
    rows.push(call(
        format!("inet_aton({arg})"),
        aton.clone().map(|b| inet::python_bytes_repr(&b)),
    ));
    for family in [AF_INET, AF_INET6] {
        rows.push(call(
            format!("inet_pton({}, {arg})", family_name(family)),
            inet::inet_pton(family, input).map(|b| inet::python_bytes_repr(&b)),
        ));
    }
    match inet::address_facts(input) {
        Ok(facts) => push_facts(&mut rows, &facts),
        // Only the permissive parser read it (`127.1`, `0x7f000001`, `2130706433`): the facts
        // are those of the address it read.
        Err(_) => {
            if let Ok(packed) = aton {
                let dotted = inet::inet_ntoa(&packed).unwrap_or_default();
                rows.push(fact("inet_aton reads it as", dotted.clone()));
                if let Ok(facts) = inet::address_facts(&dotted) {
                    push_facts(&mut rows, &facts);
                }
            }
        }
    }
    rows
}

fn push_facts(rows: &mut Vec<Row>, facts: &AddressFacts) {
    rows.push(fact(
        "family",
        format!("{} ({})", family_name(facts.family), facts.family),
    ));
    rows.push(fact(
        if facts.family == AF_INET {
            "dotted"
        } else {
            "text (inet_ntop)"
        },
        facts.canonical.clone(),
    ));
    rows.push(fact("integer", facts.integer.clone()));
    rows.push(fact("hex", facts.hex.clone()));
    rows.push(fact("binary", facts.binary.clone()));
    rows.push(fact("Python bytes", facts.python_bytes.clone()));
    rows.push(fact("kind", facts.kind.as_str()));
}

/// Answers for typed packed bytes (hex or a Python bytes literal): `inet_ntoa` and `inet_ntop`
/// of them, and the facts of the address they hold.
pub fn packed_rows(input: &str) -> Vec<Row> {
    if input.trim().is_empty() {
        return Vec::new();
    }
    let bytes = match parse_packed(input) {
        Ok(bytes) => bytes,
        Err(error) => {
            return vec![Row {
                label: "bytes".to_owned(),
                call: false,
                value: Err(error),
            }]
        }
    };
    let arg = inet::python_bytes_repr(&bytes);
    let mut rows = vec![fact("bytes", format!("{arg} ({} bytes)", bytes.len()))];
    rows.push(call(
        format!("inet_ntoa({arg})"),
        inet::inet_ntoa(&bytes).map(|s| inet::python_str_repr(&s)),
    ));
    let mut text = None;
    for family in [AF_INET, AF_INET6] {
        let result = inet::inet_ntop(family, &bytes);
        if let Ok(t) = &result {
            text = Some(t.clone());
        }
        rows.push(call(
            format!("inet_ntop({}, {arg})", family_name(family)),
            result.map(|s| inet::python_str_repr(&s)),
        ));
    }
    if let Some(facts) = text.and_then(|t| inet::address_facts(&t).ok()) {
        push_facts(&mut rows, &facts);
    }
    rows
}

/// Answers for a typed service name or port number, with an optional protocol.
pub fn service_rows(input: &str, proto: Option<&str>) -> Vec<Row> {
    if input.is_empty() {
        return Vec::new();
    }
    let proto_arg = proto
        .map(|p| format!(", {}", inet::python_str_repr(p)))
        .unwrap_or_default();
    let row = match parse_port(input) {
        Some(port) => call(
            format!("getservbyport({port}{proto_arg})"),
            inet::getservbyport(port, proto).map(inet::python_str_repr),
        ),
        None => call(
            format!("getservbyname({}{proto_arg})", inet::python_str_repr(input)),
            inet::getservbyname(input, proto).map(|port| port.to_string()),
        ),
    };
    vec![row]
}

/// A typed integer, as Python's `int()` of the digits would be; saturated beyond `i64`, where
/// `getservbyport` overflows anyway.
fn parse_port(input: &str) -> Option<i64> {
    let (negative, digits) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().fold(0i64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'))
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn find<'a>(rows: &'a [Row], label: &str) -> &'a Result<String, String> {
        &rows
            .iter()
            .find(|r| r.label == label)
            .unwrap_or_else(|| panic!("no {label} in {rows:?}"))
            .value
    }

    #[test]
    fn an_address_in_every_representation() {
        let rows = address_rows("192.168.1.190");
        assert_eq!(
            find(&rows, "inet_aton('192.168.1.190')"),
            &Ok("b'\\xc0\\xa8\\x01\\xbe'".to_owned())
        );
        assert_eq!(
            find(&rows, "inet_pton(AF_INET6, '192.168.1.190')"),
            &Err("OSError: illegal IP address string passed to inet_pton".to_owned())
        );
        assert_eq!(find(&rows, "dotted"), &Ok("192.168.1.190".to_owned()));
        assert_eq!(find(&rows, "integer"), &Ok("3232235966".to_owned()));
        assert_eq!(find(&rows, "hex"), &Ok("0xc0a801be".to_owned()));
        assert_eq!(
            find(&rows, "binary"),
            &Ok("11000000.10101000.00000001.10111110".to_owned())
        );
        assert_eq!(find(&rows, "kind"), &Ok("private".to_owned()));
    }

    #[test]
    fn what_only_inet_aton_reads_gets_the_facts_of_what_it_read() {
        let rows = address_rows("127.1");
        assert_eq!(
            find(&rows, "inet_pton(AF_INET, '127.1')"),
            &Err("OSError: illegal IP address string passed to inet_pton".to_owned())
        );
        assert_eq!(
            find(&rows, "inet_aton reads it as"),
            &Ok("127.0.0.1".to_owned())
        );
        assert_eq!(find(&rows, "kind"), &Ok("loopback".to_owned()));
        let rows = address_rows("3232235966");
        assert_eq!(find(&rows, "dotted"), &Ok("192.168.1.190".to_owned()));
    }

    #[test]
    fn ipv6_and_networks() {
        let rows = address_rows("::1");
        assert_eq!(find(&rows, "family"), &Ok("AF_INET6 (10)".to_owned()));
        assert_eq!(find(&rows, "kind"), &Ok("loopback".to_owned()));
        let rows = address_rows("192.168.1.77/24");
        assert_eq!(find(&rows, "network"), &Ok("192.168.1.0/24".to_owned()));
        assert_eq!(find(&rows, "broadcast"), &Ok("192.168.1.255".to_owned()));
        assert_eq!(find(&rows, "usable hosts"), &Ok("254".to_owned()));
        assert_eq!(find(&rows, "dotted"), &Ok("192.168.1.77".to_owned()));
        let rows = address_rows("10.0.0.0/33");
        assert!(find(&rows, "ip_network('10.0.0.0/33', strict=False)")
            .as_ref()
            .unwrap_err()
            .starts_with("ValueError: "));
        assert!(address_rows("").is_empty());
    }

    #[test]
    fn packed_bytes_back_to_text() {
        let rows = packed_rows("b'\\x7f\\x00\\x00\\x01'");
        assert_eq!(
            find(&rows, "inet_ntoa(b'\\x7f\\x00\\x00\\x01')"),
            &Ok("'127.0.0.1'".to_owned())
        );
        assert!(find(&rows, "inet_ntop(AF_INET6, b'\\x7f\\x00\\x00\\x01')")
            .as_ref()
            .unwrap_err()
            .starts_with("ValueError: "));
        assert_eq!(find(&rows, "kind"), &Ok("loopback".to_owned()));
        let rows = packed_rows("20010db8 00000000 00000000 00000001");
        assert_eq!(
            find(&rows, "inet_ntop(AF_INET6, b' \\x01\\r\\xb8\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01')"),
            &Ok("'2001:db8::1'".to_owned())
        );
        let rows = packed_rows("7g");
        assert!(find(&rows, "bytes").is_err());
    }

    #[test]
    fn services_by_name_and_port() {
        assert_eq!(
            service_rows("http", Some("tcp")),
            vec![Row {
                label: "getservbyname('http', 'tcp')".into(),
                call: true,
                value: Ok("80".into())
            }]
        );
        assert_eq!(
            find(&service_rows("3306", None), "getservbyport(3306)"),
            &Ok("'mysql'".to_owned())
        );
        assert_eq!(
            find(&service_rows("70000", None), "getservbyport(70000)"),
            &Err("OverflowError: getservbyport: port must be 0-65535.".to_owned())
        );
        assert_eq!(
            find(&service_rows("nope", None), "getservbyname('nope')"),
            &Err("OSError: service/proto not found".to_owned())
        );
    }
}
