//! The pure parts of the library, unit-tested natively: the target a socket names, and the
//! Python exception class for each way a connection fails or ends.

/// The largest datagram the relay sends to `host` (over IPv6 a UDP payload can be 20 bytes
/// longer; a name may resolve to IPv4, so it gets IPv4's limit).
pub fn max_datagram(host: &str) -> u32 {
    if host.bytes().any(|b| b == b':') {
        65_527
    } else {
        65_507
    }
}

/// `/ws?target=` for a socket to `host`:`port`: `HOST:PORT` for TCP, `udp:HOST:PORT` for UDP,
/// with an IPv6 literal in brackets as the relay wants it. Refuses what cannot be a target.
pub fn target(udp: bool, host: &str, port: f64) -> Result<String, String> {
    let host = host.trim_ascii();
    if host.is_empty() {
        return Err("the remote address is empty".to_owned());
    }
    // Bytes, not chars: Unicode's whitespace table would cost the module a kilobyte.
    if host
        .bytes()
        .any(|b| b <= b' ' || matches!(b, b'/' | b'?' | b'#' | b'&' | 0x7f))
    {
        return Err(["\"", host, "\" is not a host name or an IP address"].concat());
    }
    // No float in the message: formatting one would add kilobytes to the module.
    if !(port.fract() == 0.0 && (1.0..=65535.0).contains(&port)) {
        return Err("the port must be a whole number from 1 to 65535".to_owned());
    }
    let port = port as u16;
    let host = if host.contains(':') && !host.starts_with('[') {
        ["[", host, "]"].concat()
    } else {
        host.to_owned()
    };
    let prefix = if udp { "udp:" } else { "" };
    Ok([
        prefix,
        &host,
        ":",
        &sockrelay_session::closes::decimal(port),
    ]
    .concat())
}

/// How an attempt or a connection failed, as the Python layer raises it.
// The variants are Python's class names, `Error` and all.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    OSError,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Self::ConnectionRefusedError => "ConnectionRefusedError",
            Self::ConnectionResetError => "ConnectionResetError",
            Self::ConnectionAbortedError => "ConnectionAbortedError",
            Self::OSError => "OSError",
        }
    }
}

/// The class for a bridge that closed with `code` and the relay's `reason`: the relay says
/// `target unreachable: connection refused` when the target refused, `... reset` when it reset.
pub fn class_of_close(code: u16, reason: &str) -> Class {
    // A plain scan: `str::contains` brings a two-way searcher, a kilobyte of the module.
    let has = |word: &[u8]| {
        reason
            .as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    match code {
        _ if has(b"refused") => Class::ConnectionRefusedError,
        1011 | 1014 if has(b"reset") => Class::ConnectionResetError,
        1011 | 1014 => Class::OSError,
        // The relay went away, or the page's own end gave up (4000: its queue filled).
        1001 | 1006 | 4000 => Class::ConnectionAbortedError,
        _ => Class::ConnectionResetError,
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_datagram_may_be_20_bytes_longer_to_an_ipv6_address() {
        assert_eq!(max_datagram("127.0.0.1"), 65_507);
        assert_eq!(max_datagram("localhost"), 65_507);
        assert_eq!(max_datagram("::1"), 65_527);
        assert_eq!(max_datagram("[::1]"), 65_527);
    }

    #[test]
    fn targets_as_the_relay_takes_them() {
        assert_eq!(target(false, "127.0.0.1", 7.0).unwrap(), "127.0.0.1:7");
        assert_eq!(
            target(true, "localhost", 65432.0).unwrap(),
            "udp:localhost:65432"
        );
        assert_eq!(target(false, "::1", 80.0).unwrap(), "[::1]:80");
        assert_eq!(target(true, "[::1]", 80.0).unwrap(), "udp:[::1]:80");
        assert_eq!(target(false, " h ", 1.0).unwrap(), "h:1");
    }

    #[test]
    fn what_cannot_be_a_target_is_refused_by_name() {
        assert_eq!(
            target(false, "", 1.0).unwrap_err(),
            "the remote address is empty"
        );
        assert!(target(false, "a b", 1.0)
            .unwrap_err()
            .contains("not a host"));
        assert!(target(false, "h&token=x", 1.0).is_err());
        for port in [0.0, 65536.0, 1.5, f64::NAN, -1.0] {
            assert!(target(false, "h", port)
                .unwrap_err()
                .contains("from 1 to 65535"));
        }
    }

    #[test]
    fn python_classes_of_endings() {
        let refused = class_of_close(1011, "target unreachable: connection refused");
        assert_eq!(refused, Class::ConnectionRefusedError);
        assert_eq!(
            class_of_close(1011, "target error: connection reset by peer"),
            Class::ConnectionResetError
        );
        assert_eq!(
            class_of_close(1011, "target unreachable: timed out"),
            Class::OSError
        );
        assert_eq!(
            class_of_close(1001, "relay shutting down"),
            Class::ConnectionAbortedError
        );
        assert_eq!(class_of_close(1006, ""), Class::ConnectionAbortedError);
        assert_eq!(
            class_of_close(1009, "message too big"),
            Class::ConnectionResetError
        );
        assert_eq!(refused.name(), "ConnectionRefusedError");
    }
}
