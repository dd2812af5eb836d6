//! The Origin check of `/ws`: a page on another site must not be able to use a visitor's
//! browser to reach the relay's targets (cross-site WebSocket hijacking).

/// Which page origins may open bridges.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// `--origin '*'`: any page.
    any: bool,
    /// Normalised `scheme://host[:port]` values from `--origin`. When empty, pages served from
    /// localhost are allowed, which is what a user of the default loopback relay expects.
    listed: Vec<String>,
}

/// Checks a `--origin` setting: `*` or `scheme://host[:port]` with scheme http or https.
pub fn validate_origin_setting(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    normalize(text)
        .map(|_| ())
        .ok_or_else(|| "expected * or scheme://host[:port], e.g. https://example.org".to_owned())
}

/// `scheme://host[:port]`, lowercased, with the scheme's default port removed, or `None` if the
/// text is not a serialised origin.
fn normalize(origin: &str) -> Option<String> {
    let origin = origin.to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(format!(
        "{scheme}://{}",
        strip_port(authority, default_port)
    ))
}

fn strip_port<'a>(authority: &'a str, default_port: &str) -> &'a str {
    match authority.rsplit_once(':') {
        Some((host, port)) if port == default_port && !host.ends_with(':') => host,
        _ => authority,
    }
}

/// The host part of an authority (`host`, `host:port`, `[v6]:port`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        // Only `[v6]` or `[v6]:port`; anything else after the bracket is not a host we know.
        return match rest.split_once(']') {
            Some((h, "")) => h,
            Some((h, port)) if port.starts_with(':') => h,
            _ => "",
        };
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_localhost(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_ip_or_localhost(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

impl OriginPolicy {
    pub fn new(settings: &[String]) -> OriginPolicy {
        OriginPolicy {
            any: settings.iter().any(|s| s == "*"),
            listed: settings.iter().filter_map(|s| normalize(s)).collect(),
        }
    }

    /// `origin` is the request's Origin header (absent for non-browser clients, which this check
    /// does not concern), `host` its Host header, `tls` whether the relay serves https.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>, tls: bool) -> Result<(), String> {
        let Some(origin) = origin else {
            return Ok(());
        };
        if self.any {
            return Ok(());
        }
        let refused = || Err(format!("origin {origin:?} is not allowed by this relay"));
        let Some(normal) = normalize(origin) else {
            return refused();
        };
        // The page came from the relay itself, but only when the relay was addressed by an IP
        // literal or localhost: a DNS name in Host could be an attacker's, rebound to this relay
        // (then Host and Origin agree but the page is the attacker's). Names go in --origin.
        if let Some(host) = host.filter(|h| is_ip_or_localhost(host_of(h))) {
            let own_scheme = if tls { "https" } else { "http" };
            let own = normalize(&format!("{own_scheme}://{host}"));
            if own.as_deref() == Some(normal.as_str()) {
                return Ok(());
            }
        }
        if self.listed.contains(&normal) {
            return Ok(());
        }
        if self.listed.is_empty() {
            let authority = normal.split_once("://").map_or("", |(_, a)| a);
            if is_localhost(host_of(authority)) {
                return Ok(());
            }
        }
        refused()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy() {
        let p = OriginPolicy::new(&[]);
        let ip_host = Some("192.0.2.7:8080");
        assert!(p
            .check(Some("http://192.0.2.7:8080"), ip_host, false)
            .is_ok());
        assert!(p
            .check(Some("HTTP://192.0.2.7:8080"), ip_host, false)
            .is_ok());
        assert!(p
            .check(Some("https://192.0.2.7:8080"), ip_host, false)
            .is_err());
        assert!(p
            .check(Some("http://[::1]:8080"), Some("[::1]:8080"), false)
            .is_ok());
        let host = Some("relay.example:8080");
        assert!(p.check(None, host, false).is_ok());
        assert!(p.check(Some("http://localhost:3000"), host, false).is_ok());
        assert!(p.check(Some("http://127.0.0.1"), host, false).is_ok());
        assert!(p.check(Some("http://[::1]:5000"), host, false).is_ok());
        // DNS rebinding: Host and Origin agree on a name that now points at the relay.
        let rebound = p.check(Some("http://relay.example:8080"), host, false);
        assert!(rebound.is_err());
        let rebound = p.check(
            Some("http://attacker.example"),
            Some("attacker.example"),
            false,
        );
        assert!(rebound.is_err());
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://[::1].evil.example",
            "null",
            "file://",
        ] {
            assert!(p.check(Some(bad), host, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_origins_replace_localhost() {
        let p = OriginPolicy::new(&[
            "https://docs.example".into(),
            "https://relay.example".into(),
        ]);
        let host = Some("relay.example");
        assert!(p
            .check(Some("https://docs.example:443"), host, true)
            .is_ok());
        assert!(p.check(Some("https://relay.example"), host, true).is_ok());
        assert!(p.check(Some("http://localhost:3000"), host, true).is_err());
        let any = OriginPolicy::new(&["*".into()]);
        assert!(any.check(Some("http://any.example"), host, false).is_ok());
    }

    #[test]
    fn settings_are_validated() {
        assert!(validate_origin_setting("*").is_ok());
        assert!(validate_origin_setting("https://a.example:8443").is_ok());
        assert!(validate_origin_setting("a.example").is_err());
        assert!(validate_origin_setting("https://a.example/path").is_err());
        assert!(validate_origin_setting("ftp://a.example").is_err());
    }
}
