//! One WebSocket-to-target bridge, from the upgraded connection to its "bridge closed" log
//! line: bytes both ways, exact and in order, with bounded buffering.
//!
//! Owns: the WebSocket codec and its limits ([`Limits`]), connecting to the target
//! ([`target`]), the two pumps (`client_to_target` and `target_to_client`, each in its module
//! and testable alone), how a bridge ends and the close code the client hears ([`ending`]), the
//! idle watch ([`idle`]) and the heartbeat on its timer (`heartbeat`), the pumps of a UDP
//! target ([`datagram`]), the splice glue, and the lifecycle metrics and log line. [`serve`] is
//! the one entry point.
//!
//! Leaves to others: whether a request may open a bridge and to which target
//! ([`crate::policy`]), the HTTP handshake's answer and the `--max-conns` permit
//! ([`crate::http`]), splicing itself ([`crate::splice`]).
//!
//! Generic over the WebSocket (any `Sink` + `Stream` of messages) and the target (any
//! [`Target`]), so tests drive it with in-memory pipes, and each pump runs alone over its
//! traits.
//!
//! Backpressure comes from reading ahead only what one read brings: the socket is read for a
//! client message only after the previous ones were written to the target, and target bytes are
//! read only after the previous frame was written to the client. A slow side therefore slows
//! the other, and per-bridge memory is one read buffer per direction (the codec's holds at most
//! one frame, `--max-message` bounds it; the direct path of [`park`] holds at most 16 KiB).
//!
//! Performance (see BENCHMARKS.md): small request/response traffic costs exactly one syscall per
//! hop, and bulk data is touched once in user space (the client's masking is undone in place).
//! The codec (tokio-websockets) reads into uninitialised memory, hands out payloads without
//! copying, and writes each frame's header and payload in one vectored write. Target bytes are
//! read into a reusable buffer and become the frame's payload as they are; client messages that
//! have already arrived are coalesced into one target write; the target buffer starts small and
//! grows only while reads fill it, so an idle bridge costs a few KiB.

mod client_to_target;
pub mod datagram;
pub mod ending;
mod halves;
mod heartbeat;
pub mod idle;
pub mod park;
pub mod target;
mod target_to_client;
#[cfg(test)]
mod tests;
mod woken;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{Sink, Stream};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_websockets::{Error as WsError, Message};
use tracing::{debug, info};

use crate::config::Settings;
use crate::metrics::{Direction, ErrorKind, Metrics};
use crate::splice::Splicer;
use client_to_target::{client_to_target, Step};
use ending::{close_client, close_message, codes, short_io_error, CLOSE_GRACE};
pub use ending::{Ending, Report};
use heartbeat::{Beat, Heartbeat, Pinged};
use idle::{idle, Activity};
pub use target::{Dest, Dial, Target, TcpAddr, UdpAddr, UnixAddr};
use target_to_client::target_to_client;

/// The WebSocket a bridge runs on: messages in and out, the codec's errors.
pub trait Client:
    Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin
{
    /// Gives back the codec's buffers while the bridge is quiet, if it holds nothing now (see
    /// [`park`]); it is made anew when the bridge next uses it, and `unparked` woken then.
    /// Whether it did.
    fn park(&mut self, unparked: &std::task::Waker) -> bool {
        let _ = unparked;
        false
    }

    /// Whether the codec is parked now.
    fn is_parked(&self) -> bool {
        false
    }
}

/// A codec that is never parked.
impl<S: AsyncRead + AsyncWrite + Unpin> Client for tokio_websockets::WebSocketStream<S> {}

/// A bridge the HTTP side has admitted and answered 101.
#[derive(Debug)]
pub struct Order<D> {
    /// The client's address, for the log line.
    pub peer: Option<SocketAddr>,
    /// Where to connect.
    pub target: D,
    /// The bridge's place under `--max-conns`, held until it ends.
    pub permit: OwnedSemaphorePermit,
    /// A PROXY protocol header the target is sent before anything else, if the peer the
    /// bridge reaches opted in (`--proxy-protocol`; stream targets only).
    pub proxy: Option<crate::proxy_protocol::ProxyHeader>,
    /// Tell the client when the target is connected ([`crate::policy::CONNECTED`]).
    pub announce: bool,
}

impl<D> Order<D> {
    /// The destination, and the rest of the order to give a narrower one with [`Order::to`].
    fn take_target(self) -> (D, Order<()>) {
        let Order {
            peer,
            target,
            permit,
            proxy,
            announce,
        } = self;
        (
            target,
            Order {
                peer,
                target: (),
                permit,
                proxy,
                announce,
            },
        )
    }
}

impl Order<()> {
    /// The order for `target`.
    fn to<T>(self, target: T) -> Order<T> {
        Order {
            peer: self.peer,
            target,
            permit: self.permit,
            proxy: self.proxy,
            announce: self.announce,
        }
    }
}

/// What every bridge of a relay shares.
#[derive(Debug, Clone)]
pub struct Env {
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// Fires at shutdown; bridges then close with 1001.
    pub cancel: CancellationToken,
    /// The relay's tasks, drained at shutdown: an open bridge runs as one of them.
    pub tracker: tokio_util::task::TaskTracker,
}

/// Settings of one bridge.
#[derive(Debug, Clone)]
pub struct Limits {
    pub idle_timeout: Duration,
    /// `--max-message`: the codec refuses a frame or message over it with Close 1009 before
    /// buffering it.
    pub max_message: usize,
    /// `--ping-interval`; zero sends no Pings.
    pub ping_interval: Duration,
    /// `--ping-timeout`.
    pub ping_timeout: Duration,
}

impl Limits {
    fn of(settings: &Settings) -> Limits {
        Limits {
            idle_timeout: settings.idle_timeout,
            max_message: settings.max_message,
            ping_interval: settings.ping_interval,
            ping_timeout: settings.ping_timeout,
        }
    }

    /// The WebSocket codec of a bridge, with [`Limits::max_message`] as its limit. The codec's
    /// read buffer holds at most one frame and is filled without being zeroed first, so it
    /// costs a bridge only what it has read. Outgoing frames are one target read each (at most
    /// `TARGET_READ_MAX` bytes; spliced ones go around the codec).
    pub fn codec(&self) -> tokio_websockets::ServerBuilder {
        codec_builder(self.max_message)
    }
}

/// The settings of a bridge's codec for a `--max-message` of `max_message`: every codec of a
/// bridge is made by this, the first and those made anew after parking (see [`park`]).
fn codec_builder(max_message: usize) -> tokio_websockets::ServerBuilder {
    let limits = tokio_websockets::Limits::default().max_payload_len(Some(max_message));
    tokio_websockets::ServerBuilder::new().limits(limits)
}

/// Runs one bridge on a connection that is being upgraded: waits for the upgrade, connects to
/// the target, bridges, and logs one "bridge closed" line, whichever way it ends.
pub async fn serve(on_upgrade: hyper::upgrade::OnUpgrade, order: Order<Dest>, env: Env) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => return debug!(error = %e, "websocket upgrade failed"),
    };
    // A plain TCP client: bulk frames to it can be spliced (frames to a TLS client are
    // encrypted in user space, so they cannot), unless `--no-splice`.
    #[cfg(target_os = "linux")]
    let upgraded = if env.settings.splice {
        match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
            Ok(parts) => {
                let (io, splicer) = crate::splice::share(parts.io.into_inner(), parts.read_buf);
                return bridge(io, Some(splicer), order, &env).await;
            }
            Err(upgraded) => upgraded,
        }
    } else {
        upgraded
    };
    bridge(TokioIo::new(upgraded), None, order, &env).await;
}

/// Connects to the target and bridges `io`, the upgraded client connection, to it; `splicer`
/// where `io` is a plain TCP connection (see [`crate::splice`]). Each kind of target is its
/// own monomorphic bridge: the TCP one is exactly what it would be alone.
async fn bridge<I>(io: I, splicer: Option<Splicer>, order: Order<Dest>, env: &Env)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (dest, order) = order.take_target();
    match dest {
        Dest::Tcp(target) => bridge_stream(io, splicer, order.to(target), env).await,
        Dest::Unix(target) => bridge_stream(io, splicer, order.to(target), env).await,
        Dest::Udp(target) => {
            // A PROXY header is for stream targets only (admission refuses it for UDP).
            let order = Order {
                proxy: None,
                ..order.to(target)
            };
            bridge_datagrams(io, order, env).await
        }
    }
}

/// How a bridge ended, with the bytes it moved; an ending that is an error is counted.
fn report(ending: Ending, shared: &Shared, metrics: &Metrics) -> Report {
    if let Some(kind) = ending.error_kind() {
        metrics.error(kind);
    }
    Report {
        client_to_target: shared.up.load(Relaxed),
        target_to_client: shared.down.load(Relaxed),
        ending,
    }
}

/// The log line of a bridge that ended: its peer and when it began (the target's name is
/// given when it is logged, so that a bridge keeps no copy of it).
struct Closed {
    peer: Option<SocketAddr>,
    started: Instant,
}

impl Closed {
    fn new(peer: Option<SocketAddr>) -> Self {
        Closed {
            peer,
            started: Instant::now(),
        }
    }

    fn log(&self, target: &str, up: u64, down: u64, code: u16, ending: &str) {
        let peer: &dyn std::fmt::Display = match &self.peer {
            Some(peer) => peer,
            None => &"-",
        };
        info!(
            peer = %peer,
            target = %target,
            client_to_target = up,
            target_to_client = down,
            duration_ms = self.started.elapsed().as_millis() as u64,
            code,
            ending = %ending,
            "bridge closed"
        );
    }

    fn report(&self, target: &str, report: &Report) {
        self.log(
            target,
            report.client_to_target,
            report.target_to_client,
            report.ending.code(),
            &report.ending.describe(),
        );
    }
}

/// What [`connect`] tells of a bridge being opened: its log line, its target's name, and
/// whether the client asked to be told once the target is connected.
struct Dialing<'a> {
    closed: &'a Closed,
    target: &'a str,
    announce: bool,
}

/// Waits for `dialing` unless the relay stops first; a failure or the stop is told to the
/// client and logged, and gives `None`. A client that asked for it
/// ([`crate::policy::CONNECTED`]) is told once the target is connected.
async fn connect<W, C>(
    ws: &mut W,
    dialing: impl std::future::Future<Output = std::io::Result<C>>,
    env: &Env,
    at: Dialing<'_>,
) -> Option<C>
where
    W: Client,
{
    let Dialing {
        closed,
        target,
        announce,
    } = at;
    let connected = tokio::select! {
        c = dialing => c,
        () = env.cancel.cancelled() => {
            let close = close_message(codes::GOING_AWAY, "relay shutting down");
            close_client(ws, close).await;
            closed.log(target, 0, 0, codes::GOING_AWAY, "relay shutting down");
            return None;
        }
    };
    match connected {
        Ok(c) => {
            // A client gone meanwhile is found by the bridge as any other.
            if announce {
                let _ = futures_util::SinkExt::send(ws, Message::text("connected")).await;
            }
            Some(c)
        }
        Err(e) => {
            env.metrics.error(ErrorKind::Connect);
            let reason = format!("target unreachable: {}", short_io_error(&e));
            close_client(ws, close_message(codes::TARGET_ERROR, &reason)).await;
            closed.log(target, 0, 0, codes::TARGET_ERROR, &reason);
            None
        }
    }
}

/// Bridges `io` to a stream-shaped target (TCP, a Unix socket).
async fn bridge_stream<I, D>(io: I, splicer: Option<Splicer>, order: Order<D>, env: &Env)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Dial + Send + 'static,
    D::Target: AsyncWrite + Unpin,
{
    let Order {
        peer,
        target,
        permit,
        proxy,
        announce,
    } = order;
    let limits = Limits::of(&env.settings);
    // The idle watch counts every byte that moves on the client's socket.
    let activity = Activity::default();
    let mut ws = park::Codec::serve(limits.max_message, activity.watch(io));
    let closed = Closed::new(peer);
    // Until the bridge is counted open, or the dial failed (websockify's --run-once).
    let counted = env.metrics.bridge_dialing();
    let dialing = async {
        let mut stream = target.dial(&env.settings).await?;
        // Decided by the peer reached, not by the target's name: another spelling of an
        // opted-in destination gets the header too.
        if let Some(proxy) = &proxy {
            if let Some(header) = proxy.bytes_for(D::reached(&stream)?) {
                tokio::io::AsyncWriteExt::write_all(&mut stream, &header).await?;
            }
        }
        Ok(stream)
    };
    let at = Dialing {
        closed: &closed,
        target: target.name(),
        announce,
    };
    let Some(stream) = connect(&mut ws, dialing, env, at).await else {
        return;
    };
    let (opened, cancel) = (
        Opened::new(env, closed, permit, counted),
        env.cancel.clone(),
    );
    let ends = Box::new(Ends {
        ws,
        target: stream,
        splicer,
    });
    // A task of its own (see `Opened`).
    env.tracker.spawn(async move {
        let report = run(ends, &activity, &limits, &cancel, &opened.metrics).await;
        opened.end(target.name(), &report);
    });
}

/// A bridge that is open, counted as such until [`Opened::end`]. An open bridge runs as a task
/// of its own, tracked as the relay's other tasks (for the drain at shutdown): the task that
/// upgraded the connection and dialed the target ends then, and with it the memory of those
/// steps.
struct Opened {
    metrics: Arc<Metrics>,
    closed: Closed,
    /// The bridge's place under `--max-conns`, given back at its end.
    _permit: OwnedSemaphorePermit,
}

impl Opened {
    /// Counts the bridge open, and only then no longer dialing.
    fn new(
        env: &Env,
        closed: Closed,
        permit: OwnedSemaphorePermit,
        dialing: crate::metrics::Dialing<'_>,
    ) -> Self {
        env.metrics.bridge_opened();
        drop(dialing);
        Opened {
            metrics: env.metrics.clone(),
            closed,
            _permit: permit,
        }
    }

    /// Logs the bridge's line; it is counted closed, and its place given back, as it goes.
    fn end(self, target: &str, report: &Report) {
        self.closed.report(target, report);
    }
}

/// A bridge is counted closed however it ends, a task that panicked included (its place under
/// `--max-conns` goes back with the permit): `sockrelay_bridges_active` never counts one that
/// is gone.
impl Drop for Opened {
    fn drop(&mut self) {
        self.metrics.bridge_closed();
    }
}

/// Bridges `io` to a UDP target: one message, one datagram.
async fn bridge_datagrams<I>(io: I, order: Order<UdpAddr>, env: &Env)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Order {
        peer,
        target,
        permit,
        announce,
        ..
    } = order;
    let limits = Limits::of(&env.settings);
    let activity = Activity::default();
    let mut ws = park::Codec::serve(limits.max_message, activity.watch(io));
    let closed = Closed::new(peer);
    // Until the bridge is counted open, or the dial failed (websockify's --run-once).
    let counted = env.metrics.bridge_dialing();
    let at = Dialing {
        closed: &closed,
        target: &target.name,
        announce,
    };
    let Some(socket) = connect(&mut ws, target.dial(), env, at).await else {
        return;
    };
    let (opened, cancel) = (
        Opened::new(env, closed, permit, counted),
        env.cancel.clone(),
    );
    env.tracker.spawn(async move {
        let report = datagram::run(ws, socket, &activity, &limits, &cancel, &opened.metrics).await;
        opened.end(&target.name, &report);
    });
}

/// What the two pumps and the idle watch of one bridge share. Atomics only because the
/// bridge's future must be Send: they all run in one task.
#[derive(Default)]
struct Shared {
    /// Bytes written to the target.
    up: AtomicU64,
    /// Bytes sent to the client.
    down: AtomicU64,
    /// Set as soon as the client's Close (or its end) has been read: no spliced frame may
    /// follow the codec's answer to it.
    client_done: AtomicBool,
    /// Spliced bytes counted by `target_to_client`; a frame it left unfinished is finished by
    /// the codec's next write (the Close), and counted at the end.
    spliced: AtomicU64,
}

impl Shared {
    /// What the client sent, as the upstream pump handles it.
    fn step(&self, msg: Option<Result<Message, WsError>>) -> Step {
        let step = Step::from(msg);
        if matches!(step, Step::Close(_) | Step::End(_)) {
            self.client_done.store(true, Relaxed);
        }
        step
    }
}

pin_project_lite::pin_project! {
    /// The idle watch (with the heartbeat's timekeeping) and the relay's shutdown, as one
    /// future that the bridge's `select!` polls only when a timer or the shutdown wakes it, not
    /// on every message (see [`woken`]). Written out rather than a `select!` in an `async`
    /// block, which would hold the idle watch twice for the bridge's life.
    struct Watch<'a, I> {
        #[pin]
        idle: I,
        #[pin]
        shutdown: tokio_util::sync::WaitForCancellationFuture<'a>,
    }
}

impl<I: std::future::Future<Output = Ending>> std::future::Future for Watch<'_, I> {
    type Output = Ending;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ending> {
        let this = self.project();
        if this.shutdown.poll(cx).is_ready() {
            return Poll::Ready(Ending::Shutdown);
        }
        this.idle.poll(cx)
    }
}

fn watch<'a>(
    idle: impl std::future::Future<Output = Ending> + Send + 'a,
    cancel: &'a CancellationToken,
) -> woken::Woken<impl std::future::Future<Output = Ending> + Send + 'a> {
    woken::Woken::new(Watch {
        idle,
        shutdown: cancel.cancelled(),
    })
}

/// The two sockets of a bridge (and the client's splicer), handed to [`run`] in a box: an
/// `async fn` keeps its arguments for its whole life, beside the locals they are moved into,
/// so the bridge's future holds a pointer to them rather than a second copy of each.
pub struct Ends<W, T> {
    /// The client's WebSocket.
    pub ws: W,
    /// The target's stream.
    pub target: T,
    /// Where the client is a plain TCP connection: its bulk frames can be spliced.
    pub splicer: Option<Splicer>,
}

/// Runs the bridge until either side ends, the idle timeout passes, or `cancel` fires. With a
/// `splicer` (the client is a plain TCP connection, see [`crate::splice`]), bulk data from a
/// TCP target goes to the client in spliced frames. `activity` counts the bytes moving on the
/// client's socket (the caller builds the codec on [`Activity::watch`]); the bridge adds the
/// target's, and the spliced frames'.
pub async fn run<W, T>(
    ends: Box<Ends<W, T>>,
    activity: &Activity,
    limits: &Limits,
    cancel: &CancellationToken,
    metrics: &Metrics,
) -> Report
where
    W: Client + Send,
    T: Target,
{
    let Ends {
        ws,
        target,
        splicer,
    } = *ends;
    let pinged = Pinged::default();
    let mut ws = parking_lot::Mutex::new(Heartbeat::new(ws, &pinged, activity));
    let (mut target_read, target_write) = target.into_halves();
    // Partial writes count as activity: a large message to a slow target is not idle.
    let mut target_write = activity.watch(target_write);
    let shared = Shared::default();

    let (ending, deadline) = {
        let (mut stream, mut sink) = halves::halves(&ws);
        // Each pump is polled only after its own wake-up: the task wakes for one socket at a
        // time, and polling the other pump then costs a trip through the codec or a target
        // read down to a readiness check that says "not yet" (about 450 instructions of a
        // 64 B message's 5,300). Both pumps write to the client (the upstream one the Pongs
        // and Pings), and tokio wakes one waiter per direction of a socket: the client's
        // socket under the splicer wakes every waiting writer (`splice::Writers`); other
        // clients (TLS, tests' pipes) have no such thing, and their pumps are polled together.
        let alone = splicer.is_some();
        let up = woken::Woken::only_if(
            alone,
            client_to_target(&mut stream, &mut target_write, &shared, metrics, cancel),
        );
        let down = woken::Woken::only_if(
            alone,
            target_to_client::<T, _>(
                &mut target_read,
                &mut sink,
                splicer.as_ref(),
                &shared,
                activity,
                metrics,
                cancel,
            ),
        );
        let beat = Beat::new(&pinged, limits.ping_interval, limits.ping_timeout);
        let idle = idle(
            limits.idle_timeout,
            activity,
            splicer.as_ref(),
            &shared,
            beat,
            halves::Parker(&ws),
        );
        let watch = watch(idle, cancel);
        tokio::pin!(up);
        // Biased: no random start per poll. Each branch is polled only after its own
        // wake-up, so none can starve another.
        let ending = tokio::select! {
            biased;
            ending = &mut up => ending,
            ending = down => ending,
            ending = watch => ending,
        };
        // One grace for the whole closing handshake, counted from here.
        let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
        if let Ending::TargetClosed = ending {
            // The target has only shut down its sending side, perhaps: what the client sends
            // until it answers our Close (a write in progress included) still goes to the
            // target, which then sees EOF. A target that is gone entirely makes the writes
            // fail, which changes nothing: the bridge ended because the target closed.
            let _ = tokio::time::timeout_at(deadline, up).await;
        }
        (ending, deadline)
    };

    // In place, not moved out of the lock: the bridge's future would hold it twice.
    let ws = ws.get_mut();
    // The client's stream was cut short: the target hears of it at once, as a reset.
    let mut target_halves = if ending.cuts_client_short() {
        T::abort(target_read, target_write.into_inner());
        None
    } else {
        Some((target_read, target_write))
    };
    let target_read = target_halves.as_mut().map(|(read, _)| read);
    // Boxed: the closing handshake's state is only needed at the end, not for the bridge's
    // whole life.
    Box::pin(ending::close(
        ws,
        &ending,
        target_read,
        limits.max_message,
        deadline,
    ))
    .await;
    if let Some(splicer) = &splicer {
        let late = splicer.bytes().saturating_sub(shared.spliced.load(Relaxed));
        if late > 0 {
            shared.down.fetch_add(late, Relaxed);
            metrics.bytes(Direction::TargetToClient, late as usize);
            metrics.spliced(late as usize);
        }
    }
    report(ending, &shared, metrics)
}
