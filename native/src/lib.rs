//! `sockrelay`: the tutorial's echo servers, a safe WebSocket-to-TCP bridge, and the web client
//! that uses them, in one binary.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sockrelay::{config::Settings, Relay};
//! let relay = Relay::bind(Settings::ephemeral()).await?;
//! println!("open {}", relay.url());
//! relay.run(sockrelay::shutdown::signal()).await
//! # }
//! ```
//!
//! # Layout
//! - [`config`]: flags, config file and defaults merged into [`config::Settings`].
//! - [`echo`]: the RFC 862 echo service (TCP and UDP) and the acknowledge server.
//! - [`accept`]: the HTTP accept loop, TLS, and the budget of connections that are not bridges.
//! - [`http`]: the routes (`/ws`, `/api/targets`, `/api/check`, `/healthz`, `/metrics`, the
//!   web client from [`http::assets`]) and the security headers.
//! - [`policy`]: whether a `/ws` request may open a bridge, and to which target: the handshake,
//!   [`policy::origin`], the token, the allow-list ([`policy::target`]).
//! - [`bridge`]: one WebSocket-to-target bridge, from the upgrade to its log line, generic over
//!   its two ends and over the kind of target.
//! - [`readsize`]: read sizes that grow with bulk traffic and shrink for quiet connections.
//! - [`splice`]: bulk frames from the target to the client without copies (Linux).
//! - [`tcp`]: listeners, target connections and their TCP congestion control.
//! - [`metrics`]: Prometheus counters.
//! - [`client`]: the tutorial's interactive TCP client (`sockrelay client`).
//! - [`tools`]: the address helpers (`sockrelay inet|serv|host`).
//! - [`shutdown`]: the Ctrl-C/SIGTERM signal.
//!
//! [`origin`], [`target`] and [`assets`] are also reachable at the top, where they were before
//! they moved under [`policy`] and [`http`].

pub mod accept;
pub mod bridge;
pub mod client;
pub mod config;
pub mod echo;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod proxy_protocol;
pub mod readsize;
pub mod shutdown;
#[cfg_attr(not(target_os = "linux"), path = "splice_none.rs")]
pub mod splice;
pub mod tcp;
pub mod tls;
pub mod tools;
pub mod websockify;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use crate::http::assets;
pub use crate::policy::{origin, target};
pub use crate::tcp::{listen, LISTEN_BACKLOG};

use crate::config::Settings;
use crate::echo::{ServiceContext, TcpService};
use crate::metrics::Metrics;
use crate::target::Proto;

/// How long open bridges and connections get to close at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// A relay whose sockets are bound, ready to [`run`](Relay::run).
pub struct Relay {
    settings: Arc<Settings>,
    http: TcpListener,
    /// The echo and acknowledge servers; none with `--no-builtins`.
    builtins: Option<Builtins>,
    tls: Option<TlsAcceptor>,
    allow: target::AllowList,
    tokens: Option<policy::tokens::TokenTargets>,
    web: Option<http::webdir::WebDir>,
    /// `--trusted-proxy` and `--proxy-protocol`, with the latter's targets resolved.
    proxy: proxy_protocol::ProxyPolicy,
    metrics: Arc<Metrics>,
    /// Closes the HTTP listener when cancelled (see [`Relay::listener_stop`]).
    listening: CancellationToken,
}

/// The built-in services' sockets.
struct Builtins {
    echo_tcp: TcpListener,
    echo_udp: UdpSocket,
    ack: TcpListener,
}

impl Relay {
    /// Binds every service (port 0 picks a free port) and resolves the allow-list.
    pub async fn bind(settings: Settings) -> anyhow::Result<Relay> {
        let tls = settings.tls.as_ref().map(tls::acceptor).transpose()?;
        let congestion = settings.tcp_congestion.as_deref();
        if let Some(name) = congestion {
            tcp::check_congestion(name, settings.http)
                .map_err(|e| anyhow::anyhow!("--tcp-congestion: {e}"))?;
        }
        let http = listen(settings.http, congestion)
            .with_context(|| format!("cannot listen for HTTP on {}", settings.http))?;
        let mut entries = Vec::new();
        let builtins = if settings.builtins {
            let (echo_tcp, echo_udp) = echo::bind_echo(settings.echo, congestion)
                .await
                .with_context(|| format!("cannot listen for echo on {}", settings.echo))?;
            let ack = listen(settings.ack, congestion).with_context(|| {
                format!(
                    "cannot listen for the acknowledge server on {}",
                    settings.ack
                )
            })?;
            entries = vec![
                ("echo", Proto::Tcp, echo_tcp.local_addr()?),
                ("ack", Proto::Tcp, ack.local_addr()?),
                ("udp-echo", Proto::Udp, echo_udp.local_addr()?),
            ];
            Some(Builtins {
                echo_tcp,
                echo_udp,
                ack,
            })
        } else {
            None
        };
        let allow = target::AllowList::build(&entries, &settings.allow).await?;
        let proxy = proxy_protocol::ProxyPolicy::build(&settings, &allow).await?;
        let tokens = match &settings.target_tokens {
            Some(source) => Some(
                policy::tokens::TokenTargets::open(source)
                    .await
                    .map_err(|e| anyhow::anyhow!("--target-tokens: {e}"))?,
            ),
            None => None,
        };
        let web = match &settings.web {
            Some(dir) => Some(
                http::webdir::WebDir::open(dir)
                    .with_context(|| format!("--web {}", dir.display()))?,
            ),
            None => None,
        };
        Ok(Relay {
            settings: Arc::new(settings),
            http,
            builtins,
            tls,
            allow,
            tokens,
            web,
            proxy,
            metrics: Arc::new(Metrics::new()),
            listening: CancellationToken::new(),
        })
    }

    /// Cancelling this closes the HTTP listener: new connections are refused from then on,
    /// while open connections and bridges go on (websockify's `--timeout` and `--run-once`).
    /// The relay still runs until its shutdown future completes.
    pub fn listener_stop(&self) -> CancellationToken {
        self.listening.clone()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.settings.http)
    }

    /// The bound echo address (TCP and UDP).
    pub fn echo_addr(&self) -> SocketAddr {
        self.builtins
            .as_ref()
            .and_then(|b| b.echo_tcp.local_addr().ok())
            .unwrap_or(self.settings.echo)
    }

    /// The bound acknowledge server address.
    pub fn ack_addr(&self) -> SocketAddr {
        self.builtins
            .as_ref()
            .and_then(|b| b.ack.local_addr().ok())
            .unwrap_or(self.settings.ack)
    }

    /// The URL to open in a browser.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let addr = self.http_addr();
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        format!("{scheme}://{host}:{}/", addr.port())
    }

    /// The relay's metrics (shared with the running services).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes bridges with 1001 and
    /// waits (bounded) for them to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let url = self.url();
        info!(service = "http", addr = %self.http_addr(), tls = self.tls.is_some(), "listening");
        if self.builtins.is_some() {
            info!(service = "echo", addr = %self.echo_addr(), proto = "tcp+udp", "listening");
            info!(service = "ack", addr = %self.ack_addr(), "listening");
        }
        if let Some(tokens) = &self.tokens {
            info!(source = %tokens.source().display(), "targets by token (?token=NAME)");
        }
        if let Some(name) = &self.settings.tcp_congestion {
            info!(tcp_congestion = %name, "TCP connections use this congestion control");
        }
        if !assets::client_built() {
            warn!("the browser client was not built into this binary: run `make run` from the source tree");
        }

        let ctx = ServiceContext {
            metrics: self.metrics.clone(),
            limit: Arc::new(Semaphore::new(self.settings.max_conns)),
            cancel: cancel.clone(),
        };
        let ack_ctx = ServiceContext {
            limit: Arc::new(Semaphore::new(self.settings.max_conns)),
            ..ctx.clone()
        };
        let state = Arc::new(http::AppState {
            settings: self.settings.clone(),
            allow: self.allow,
            origin: origin::OriginPolicy::new(&self.settings.origin),
            metrics: self.metrics.clone(),
            bridges: Arc::new(Semaphore::new(self.settings.max_conns)),
            cancel: cancel.clone(),
            listening: self.listening.clone(),
            tracker: tracker.clone(),
            tls: self.tls.is_some(),
            tokens: self.tokens,
            proxy: self.proxy,
            web: self.web,
        });
        let router = http::router(state.clone());
        let ack_reply: Arc<str> = self.settings.ack_reply.as_str().into();

        let builtins = async {
            if let Some(b) = self.builtins {
                tokio::join!(
                    echo::serve_tcp(b.echo_tcp, TcpService::Echo, ctx.clone()),
                    echo::serve_udp(b.echo_udp, self.metrics.clone(), cancel.clone()),
                    echo::serve_tcp(b.ack, TcpService::Ack(ack_reply), ack_ctx),
                );
            }
        };
        let listening = self.listening;
        let http = accept::serve(self.http, router, self.tls, state, listening.clone());
        let services = async { tokio::join!(http, builtins) };
        info!("ready: open {url}");
        let stop = async {
            shutdown.await;
            info!("shutting down: closing bridges");
            cancel.cancel();
            listening.cancel();
        };
        tokio::join!(services, stop);
        tracker.close();
        if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
            warn!(remaining = tracker.len(), "drain timed out");
        }
        info!("stopped");
        Ok(())
    }
}
