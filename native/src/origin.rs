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
        return rest.split_once(']').map_or(rest, |(h, _)| h);
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
        if let Some(host) = host {
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
        let host = Some("relay.example:8080");
        assert!(p.check(None, host, false).is_ok());
        assert!(p
            .check(Some("http://relay.example:8080"), host, false)
            .is_ok());
        assert!(p
            .check(Some("HTTP://Relay.Example:8080"), host, false)
            .is_ok());
        assert!(p.check(Some("http://localhost:3000"), host, false).is_ok());
        assert!(p.check(Some("http://127.0.0.1"), host, false).is_ok());
        assert!(p.check(Some("http://[::1]:5000"), host, false).is_ok());
        assert!(p
            .check(Some("https://relay.example:8080"), host, false)
            .is_err());
        assert!(p.check(Some("http://evil.example"), host, false).is_err());
        assert!(p
            .check(Some("http://localhost.evil.example"), host, false)
            .is_err());
        assert!(p
            .check(Some("http://127.0.0.1.evil.example"), host, false)
            .is_err());
        assert!(p.check(Some("null"), host, false).is_err());
        assert!(p.check(Some("file://"), host, false).is_err());
    }

    #[test]
    fn listed_origins_replace_localhost() {
        let p = OriginPolicy::new(&["https://docs.example".into()]);
        let host = Some("relay.example");
        assert!(p
            .check(Some("https://docs.example:443"), host, true)
            .is_ok());
        assert!(p.check(Some("https://relay.example"), host, true).is_ok());
        assert!(p.check(Some("http://localhost:3000"), host, true).is_err());
        assert!(OriginPolicy::new(&["*".into()])
            .check(Some("http://any.example"), host, false)
            .is_ok());
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
