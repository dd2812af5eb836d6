//! `sockrelay websockify [OPTIONS] SOURCE_ADDR [TARGET_ADDR]`: websockify's command line on the
//! relay's engine, for deployments (noVNC's, most often) that switch without changing anything
//! else.
//!
//! Every option of websockify's `websocketproxy.py` is known here by name: those sockrelay can
//! honour become its settings ([`WebsockifyArgs::to_serve`]), and the others are refused with a
//! message that names the option and says why, never silently ignored. Only the HTTP listener
//! opens (no echo or acknowledge server); with one `TARGET_ADDR`, every bridge goes to it, as
//! in websockify. The relay's Origin and DNS-rebinding rules still hold: a deployment reached by
//! a DNS name lists its pages' origin with `--origin`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::time::Instant;

use crate::config::ServeArgs;
use crate::metrics::Metrics;

/// How long a bridge of `sockrelay websockify` may go without a byte either way: a week.
pub const QUIET_BRIDGE_SECS: u64 = 7 * 24 * 3600;

/// websockify's options (and a few of sockrelay's own, marked so), read as websockify's own
/// parser (Python's argparse) reads them: an option given twice takes its last value, and an
/// unambiguous prefix (`--heart 30`) names an option.
#[derive(Debug, Clone, Default, Args)]
#[command(args_override_self = true, infer_long_args = true)]
pub struct WebsockifyArgs {
    /// Where to listen: [HOST:]PORT (without HOST, every interface, as websockify)
    #[arg(value_name = "SOURCE_ADDR")]
    pub source: String,
    /// Where every connection goes: HOST:PORT (not with --token-plugin or --unix-target)
    #[arg(value_name = "TARGET_ADDR")]
    pub target: Option<String>,

    /// Serve files from DIR on the same port (noVNC's directory, say)
    #[arg(long, value_name = "DIR")]
    pub web: Option<PathBuf>,
    /// TLS certificate file (PEM; may hold the key too): wss:// and https:// beside plain
    /// ws:// and http:// on the same port (wss:// only with --ssl-only)
    #[arg(long, value_name = "CERT")]
    pub cert: Option<PathBuf>,
    /// TLS key file, if not in --cert
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,
    /// Serve wss:// only (with --cert, default self.pem)
    #[arg(long)]
    pub ssl_only: bool,
    /// Minimum TLS version: default, tlsv1_1 or tlsv1_2 (sockrelay speaks TLS 1.2 and 1.3)
    #[arg(long, value_name = "VERSION")]
    pub ssl_version: Option<String>,
    /// Token plugin: TokenFile or ReadOnlyTokenFile (both re-read a changed file)
    #[arg(long, value_name = "CLASS")]
    pub token_plugin: Option<String>,
    /// The token plugin's file or directory of `token: host:port` lines
    #[arg(long, value_name = "ARG")]
    pub token_source: Option<String>,
    /// Deprecated websockify spelling of --token-plugin TokenFile --token-source FILE
    #[arg(long, value_name = "FILE")]
    pub target_config: Option<PathBuf>,
    /// Connect to this Unix socket instead of TARGET_ADDR
    #[arg(long, value_name = "FILE")]
    pub unix_target: Option<String>,
    /// Send a WebSocket Ping every INTERVAL seconds (0: none; without it, one every 30 s)
    #[arg(long, value_name = "INTERVAL")]
    pub heartbeat: Option<u64>,
    /// Exit after TIMEOUT seconds without an open connection
    #[arg(long, value_name = "TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Stop taking connections TIMEOUT seconds after starting, and exit once the open ones have
    /// ended (0: never)
    #[arg(long, value_name = "TIMEOUT")]
    pub timeout: Option<u64>,
    /// Serve a single WebSocket connection: take no other once it opens, and exit when it ends
    /// (requests for --web's files before it are served as usual)
    #[arg(long)]
    pub run_once: bool,
    /// Debug logging (RUST_LOG overrides it)
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Append the log to FILE as well as writing it to stderr
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Never list directories of --web (sockrelay never does)
    #[arg(long)]
    pub file_only: bool,
    /// Prefer IPv6 when resolving SOURCE_ADDR
    #[arg(long = "prefer-ipv6", short = '6')]
    pub prefer_ipv6: bool,

    /// sockrelay: allow pages of this origin (repeatable); needed when the relay is reached by
    /// a DNS name
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Vec<String>,
    /// sockrelay: send a PROXY protocol v2 header to TARGET_ADDR or --unix-target (token lines
    /// ask for it themselves)
    #[arg(long)]
    pub proxy_protocol: bool,
    /// sockrelay: take the client's address from X-Forwarded-For or Forwarded when the peer is
    /// in this block (repeatable)
    #[arg(long, value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,
    /// sockrelay: most concurrent bridges
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,

    #[command(flatten)]
    pub refused: Refused,

    /// websockify's `-- WRAP_COMMAND_LINE` (refused)
    #[arg(last = true, hide = true)]
    pub wrap_command: Vec<String>,
}

/// websockify's options that sockrelay cannot honour: recognised so that they are refused by
/// name. Hidden from `--help`; README's "Coming from websockify" lists them with the reasons.
#[derive(Debug, Clone, Default, Args)]
pub struct Refused {
    #[arg(long, hide = true)]
    traffic: bool,
    #[arg(long, hide = true)]
    record: Option<String>,
    #[arg(long, short = 'D', hide = true)]
    daemon: bool,
    #[arg(long, hide = true)]
    key_password: Option<String>,
    #[arg(long, hide = true)]
    ssl_target: bool,
    #[arg(long, hide = true)]
    verify_client: bool,
    #[arg(long, hide = true)]
    cafile: Option<String>,
    #[arg(long, hide = true)]
    ssl_ciphers: Option<String>,
    #[arg(long, hide = true)]
    unix_listen: Option<String>,
    #[arg(long, hide = true)]
    unix_listen_mode: Option<String>,
    #[arg(long, hide = true)]
    inetd: bool,
    #[arg(long, hide = true)]
    web_auth: bool,
    #[arg(long, hide = true)]
    wrap_mode: Option<String>,
    #[arg(long, hide = true)]
    libserver: bool,
    #[arg(long, hide = true)]
    host_token: bool,
    #[arg(long, hide = true)]
    auth_plugin: Option<String>,
    #[arg(long, hide = true)]
    auth_source: Option<String>,
    #[arg(long, hide = true)]
    syslog: Option<String>,
    #[arg(long, hide = true)]
    legacy_syslog: bool,
}

impl Refused {
    /// The first refused option given, with why sockrelay does not take it.
    fn first(&self) -> Option<(&'static str, &'static str)> {
        let given = |on: bool, option, why| on.then_some((option, why));
        [
            given(self.traffic, "--traffic", "per-frame traffic printing is not supported; RUST_LOG=debug logs each bridge"),
            given(self.record.is_some(), "--record", "sockrelay does not record sessions"),
            given(self.daemon, "--daemon", "sockrelay does not fork into the background: run it under a service manager (deploy/sockrelay@.service)"),
            given(self.key_password.is_some(), "--key-password", "encrypted keys are not supported: give an unencrypted key (openssl pkey -in key.pem -out plain.pem)"),
            given(self.ssl_target, "--ssl-target", "sockrelay does not speak TLS to targets"),
            given(self.verify_client, "--verify-client", "client certificates are not supported"),
            given(self.cafile.is_some(), "--cafile", "client certificates are not supported"),
            given(self.ssl_ciphers.is_some(), "--ssl-ciphers", "the TLS library's cipher suites cannot be chosen"),
            given(self.unix_listen.is_some(), "--unix-listen", "sockrelay listens on TCP only"),
            given(self.unix_listen_mode.is_some(), "--unix-listen-mode", "sockrelay listens on TCP only"),
            given(self.inetd, "--inetd", "sockrelay opens its own listener"),
            given(self.web_auth, "--web-auth", "auth plugins are not supported (sockrelay serve --token guards the bridge)"),
            given(self.wrap_mode.is_some(), "--wrap-mode", "sockrelay does not start programs"),
            given(self.libserver, "--libserver", "sockrelay has one engine"),
            given(self.host_token, "--host-token", "the target's token comes from ?token= only"),
            given(self.auth_plugin.is_some(), "--auth-plugin", "auth plugins are not supported (sockrelay serve --token guards the bridge)"),
            given(self.auth_source.is_some(), "--auth-source", "auth plugins are not supported (sockrelay serve --token guards the bridge)"),
            given(self.syslog.is_some(), "--syslog", "logs go to stderr: redirect it, or let systemd's journal keep them"),
            given(self.legacy_syslog, "--legacy-syslog", "logs go to stderr: redirect it, or let systemd's journal keep them"),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

/// What websockify mode adds to the relay's settings.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// `--idle-timeout`: exit after this long without an open bridge.
    pub exit_when_idle: Option<Duration>,
    /// `--timeout`: take no connection after this long, and exit once none is open.
    pub stop_after: Option<Duration>,
    /// `--run-once`: take no connection once a bridge has opened, and exit once none is open.
    pub run_once: bool,
    /// `--log-file`: the log goes to this file too.
    pub log_file: Option<PathBuf>,
    /// `--verbose`.
    pub verbose: bool,
}

impl WebsockifyArgs {
    /// The relay's flags these options stand for, or the message that refuses them.
    pub fn to_serve(&self) -> Result<(ServeArgs, Extras), String> {
        if let Some((option, why)) = self.refused.first() {
            return Err(format!(
                "websockify option {option} is not supported: {why}"
            ));
        }
        if !self.wrap_command.is_empty() {
            return Err(
                "websockify's -- WRAP_COMMAND_LINE is not supported: sockrelay does not start \
                 programs; start the target yourself and give its HOST:PORT"
                    .into(),
            );
        }
        let mut serve = ServeArgs {
            http: Some(listen_addr(&self.source, self.prefer_ipv6)?),
            no_builtins: true,
            // websockify takes an upgrade on whatever path it comes (a proxy in front may have
            // rewritten noVNC's `/websockify` to `/`).
            ws_any_path: true,
            web: self.web.clone(),
            origin: self.origin.clone(),
            trusted_proxy: self.trusted_proxy.clone(),
            max_conns: self.max_conns,
            // websockify never closes a quiet bridge, and a VNC session whose screen does not
            // change is quiet: only a week without a byte closes one here.
            idle_timeout: Some(QUIET_BRIDGE_SECS),
            ..ServeArgs::default()
        };

        let tokens = match (&self.token_plugin, &self.token_source, &self.target_config) {
            (None, Some(_), _) => {
                return Err("--token-source needs --token-plugin (as in websockify)".into())
            }
            (Some(_), _, Some(_)) => {
                return Err("give --target-config or --token-plugin, not both".into())
            }
            (Some(plugin), source, None) => {
                let class = plugin.rsplit('.').next().unwrap_or(plugin);
                if !matches!(class, "TokenFile" | "ReadOnlyTokenFile") {
                    return Err(format!(
                        "websockify option --token-plugin {plugin} is not supported: sockrelay \
                         reads TokenFile and ReadOnlyTokenFile sources only"
                    ));
                }
                let Some(source) = source else {
                    return Err(format!(
                        "--token-plugin {plugin} needs --token-source FILE_OR_DIR"
                    ));
                };
                Some(PathBuf::from(source))
            }
            (None, None, config) => config.clone(),
        };
        let one_target = match (&self.target, &self.unix_target, &tokens) {
            (Some(_), Some(_), _) => {
                return Err("give TARGET_ADDR or --unix-target, not both".into())
            }
            (Some(_), None, Some(_)) | (None, Some(_), Some(_)) => {
                return Err(
                    "with --token-plugin the tokens name the targets: give no TARGET_ADDR or \
                     --unix-target"
                        .into(),
                )
            }
            (Some(target), None, None) => Some(target_addr(target)?),
            (None, Some(path), None) => {
                // websockify takes a path relative to where it started.
                let path = std::path::absolute(path)
                    .map_err(|e| format!("--unix-target {path:?}: {e}"))?;
                Some(format!("unix:{}", path.display()))
            }
            (None, None, None) => {
                return Err(
                    "give TARGET_ADDR, --unix-target FILE or --token-plugin TokenFile \
                     --token-source FILE"
                        .into(),
                )
            }
            (None, None, Some(_)) => None,
        };
        if let Some(target) = &one_target {
            serve.allow = vec![target.clone()];
            if self.proxy_protocol {
                serve.proxy_protocol = vec![target.clone()];
            }
        } else if self.proxy_protocol {
            return Err(
                "--proxy-protocol applies to TARGET_ADDR or --unix-target: with tokens, write \
                 `proxy-protocol` after the target on the token's line"
                    .into(),
            );
        }
        serve.target_tokens = tokens;

        match (&self.cert, self.ssl_only) {
            (None, false) if self.key.is_some() => return Err("--key needs --cert".into()),
            (None, false) => {}
            // As websockify: with a certificate but without --ssl-only, plain connections on
            // the same port too.
            (cert, ssl_only) => {
                let cert = cert.clone().unwrap_or_else(|| PathBuf::from("self.pem"));
                serve.tls_key = Some(self.key.clone().unwrap_or_else(|| cert.clone()));
                serve.tls_cert = Some(cert);
                serve.plain_too = !ssl_only;
            }
        }
        match self.ssl_version.as_deref() {
            None | Some("default" | "tlsv1_1" | "tlsv1_2") => {}
            Some(other) => {
                return Err(format!(
                    "websockify option --ssl-version {other} is not supported: sockrelay \
                     accepts TLS 1.2 and 1.3 (default, tlsv1_1 and tlsv1_2 mean that)"
                ))
            }
        }
        // websockify's --heartbeat is sockrelay's --ping-interval (0 sends none either way);
        // without it, sockrelay's default Pings keep proxies in front from cutting quiet
        // sessions.
        serve.ping_interval = self.heartbeat;
        let extras = Extras {
            exit_when_idle: match self.idle_timeout {
                None | Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
            },
            // `--timeout 0` is websockify's default: none.
            stop_after: match self.timeout {
                None | Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
            },
            run_once: self.run_once,
            log_file: self.log_file.clone(),
            verbose: self.verbose,
        };
        Ok((serve, extras))
    }
}

/// Completes once no bridge has been open for `after` (websockify's `--idle-timeout`: the
/// relay then stops, as websockify exits). Looked at every second, or four times per `after`
/// when that is shorter.
pub async fn exit_when_idle(metrics: Arc<Metrics>, after: Duration) {
    let tick = (after / 4).min(Duration::from_secs(1));
    let mut idle_since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if metrics.bridges_active() > 0 {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= after {
            tracing::info!(
                idle_timeout = after.as_secs(),
                "no connection for --idle-timeout: exiting"
            );
            return;
        }
    }
}

/// Completes once the relay may exit under websockify's `--timeout` (`stop_after`) or
/// `--run-once`: when the timeout passes, or once the first WebSocket connection dials its
/// target (reached or not, as websockify counts it), `listening` is cancelled (the listener
/// closes: new connections are refused, as when websockify's listener exits, and an upgrade on
/// an open HTTP connection gets 503), and then once no bridge is open or dialing. websockify
/// serves a `--run-once` connection in its listening process, so it takes no other meanwhile;
/// here an upgrade already admitted when the first one dials is served too, and waited for.
/// With neither, it never completes.
pub async fn exit_when_done(
    metrics: Arc<Metrics>,
    listening: tokio_util::sync::CancellationToken,
    stop_after: Option<Duration>,
    run_once: bool,
) {
    let timeout = async {
        match stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let first_bridge = async {
        if !run_once {
            std::future::pending::<()>().await;
        }
        while metrics.bridges_dialed() == 0 {
            metrics.changed().await;
        }
    };
    tokio::select! {
        () = timeout => tracing::info!(
            timeout = stop_after.map_or(0, |t| t.as_secs()),
            "--timeout: taking no more connections; exiting once the open ones end"
        ),
        () = first_bridge => tracing::info!(
            "--run-once: taking no more connections; exiting once this one ends"
        ),
    }
    listening.cancel();
    while metrics.bridges_busy() {
        metrics.changed().await;
    }
    tracing::info!("no connection open: exiting");
}

/// websockify's `[HOST:]PORT`: without a host, every interface (IPv4, or IPv6 with
/// `--prefer-ipv6`); a host may be a name or a bracketed IPv6 address.
fn listen_addr(source: &str, prefer_ipv6: bool) -> Result<SocketAddr, String> {
    let bad = || format!("invalid SOURCE_ADDR {source:?}: expected [HOST:]PORT");
    let (host, port) = match source.rsplit_once(':') {
        Some((host, port)) => (
            Some(host.trim_start_matches('[').trim_end_matches(']')),
            port,
        ),
        None => (None, source),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        let any = if prefer_ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        return Ok(SocketAddr::new(any, port));
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve SOURCE_ADDR {source:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv6() == prefer_ipv6)
        .or(addrs.first())
        .copied()
        .ok_or_else(bad)
}

/// websockify's `HOST:PORT` (an IPv6 host may be bracketed or not) as the allow-list writes it.
fn target_addr(target: &str) -> Result<String, String> {
    let bad = || format!("invalid TARGET_ADDR {target:?}: expected HOST:PORT");
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    crate::target::TargetSpec::parse(&text)
        .map(|spec| spec.to_string())
        .map_err(|e| format!("invalid TARGET_ADDR {target:?}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: WebsockifyArgs,
    }

    fn parse(line: &str) -> Result<(ServeArgs, Extras), String> {
        let words = std::iter::once("websockify").chain(line.split_whitespace());
        Cli::try_parse_from(words).unwrap().args.to_serve()
    }

    /// Regression: lines websockify takes were refused (`-v -v`, `--web A --web B`, `--heart
    /// 30`, its own default `--timeout 0`); `--timeout N` and `--run-once` are taken.
    #[test]
    fn repeated_and_abbreviated_options_are_read_as_websockify_reads_them() {
        let (serve, extras) = parse(
            "-v -v --web /a --web /b --heart 30 --idle 60 --timeout 0 --origin http://a \
             --origin http://b 6080 localhost:5900",
        )
        .unwrap();
        assert!(extras.verbose);
        assert_eq!(serve.web, Some(PathBuf::from("/b")));
        assert_eq!(serve.ping_interval, Some(30));
        assert_eq!(extras.exit_when_idle, Some(Duration::from_secs(60)));
        assert_eq!(serve.origin, ["http://a", "http://b"]);
        assert_eq!(extras.stop_after, None);
        assert!(!extras.run_once);
        // An ambiguous prefix is refused, as by argparse.
        let words = ["websockify", "--to", "5", "6080", "localhost:5900"];
        assert!(Cli::try_parse_from(words).is_err());
        let (_, extras) = parse("--timeout 5 --run-once 6080 localhost:5900").unwrap();
        assert_eq!(extras.stop_after, Some(Duration::from_secs(5)));
        assert!(extras.run_once);
    }

    #[test]
    fn one_target_mode_listens_where_websockify_does_and_opens_nothing_else() {
        let (serve, extras) = parse("6080 localhost:5900").unwrap();
        assert_eq!(serve.http, Some("0.0.0.0:6080".parse().unwrap()));
        assert!(serve.no_builtins);
        assert!(serve.ws_any_path);
        assert_eq!(serve.allow, ["localhost:5900"]);
        assert!(serve.target_tokens.is_none());
        assert_eq!(serve.idle_timeout, Some(QUIET_BRIDGE_SECS));
        assert_eq!(serve.ping_interval, None, "sockrelay's default Pings");
        let (serve, _) = parse("--heartbeat 15 6080 localhost:5900").unwrap();
        assert_eq!(serve.ping_interval, Some(15));
        let (serve, _) = parse("--unix-target /run/vnc.sock 6080").unwrap();
        assert_eq!(serve.allow, ["unix:/run/vnc.sock"]);
        assert!(extras.exit_when_idle.is_none());
        let (serve, _) = parse("-6 127.0.0.1:6080 [::1]:5900").unwrap();
        assert_eq!(serve.http, Some("127.0.0.1:6080".parse().unwrap()));
        assert_eq!(serve.allow, ["[::1]:5900"]);
        let (serve, _) = parse("--prefer-ipv6 6080 ::1:5900").unwrap();
        assert_eq!(serve.http, Some("[::]:6080".parse().unwrap()));
        assert_eq!(serve.allow, ["[::1]:5900"]);
    }

    #[test]
    fn token_files_web_tls_and_idle_exit() {
        let (serve, extras) = parse(
            "--web /usr/share/novnc --token-plugin TokenFile --token-source /etc/tokens \
             --cert c.pem --ssl-only --idle-timeout 30 -v 127.0.0.1:6080",
        )
        .unwrap();
        assert_eq!(serve.target_tokens, Some(PathBuf::from("/etc/tokens")));
        assert!(serve.allow.is_empty());
        assert_eq!(serve.web, Some(PathBuf::from("/usr/share/novnc")));
        assert_eq!(serve.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(
            serve.tls_key,
            Some(PathBuf::from("c.pem")),
            "the key is in the cert"
        );
        assert_eq!(extras.exit_when_idle, Some(Duration::from_secs(30)));
        assert!(extras.verbose);
        let (serve, _) = parse(
            "--token-plugin websockify.token_plugins.ReadOnlyTokenFile --token-source d 6080",
        )
        .unwrap();
        assert_eq!(serve.target_tokens, Some(PathBuf::from("d")));
        let (serve, _) = parse("--target-config /etc/t 6080").unwrap();
        assert_eq!(serve.target_tokens, Some(PathBuf::from("/etc/t")));
        let (serve, _) = parse("--ssl-only --key k.pem 6080 127.0.0.1:5900").unwrap();
        assert_eq!(serve.tls_cert, Some(PathBuf::from("self.pem")));
        assert_eq!(serve.tls_key, Some(PathBuf::from("k.pem")));
        assert!(!serve.plain_too);
        // A certificate without --ssl-only: plain connections on the same port too.
        let (serve, _) = parse("--cert c.pem 6080 127.0.0.1:5900").unwrap();
        assert_eq!(serve.tls_cert, Some(PathBuf::from("c.pem")));
        assert!(serve.plain_too);
        let (serve, _) = parse("6080 127.0.0.1:5900").unwrap();
        assert!(serve.tls_cert.is_none() && !serve.plain_too);
    }

    #[test]
    fn every_refused_option_is_named() {
        for (line, option) in [
            ("--traffic", "--traffic"),
            ("--record /tmp/r", "--record"),
            ("-D", "--daemon"),
            ("--daemon", "--daemon"),
            ("--key-password x", "--key-password"),
            ("--ssl-target", "--ssl-target"),
            ("--verify-client", "--verify-client"),
            ("--cafile ca.pem", "--cafile"),
            ("--ssl-ciphers ALL", "--ssl-ciphers"),
            ("--unix-listen /tmp/s", "--unix-listen"),
            ("--unix-listen-mode 600", "--unix-listen-mode"),
            ("--inetd", "--inetd"),
            ("--web-auth", "--web-auth"),
            ("--wrap-mode respawn", "--wrap-mode"),
            ("--libserver", "--libserver"),
            ("--host-token", "--host-token"),
            ("--auth-plugin BasicHTTPAuth", "--auth-plugin"),
            ("--auth-source u:p", "--auth-source"),
            ("--syslog /dev/log", "--syslog"),
            ("--legacy-syslog", "--legacy-syslog"),
            ("--ssl-version tlsv1_3", "--ssl-version tlsv1_3"),
            (
                "--token-plugin TokenRedis --token-source r",
                "--token-plugin TokenRedis",
            ),
        ] {
            let e = parse(&format!("{line} 6080 127.0.0.1:5900")).unwrap_err();
            assert!(
                e.starts_with(&format!("websockify option {option} is not supported: ")),
                "{line}: {e}"
            );
        }
        let e = parse("6080 -- x11vnc -display :0").unwrap_err();
        assert!(e.contains("WRAP_COMMAND_LINE"), "{e}");
    }

    #[test]
    fn inconsistent_lines_are_refused() {
        for (line, fragment) in [
            ("6080", "give TARGET_ADDR"),
            ("--key k.pem 6080 127.0.0.1:5900", "--key needs --cert"),
            ("--token-source f 6080", "needs --token-plugin"),
            ("--token-plugin TokenFile 6080", "needs --token-source"),
            (
                "--token-plugin TokenFile --token-source f 6080 127.0.0.1:5900",
                "give no TARGET_ADDR",
            ),
            ("--unix-target /tmp/s 6080 127.0.0.1:5900", "not both"),
            ("http 127.0.0.1:5900", "invalid SOURCE_ADDR"),
            ("6080 5900", "invalid TARGET_ADDR"),
            ("6080 127.1:5900", "invalid TARGET_ADDR"),
            (
                "--proxy-protocol --token-plugin TokenFile --token-source f 6080",
                "token's line",
            ),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(fragment), "{line}: {e}");
        }
    }
}
