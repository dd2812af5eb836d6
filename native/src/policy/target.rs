//! Which targets `/ws` may bridge to, and the strict parser for target strings: `HOST:PORT`
//! (TCP), `udp:HOST:PORT` and `unix:/path`.
//!
//! The relay is safe by default: only the built-in services and `--allow`ed targets can be
//! reached. A request names its target as text; it is allowed only if it is spelled exactly as an
//! allowed entry (so `0x7f.1`, `127.1`, `::ffff:127.0.0.1` or `localhost.` never match
//! `127.0.0.1`, and `unix:/run//x.sock` never matches `unix:/run/x.sock`), and a name is resolved
//! once, with every address it resolves to checked against what the entry resolved to at startup
//! (so a DNS answer that changes cannot redirect the relay). A UDP entry given by name never
//! reaches a broadcast or multicast address: only an entry that spells such an address itself
//! allows it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::bridge::target::{Dest, TcpAddr, UdpAddr, UnixAddr};

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// A DNS name, lowercased.
    Name(String),
}

/// A parsed `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub host: Host,
    pub port: u16,
}

/// Why a target string was rejected by the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("expected HOST:PORT")]
    MissingPort,
    #[error("port must be a decimal number from 1 to 65535")]
    BadPort,
    #[error("IPv6 addresses must be written in brackets, e.g. [::1]:80")]
    UnbracketedIpv6,
    #[error("not a valid IPv6 address (zone ids are not accepted)")]
    BadIpv6,
    #[error(
        "a link-local IPv6 address (fe80::/10, or multicast of interface or link scope such as \
         ff02::1) is reached only through an interface named with a zone id, which a target \
         cannot carry"
    )]
    LinkLocalIpv6,
    #[error("numeric host must be a dotted-quad IPv4 address such as 127.0.0.1")]
    NonCanonicalIpv4,
    #[error("not a valid host name")]
    BadHostName,
    #[error(
        "a Unix socket target is unix:/absolute/path: no empty, . or .. parts, no trailing /, \
         at most 107 bytes"
    )]
    BadUnixPath,
    #[error("unknown kind of target: write HOST:PORT (TCP), udp:HOST:PORT or unix:/path")]
    UnknownKind,
}

impl TargetSpec {
    /// Parses `HOST:PORT` strictly: IPv4 only as a dotted quad, IPv6 only in brackets without a
    /// zone, names only as LDH labels without a trailing dot, the port in plain decimal.
    pub fn parse(text: &str) -> Result<TargetSpec, TargetError> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(TargetError::BadIpv6)?;
            let port = after.strip_prefix(':').ok_or(TargetError::MissingPort)?;
            let ip: Ipv6Addr = inside.parse().map_err(|_| TargetError::BadIpv6)?;
            if needs_zone(&ip) {
                return Err(TargetError::LinkLocalIpv6);
            }
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = text.rsplit_once(':').ok_or(TargetError::MissingPort)?;
            if host.contains(':') {
                return Err(TargetError::UnbracketedIpv6);
            }
            (parse_host(host)?, port)
        };
        Ok(TargetSpec {
            host,
            port: parse_port(port)?,
        })
    }
}

fn parse_port(text: &str) -> Result<u16, TargetError> {
    // u16::from_str accepts a leading '+'; leading zeros are another spelling of the same port.
    if text.is_empty()
        || text.len() > 5
        || !text.bytes().all(|b| b.is_ascii_digit())
        || text.starts_with('0')
    {
        return Err(TargetError::BadPort);
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(TargetError::BadPort),
    }
}

/// Whether connecting to `ip` needs an interface (a zone id, `%eth0`): link-local unicast, and
/// multicast of interface-local or link-local scope (RFC 4291, 2.5.6 and 2.7). Without one the
/// kernel refuses every connection (EINVAL), so such an entry could never bridge.
fn needs_zone(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let link_local = first & 0xffc0 == 0xfe80;
    let scoped_multicast = first & 0xff00 == 0xff00 && matches!(first & 0x000f, 1 | 2);
    link_local || scoped_multicast
}

fn parse_host(text: &str) -> Result<Host, TargetError> {
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        // std accepts only the strict dotted-quad form, without leading zeros.
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    // Anything the system resolver would read as a numeric IPv4 address (127.1, 0x7f.1, 017.0.0.1,
    // 2130706433) is another spelling of an address: refuse it rather than match it loosely.
    if sockrelay_inet::inet_aton(text).is_ok() {
        return Err(TargetError::NonCanonicalIpv4);
    }
    if !is_host_name(text) {
        return Err(TargetError::BadHostName);
    }
    Ok(Host::Name(text.to_ascii_lowercase()))
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 1 to 63
/// characters each, 253 in all, no trailing dot, and a last label that is not all digits.
fn is_host_name(text: &str) -> bool {
    if text.is_empty() || text.len() > 253 {
        return false;
    }
    let labels_ok = text.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_not_numeric = text
        .rsplit('.')
        .next()
        .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && last_not_numeric
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_UNIX_PATH: usize = 107;

/// The protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

/// A parsed target string: `HOST:PORT` (TCP), `udp:HOST:PORT`, or `unix:/path` (a Unix stream
/// socket). `--allow`, `target=` and the config file take these same forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Tcp(TargetSpec),
    Udp(TargetSpec),
    /// An absolute path in one spelling only (see [`Spec::parse`]).
    Unix(String),
}

impl Spec {
    /// Parses a target string. `HOST:PORT` follows [`TargetSpec::parse`]; a Unix path must be
    /// absolute and written one way only: no empty, `.` or `..` parts and no trailing `/`, so
    /// that an allowed path matches only itself (symbolic links are the operator's to avoid),
    /// and short enough for a socket address.
    pub fn parse(text: &str) -> Result<Spec, TargetError> {
        if let Some(rest) = text.strip_prefix("udp:") {
            return TargetSpec::parse(rest).map(Spec::Udp);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            let plain = path.len() > 1
                && path.len() <= MAX_UNIX_PATH
                && path.starts_with('/')
                && !path.contains('\0')
                && path[1..]
                    .split('/')
                    .all(|part| !matches!(part, "" | "." | ".."));
            return if plain {
                Ok(Spec::Unix(path.to_owned()))
            } else {
                Err(TargetError::BadUnixPath)
            };
        }
        // `tcp:HOST:PORT`, `UDP:...`: a kind this relay does not spell that way, rather than an
        // IPv6 address without brackets.
        if let Some((kind, rest)) = text.split_once(':') {
            // Letters beyond hex digits: not the first group of an IPv6 address.
            if rest.contains(':')
                && kind.bytes().all(|b| b.is_ascii_alphabetic())
                && kind.bytes().any(|b| !b.is_ascii_hexdigit())
            {
                return Err(TargetError::UnknownKind);
            }
        }
        TargetSpec::parse(text).map(Spec::Tcp)
    }

    pub fn proto(&self) -> Proto {
        match self {
            Spec::Tcp(_) => Proto::Tcp,
            Spec::Udp(_) => Proto::Udp,
            Spec::Unix(_) => Proto::Unix,
        }
    }

    /// The host and port of a TCP or UDP target.
    fn net(&self) -> Option<&TargetSpec> {
        match self {
            Spec::Tcp(spec) | Spec::Udp(spec) => Some(spec),
            Spec::Unix(_) => None,
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Tcp(spec) => spec.fmt(f),
            Spec::Udp(spec) => write!(f, "udp:{spec}"),
            Spec::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

/// Whether a datagram sent to `ip` would reach more than one host: the limited broadcast
/// address, or a multicast group. (A subnet's directed broadcast address is refused by the
/// kernel itself: the relay's UDP sockets do not set `SO_BROADCAST` for entries given by name.)
pub fn is_broadcast_or_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_broadcast() || ip.is_multicast(),
        // An IPv4-mapped address (::ffff:239.1.2.3) is sent as IPv4 by a dual-stack socket.
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.is_broadcast() || v4.is_multicast(),
            None => ip.is_multicast(),
        },
    }
}

/// One allowed target, as listed by `GET /api/targets`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    /// The entry as `target=` takes it.
    pub target: String,
    pub proto: Proto,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    spec: Spec,
    /// What the entry resolved to at startup; a request's resolution must stay inside it.
    addrs: Vec<SocketAddr>,
}

/// Why a `/ws` target was refused (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid target {target:?}: {reason}")]
    Invalid { target: String, reason: TargetError },
    #[error("target {0:?} is not allowed by this relay (see GET /api/targets)")]
    NotAllowed(String),
    #[error("target {0:?} did not resolve to an allowed address")]
    Resolution(String),
}

/// The targets `/ws` may reach.
#[derive(Debug, Clone)]
pub struct AllowList {
    entries: Vec<Entry>,
}

impl AllowList {
    /// Builds the list from the built-in services (name, protocol, bound address) and `--allow`
    /// entries, resolving named entries once.
    pub async fn build(
        builtins: &[(&str, Proto, SocketAddr)],
        extra: &[String],
    ) -> anyhow::Result<AllowList> {
        AllowList::build_with(&SystemResolver, builtins, extra).await
    }

    /// [`AllowList::build`] with the resolver given (tests inject answers through it).
    async fn build_with<R: Resolve>(
        resolver: &R,
        builtins: &[(&str, Proto, SocketAddr)],
        extra: &[String],
    ) -> anyhow::Result<AllowList> {
        let mut entries = Vec::new();
        for &(name, proto, bound) in builtins {
            let addr = connectable(bound);
            let net = TargetSpec {
                host: Host::Ip(addr.ip()),
                port: addr.port(),
            };
            let spec = match proto {
                Proto::Udp => Spec::Udp(net),
                Proto::Tcp | Proto::Unix => Spec::Tcp(net),
            };
            entries.push(Entry {
                name: name.to_owned(),
                spec,
                addrs: vec![addr],
            });
        }
        for text in extra {
            let spec =
                Spec::parse(text).map_err(|e| anyhow::anyhow!("invalid --allow {text:?}: {e}"))?;
            let addrs = match &spec {
                Spec::Unix(_) => Vec::new(),
                Spec::Tcp(net) => resolve(resolver, net)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot resolve --allow {text:?}: {e}"))?,
                Spec::Udp(net) => {
                    let addrs = resolve(resolver, net)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot resolve --allow {text:?}: {e}"))?;
                    let named = matches!(net.host, Host::Name(_));
                    let (dropped, kept): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
                        .into_iter()
                        .partition(|a| named && is_broadcast_or_multicast(a.ip()));
                    if !dropped.is_empty() {
                        tracing::warn!(
                            allow = %text,
                            ?dropped,
                            "ignoring broadcast and multicast addresses of a name: allow each by its address"
                        );
                    }
                    if kept.is_empty() {
                        anyhow::bail!(
                            "--allow {text:?} resolves only to broadcast or multicast addresses: \
                             allow such an address by writing it, e.g. udp:{}",
                            dropped
                                .first()
                                .map_or_else(String::new, |a| SocketAddr::new(a.ip(), net.port)
                                    .to_string())
                        );
                    }
                    kept
                }
            };
            entries.push(Entry {
                name: spec.to_string(),
                spec,
                addrs,
            });
        }
        Ok(AllowList { entries })
    }

    /// The entries for `GET /api/targets`, built-ins first.
    pub fn list(&self) -> Vec<TargetInfo> {
        self.entries
            .iter()
            .map(|e| TargetInfo {
                name: e.name.clone(),
                target: e.spec.to_string(),
                proto: e.spec.proto(),
            })
            .collect()
    }

    /// What the entry spelled `spec` resolved to at startup: every address its bridges may
    /// reach (a request's resolution is kept inside it).
    pub fn startup_addrs(&self, spec: &Spec) -> Option<&[SocketAddr]> {
        self.entries
            .iter()
            .find(|e| &e.spec == spec)
            .map(|e| e.addrs.as_slice())
    }

    /// The default target: the first built-in (the echo service).
    pub fn default_target(&self) -> Dest {
        match self.entries.first() {
            // Named as the bridge's log line has always named it.
            Some(e) => e.dest(e.name.clone(), e.addrs.clone()),
            None => Dest::Tcp(TcpAddr {
                name: "echo".into(),
                addrs: Vec::new(),
            }),
        }
    }

    /// Checks a requested target (an entry's name such as `echo`, or a target string) and
    /// returns where to connect: the addresses in order, or the socket's path.
    pub async fn check(&self, requested: &str) -> Result<Dest, Refusal> {
        self.check_with(&SystemResolver, requested).await
    }

    /// [`AllowList::check`] with the resolver given (tests inject answers through it).
    async fn check_with<R: Resolve>(&self, resolver: &R, requested: &str) -> Result<Dest, Refusal> {
        if let Some(e) = self.entries.iter().find(|e| e.name == requested) {
            return Ok(e.dest(e.spec.to_string(), e.addrs.clone()));
        }
        let spec = Spec::parse(requested).map_err(|reason| Refusal::Invalid {
            target: requested.to_owned(),
            reason,
        })?;
        let entry = self
            .entries
            .iter()
            .find(|e| e.spec == spec)
            .ok_or_else(|| Refusal::NotAllowed(requested.to_owned()))?;
        let addrs = match spec.net() {
            None => Vec::new(),
            Some(TargetSpec {
                host: Host::Ip(_), ..
            }) => entry.addrs.clone(),
            Some(net) => {
                let now = resolve(resolver, net).await.map_err(|e| {
                    tracing::warn!(requested, error = %e, "target did not resolve");
                    Refusal::Resolution(requested.to_owned())
                })?;
                // Only addresses the entry already had at startup survive: a changed answer
                // (DNS rebinding) can drop addresses but never add one.
                let (kept, dropped): (Vec<SocketAddr>, Vec<SocketAddr>) =
                    now.into_iter().partition(|a| entry.addrs.contains(a));
                if !dropped.is_empty() {
                    tracing::warn!(
                        requested,
                        ?dropped,
                        "ignoring resolved addresses not seen at startup"
                    );
                }
                if kept.is_empty() {
                    return Err(Refusal::Resolution(requested.to_owned()));
                }
                kept
            }
        };
        Ok(entry.dest(spec.to_string(), addrs))
    }
}

impl Entry {
    /// Where this entry's bridges go, to `addrs` (all or some of the entry's own), named
    /// `name`.
    fn dest(&self, name: String, addrs: Vec<SocketAddr>) -> Dest {
        match &self.spec {
            Spec::Tcp(_) => Dest::Tcp(TcpAddr { name, addrs }),
            Spec::Udp(net) => Dest::Udp(UdpAddr {
                name,
                addrs,
                // An address written out is the operator's explicit choice, a broadcast one
                // included; a name's addresses were filtered at startup.
                broadcast: matches!(net.host, Host::Ip(_)),
            }),
            Spec::Unix(path) => Dest::Unix(UnixAddr {
                name,
                path: path.into(),
            }),
        }
    }
}

/// A listener bound to the unspecified address is reached through loopback.
fn connectable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

/// Looks a host name up. Production uses [`SystemResolver`]; the tests substitute canned answers
/// to reach the DNS-rebinding checks.
trait Resolve {
    fn lookup(
        &self,
        name: &str,
        port: u16,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send;
}

/// The system resolver, through tokio's `lookup_host` (one lookup per call).
struct SystemResolver;

impl Resolve for SystemResolver {
    async fn lookup(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((name, port)).await?.collect())
    }
}

/// The addresses of `spec` as the system resolves them (an address is itself), never none.
pub(crate) async fn resolve_with_system(spec: &TargetSpec) -> std::io::Result<Vec<SocketAddr>> {
    resolve(&SystemResolver, spec).await
}

async fn resolve<R: Resolve>(resolver: &R, spec: &TargetSpec) -> std::io::Result<Vec<SocketAddr>> {
    match &spec.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, spec.port)]),
        Host::Name(name) => {
            let addrs = resolver.lookup(name, spec.port).await?;
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no addresses",
                ));
            }
            Ok(addrs)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    macro_rules! parse_table {
        ($($name:ident: $input:expr => $expected:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(TargetSpec::parse($input).map(|s| s.to_string()), $expected);
            }
        )*};
    }

    parse_table! {
        v4: "127.0.0.1:65432" => Ok("127.0.0.1:65432".into()),
        v6: "[::1]:80" => Ok("[::1]:80".into()),
        v6_long: "[0:0:0:0:0:0:0:1]:80" => Ok("[::1]:80".into()),
        site_local_multicast: "[ff05::1:3]:547" => Ok("[ff05::1:3]:547".into()),
        next_to_link_local: "[fec0::1]:80" => Ok("[fec0::1]:80".into()),
        name_lowercased: "LocalHost:22" => Ok("localhost:22".into()),
        port_zero: "127.0.0.1:0" => Err(TargetError::BadPort),
        port_too_big: "127.0.0.1:65536" => Err(TargetError::BadPort),
        port_text: "127.0.0.1:http" => Err(TargetError::BadPort),
        port_plus: "127.0.0.1:+80" => Err(TargetError::BadPort),
        port_leading_zero: "127.0.0.1:080" => Err(TargetError::BadPort),
        port_empty: "127.0.0.1:" => Err(TargetError::BadPort),
        port_missing: "127.0.0.1" => Err(TargetError::MissingPort),
        short_v4: "127.1:80" => Err(TargetError::NonCanonicalIpv4),
        hex_v4: "0x7f.0.0.1:80" => Err(TargetError::NonCanonicalIpv4),
        octal_v4: "0177.0.0.1:80" => Err(TargetError::NonCanonicalIpv4),
        decimal_v4: "2130706433:80" => Err(TargetError::NonCanonicalIpv4),
        trailing_dot: "localhost.:80" => Err(TargetError::BadHostName),
        zone_id: "[fe80::1%eth0]:80" => Err(TargetError::BadIpv6),
        link_local_v6: "[fe80::1]:80" => Err(TargetError::LinkLocalIpv6),
        link_local_v6_upper_half: "[febf::1]:80" => Err(TargetError::LinkLocalIpv6),
        link_scope_multicast: "[ff02::1]:9" => Err(TargetError::LinkLocalIpv6),
        interface_scope_multicast: "[ff01::1]:9" => Err(TargetError::LinkLocalIpv6),
        transient_link_scope_multicast: "[ff12::1234]:9" => Err(TargetError::LinkLocalIpv6),
        unbracketed_v6: "::1:80" => Err(TargetError::UnbracketedIpv6),
        numeric_tld: "1.2.3.4.5:80" => Err(TargetError::BadHostName),
        space: "local host:80" => Err(TargetError::BadHostName),
        empty: "" => Err(TargetError::MissingPort),
    }

    macro_rules! spec_table {
        ($($name:ident: $input:expr => $expected:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(
                    Spec::parse($input).map(|s| (s.proto(), s.to_string())),
                    $expected
                );
            }
        )*};
    }

    spec_table! {
        spec_tcp: "127.0.0.1:80" => Ok((Proto::Tcp, "127.0.0.1:80".into())),
        spec_udp: "udp:127.0.0.1:53" => Ok((Proto::Udp, "udp:127.0.0.1:53".into())),
        spec_udp_v6: "udp:[0::1]:53" => Ok((Proto::Udp, "udp:[::1]:53".into())),
        spec_udp_name: "udp:DNS.example:53" => Ok((Proto::Udp, "udp:dns.example:53".into())),
        spec_udp_strict_host: "udp:127.1:53" => Err(TargetError::NonCanonicalIpv4),
        spec_udp_no_port: "udp:127.0.0.1" => Err(TargetError::MissingPort),
        spec_udp_upper_prefix: "UDP:127.0.0.1:53" => Err(TargetError::UnknownKind),
        spec_tcp_prefix_is_not_a_form: "tcp:127.0.0.1:53" => Err(TargetError::UnknownKind),
        spec_unbracketed_v6_still_said: "fe80::1:80" => Err(TargetError::UnbracketedIpv6),
        spec_unbracketed_hex_word_v6: "dead:beef::1:80" => Err(TargetError::UnbracketedIpv6),
        spec_unix: "unix:/run/app.sock" => Ok((Proto::Unix, "unix:/run/app.sock".into())),
        spec_unix_relative: "unix:run/app.sock" => Err(TargetError::BadUnixPath),
        spec_unix_empty: "unix:" => Err(TargetError::BadUnixPath),
        spec_unix_root: "unix:/" => Err(TargetError::BadUnixPath),
        spec_unix_double_slash: "unix:/run//app.sock" => Err(TargetError::BadUnixPath),
        spec_unix_dot: "unix:/run/./app.sock" => Err(TargetError::BadUnixPath),
        spec_unix_dot_dot: "unix:/run/../etc/app.sock" => Err(TargetError::BadUnixPath),
        spec_unix_trailing_slash: "unix:/run/app.sock/" => Err(TargetError::BadUnixPath),
        spec_unix_nul: "unix:/run/a\0b" => Err(TargetError::BadUnixPath),
        spec_unix_longest: &format!("unix:/{}", "a".repeat(106)) => Ok((Proto::Unix, format!("unix:/{}", "a".repeat(106)))),
        spec_unix_too_long: &format!("unix:/{}", "a".repeat(107)) => Err(TargetError::BadUnixPath),
    }

    #[tokio::test]
    async fn each_protocol_is_allowed_only_by_its_own_entries() {
        let list = AllowList::build(
            &[
                ("echo", Proto::Tcp, local(7000)),
                ("udp-echo", Proto::Udp, local(7000)),
            ],
            &[
                "udp:127.0.0.1:7001".into(),
                "unix:/run/app.sock".into(),
                "127.0.0.1:7002".into(),
            ],
        )
        .await
        .unwrap();
        let listed: Vec<(String, String, Proto)> = list
            .list()
            .into_iter()
            .map(|t| (t.name, t.target, t.proto))
            .collect();
        assert_eq!(
            listed,
            [
                ("echo".into(), "127.0.0.1:7000".into(), Proto::Tcp),
                ("udp-echo".into(), "udp:127.0.0.1:7000".into(), Proto::Udp),
                (
                    "udp:127.0.0.1:7001".into(),
                    "udp:127.0.0.1:7001".into(),
                    Proto::Udp
                ),
                (
                    "unix:/run/app.sock".into(),
                    "unix:/run/app.sock".into(),
                    Proto::Unix
                ),
                ("127.0.0.1:7002".into(), "127.0.0.1:7002".into(), Proto::Tcp),
            ]
        );
        let json = serde_json::to_value(&list.list()[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "udp-echo", "target": "udp:127.0.0.1:7000", "proto": "udp"})
        );
        assert!(
            matches!(list.check("udp-echo").await, Ok(Dest::Udp(u)) if u.addrs == [local(7000)])
        );
        assert!(matches!(
            list.check("udp:127.0.0.1:7000").await,
            Ok(Dest::Udp(_))
        ));
        assert!(matches!(list.check("udp:127.0.0.1:7001").await, Ok(Dest::Udp(u)) if u.broadcast));
        assert!(matches!(
            list.check("127.0.0.1:7000").await,
            Ok(Dest::Tcp(_))
        ));
        assert!(matches!(
            list.check("unix:/run/app.sock").await,
            Ok(Dest::Unix(u)) if u.path == std::path::Path::new("/run/app.sock")
        ));
        // The same address under another protocol is another target.
        for refused in ["127.0.0.1:7001", "udp:127.0.0.1:7002", "udp:127.0.0.1:7003"] {
            assert_eq!(
                list.check(refused).await.unwrap_err(),
                Refusal::NotAllowed(refused.into())
            );
        }
        // A path is allowed only as it was written.
        for refused in ["unix:/run/app.sock2", "unix:/run/app"] {
            assert_eq!(
                list.check(refused).await.unwrap_err(),
                Refusal::NotAllowed(refused.into())
            );
        }
        assert!(matches!(
            list.check("unix:/run//app.sock").await,
            Err(Refusal::Invalid {
                reason: TargetError::BadUnixPath,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn broadcast_and_multicast_are_allowed_only_when_written_out() {
        let list = AllowList::build(
            &[],
            &[
                "udp:255.255.255.255:9".into(),
                "udp:[ff05::1:3]:9".into(),
                "udp:127.0.0.1:9".into(),
            ],
        )
        .await
        .unwrap();
        assert!(list.check("udp:255.255.255.255:9").await.is_ok());
        assert!(list.check("udp:[ff05::1:3]:9").await.is_ok());
        for refused in [
            "udp:224.0.0.1:9",
            "udp:255.255.255.255:10",
            "udp:[ff05::1:4]:9",
        ] {
            assert_eq!(
                list.check(refused).await.unwrap_err(),
                Refusal::NotAllowed(refused.into())
            );
        }
        // A name's broadcast and multicast addresses are dropped at startup: the request can
        // never reach them, whatever the name resolves to then.
        let dns = Scripted::new(vec![
            Ok(vec![
                at("224.0.0.1", 9),
                at("127.0.0.1", 9),
                at("255.255.255.255", 9),
            ]),
            Ok(vec![at("224.0.0.1", 9), at("255.255.255.255", 9)]),
            Ok(vec![at("224.0.0.1", 9), at("127.0.0.1", 9)]),
        ]);
        let list = AllowList::build_with(&dns, &[], &["udp:group.test:9".into()])
            .await
            .unwrap();
        assert_eq!(
            list.check_with(&dns, "udp:GROUP.test:9").await.unwrap_err(),
            Refusal::Resolution("udp:GROUP.test:9".into())
        );
        let Ok(Dest::Udp(udp)) = list.check_with(&dns, "udp:GROUP.test:9").await else {
            panic!("not allowed");
        };
        assert_eq!(udp.addrs, [at("127.0.0.1", 9)]);
        assert!(!udp.broadcast, "no SO_BROADCAST for a name");
        // A name that resolves to nothing else is refused at startup, with the way out.
        let dns = Scripted::new(vec![Ok(vec![at("239.1.2.3", 9)])]);
        let err = AllowList::build_with(&dns, &[], &["udp:group.test:9".into()])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("only to broadcast or multicast"), "{err}");
        assert!(err.contains("udp:239.1.2.3:9"), "{err}");
        // A TCP entry has no such rule: TCP cannot broadcast.
        let dns = Scripted::new(vec![Ok(vec![at("127.0.0.1", 9)])]);
        assert!(AllowList::build_with(&dns, &[], &["group.test:9".into()])
            .await
            .is_ok());
    }

    /// A destination's name and addresses (none for a Unix socket).
    fn parts(dest: Dest) -> (String, Vec<SocketAddr>) {
        match dest {
            Dest::Tcp(t) => (t.name, t.addrs),
            Dest::Udp(u) => (u.name, u.addrs),
            Dest::Unix(u) => (u.name, Vec::new()),
        }
    }

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn builtins_and_allowed_entries_only() {
        let list = AllowList::build(
            &[("echo", Proto::Tcp, local(7000))],
            &["127.0.0.1:7001".into()],
        )
        .await
        .unwrap();
        assert_eq!(
            list.check("echo").await.map(parts).unwrap().1,
            vec![local(7000)]
        );
        assert_eq!(
            list.check("127.0.0.1:7000").await.map(parts).unwrap().1,
            vec![local(7000)]
        );
        assert_eq!(
            list.check("127.0.0.1:7001").await.map(parts).unwrap().1,
            vec![local(7001)]
        );
        assert!(matches!(
            list.check("127.0.0.1:7002").await,
            Err(Refusal::NotAllowed(_))
        ));
        assert!(matches!(
            list.check("[::ffff:127.0.0.1]:7000").await,
            Err(Refusal::NotAllowed(_))
        ));
        assert!(matches!(
            list.check("127.1:7000").await,
            Err(Refusal::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn named_entry_resolves_within_its_startup_addresses() {
        let list = AllowList::build(&[], &["localhost:7003".into()])
            .await
            .unwrap();
        let (_, addrs) = list.check("LOCALHOST:7003").await.map(parts).unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7003));
        assert!(matches!(
            list.check("localhost:7004").await,
            Err(Refusal::NotAllowed(_))
        ));
    }

    /// Answers lookups from a queue, one answer per call, and records the names asked for.
    struct Scripted {
        answers: std::sync::Mutex<std::collections::VecDeque<std::io::Result<Vec<SocketAddr>>>>,
        asked: std::sync::Mutex<Vec<(String, u16)>>,
    }

    impl Scripted {
        fn new(answers: Vec<std::io::Result<Vec<SocketAddr>>>) -> Scripted {
            Scripted {
                answers: std::sync::Mutex::new(answers.into()),
                asked: std::sync::Mutex::new(Vec::new()),
            }
        }

        fn asked(&self) -> Vec<(String, u16)> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl Resolve for Scripted {
        async fn lookup(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            self.asked.lock().unwrap().push((name.to_owned(), port));
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("more lookups than scripted answers")
        }
    }

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    /// An allow-list with `relay.test:7010` whose startup answer was `startup`, then `then` for
    /// the request's lookup; returns the check's result and the lookups made. A request spelled
    /// exactly as the entry's name (`relay.test:7010`) is answered from the startup addresses
    /// without a lookup, so these requests spell the name differently to reach the new lookup.
    async fn check_after(
        startup: Vec<SocketAddr>,
        then: std::io::Result<Vec<SocketAddr>>,
        requested: &str,
    ) -> (
        Result<(String, Vec<SocketAddr>), Refusal>,
        Vec<(String, u16)>,
    ) {
        let dns = Scripted::new(vec![Ok(startup), then]);
        let list = AllowList::build_with(
            &dns,
            &[("echo", Proto::Tcp, local(7000))],
            &["relay.test:7010".into()],
        )
        .await
        .unwrap();
        let result = list.check_with(&dns, requested).await.map(parts);
        (result, dns.asked())
    }

    #[tokio::test]
    async fn rebinding_to_a_new_address_is_refused() {
        let (result, asked) = check_after(
            vec![at("127.0.0.1", 7010)],
            Ok(vec![at("169.254.169.254", 7010)]),
            "RELAY.test:7010",
        )
        .await;
        let refusal = result.unwrap_err();
        assert_eq!(refusal, Refusal::Resolution("RELAY.test:7010".into()));
        assert_eq!(
            refusal.to_string(),
            r#"target "RELAY.test:7010" did not resolve to an allowed address"#
        );
        // Resolved once at startup and once for the request, nothing more.
        assert_eq!(
            asked,
            vec![("relay.test".into(), 7010), ("relay.test".into(), 7010)]
        );
    }

    #[tokio::test]
    async fn rebinding_keeps_only_the_startup_addresses() {
        let (result, _) = check_after(
            vec![at("127.0.0.1", 7010)],
            Ok(vec![
                at("10.0.0.1", 7010),
                at("127.0.0.1", 7010),
                at("::1", 7010),
            ]),
            "RELAY.test:7010",
        )
        .await;
        assert_eq!(
            result.unwrap(),
            ("relay.test:7010".into(), vec![at("127.0.0.1", 7010)])
        );
    }

    #[tokio::test]
    async fn an_answer_within_the_startup_answer_is_accepted() {
        let (result, _) = check_after(
            vec![at("127.0.0.1", 7010), at("::1", 7010)],
            Ok(vec![at("::1", 7010)]),
            "Relay.Test:7010",
        )
        .await;
        assert_eq!(
            result.unwrap(),
            ("relay.test:7010".into(), vec![at("::1", 7010)])
        );
    }

    #[tokio::test]
    async fn an_empty_or_failed_answer_is_refused() {
        let (result, _) =
            check_after(vec![at("127.0.0.1", 7010)], Ok(vec![]), "RELAY.test:7010").await;
        assert_eq!(
            result.unwrap_err(),
            Refusal::Resolution("RELAY.test:7010".into())
        );
        let failed = Err(std::io::Error::other("SERVFAIL"));
        let (result, _) = check_after(vec![at("127.0.0.1", 7010)], failed, "RELAY.test:7010").await;
        assert_eq!(
            result.unwrap_err(),
            Refusal::Resolution("RELAY.test:7010".into())
        );
    }

    #[tokio::test]
    async fn an_empty_answer_at_startup_fails_the_build() {
        let dns = Scripted::new(vec![Ok(vec![])]);
        let err = AllowList::build_with(&dns, &[], &["relay.test:7010".into()])
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"cannot resolve --allow "relay.test:7010""#),
            "{err}"
        );
    }

    #[tokio::test]
    async fn addresses_and_entry_names_are_not_resolved_again() {
        // No answers scripted: any lookup would panic.
        let dns = Scripted::new(vec![]);
        let list = AllowList::build_with(
            &dns,
            &[("echo", Proto::Tcp, local(7000))],
            &["127.0.0.1:7001".into()],
        )
        .await
        .unwrap();
        assert_eq!(
            list.check_with(&dns, "127.0.0.1:7001")
                .await
                .map(parts)
                .unwrap()
                .1,
            vec![local(7001)]
        );
        assert_eq!(
            list.check_with(&dns, "echo").await.map(parts).unwrap().1,
            vec![local(7000)]
        );
        assert!(dns.asked().is_empty());
    }

    #[test]
    fn broadcast_and_multicast_include_their_ipv4_mapped_forms() {
        for ip in [
            "255.255.255.255",
            "239.1.2.3",
            "ff02::1",
            "::ffff:239.1.2.3",
            "::ffff:255.255.255.255",
        ] {
            assert!(is_broadcast_or_multicast(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "2001:db8::1"] {
            assert!(!is_broadcast_or_multicast(ip.parse().unwrap()), "{ip}");
        }
    }
}
