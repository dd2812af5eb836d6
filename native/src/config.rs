//! Settings: command-line flags, an optional TOML file, and defaults, merged in that order of
//! precedence (flags win over the file, the file wins over defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// The reply of the tutorial's first server.
pub const DEFAULT_ACK_REPLY: &str = "server received you message.";

/// Flags of `sockrelay serve`. Every field is optional so a config file can fill what flags omit;
/// the defaults shown in `--help` are applied last, in [`Settings::resolve`].
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// Read settings from this TOML file (keys are the flag names, e.g. `max-conns = 100`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// HTTP/WebSocket listen address (port 0 picks a free port) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// Echo service address, TCP and UDP on the same port (RFC 862) [default: 127.0.0.1:65432]
    #[arg(long, value_name = "ADDR")]
    pub echo: Option<SocketAddr>,

    /// Acknowledge server address (replies to every read with a fixed text) [default: 127.0.0.1:8001]
    #[arg(long, value_name = "ADDR")]
    pub ack: Option<SocketAddr>,

    /// Reply text of the acknowledge server [default: "server received you message."]
    #[arg(long, value_name = "TEXT")]
    pub ack_reply: Option<String>,

    /// Allow /ws?target=HOST:PORT for this target (repeatable). The built-in echo and
    /// acknowledge services are always allowed; nothing else is unless listed.
    #[arg(long, value_name = "HOST:PORT")]
    pub allow: Vec<String>,

    /// Allow WebSocket connections from pages of this origin, e.g. https://relay.example.org
    /// (repeatable; `*` allows any). A relay reached by a DNS name must list its own public
    /// origin here [default: pages from localhost, and the relay's own origin when it is
    /// addressed by IP]
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Vec<String>,

    /// Require this token on /ws, /api/targets, /api/check and /metrics, as `?token=...` or
    /// `Authorization: Bearer ...` (401 without it). /healthz (for load balancers) and the
    /// pages stay open: neither tells what the relay reaches; a page opened with
    /// `?token=...` passes the token on
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SOCKRELAY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Let pages of this source show the relay's pages in a frame (repeatable): a
    /// Content-Security-Policy frame-ancestors source such as https://docs.example.org,
    /// https://*.example.org, https: or 'none' [default: 'self']
    #[arg(long, value_name = "SOURCE")]
    pub frame_ancestors: Vec<String>,

    /// Maximum concurrent bridges (more get HTTP 503), and of connections to each of the echo
    /// and acknowledge servers (more wait in the listen backlog) [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,

    /// Maximum HTTP connections that are not bridges: waiting for a request head (the TLS
    /// handshake included, and keep-alive connections between requests) or being answered.
    /// Past it, a new connection closes the one that has waited longest for a head, so that
    /// slow clients cannot keep prompt ones out. Lowered to what the open-file limit leaves
    /// beside --max-conns bridges. Each costs the relay about 3 KiB while its first head (or
    /// TLS ClientHello) arrives, up to 30 KiB after it [default: 16384]
    #[arg(long, value_name = "N")]
    pub max_heads: Option<usize>,

    /// Seconds a client has for its TLS handshake and first request head together, and for
    /// each later head (an idle keep-alive connection is closed after it) [default: 10]
    #[arg(long, value_name = "SECS")]
    pub handshake_timeout: Option<u64>,

    /// Seconds in which no byte moves on a bridge's client or target socket before it is
    /// closed (partial transfers count, and so do a client's Pings; checked every quarter of
    /// it, so up to a quarter later) [default: 300]
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,

    /// Largest WebSocket message accepted from a client, in bytes; larger ones close the
    /// bridge with code 1009 [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_message: Option<usize>,

    /// Copy bulk data from targets to WebSocket clients instead of splicing it (Linux: by
    /// default the target's bulk bytes go to a plain-TCP client through a pipe, never through
    /// user space; where TCP paces the client's connection, as bbr does, copying can cost less
    /// CPU, see BENCHMARKS.md)
    #[arg(long)]
    pub no_splice: bool,

    /// TCP congestion control for the relay's connections (clients of every service, and
    /// targets), e.g. cubic or reno, instead of the system's default (Linux; names in
    /// /proc/sys/net/ipv4/tcp_available_congestion_control). On loopback a pacing one such as
    /// bbr sends bulk data from timers, which halved spliced throughput in BENCHMARKS.md
    #[arg(long, value_name = "NAME")]
    pub tcp_congestion: Option<String>,

    /// PEM certificate chain: serve https/wss (needs --tls-key)
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The config file: the same keys as the flags, in kebab-case. Unknown keys are errors, so a
/// typo is reported instead of silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    http: Option<SocketAddr>,
    echo: Option<SocketAddr>,
    ack: Option<SocketAddr>,
    ack_reply: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    origin: Vec<String>,
    token: Option<String>,
    #[serde(default)]
    frame_ancestors: Vec<String>,
    max_conns: Option<usize>,
    max_heads: Option<usize>,
    handshake_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_message: Option<usize>,
    #[serde(default)]
    no_splice: bool,
    tcp_congestion: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// Resolved settings of the relay.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: SocketAddr,
    pub echo: SocketAddr,
    pub ack: SocketAddr,
    pub ack_reply: String,
    /// Extra `/ws` targets, as written by the user (validated by [`crate::target`]).
    pub allow: Vec<String>,
    /// Extra allowed origins; empty means "own origin and localhost".
    pub origin: Vec<String>,
    pub token: Option<String>,
    /// `frame-ancestors` sources of the pages' Content-Security-Policy; empty means `'self'`.
    pub frame_ancestors: Vec<String>,
    pub max_conns: usize,
    /// HTTP connections that are not bridges (see [`crate::accept`]).
    pub max_heads: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_message: usize,
    /// Whether bulk frames to plain-TCP clients may be spliced (Linux; see [`crate::splice`]).
    pub splice: bool,
    /// The TCP congestion control of the relay's sockets; `None`: the system's default.
    pub tcp_congestion: Option<String>,
    pub tls: Option<TlsFiles>,
}

/// Certificate and key files for https/wss.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A config problem the user must fix; `sockrelay` exits with status 2 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            echo: SocketAddr::from(([127, 0, 0, 1], 65432)),
            ack: SocketAddr::from(([127, 0, 0, 1], 8001)),
            ack_reply: DEFAULT_ACK_REPLY.to_owned(),
            allow: Vec::new(),
            origin: Vec::new(),
            token: None,
            frame_ancestors: Vec::new(),
            max_conns: 1024,
            max_heads: 16384,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_message: 1 << 20,
            splice: true,
            tcp_congestion: None,
            tls: None,
        }
    }
}

impl Settings {
    /// Settings for tests and embedding: every service on 127.0.0.1 with a free port.
    pub fn ephemeral() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Settings {
            http: any,
            echo: any,
            ack: any,
            ..Settings::default()
        }
    }

    /// Merges flags over the config file (if any) over defaults, and validates the result.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let d = Settings::default();
        let pick_list = |flag: &[String], file: Vec<String>| {
            if flag.is_empty() {
                file
            } else {
                flag.to_vec()
            }
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    key: "tls-key",
                    message: "tls-cert is set but tls-key is not".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "tls-cert",
                    message: "tls-key is set but tls-cert is not".into(),
                })
            }
        };
        let settings = Settings {
            http: args.http.or(file.http).unwrap_or(d.http),
            echo: args.echo.or(file.echo).unwrap_or(d.echo),
            ack: args.ack.or(file.ack).unwrap_or(d.ack),
            ack_reply: args
                .ack_reply
                .clone()
                .or(file.ack_reply)
                .unwrap_or(d.ack_reply),
            allow: pick_list(&args.allow, file.allow),
            origin: pick_list(&args.origin, file.origin),
            token: args.token.clone().or(file.token),
            frame_ancestors: pick_list(&args.frame_ancestors, file.frame_ancestors),
            max_conns: args.max_conns.or(file.max_conns).unwrap_or(d.max_conns),
            max_heads: args.max_heads.or(file.max_heads).unwrap_or(d.max_heads),
            handshake_timeout: args
                .handshake_timeout
                .or(file.handshake_timeout)
                .map_or(d.handshake_timeout, Duration::from_secs),
            idle_timeout: args
                .idle_timeout
                .or(file.idle_timeout)
                .map_or(d.idle_timeout, Duration::from_secs),
            max_message: args
                .max_message
                .or(file.max_message)
                .unwrap_or(d.max_message),
            splice: !(args.no_splice || file.no_splice),
            tcp_congestion: args.tcp_congestion.clone().or(file.tcp_congestion),
            tls,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.max_conns == 0 {
            return invalid("max-conns", "must be at least 1");
        }
        if self.max_heads == 0 {
            return invalid("max-heads", "must be at least 1");
        }
        if self.handshake_timeout.is_zero() {
            return invalid("handshake-timeout", "must be at least 1 second");
        }
        if self.idle_timeout.is_zero() {
            return invalid("idle-timeout", "must be at least 1 second");
        }
        if self.max_message < 16 {
            return invalid("max-message", "must be at least 16 bytes");
        }
        if self.ack_reply.is_empty() {
            return invalid("ack-reply", "must not be empty");
        }
        if let Some(token) = &self.token {
            if token.is_empty() {
                return invalid("token", "must not be empty");
            }
        }
        if let Some(name) = &self.tcp_congestion {
            // The kernel's names are at most 15 characters (TCP_CA_NAME_MAX less its NUL).
            let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            if name.is_empty() || name.len() > 15 || !name.chars().all(plain) {
                return Err(ConfigError::Invalid {
                    key: "tcp-congestion",
                    message: format!(
                        "{name:?}: a congestion control's name is 1 to 15 letters, digits, '_' or '-'"
                    ),
                });
            }
        }
        for allow in &self.allow {
            if let Err(e) = crate::target::TargetSpec::parse(allow) {
                return Err(ConfigError::Invalid {
                    key: "allow",
                    message: format!("{allow:?}: {e}"),
                });
            }
        }
        for source in &self.frame_ancestors {
            if let Err(message) = crate::assets::validate_frame_ancestor(source) {
                return Err(ConfigError::Invalid {
                    key: "frame-ancestors",
                    message: format!("{source:?}: {message}"),
                });
            }
        }
        if self.frame_ancestors.len() > 1 && self.frame_ancestors.iter().any(|s| s == "'none'") {
            return invalid(
                "frame-ancestors",
                "'none' cannot be combined with other sources",
            );
        }
        for origin in &self.origin {
            if let Err(message) = crate::origin::validate_origin_setting(origin) {
                return Err(ConfigError::Invalid {
                    key: "origin",
                    message: format!("{origin:?}: {message}"),
                });
            }
        }
        Ok(())
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        // toml's message names the key and quotes the offending line.
        message: e.to_string().trim_end().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A file path removed on drop, without pulling in a crate for it.
    mod tempfile_path {
        pub struct TempPath(pub std::path::PathBuf);
        impl TempPath {
            pub fn with(text: &str) -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "sockrelay-cfg-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&p, text).unwrap();
                TempPath(p)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_match_the_design() {
        let s = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.echo.to_string(), "127.0.0.1:65432");
        assert_eq!(s.ack.to_string(), "127.0.0.1:8001");
        assert_eq!(s.ack_reply, "server received you message.");
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let f = write(
            "http = \"127.0.0.1:9000\"\nmax-conns = 7\nmax-heads = 9\nallow = [\"127.0.0.1:22\"]\n",
        );
        let args = ServeArgs {
            config: Some(f.0.clone()),
            http: Some("127.0.0.1:9001".parse().unwrap()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.http.port(), 9001);
        assert_eq!(s.max_conns, 7);
        assert_eq!(s.max_heads, 9);
        assert_eq!(s.allow, vec!["127.0.0.1:22".to_string()]);
    }

    #[test]
    fn the_congestion_control_comes_from_the_flag_over_the_file_and_is_checked() {
        assert_eq!(
            Settings::resolve(&ServeArgs::default())
                .unwrap()
                .tcp_congestion,
            None
        );
        let f = write("tcp-congestion = \"reno\"\n");
        let file = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&file).unwrap();
        assert_eq!(s.tcp_congestion.as_deref(), Some("reno"));
        let both = ServeArgs {
            tcp_congestion: Some("cubic".into()),
            ..file
        };
        let s = Settings::resolve(&both).unwrap();
        assert_eq!(s.tcp_congestion.as_deref(), Some("cubic"));
        for bad in ["", "cubic\0", "a name", "sixteen_letters_", "../bbr"] {
            let args = ServeArgs {
                tcp_congestion: Some(bad.into()),
                ..ServeArgs::default()
            };
            match Settings::resolve(&args) {
                Err(ConfigError::Invalid { key, .. }) => {
                    assert_eq!(key, "tcp-congestion", "{bad:?}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn splicing_is_on_unless_the_flag_or_the_file_turns_it_off() {
        assert!(Settings::resolve(&ServeArgs::default()).unwrap().splice);
        let flag = ServeArgs {
            no_splice: true,
            ..ServeArgs::default()
        };
        assert!(!Settings::resolve(&flag).unwrap().splice);
        let f = write("no-splice = true\n");
        let file = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        assert!(!Settings::resolve(&file).unwrap().splice);
    }

    #[test]
    fn frame_ancestors_come_from_the_flag_over_the_file_and_are_checked() {
        assert!(Settings::resolve(&ServeArgs::default())
            .unwrap()
            .frame_ancestors
            .is_empty());
        let f = write("frame-ancestors = [\"'self'\", \"https://docs.example\"]\n");
        let file = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&file).unwrap();
        assert_eq!(s.frame_ancestors, ["'self'", "https://docs.example"]);
        let both = ServeArgs {
            frame_ancestors: vec!["'none'".into()],
            ..file
        };
        assert_eq!(
            Settings::resolve(&both).unwrap().frame_ancestors,
            ["'none'"]
        );
        for bad in [
            vec!["https://a.example; script-src *"],
            vec!["self"],
            vec!["'none'", "https://a.example"],
        ] {
            let args = ServeArgs {
                frame_ancestors: bad.iter().map(|s| s.to_string()).collect(),
                ..ServeArgs::default()
            };
            match Settings::resolve(&args) {
                Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "frame-ancestors"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write("max-conn = 7\n");
        let args = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&args).unwrap_err().to_string();
        assert!(e.contains("max-conn"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let f = write("idle-timeout = \"long\"\n");
        let args = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&args).unwrap_err().to_string();
        assert!(e.contains("idle-timeout"), "{e}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let args = ServeArgs {
            max_conns: Some(0),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args)
            .unwrap_err()
            .to_string()
            .contains("max-conns"));
        let args = ServeArgs {
            allow: vec!["nope".into()],
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args)
            .unwrap_err()
            .to_string()
            .contains("allow"));
    }
}
