//! The client's address as targets and logs see it: `--trusted-proxy` (which peers may tell the
//! relay who their client is, in `Forwarded` or `X-Forwarded-For`) and `--proxy-protocol` (which
//! targets are told, in a PROXY protocol version 2 header written before any other byte).
//!
//! Owns: parsing CIDRs and the forwarding headers, choosing the client's address, encoding the
//! header (haproxy's proxy-protocol.txt, section 2.2), and the [`Dial`] wrapper that writes it.
//!
//! Leaves to others: whether a target asked for the header (its `--allow` entry or token line,
//! [`crate::policy`]), connecting ([`crate::bridge::target`]).

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

use crate::config::Settings;

/// An address block, such as `10.0.0.0/8` or `::1/128` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| "expected an IP address or a block such as 10.0.0.0/8".to_owned())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max && !len.starts_with('+'))
                .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { net, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.len),
            _ => false,
        }
    }
}

/// An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`; it is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let (bytes, bits) = ((len / 8) as usize, len % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || (a[bytes] ^ b[bytes]) >> (8 - bits) == 0
}

/// Checks a `--trusted-proxy` value.
pub fn validate_cidr(text: &str) -> Result<(), String> {
    Cidr::parse(text).map(drop)
}

/// Checks a `--proxy-protocol` target: a TCP or Unix socket target string.
pub fn validate_target(text: &str) -> Result<(), String> {
    match crate::target::Spec::parse(text).map_err(|e| e.to_string())? {
        crate::target::Spec::Udp(_) => {
            Err("PROXY headers go to TCP and Unix socket targets only".into())
        }
        _ => Ok(()),
    }
}

/// What the relay does about client addresses, from the settings.
#[derive(Debug, Clone, Default)]
pub struct ProxyPolicy {
    /// `--trusted-proxy`.
    trusted: Vec<Cidr>,
    /// `--proxy-protocol`, each target as the allow-list names it.
    targets: Vec<String>,
    /// The relay's listening address: the destination a PROXY header names.
    relay: Option<SocketAddr>,
}

impl ProxyPolicy {
    pub fn new(settings: &Settings) -> ProxyPolicy {
        ProxyPolicy {
            trusted: settings
                .trusted_proxy
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            targets: settings
                .proxy_protocol
                .iter()
                .filter_map(|t| crate::target::Spec::parse(t).ok())
                .map(|spec| spec.to_string())
                .collect(),
            relay: None,
        }
    }

    /// The same, with the relay's listening address for the headers.
    pub fn listening_on(self, relay: SocketAddr) -> ProxyPolicy {
        ProxyPolicy {
            relay: Some(relay),
            ..self
        }
    }

    /// The PROXY header for a bridge of `client` (see [`ProxyPolicy::client_of`]); without
    /// a client address, a LOCAL header, which tells the target that none is known.
    pub fn header(&self, client: Option<SocketAddr>) -> Vec<u8> {
        match client {
            Some(client) => {
                let relay = self
                    .relay
                    .unwrap_or_else(|| SocketAddr::new(unspecified(client.ip()), 0));
                header_v2(client, relay)
            }
            None => header_v2_local(),
        }
    }

    /// The `--proxy-protocol` targets, as the allow-list names them.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client of a request that arrived from `peer`. Only a trusted proxy's headers count:
    /// from anyone else they are ignored, since anyone can write them. The addresses they list
    /// are read from the right (the hop nearest the relay), skipping trusted proxies; the first
    /// other one is the client. `X-Forwarded-For` wins over `Forwarded` (RFC 7239): it is the one
    /// proxies write by default (nginx's `$proxy_add_x_forwarded_for`, HAProxy's `option
    /// forwardfor`), and such a proxy passes a client's own `Forwarded` through untouched, so
    /// reading that first would let any client name itself. A hop that is not an address
    /// (`unknown`, an obfuscated name) ends the walk at the proxy after it. The port is the one
    /// `Forwarded` gives, or 0 where the headers give none.
    pub fn client_of(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let hops = x_forwarded_for_hops(headers).or_else(|| forwarded_hops(headers));
        let Some(hops) = hops else {
            return peer;
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(addr) => {
                    client = *addr;
                    if !self.trusts(addr.ip()) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The `for=` values of every `Forwarded` header, in order; `None` without the header.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<SocketAddr>>> {
    let mut hops = Vec::new();
    let mut seen = false;
    for value in headers.get_all(header::FORWARDED) {
        seen = true;
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .map(|(_, node)| node.trim().trim_matches('"'));
            hops.push(node.and_then(parse_node));
        }
    }
    seen.then_some(hops)
}

/// The addresses of every `X-Forwarded-For` header, in order; `None` without the header.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<Option<SocketAddr>>> {
    let mut hops = Vec::new();
    let mut seen = false;
    for value in headers.get_all("x-forwarded-for") {
        seen = true;
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',').map(|hop| parse_node(hop.trim()))),
            Err(_) => hops.push(None),
        }
    }
    seen.then_some(hops)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]`, `[2001:db8::1]:5678` or a bare IPv6 address.
fn parse_node(node: &str) -> Option<SocketAddr> {
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(SocketAddr::new(canonical(addr.ip()), addr.port()));
    }
    let bare = node
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(node);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(canonical(ip), 0))
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// A PROXY protocol v2 header with command LOCAL and no address (AF_UNSPEC).
pub fn header_v2_local() -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&[0x20, 0x00, 0, 0]);
    out
}

/// The PROXY protocol version 2 signature.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A PROXY protocol v2 header for a TCP connection from `client` to `relay` (command PROXY).
/// Addresses of different families are both written as IPv6, the IPv4 one mapped.
pub fn header_v2(client: SocketAddr, relay: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&SIGNATURE);
    // Version 2, command PROXY.
    out.push(0x21);
    let (src, dst) = (canonical(client.ip()), canonical(relay.ip()));
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            // AF_INET, STREAM.
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&dst.octets());
        }
        _ => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            // AF_INET6, STREAM.
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(src).octets());
            out.extend_from_slice(&v6(dst).octets());
        }
    }
    out.extend_from_slice(&client.port().to_be_bytes());
    out.extend_from_slice(&relay.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::Ipv6Addr;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let c = Cidr::parse("127.0.0.1").unwrap();
        assert!(c.contains("127.0.0.1".parse().unwrap()));
        assert!(!c.contains("127.0.0.2".parse().unwrap()));
        let c = Cidr::parse("2001:db8::/33").unwrap();
        assert!(c.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!c.contains("2001:db8:8000::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "10/8",
            "::1/129",
            "10.0.0.0/+8",
            "host/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let policy = ProxyPolicy {
            trusted: vec![Cidr::parse("127.0.0.1").unwrap()],
            targets: Vec::new(),
            relay: None,
        };
        let forged = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            policy.client_of(addr("192.0.2.1:5000"), &forged),
            addr("192.0.2.1:5000")
        );
        assert_eq!(
            policy.client_of(addr("127.0.0.1:5000"), &forged),
            addr("203.0.113.7:0")
        );
        assert_eq!(
            ProxyPolicy::default().client_of(addr("127.0.0.1:5000"), &forged),
            addr("127.0.0.1:5000")
        );
    }

    #[test]
    fn the_walk_starts_at_the_nearest_hop() {
        let policy = ProxyPolicy {
            trusted: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            targets: Vec::new(),
            relay: None,
        };
        let peer = addr("10.0.0.1:1");
        // A client can prepend anything: the hop the trusted proxy added is the last.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(policy.client_of(peer, &h), addr("203.0.113.7:0"));
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(policy.client_of(peer, &h), addr("203.0.113.7:0"));
        let h = headers(&[
            (
                "forwarded",
                r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        // Regression: Forwarded won, and nginx (deploy/nginx.conf) appends to X-Forwarded-For
        // but passes a client's Forwarded through: any client could name itself.
        assert_eq!(policy.client_of(peer, &h), addr("198.51.100.1:0"));
        let h = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#,
        )]);
        assert_eq!(policy.client_of(peer, &h), addr("[2001:db8::7]:4711"));
        let h = headers(&[("forwarded", "for=198.51.100.2:8080")]);
        assert_eq!(policy.client_of(peer, &h), addr("198.51.100.2:8080"));
        // `unknown` stops the walk at the proxy that wrote it.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.9")]);
        assert_eq!(policy.client_of(peer, &h), addr("10.0.0.9:0"));
        assert_eq!(policy.client_of(peer, &HeaderMap::new()), peer);
    }

    #[test]
    fn header_v2_layout() {
        let h = header_v2(addr("192.0.2.1:40000"), addr("127.0.0.1:6080"));
        let mut expected = SIGNATURE.to_vec();
        expected.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 0, 2, 1, 127, 0, 0, 1]);
        expected.extend_from_slice(&40000u16.to_be_bytes());
        expected.extend_from_slice(&6080u16.to_be_bytes());
        assert_eq!(h, expected);
        let h = header_v2(addr("[2001:db8::1]:1"), addr("127.0.0.1:2"));
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(
            &h[32..48],
            &"::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(header_v2_local()[12..], [0x20, 0, 0, 0]);
    }
}
