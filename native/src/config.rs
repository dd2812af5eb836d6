//! Settings: command-line flags, an optional TOML file, and defaults, merged in that order of
//! precedence (flags win over the file, the file wins over defaults).
//!
//! Each setting is defined once, in the table of `settings!` below: its flag and TOML key (the
//! field's name in kebab-case), the type the flag and the file accept, the resolved field of
//! [`Settings`] with its `Kind` (which gives the default and what `--help` shows of it), its help
//! text, and its check. The flags and the file share one struct, [`ServeArgs`], so they cannot
//! drift apart; a flag given on the command line wins over the file by `Merge`.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// The reply of the tutorial's first server.
pub const DEFAULT_ACK_REPLY: &str = "server received you message.";

/// Generates, from one table: [`ServeArgs`] (the flags of `sockrelay serve` and the keys of the
/// config file), [`Settings`] (the resolved values), their defaults, the merge of flags over the
/// file and the checks. An entry reads
///
/// ```text
/// /// Help text (the default is appended as `[default: ...]` when the kind shows one)
/// #[arg(value_name = "N")]                      // further clap attributes, if any
/// flag_name: FlagType => settings_field: SettingsType = kind, check function;
/// ```
///
/// `FlagType` is `Option<T>` (a flag given wins over the file), `Vec<T>` (a repeatable flag; the
/// flags replace the file's list) or `bool` (a switch: the flag or the file turns it on). The
/// check, if any, is a function from the resolved value to an error message; the error names the
/// setting by its key. `--config` and the TLS pair, which resolves into one field, are written out
/// in the macro.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $(#[arg($($arg:tt)*)])*
        $flag:ident: $input:ty => $field:ident: $ty:ty = $kind:expr $(, check $check:expr)?;
    )*) => {
        /// Flags of `sockrelay serve`, and the keys of its config file (the same names, in
        /// kebab-case). Every field is optional so a config file can fill what flags omit; the
        /// defaults shown in `--help` are applied last, in [`Settings::resolve`]. Unknown keys
        /// in the file are errors, so a typo is reported instead of silently ignored.
        #[derive(Debug, Default, Clone, Args, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        pub struct ServeArgs {
            /// Read settings from this TOML file (keys are the flag names, e.g. `max-conns = 100`).
            #[arg(long, value_name = "FILE")]
            #[serde(skip)]
            pub config: Option<PathBuf>,
            $(
                #[arg(long, help = help_text(&[$($doc),*], Kind::<$input>::shown(&$kind)))]
                $(#[arg($($arg)*)])*
                pub $flag: $input,
            )*
            /// PEM certificate chain: serve https/wss (needs --tls-key)
            #[arg(long, value_name = "PEM", requires = "tls_key")]
            pub tls_cert: Option<PathBuf>,
            /// PEM private key for --tls-cert
            #[arg(long, value_name = "PEM", requires = "tls_cert")]
            pub tls_key: Option<PathBuf>,
        }

        /// Resolved settings of the relay.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
            pub tls: Option<TlsFiles>,
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $($field: Kind::<$input>::resolve(&$kind, Default::default()),)*
                    tls: None,
                }
            }
        }

        impl ServeArgs {
            /// These flags over `file`'s.
            fn over(self, file: ServeArgs) -> ServeArgs {
                ServeArgs {
                    config: self.config,
                    $($flag: self.$flag.merge(file.$flag),)*
                    tls_cert: self.tls_cert.merge(file.tls_cert),
                    tls_key: self.tls_key.merge(file.tls_key),
                }
            }

            /// The settings these flags give, unchecked.
            fn settings(self, tls: Option<TlsFiles>) -> Settings {
                Settings {
                    $($field: Kind::<$input>::resolve(&$kind, self.$flag),)*
                    tls,
                }
            }
        }

        impl Settings {
            fn validate(&self) -> Result<(), ConfigError> {
                $($(
                    check(&self.$field, $check).map_err(|message| ConfigError::Invalid {
                        key: stringify!($flag).replace('_', "-"),
                        message,
                    })?;
                )?)*
                Ok(())
            }
        }
    };
}

settings! {
    /// HTTP/WebSocket listen address (port 0 picks a free port)
    #[arg(value_name = "ADDR")]
    http: Option<SocketAddr> => http: SocketAddr =
        Value(SocketAddr::from(([127, 0, 0, 1], 8080)));

    /// Echo service address, TCP and UDP on the same port (RFC 862)
    #[arg(value_name = "ADDR")]
    echo: Option<SocketAddr> => echo: SocketAddr =
        Value(SocketAddr::from(([127, 0, 0, 1], 65432)));

    /// Acknowledge server address (replies to every read with a fixed text)
    #[arg(value_name = "ADDR")]
    ack: Option<SocketAddr> => ack: SocketAddr =
        Value(SocketAddr::from(([127, 0, 0, 1], 8001)));

    /// Reply text of the acknowledge server
    #[arg(value_name = "TEXT")]
    ack_reply: Option<String> => ack_reply: String = Text(DEFAULT_ACK_REPLY), check not_empty;

    /// Allow /ws?target=TARGET for this target (repeatable): HOST:PORT (TCP), udp:HOST:PORT
    /// or unix:/path (a Unix stream socket, matched by its exact path). The built-in echo
    /// (TCP and UDP) and acknowledge services are always allowed; nothing else is unless
    /// listed. A UDP name never reaches a broadcast or multicast address: write such an
    /// address itself to allow it
    #[arg(value_name = "TARGET")]
    allow: Vec<String> => allow: Vec<String> = List(None),
        check each(|allow| crate::target::Spec::parse(allow).map(drop).map_err(|e| e.to_string()));

    /// Allow WebSocket connections from pages of this origin, e.g. https://relay.example.org
    /// (repeatable; `*` allows any). A relay reached by a DNS name must list its own public
    /// origin here
    #[arg(value_name = "ORIGIN")]
    origin: Vec<String> => origin: Vec<String> = List(Some(
        "pages from localhost, and the relay's own origin when it is addressed by IP",
    )), check each(crate::origin::validate_origin_setting);

    /// websockify's token files: a file of `token: HOST:PORT` lines, or a directory of them.
    /// `/ws?token=NAME` and `/websockify?token=NAME` bridge to NAME's target (unknown tokens
    /// get 403); files are read again when they change. With it, `?token=` on those paths names
    /// a target, and the relay's own token comes as `?auth=` or `Authorization: Bearer`
    #[arg(value_name = "FILE_OR_DIR")]
    target_tokens: Option<PathBuf> => target_tokens: Option<PathBuf> = Unset;

    /// Send a PROXY protocol v2 header (the client's address and port) to this target before
    /// the client's bytes (repeatable): every bridge that reaches its addresses or socket gets
    /// it, however the request named it. Token-file targets ask for it with `proxy-protocol`
    /// after the target
    #[arg(value_name = "HOST:PORT")]
    proxy_protocol: Vec<String> => proxy_protocol: Vec<String> = List(None),
        check each(crate::proxy_protocol::validate_target);

    /// Believe X-Forwarded-For and Forwarded from peers in this address block, e.g.
    /// 127.0.0.1/32 for a proxy on the same host (repeatable): the client's address they give
    /// goes into logs and PROXY headers. From other peers these headers are ignored
    #[arg(value_name = "CIDR")]
    trusted_proxy: Vec<String> => trusted_proxy: Vec<String> = List(None),
        check each(crate::proxy_protocol::validate_cidr);

    /// Serve the files of DIR (noVNC's, say) before the built-in pages. Dotfiles, `..` and
    /// symbolic links that lead out of DIR are never served, and directories are not listed
    #[arg(value_name = "DIR")]
    web: Option<PathBuf> => web: Option<PathBuf> = Unset;

    /// Open no echo or acknowledge server: /ws without ?target= then goes to the first --allow
    /// entry (`sockrelay websockify` runs this way)
    no_builtins: bool => builtins: bool = Off;

    /// Take WebSocket upgrades on every path, not only /ws and /websockify, as websockify does
    /// (`sockrelay websockify` runs this way); other requests still get the pages
    ws_any_path: bool => ws_any_path: bool = On;

    /// With --tls-cert: take plain http:// and ws:// on the same port too, told apart from
    /// TLS by their first byte, as websockify does with --cert but without --ssl-only
    plain_too: bool => plain_too: bool = On;

    /// Require this token on /ws, /api/targets, /api/check and /metrics, as `?token=...` or
    /// `Authorization: Bearer ...` (401 without it). /healthz (for load balancers) and the
    /// pages stay open: neither tells what the relay reaches; a page opened with
    /// `?token=...` passes the token on
    #[arg(value_name = "TOKEN", env = "SOCKRELAY_TOKEN", hide_env_values = true)]
    token: Option<String> => token: Option<String> = Unset, check if_set(not_empty);

    /// Let pages of this source show the relay's pages in a frame (repeatable): a
    /// Content-Security-Policy frame-ancestors source such as https://docs.example.org,
    /// https://*.example.org, https: or 'none'
    #[arg(value_name = "SOURCE")]
    frame_ancestors: Vec<String> => frame_ancestors: Vec<String> = List(Some("'self'")),
        check frame_ancestors;

    /// Maximum concurrent bridges (more get HTTP 503), and of connections to each of the echo
    /// and acknowledge servers (more wait in the listen backlog)
    #[arg(value_name = "N")]
    max_conns: Option<usize> => max_conns: usize = Value(1024), check at_least(1, "");

    /// Maximum HTTP connections that are not bridges: waiting for a request head (the TLS
    /// handshake included, and keep-alive connections between requests) or being answered.
    /// Past it, a new connection closes the one that has waited longest for a head, so that
    /// slow clients cannot keep prompt ones out. Lowered to what the open-file limit leaves
    /// beside --max-conns bridges. Each costs the relay about 3 KiB while its first head (or
    /// TLS ClientHello) arrives, up to 30 KiB after it
    #[arg(value_name = "N")]
    max_heads: Option<usize> => max_heads: usize = Value(16384), check at_least(1, "");

    /// Seconds a client has for its TLS handshake and first request head together, and for
    /// each later head (an idle keep-alive connection is closed after it)
    #[arg(value_name = "SECS")]
    handshake_timeout: Option<u64> => handshake_timeout: Duration = Secs(10), check a_second;

    /// Seconds in which no byte moves on a bridge's client or target socket before it is
    /// closed (partial transfers count, and so do a client's Pings; checked every quarter of
    /// it, so up to a quarter later)
    #[arg(value_name = "SECS")]
    idle_timeout: Option<u64> => idle_timeout: Duration = Secs(300), check a_second;

    /// Seconds between the WebSocket Pings the relay sends on every bridge, so that proxies
    /// which cut silent connections keep it and a vanished client is found; 0 sends none.
    /// Pings, and the Pongs that answer them, are not traffic for the idle timeout
    #[arg(value_name = "SECS")]
    ping_interval: Option<u64> => ping_interval: Duration = Secs(30), check within_a_year;

    /// Seconds a client may stay silent after a Ping (no Pong, no other frame, and no byte
    /// moving on its bridge) before the bridge is closed with 1001 "ping timeout" and its
    /// target reset, as for a client that vanished
    #[arg(value_name = "SECS")]
    ping_timeout: Option<u64> => ping_timeout: Duration = Secs(30), check a_second;

    /// Largest WebSocket message accepted from a client, in bytes (16 to 1073741824, 1 GiB);
    /// larger ones close the bridge with code 1009. A frame's header makes room for its whole
    /// declared size, so each connection may hold up to this much
    #[arg(value_name = "BYTES")]
    max_message: Option<usize> => max_message: usize = Value(1 << 20), check message_size;

    /// Copy bulk data from targets to WebSocket clients instead of splicing it (Linux: by
    /// default the target's bulk bytes go to a plain-TCP client through a pipe, never through
    /// user space; where TCP paces the client's connection, as bbr does, copying can cost less
    /// CPU, see BENCHMARKS.md)
    no_splice: bool => splice: bool = Off;

    /// TCP congestion control for the relay's connections (clients of every service, and
    /// targets), e.g. cubic or reno, instead of the system's default (Linux; names in
    /// /proc/sys/net/ipv4/tcp_available_congestion_control). On loopback a pacing one such as
    /// bbr sends bulk data from timers, which halved spliced throughput in BENCHMARKS.md
    #[arg(value_name = "NAME")]
    tcp_congestion: Option<String> => tcp_congestion: Option<String> = Unset,
        check if_set(congestion_control);
}

/// What a setting is when neither its flag nor its key is given, how the value given becomes
/// the resolved one, and what `--help` shows as its default.
trait Kind<Given> {
    type Resolved;
    fn resolve(&self, given: Given) -> Self::Resolved;
    fn shown(&self) -> Option<String>;
}

/// A value with this default, shown as it is written.
struct Value<T>(T);

impl<T: Clone + Display> Kind<Option<T>> for Value<T> {
    type Resolved = T;
    fn resolve(&self, given: Option<T>) -> T {
        given.unwrap_or_else(|| self.0.clone())
    }
    fn shown(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

/// A text with this default, shown quoted.
struct Text(&'static str);

impl Kind<Option<String>> for Text {
    type Resolved = String;
    fn resolve(&self, given: Option<String>) -> String {
        given.unwrap_or_else(|| self.0.to_owned())
    }
    fn shown(&self) -> Option<String> {
        Some(format!("{:?}", self.0))
    }
}

/// A duration given in whole seconds, with this default.
struct Secs(u64);

impl Kind<Option<u64>> for Secs {
    type Resolved = Duration;
    fn resolve(&self, given: Option<u64>) -> Duration {
        Duration::from_secs(given.unwrap_or(self.0))
    }
    fn shown(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

/// An optional value: `None` unless given.
struct Unset;

impl<T> Kind<Option<T>> for Unset {
    type Resolved = Option<T>;
    fn resolve(&self, given: Option<T>) -> Option<T> {
        given
    }
    fn shown(&self) -> Option<String> {
        None
    }
}

/// A list, empty unless given; the text, if any, says what an empty list means.
struct List(Option<&'static str>);

impl Kind<Vec<String>> for List {
    type Resolved = Vec<String>;
    fn resolve(&self, given: Vec<String>) -> Vec<String> {
        given
    }
    fn shown(&self) -> Option<String> {
        self.0.map(str::to_owned)
    }
}

/// A switch that turns something on.
struct On;

impl Kind<bool> for On {
    type Resolved = bool;
    fn resolve(&self, given: bool) -> bool {
        given
    }
    fn shown(&self) -> Option<String> {
        None
    }
}

/// A switch that turns something off: the resolved value says whether it is on.
struct Off;

impl Kind<bool> for Off {
    type Resolved = bool;
    fn resolve(&self, given: bool) -> bool {
        !given
    }
    fn shown(&self) -> Option<String> {
        None
    }
}

/// A flag's value over the file's.
trait Merge {
    fn merge(self, file: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn merge(self, file: Self) -> Self {
        self.or(file)
    }
}

impl<T> Merge for Vec<T> {
    /// Repeated flags replace the file's list instead of adding to it.
    fn merge(self, file: Self) -> Self {
        if self.is_empty() {
            file
        } else {
            self
        }
    }
}

impl Merge for bool {
    fn merge(self, file: Self) -> Self {
        self || file
    }
}

/// A help text as clap makes one of a doc comment (the lines of its paragraph joined, a final
/// period dropped), with the default, if shown, at its end.
fn help_text(doc: &[&str], default: Option<String>) -> String {
    let mut text = doc
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ");
    if text.ends_with('.') && !text.ends_with("..") {
        text.pop();
    }
    if let Some(default) = default {
        text.push_str(&format!(" [default: {default}]"));
    }
    text
}

/// Runs a setting's check; a function (not a call of the closure) so the closure's argument
/// type comes from the setting's.
fn check<T: ?Sized>(value: &T, check: impl FnOnce(&T) -> Result<(), String>) -> Result<(), String> {
    check(value)
}

fn at_least(min: usize, unit: &'static str) -> impl Fn(&usize) -> Result<(), String> {
    move |&n| {
        if n < min {
            return Err(format!("must be at least {min}{unit}"));
        }
        Ok(())
    }
}

/// The largest `--max-message`. The codec makes room for a frame's whole declared size as soon
/// as its header arrives, before any of it: a limit near the address space (2^64 - 1 as
/// "unlimited") let a 14-byte header make the relay ask for more memory than it can have, and
/// a failed allocation aborts the process, every bridge with it.
pub const MAX_MESSAGE_LIMIT: usize = 1 << 30;

fn message_size(n: &usize) -> Result<(), String> {
    at_least(16, " bytes")(n)?;
    if *n > MAX_MESSAGE_LIMIT {
        return Err(format!(
            "must be at most {MAX_MESSAGE_LIMIT} bytes (1 GiB): each connection may hold a \
             whole frame of this size"
        ));
    }
    Ok(())
}

fn a_second(d: &Duration) -> Result<(), String> {
    if d.is_zero() {
        return Err("must be at least 1 second".into());
    }
    within_a_year(d)
}

/// The longest time a setting may give: deadlines are the time now plus a setting, and a
/// larger one would overflow the clock (`--heartbeat 10000000000000000000`, meant as "never",
/// made every bridge panic).
const A_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn within_a_year(d: &Duration) -> Result<(), String> {
    if *d > A_YEAR {
        return Err(format!(
            "must be at most {} seconds (a year)",
            A_YEAR.as_secs()
        ));
    }
    Ok(())
}

fn not_empty(s: &impl AsRef<str>) -> Result<(), String> {
    if s.as_ref().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}

/// The check of an optional setting, when it is set.
fn if_set<T>(
    check: impl Fn(&T) -> Result<(), String>,
) -> impl Fn(&Option<T>) -> Result<(), String> {
    move |value| value.as_ref().map_or(Ok(()), &check)
}

/// The check of each item of a list, naming the item that fails it.
fn each(check: impl Fn(&str) -> Result<(), String>) -> impl Fn(&Vec<String>) -> Result<(), String> {
    move |items| each_of(items, &check)
}

fn each_of(items: &[String], check: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    items
        .iter()
        .try_for_each(|item| check(item).map_err(|message| format!("{item:?}: {message}")))
}

fn frame_ancestors(sources: &impl AsRef<[String]>) -> Result<(), String> {
    let sources = sources.as_ref();
    each_of(sources, crate::assets::validate_frame_ancestor)?;
    if sources.len() > 1 && sources.iter().any(|s| s == "'none'") {
        return Err("'none' cannot be combined with other sources".into());
    }
    Ok(())
}

fn congestion_control(name: &impl AsRef<str>) -> Result<(), String> {
    let name = name.as_ref();
    // The kernel's names are at most 15 characters (TCP_CA_NAME_MAX less its NUL).
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 15 || !name.chars().all(plain) {
        return Err(format!(
            "{name:?}: a congestion control's name is 1 to 15 letters, digits, '_' or '-'"
        ));
    }
    Ok(())
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
    /// `key` is the setting's flag name without its dashes, as the file writes it.
    #[error("invalid setting {key}: {message}")]
    Invalid { key: String, message: String },
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
            None => ServeArgs::default(),
        };
        let mut given = args.clone().over(file);
        let tls = match (given.tls_cert.take(), given.tls_key.take()) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    key: "tls-key".into(),
                    message: "tls-cert is set but tls-key is not".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    key: "tls-cert".into(),
                    message: "tls-key is set but tls-cert is not".into(),
                })
            }
        };
        let settings = given.settings(tls);
        if settings.plain_too && settings.tls.is_none() {
            return Err(ConfigError::Invalid {
                key: "plain-too".into(),
                message: "plain-too takes plain connections beside TLS ones: it needs tls-cert \
                          and tls-key"
                    .into(),
            });
        }
        settings.validate()?;
        Ok(settings)
    }
}

fn load_file(path: &Path) -> Result<ServeArgs, ConfigError> {
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
    fn plain_too_needs_a_certificate() {
        let args = ServeArgs {
            plain_too: true,
            ..ServeArgs::default()
        };
        match Settings::resolve(&args) {
            Err(ConfigError::Invalid { key, message }) => {
                assert_eq!(key, "plain-too");
                assert!(message.contains("needs tls-cert"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_file_has_a_key_for_every_flag_but_config() {
        let command = ServeArgs::augment_args(clap::Command::new("serve"));
        let flags: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|&long| long != "config")
            .map(|long| format!("`{long}`"))
            .collect();
        assert_eq!(flags.len(), 26);
        let f = write("no-such-key = 1\n");
        let args = ServeArgs {
            config: Some(f.0.clone()),
            ..ServeArgs::default()
        };
        let e = Settings::resolve(&args).unwrap_err().to_string();
        let (_, keys) = e.split_once("expected one of ").unwrap();
        assert_eq!(keys.trim(), flags.join(", "), "{e}");
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
    fn times_past_a_year_are_refused() {
        for args in [
            ServeArgs {
                ping_interval: Some(u64::MAX),
                ..ServeArgs::default()
            },
            ServeArgs {
                ping_timeout: Some(10_000_000_000),
                ..ServeArgs::default()
            },
            ServeArgs {
                idle_timeout: Some(u64::MAX),
                ..ServeArgs::default()
            },
            ServeArgs {
                handshake_timeout: Some(u64::MAX),
                ..ServeArgs::default()
            },
        ] {
            let e = Settings::resolve(&args).unwrap_err().to_string();
            assert!(e.contains("at most 31536000 seconds"), "{e}");
        }
        let args = ServeArgs {
            ping_interval: Some(0),
            idle_timeout: Some(365 * 24 * 3600),
            ..ServeArgs::default()
        };
        assert!(Settings::resolve(&args).is_ok());
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

    #[test]
    fn max_message_is_refused_past_a_size_that_can_be_held() {
        let with = |n: usize| {
            Settings::resolve(&ServeArgs {
                max_message: Some(n),
                ..ServeArgs::default()
            })
        };
        assert_eq!(
            with(MAX_MESSAGE_LIMIT).unwrap().max_message,
            MAX_MESSAGE_LIMIT
        );
        assert_eq!(with(16).unwrap().max_message, 16);
        for n in [15, MAX_MESSAGE_LIMIT + 1, 1 << 47, usize::MAX] {
            let e = with(n).unwrap_err().to_string();
            assert!(e.contains("max-message"), "{n}: {e}");
        }
    }
}
