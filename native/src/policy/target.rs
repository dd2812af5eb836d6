//! Which TCP targets `/ws` may bridge to, and the strict parser for `HOST:PORT`.
//!
//! The relay is safe by default: only the built-in services and `--allow`ed targets can be
//! reached. A request names its target as text; it is allowed only if it is spelled exactly as an
//! allowed entry (so `0x7f.1`, `127.1`, `::ffff:127.0.0.1` or `localhost.` never match
//! `127.0.0.1`), and a name is resolved once, with every address it resolves to checked against
//! what the entry resolved to at startup (so a DNS answer that changes cannot redirect the relay).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

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
    #[error("numeric host must be a dotted-quad IPv4 address such as 127.0.0.1")]
    NonCanonicalIpv4,
    #[error("not a valid host name")]
    BadHostName,
}

impl TargetSpec {
    /// Parses `HOST:PORT` strictly: IPv4 only as a dotted quad, IPv6 only in brackets without a
    /// zone, names only as LDH labels without a trailing dot, the port in plain decimal.
    pub fn parse(text: &str) -> Result<TargetSpec, TargetError> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(TargetError::BadIpv6)?;
            let port = after.strip_prefix(':').ok_or(TargetError::MissingPort)?;
            let ip: Ipv6Addr = inside.parse().map_err(|_| TargetError::BadIpv6)?;
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

/// One allowed target, as listed by `GET /api/targets`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub target: String,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    spec: TargetSpec,
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
    /// Builds the list from the built-in services (name, bound address) and `--allow` entries,
    /// resolving named entries once.
    pub async fn build(
        builtins: &[(&str, SocketAddr)],
        extra: &[String],
    ) -> anyhow::Result<AllowList> {
        AllowList::build_with(&SystemResolver, builtins, extra).await
    }

    /// [`AllowList::build`] with the resolver given (tests inject answers through it).
    async fn build_with<R: Resolve>(
        resolver: &R,
        builtins: &[(&str, SocketAddr)],
        extra: &[String],
    ) -> anyhow::Result<AllowList> {
        let mut entries = Vec::new();
        for &(name, bound) in builtins {
            let addr = connectable(bound);
            entries.push(Entry {
                name: name.to_owned(),
                spec: TargetSpec {
                    host: Host::Ip(addr.ip()),
                    port: addr.port(),
                },
                addrs: vec![addr],
            });
        }
        for text in extra {
            let spec = TargetSpec::parse(text)
                .map_err(|e| anyhow::anyhow!("invalid --allow {text:?}: {e}"))?;
            let addrs = resolve(resolver, &spec)
                .await
                .map_err(|e| anyhow::anyhow!("cannot resolve --allow {text:?}: {e}"))?;
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
            })
            .collect()
    }

    /// The default target: the first built-in (the echo service).
    pub fn default_addrs(&self) -> Vec<SocketAddr> {
        self.entries
            .first()
            .map(|e| e.addrs.clone())
            .unwrap_or_default()
    }

    /// Checks a requested target (an entry's name such as `echo`, or `HOST:PORT`) and returns the
    /// addresses to connect to, in order.
    pub async fn check(&self, requested: &str) -> Result<(String, Vec<SocketAddr>), Refusal> {
        self.check_with(&SystemResolver, requested).await
    }

    /// [`AllowList::check`] with the resolver given (tests inject answers through it).
    async fn check_with<R: Resolve>(
        &self,
        resolver: &R,
        requested: &str,
    ) -> Result<(String, Vec<SocketAddr>), Refusal> {
        if let Some(e) = self.entries.iter().find(|e| e.name == requested) {
            return Ok((e.spec.to_string(), e.addrs.clone()));
        }
        let spec = TargetSpec::parse(requested).map_err(|reason| Refusal::Invalid {
            target: requested.to_owned(),
            reason,
        })?;
        let entry = self
            .entries
            .iter()
            .find(|e| e.spec == spec)
            .ok_or_else(|| Refusal::NotAllowed(requested.to_owned()))?;
        let addrs = match &spec.host {
            Host::Ip(_) => entry.addrs.clone(),
            Host::Name(_) => {
                let now = resolve(resolver, &spec).await.map_err(|e| {
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
        Ok((spec.to_string(), addrs))
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
        unbracketed_v6: "::1:80" => Err(TargetError::UnbracketedIpv6),
        numeric_tld: "1.2.3.4.5:80" => Err(TargetError::BadHostName),
        space: "local host:80" => Err(TargetError::BadHostName),
        empty: "" => Err(TargetError::MissingPort),
    }

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn builtins_and_allowed_entries_only() {
        let list = AllowList::build(&[("echo", local(7000))], &["127.0.0.1:7001".into()])
            .await
            .unwrap();
        assert_eq!(list.check("echo").await.unwrap().1, vec![local(7000)]);
        assert_eq!(
            list.check("127.0.0.1:7000").await.unwrap().1,
            vec![local(7000)]
        );
        assert_eq!(
            list.check("127.0.0.1:7001").await.unwrap().1,
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
        let (_, addrs) = list.check("LOCALHOST:7003").await.unwrap();
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
        let list =
            AllowList::build_with(&dns, &[("echo", local(7000))], &["relay.test:7010".into()])
                .await
                .unwrap();
        let result = list.check_with(&dns, requested).await;
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
        let list =
            AllowList::build_with(&dns, &[("echo", local(7000))], &["127.0.0.1:7001".into()])
                .await
                .unwrap();
        assert_eq!(
            list.check_with(&dns, "127.0.0.1:7001").await.unwrap().1,
            vec![local(7001)]
        );
        assert_eq!(
            list.check_with(&dns, "echo").await.unwrap().1,
            vec![local(7000)]
        );
        assert!(dns.asked().is_empty());
    }
}
