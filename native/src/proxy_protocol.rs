//! The client's address as targets and logs see it: `--trusted-proxy` (which peers may tell the
//! relay who their client is, in `Forwarded` or `X-Forwarded-For`) and `--proxy-protocol` (which
//! targets are told, in a PROXY protocol version 2 header written before any other byte).
//!
//! Owns: parsing CIDRs and the forwarding headers, choosing the client's address, encoding the
//! header (haproxy's proxy-protocol.txt, section 2.2), and which bridges are sent it.
//!
//! Which bridges get the header is decided by where they go, not by how their target was
//! spelled: a target that opted in (a `--proxy-protocol` entry, a token line's `proxy-protocol`)
//! stands for the addresses it resolves to, or the socket file it names, and a bridge that
//! connects to one of them is sent the header however its request named it (another `--allow`
//! entry for the same address, another token). Otherwise a second spelling would reach the
//! target without the header, and the client's first bytes could be a PROXY header of its own.
//! An address of this host stands for every address of this host at its port, since a
//! listener on `0.0.0.0` or `[::]` takes them all (see [`Destinations::reached_by`]). What the
//! relay cannot see is not covered: an address that forwards to the target (NAT, a port a
//! container publishes) must not be allowed, or must opt in too.
//!
//! Leaves to others: parsing the opt-ins (the settings, [`crate::policy::tokens`]), connecting
//! ([`crate::bridge::target`]), which asks [`ProxyHeader::bytes_for`] once it knows the peer it
//! reached.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};

use crate::bridge::Dest;
use crate::config::Settings;
use crate::policy::target::{AllowList, Spec};
use crate::policy::tokens::TokenTargets;

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
    /// Where `--proxy-protocol`'s targets go.
    destinations: Destinations,
}

impl ProxyPolicy {
    /// The policy of `settings`. A `--proxy-protocol` target that is also an `--allow` entry
    /// stands for the addresses that entry resolved to at startup (the only ones its bridges
    /// reach); another is resolved here, once.
    pub async fn build(settings: &Settings, allow: &AllowList) -> anyhow::Result<ProxyPolicy> {
        let mut destinations = Destinations::default();
        for text in &settings.proxy_protocol {
            let spec = Spec::parse(text)
                .map_err(|e| anyhow::anyhow!("invalid --proxy-protocol {text:?}: {e}"))?;
            match &spec {
                Spec::Unix(path) => destinations.paths.push(PathBuf::from(path)),
                Spec::Tcp(net) => match allow.startup_addrs(&spec) {
                    Some(addrs) => destinations.add_addrs(addrs),
                    None => {
                        let addrs = crate::policy::target::resolve_with_system(net)
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!("cannot resolve --proxy-protocol {text:?}: {e}")
                            })?;
                        destinations.add_addrs(&addrs);
                    }
                },
                Spec::Udp(_) => {
                    anyhow::bail!("--proxy-protocol {text:?}: PROXY headers go to TCP and Unix socket targets only")
                }
            }
        }
        Ok(ProxyPolicy {
            trusted: settings
                .trusted_proxy
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            destinations,
        })
    }

    /// The PROXY header of a bridge to `dest`, with the destinations that opted in to it (the
    /// bridge sends it if it reaches one of them), or `None` when it can reach none. `named`:
    /// the request picked a token line that asked for the header. `client` is the bridge's client (see [`ProxyPolicy::client_of`]),
    /// `local` the address it reached the relay at (the accepted connection's own).
    pub async fn header_for(
        &self,
        dest: &Dest,
        named: bool,
        tokens: Option<&TokenTargets>,
        client: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> Option<ProxyHeader> {
        if let Dest::Udp(_) = dest {
            return None;
        }
        let mut to = self.destinations.for_dest(dest).await;
        if named {
            to.extend(Destinations::of(dest));
        }
        // The token lines as they are now: they change without a restart.
        if let Some(tokens) = tokens {
            for target in tokens.proxy_protocol_targets().await {
                let theirs = Destinations::of(&target.dest());
                to.extend(theirs.for_dest(dest).await);
            }
        }
        (!to.is_empty()).then_some(ProxyHeader { client, local, to })
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

/// The destinations of targets that opted in to PROXY headers: socket addresses, and the paths
/// of Unix sockets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    /// As [`canonical`] writes them (a v4-mapped address is the IPv4 one).
    addrs: Vec<SocketAddr>,
    paths: Vec<PathBuf>,
}

impl Destinations {
    /// Everywhere a bridge to `dest` may connect.
    fn of(dest: &Dest) -> Destinations {
        let mut d = Destinations::default();
        match dest {
            Dest::Tcp(t) => d.add_addrs(&t.addrs),
            Dest::Unix(u) => d.paths.push(u.path.clone()),
            // No header goes over UDP.
            Dest::Udp(_) => {}
        }
        d
    }

    fn add_addrs(&mut self, addrs: &[SocketAddr]) {
        for &addr in addrs {
            let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
            if !self.addrs.contains(&addr) {
                self.addrs.push(addr);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.paths.is_empty()
    }

    fn has_addr(&self, addr: SocketAddr) -> bool {
        self.addrs
            .contains(&SocketAddr::new(canonical(addr.ip()), addr.port()))
    }

    /// Whether a TCP connection to `peer`, whose own end is `own`, may have reached one of
    /// these: `peer` is one of them, or it is on this host and so is one of them at its port. A
    /// listener on this host may take connections to every address of the host (`0.0.0.0`,
    /// or `[::]`, which also takes IPv4), so `[::1]:5901`, `127.0.0.2:5901` or the host's own
    /// LAN address reach the server that opted in as `127.0.0.1:5901`. The relay cannot tell
    /// which listener answered, so it sends the header to all of them: a header too many breaks
    /// that connection, one too few would let the client write its own.
    fn reached_by(&self, peer: SocketAddr, own: SocketAddr) -> bool {
        if self.has_addr(peer) {
            return true;
        }
        let on_this_host = {
            let ip = canonical(peer.ip());
            ip.is_loopback() || ip.is_unspecified() || ip == canonical(own.ip())
        };
        on_this_host
            && self
                .addrs
                .iter()
                .any(|a| a.port() == peer.port() && is_this_hosts(a.ip()))
    }

    /// The TCP destinations of this set, with `dest`'s socket's path if it is the same file as
    /// one of this set's (another spelling of a path, a link, reaches the same listener).
    async fn for_dest(&self, dest: &Dest) -> Destinations {
        match dest {
            Dest::Tcp(_) => Destinations {
                addrs: self.addrs.clone(),
                paths: Vec::new(),
            },
            Dest::Unix(u) => {
                let mut d = Destinations::default();
                for path in &self.paths {
                    if same_socket(path, &u.path).await {
                        d.paths.push(u.path.clone());
                        break;
                    }
                }
                d
            }
            Dest::Udp(_) => Destinations::default(),
        }
    }

    fn extend(&mut self, other: Destinations) {
        self.add_addrs(&other.addrs);
        for path in other.paths {
            if !self.paths.contains(&path) {
                self.paths.push(path);
            }
        }
    }
}

/// Whether `ip` is an address of this host: a loopback or unspecified address (which reaches
/// the host itself), or one the relay can bind to.
fn is_this_hosts(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether two paths name one socket file: the same text, or the same inode on the same device.
async fn same_socket(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (tokio::fs::metadata(a).await, tokio::fs::metadata(b).await) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    false
}

/// A bridge's PROXY header, and the destinations that opted in to it: the bridge writes it once
/// it has connected, if the peer it reached is one of them.
#[derive(Debug, Clone)]
pub struct ProxyHeader {
    /// The bridge's client; unknown, the header is a LOCAL one (no addresses).
    client: Option<SocketAddr>,
    /// The relay's address the client connected to (the accepted connection's local address,
    /// not the listener's, which may be `0.0.0.0`).
    local: Option<SocketAddr>,
    /// The destinations that opted in: every TCP one, or the bridge's own socket's path.
    to: Destinations,
}

impl ProxyHeader {
    /// The header's bytes for a bridge connected as `reached` tells (a TCP target's address and
    /// the relay's own end of that connection; `None` for a Unix socket, whose file was checked
    /// at admission), or `None` if that destination did not opt in (see
    /// [`Destinations::reached_by`]).
    pub fn bytes_for(&self, reached: Option<(SocketAddr, SocketAddr)>) -> Option<Vec<u8>> {
        let opted = match reached {
            Some((peer, own)) => self.to.reached_by(peer, own),
            None => !self.to.paths.is_empty(),
        };
        if !opted {
            return None;
        }
        Some(match self.client {
            Some(client) => {
                let local = self
                    .local
                    .unwrap_or_else(|| SocketAddr::new(unspecified(client.ip()), 0));
                header_v2(client, local)
            }
            None => header_v2_local(),
        })
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
            destinations: Destinations::default(),
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
            destinations: Destinations::default(),
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

    async fn policy(proxy_protocol: &[&str]) -> ProxyPolicy {
        let mut settings = Settings::ephemeral();
        settings.proxy_protocol = proxy_protocol.iter().map(|&t| t.to_owned()).collect();
        let allow = AllowList::build(&[], &[]).await.unwrap();
        ProxyPolicy::build(&settings, &allow).await.unwrap()
    }

    fn tcp(name: &str, addrs: &[&str]) -> Dest {
        Dest::Tcp(crate::bridge::TcpAddr {
            name: name.to_owned(),
            addrs: addrs.iter().map(|a| addr(a)).collect(),
        })
    }

    /// Regression: the header went by the target's name, so another spelling of an opted-in
    /// address, or another address of the same host, reached it without one.
    #[tokio::test]
    async fn the_header_goes_to_an_opted_in_address_however_it_is_named() {
        let local_too = policy(&["127.0.0.1:5901", "198.51.100.7:5901"]).await;
        let (client, local) = (addr("192.0.2.1:40000"), addr("127.0.0.1:6080"));
        let header = Some(header_v2(client, local));
        // A bridge's connection: the target's address, and the relay's own end.
        let conn = |peer: &str, own: &str| Some((addr(peer), addr(own)));
        let named_otherwise = tcp("vnc.test:5901", &["[::1]:5901", "127.0.0.1:5901"]);
        let h = local_too
            .header_for(&named_otherwise, false, None, Some(client), Some(local))
            .await
            .unwrap();
        for (peer, own) in [
            ("127.0.0.1:5901", "127.0.0.1:50000"),
            ("[::ffff:127.0.0.1]:5901", "[::ffff:127.0.0.1]:50000"),
            ("198.51.100.7:5901", "192.0.2.2:50000"),
            // Every address of this host reaches a listener on `0.0.0.0` or `[::]`: the other
            // loopback addresses, `0.0.0.0` itself, and the host's own (the relay's end is the
            // address it connected to).
            ("[::1]:5901", "[::1]:50000"),
            ("127.0.0.2:5901", "127.0.0.1:50000"),
            ("0.0.0.0:5901", "127.0.0.1:50000"),
            ("203.0.113.9:5901", "203.0.113.9:50000"),
        ] {
            assert_eq!(h.bytes_for(conn(peer, own)), header, "{peer} from {own}");
        }
        // Another port, another host.
        for (peer, own) in [
            ("127.0.0.1:5902", "127.0.0.1:50000"),
            ("198.51.100.8:5901", "192.0.2.2:50000"),
        ] {
            assert_eq!(h.bytes_for(conn(peer, own)), None, "{peer} from {own}");
        }
        // An address of another host stands for itself only.
        let remote = policy(&["198.51.100.7:5901"]).await;
        let h = remote
            .header_for(&named_otherwise, false, None, Some(client), Some(local))
            .await
            .unwrap();
        assert_eq!(h.bytes_for(conn("127.0.0.1:5901", "127.0.0.1:50000")), None);
        let none = policy(&[]).await;
        assert!(none
            .header_for(&named_otherwise, false, None, Some(client), Some(local))
            .await
            .is_none());
        // Picked by a token line that asks for it: its own addresses, whatever the settings.
        let elsewhere = tcp("127.0.0.1:5902", &["127.0.0.1:5902"]);
        let h = none
            .header_for(&elsewhere, true, None, None, None)
            .await
            .unwrap();
        assert_eq!(
            h.bytes_for(conn("127.0.0.1:5902", "127.0.0.1:50000")),
            Some(header_v2_local())
        );
        // Without the local address (an embedder's connection), the destination is unknown.
        let h = none
            .header_for(&elsewhere, true, None, Some(client), None)
            .await
            .unwrap();
        assert_eq!(
            h.bytes_for(conn("127.0.0.1:5902", "127.0.0.1:50000")),
            Some(header_v2(client, addr("0.0.0.0:0")))
        );
        let udp = Dest::Udp(crate::bridge::UdpAddr {
            name: "udp:127.0.0.1:5901".into(),
            addrs: vec![addr("127.0.0.1:5901")],
            broadcast: false,
        });
        assert!(local_too
            .header_for(&udp, true, None, Some(client), Some(local))
            .await
            .is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_unix_socket_is_the_same_by_any_path_to_it() {
        let dir = std::env::temp_dir().join(format!("sockrelay-pp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (sock, link, other) = (dir.join("vnc.sock"), dir.join("link"), dir.join("b.sock"));
        let _listeners = (
            std::os::unix::net::UnixListener::bind(&sock).unwrap(),
            std::os::unix::net::UnixListener::bind(&other).unwrap(),
        );
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        let policy = policy(&[&format!("unix:{}", sock.display())]).await;
        let unix = |path: &Path| {
            Dest::Unix(crate::bridge::UnixAddr {
                name: format!("unix:{}", path.display()),
                path: path.to_owned(),
            })
        };
        for (path, opted) in [(&sock, true), (&link, true), (&other, false)] {
            let h = policy
                .header_for(&unix(path), false, None, None, None)
                .await;
            assert_eq!(
                h.and_then(|h| h.bytes_for(None)),
                opted.then(header_v2_local),
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
