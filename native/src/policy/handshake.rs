//! The WebSocket handshake's headers (RFC 6455, 4.2.1): what makes a request an upgrade, and
//! what makes one ambiguous.

use axum::http::{header, HeaderMap, HeaderName};

/// True if a comma-separated header contains `token` (case-insensitive).
pub(super) fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether a request asks to become a WebSocket (`Upgrade: websocket`), well formed or not.
pub fn asks_for_websocket(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
}

/// The headers of a handshake that must appear at most once: with two, the relay and a proxy
/// in front of it could each believe a different one (RFC 6455 4.2.1 and 11.3.1). The same
/// goes for the relay's token in `Authorization` (RFC 9110, 11.6.2, has one set of
/// credentials).
const SINGLE_HEADERS: [HeaderName; 5] = [
    header::HOST,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::ORIGIN,
    header::AUTHORIZATION,
];

/// Why a handshake's headers are ambiguous or incomplete, if they are: a header of
/// [`SINGLE_HEADERS`] repeated, or a missing or invalid `Host` (RFC 9112, 3.2).
pub(super) fn ambiguity(headers: &HeaderMap) -> Option<String> {
    if let Some(name) = SINGLE_HEADERS
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return Some(format!(
            "more than one {} header: send it once",
            canonical_name(name)
        ));
    }
    match headers.get(header::HOST).map(|v| v.to_str()) {
        None => Some("missing Host header".into()),
        Some(Ok(host)) if is_plain_authority(host) => None,
        Some(_) => Some("invalid Host header: expected host[:port]".into()),
    }
}

/// `Sec-WebSocket-Key` for `sec-websocket-key`, for messages.
fn canonical_name(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|word| match word {
            "websocket" => "WebSocket".to_owned(),
            _ => {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A `Host` value the relay accepts and repeats in its Content-Security-Policy: a DNS name or
/// IPv4 address (letters, digits, `.`, `-`, `_`) or a bracketed IPv6 address, and an optional
/// decimal port. Anything else (userinfo, a list, spaces, `;`) is not one authority.
pub fn is_plain_authority(host: &str) -> bool {
    let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok();
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, port)) = rest.split_once(']') else {
                return false;
            };
            let v6_char = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
            (!v6.is_empty() && v6.chars().all(v6_char), port)
        }
        None => {
            let (name, port) = host.find(':').map_or((host, ""), |i| host.split_at(i));
            let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            (!name.is_empty() && name.chars().all(name_char), port)
        }
    };
    name_ok && (port.is_empty() || port.strip_prefix(':').is_some_and(port_ok))
}

/// A Sec-WebSocket-Key is 16 random bytes in base64 (RFC 6455, 4.2.1).
pub(super) fn is_valid_key(key: &[u8]) -> bool {
    use base64::Engine;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn websocket_keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"not base64 at all!!!!!!!"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZXh4eA=="));
    }

    #[test]
    fn plain_authorities() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "relay.example.org:443",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:1",
            "x",
        ] {
            assert!(is_plain_authority(ok), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "a:",
            "a:123456",
            "a:65536",
            "a:+80",
            "a:8x",
            "a:80:80",
            "user@a",
            "a, b",
            "a b",
            "a;script-src *",
            "a'",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:",
            "[v1.x]",
            "a/b",
        ] {
            assert!(!is_plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn repeated_or_missing_handshake_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(ambiguity(&h).as_deref(), Some("missing Host header"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://a"));
        assert_eq!(ambiguity(&h), None);
        for name in SINGLE_HEADERS {
            let mut twice = h.clone();
            twice.append(name.clone(), HeaderValue::from_static("x"));
            twice.append(name.clone(), HeaderValue::from_static("x"));
            let message = ambiguity(&twice).unwrap();
            assert!(
                message.contains(&canonical_name(&name)),
                "{name}: {message}"
            );
        }
        assert_eq!(
            canonical_name(&header::SEC_WEBSOCKET_KEY),
            "Sec-WebSocket-Key"
        );
        assert_eq!(canonical_name(&header::HOST), "Host");
        h.insert(header::HOST, HeaderValue::from_static("a b"));
        assert!(ambiguity(&h).unwrap().contains("invalid Host"));
    }
}
