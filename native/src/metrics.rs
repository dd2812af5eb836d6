//! Counters for `GET /metrics` (Prometheus text format).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

/// Direction of bytes through a bridge.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Direction {
    ClientToTarget,
    TargetToClient,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

/// Why a `/ws` request was refused before a bridge started.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RefusalReason {
    Target,
    Origin,
    Token,
    Capacity,
    BadRequest,
    ShuttingDown,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// How a bridge ended badly.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ErrorKind {
    /// The target could not be reached.
    Connect,
    /// The target reset the connection or failed mid-stream.
    Target,
    /// The client broke the WebSocket protocol.
    Protocol,
    /// The client's connection ended (EOF or reset) without a Close.
    ClientGone,
    /// A client message exceeded `--max-message`.
    TooBig,
    /// No traffic for `--idle-timeout`.
    Idle,
    /// The client sent nothing for `--ping-timeout` after a Ping.
    PingTimeout,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Why the UDP echo did not answer a datagram (no echo loops, CERT CA-1996-01).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum EchoDrop {
    /// From echo, daytime, chargen or time (7, 13, 19, 37).
    LoopPort,
    /// From the echo's own port.
    OwnPort,
    /// From port 0, which cannot be answered.
    PortZero,
}

/// Protocol of the echo and acknowledge services.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtoLabels {
    proto: &'static str,
}

/// Label values in Prometheus' snake_case.
macro_rules! label_values {
    ($($ty:ident { $($variant:ident => $text:literal),* $(,)? })*) => {$(
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
    )*};
}

label_values! {
    Direction { ClientToTarget => "client_to_target", TargetToClient => "target_to_client" }
    RefusalReason {
        Target => "target", Origin => "origin", Token => "token", Capacity => "capacity",
        BadRequest => "bad_request", ShuttingDown => "shutting_down",
    }
    ErrorKind {
        Connect => "connect", Target => "target", Protocol => "protocol",
        ClientGone => "client_gone", TooBig => "too_big", Idle => "idle",
        PingTimeout => "ping_timeout",
    }
    Proto { Tcp => "tcp", Udp => "udp" }
    EchoDrop { LoopPort => "loop_port", OwnPort => "own_port", PortZero => "port_zero" }
}

/// All of the relay's metrics; cheap to share (`Arc`) and update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    bridges_active: Gauge,
    bridges_total: Counter,
    bridge_bytes: Family<DirectionLabels, Counter>,
    /// The two counters of `bridge_bytes`, looked up once: bridges add to them per message.
    client_to_target: Counter,
    target_to_client: Counter,
    spliced_bytes: Counter,
    refusals: Family<ReasonLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    udp_icmp_errors: Counter,
    echo_active: Gauge,
    echo_bytes: Family<ProtoLabels, Counter>,
    /// The two counters of `echo_bytes`, looked up once: the echo adds to them per read.
    echo_tcp: Counter,
    echo_udp: Counter,
    echo_dropped: Family<ReasonLabels, Counter>,
    http_requests: Counter,
    /// WebSocket connections that went on to dial their target, opened or not, and those
    /// still dialing (not exported: websockify's `--run-once` and `--timeout` wait on them).
    dialed: AtomicU64,
    dialing: AtomicI64,
    /// Told when a bridge starts or stops dialing and when one closes.
    changed: Notify,
}

/// A bridge dialing its target (see [`Metrics::bridge_dialing`]).
#[must_use = "the bridge counts as dialing only while the guard lives"]
pub struct Dialing<'a>(&'a Metrics);

impl Drop for Dialing<'_> {
    fn drop(&mut self) {
        self.0.dialing.fetch_sub(1, SeqCst);
        self.0.changed.notify_one();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sockrelay");
        let bridge_bytes = Family::<DirectionLabels, Counter>::default();
        let direction = |d: Direction| {
            bridge_bytes
                .get_or_create(&DirectionLabels {
                    direction: d.as_str(),
                })
                .clone()
        };
        let echo_bytes = Family::<ProtoLabels, Counter>::default();
        let proto = |p: Proto| {
            echo_bytes
                .get_or_create(&ProtoLabels { proto: p.as_str() })
                .clone()
        };
        let m = Metrics {
            echo_tcp: proto(Proto::Tcp),
            echo_udp: proto(Proto::Udp),
            echo_bytes,
            bridges_active: Gauge::default(),
            bridges_total: Counter::default(),
            client_to_target: direction(Direction::ClientToTarget),
            target_to_client: direction(Direction::TargetToClient),
            bridge_bytes,
            spliced_bytes: Counter::default(),
            refusals: Family::default(),
            errors: Family::default(),
            udp_icmp_errors: Counter::default(),
            echo_active: Gauge::default(),
            echo_dropped: Family::default(),
            dialed: AtomicU64::new(0),
            dialing: AtomicI64::new(0),
            changed: Notify::new(),
            http_requests: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "bridges_active",
            "WebSocket-to-TCP bridges open now",
            m.bridges_active.clone(),
        );
        registry.register("bridges", "Bridges opened", m.bridges_total.clone());
        registry.register(
            "bridge_bytes",
            "Payload bytes relayed by bridges",
            m.bridge_bytes.clone(),
        );
        registry.register(
            "bridge_spliced_bytes",
            "Bridge bytes to clients sent in spliced frames, without copies (Linux, plain TCP clients)",
            m.spliced_bytes.clone(),
        );
        registry.register(
            "refusals",
            "WebSocket requests refused before bridging",
            m.refusals.clone(),
        );
        registry.register(
            "bridge_errors",
            "Bridges that ended in an error",
            m.errors.clone(),
        );
        registry.register(
            "bridge_udp_icmp_errors",
            "ICMP errors (port, host or network unreachable) reported on UDP bridges' sockets",
            m.udp_icmp_errors.clone(),
        );
        registry.register(
            "echo_connections_active",
            "Echo and acknowledge TCP connections open now",
            m.echo_active.clone(),
        );
        registry.register(
            "echo_bytes",
            "Bytes echoed by the echo service",
            m.echo_bytes.clone(),
        );
        registry.register(
            "echo_udp_dropped",
            "Datagrams the UDP echo did not answer, so that it never loops",
            m.echo_dropped.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests received",
            m.http_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn bridge_opened(&self) {
        self.bridges_total.inc();
        self.bridges_active.inc();
    }

    pub fn bridge_closed(&self) {
        self.bridges_active.dec();
        self.changed.notify_one();
    }

    pub fn bridges_active(&self) -> i64 {
        self.bridges_active.get()
    }

    /// A WebSocket connection dials its target: counted as dialing until the guard drops,
    /// which must be after the bridge is counted open ([`Metrics::bridge_opened`]) if it opens.
    pub fn bridge_dialing(&self) -> Dialing<'_> {
        self.dialed.fetch_add(1, SeqCst);
        self.dialing.fetch_add(1, SeqCst);
        self.changed.notify_one();
        Dialing(self)
    }

    /// WebSocket connections that dialed their target since the relay started, whether the
    /// bridge opened or not.
    pub fn bridges_dialed(&self) -> u64 {
        self.dialed.load(SeqCst)
    }

    /// Whether a bridge is open or still dialing its target. Dialing is read first: a bridge
    /// that opens is counted open before it stops counting as dialing.
    pub fn bridges_busy(&self) -> bool {
        self.dialing.load(SeqCst) > 0 || self.bridges_active() > 0
    }

    /// Completes at the next change of [`Metrics::bridges_dialed`] or
    /// [`Metrics::bridges_busy`] (at once if one came since the last call): for one waiter,
    /// which checks again after each.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn bytes(&self, direction: Direction, n: usize) {
        match direction {
            Direction::ClientToTarget => &self.client_to_target,
            Direction::TargetToClient => &self.target_to_client,
        }
        .inc_by(n as u64);
    }

    /// `n` bytes went to a client in a spliced frame (also counted by [`Metrics::bytes`]).
    pub fn spliced(&self, n: usize) {
        self.spliced_bytes.inc_by(n as u64);
    }

    pub fn refused(&self, reason: RefusalReason) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// A UDP bridge's socket reported an ICMP error about its target.
    pub fn udp_icmp_error(&self) {
        self.udp_icmp_errors.inc();
    }

    /// Echo and acknowledge connections open now.
    pub fn echo_active(&self) -> i64 {
        self.echo_active.get()
    }

    pub fn echo_opened(&self) {
        self.echo_active.inc();
    }

    pub fn echo_closed(&self) {
        self.echo_active.dec();
    }

    pub fn echoed(&self, proto: Proto, n: usize) {
        match proto {
            Proto::Tcp => &self.echo_tcp,
            Proto::Udp => &self.echo_udp,
        }
        .inc_by(n as u64);
    }

    pub fn echo_dropped(&self, why: EchoDrop) {
        self.echo_dropped
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }

    pub fn http_request(&self) {
        self.http_requests.inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_labelled_counters() {
        let m = Metrics::new();
        m.bridge_opened();
        m.bytes(Direction::ClientToTarget, 5);
        m.refused(RefusalReason::Origin);
        m.bytes(Direction::TargetToClient, 7);
        m.spliced(3);
        m.echoed(Proto::Tcp, 4);
        let text = m.encode();
        assert!(
            text.contains("sockrelay_bridge_bytes_total{direction=\"target_to_client\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("sockrelay_bridge_spliced_bytes_total 3"),
            "{text}"
        );
        assert!(
            text.contains("sockrelay_echo_bytes_total{proto=\"tcp\"} 4"),
            "{text}"
        );
        assert!(text.contains("sockrelay_bridges_active 1"), "{text}");
        assert!(
            text.contains("sockrelay_bridge_bytes_total{direction=\"client_to_target\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("sockrelay_refusals_total{reason=\"origin\"} 1"),
            "{text}"
        );
        m.bridge_closed();
        assert_eq!(m.bridges_active(), 0);
    }
}
