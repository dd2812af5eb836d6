//! The connection's life as a pure state machine: an [`Event`] in, the next state and the
//! [`Effect`]s out, and what the connection panel shows ([`View`]) derived from the state alone.
//!
//! Nothing here touches the browser, so every transition is unit-tested natively. The
//! controller performs the effects (a check, a socket, a log line) and feeds their outcomes
//! back as events. Every attempt gets a new generation: an event that names an older one (a
//! check answered after the user moved on, a socket's late close) changes nothing.
//!
//! # Connecting
//! Browsers do not let a page read the status or body of a refused WebSocket handshake: a
//! refusal looks exactly like an unreachable relay (close 1006). So before opening the socket
//! the relay is asked `GET api/check?target=...`, and its own reason for a refusal is shown. A
//! relay without that endpoint is still usable: the target is compared with `api/targets`, and
//! a failed handshake is explained as well as the browser allows.

use super::session::closes::{close_message, reconnect_delay_ms};
pub use super::session::Verdict;
use super::session::{handshake_failure, verdict_unreachable};

/// A target as `/ws?target=` takes it, and its address when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `echo`, `ack` or `HOST:PORT`.
    pub name: String,
    /// `127.0.0.1:65432`, from `api/targets` or `api/check`.
    pub address: Option<String>,
}

impl Target {
    fn label(&self) -> String {
        match &self.address {
            Some(address) if *address != self.name => format!("{} ({address})", self.name),
            _ => self.name.clone(),
        }
    }
}

/// A message to send: text as a text frame, bytes typed as hex as a binary frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Vec<u8>,
    pub binary: bool,
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// No connection, none coming.
    Idle,
    /// Asking the relay whether the target is allowed.
    Checking,
    /// The WebSocket is opening.
    Connecting,
    Open,
    /// The user asked to disconnect; the close handshake is under way.
    Closing,
    /// The socket closed before it opened: asking the relay why (the browser will not say).
    Explaining,
    /// Waiting to reconnect, until `at` on the page's monotonic clock (ms).
    Waiting {
        at: f64,
    },
}

/// What happened: the user's actions, and the outcomes of the effects.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Connect to a target, replacing any current connection.
    Connect(Target),
    /// Close the connection, or cancel an attempt or a pending reconnect.
    Disconnect,
    /// Auto-reconnect switched on or off.
    Auto(bool),
    /// The relay's targets, `(name, address)`, from `api/targets`.
    Targets(Vec<(String, String)>),
    /// The answer to an [`Effect::Check`].
    Checked { generation: u32, verdict: Verdict },
    /// The socket of an [`Effect::OpenSocket`] exists, opening `url`.
    SocketCreated { generation: u32, url: String },
    /// The socket of an [`Effect::OpenSocket`] could not be created, for this reason.
    SocketFailed { generation: u32, message: String },
    /// The socket's `open` event.
    Opened { generation: u32 },
    /// The socket's `close` event.
    Closed {
        generation: u32,
        code: u16,
        reason: String,
    },
    /// The clock: a pending reconnect may be due.
    Tick,
    /// The user sends a message.
    Send(Frame),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// What the controller must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Ask `api/check` about target `name`; answer with [`Event::Checked`].
    Check { generation: u32, name: String },
    /// Create the bridge socket to target `name` (replacing the previous one); answer with
    /// [`Event::SocketCreated`] or [`Event::SocketFailed`], then its events carry `generation`.
    OpenSocket { generation: u32, name: String },
    /// Close the socket and forget it: its events no longer matter.
    DropSocket,
    /// Start the close handshake (code 1000); the close event follows.
    CloseSocket,
    /// Send on the open socket.
    Send(Frame),
    /// The message was not sent, and why, for the composer.
    NotSent(&'static str),
    /// A line in the traffic log.
    Log(Level, String),
    /// A running latency test cannot go on: stop it, for this reason.
    StopMeasure(String),
    /// `performance.mark("sockrelay-open")`, for measuring the page.
    MarkOpen,
}

/// What the connection panel shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// The status line's `data-state`, for CSS and tests.
    pub state: &'static str,
    /// The status line.
    pub text: String,
    /// Whether Disconnect is offered: only while it has something to close or cancel.
    pub disconnect: bool,
    /// Whether messages can be sent.
    pub open: bool,
}

/// The connection's state.
#[derive(Clone, Debug)]
pub struct Connection {
    phase: Phase,
    generation: u32,
    target: Option<Target>,
    /// The bridge URL of the last socket.
    url: String,
    /// Failed attempts since the last open connection, for the backoff.
    failures: u32,
    /// Why the last connection ended: the status while idle, and before the countdown.
    ended: String,
    /// `(name, address)` of each target from `api/targets`.
    targets: Vec<(String, String)>,
    auto: bool,
    /// The page's origin, for messages about the relay.
    origin: String,
}

impl Connection {
    pub fn new(origin: &str, auto: bool) -> Self {
        Self {
            phase: Phase::Idle,
            generation: 0,
            target: None,
            url: String::new(),
            failures: 0,
            ended: "Not connected".to_owned(),
            targets: Vec::new(),
            auto,
            origin: origin.to_owned(),
        }
    }

    /// Whether the socket is open, so that bytes can be sent.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether events of the attempt `generation` still concern the connection.
    pub fn is_current(&self, generation: u32) -> bool {
        generation == self.generation
    }

    /// Whether target `name` is UDP (`udp:HOST:PORT`, or a name the relay lists as one),
    /// so that each message is one datagram.
    pub fn is_datagram(&self, name: &str) -> bool {
        name.starts_with("udp:")
            || self
                .targets
                .iter()
                .any(|(n, address)| n == name && address.starts_with("udp:"))
    }

    /// The bridge URL of the last socket, empty before the first.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The target the connect form asks for: a listed one by `selected` name, or else the
    /// `typed` `HOST:PORT`.
    pub fn requested(&self, selected: &str, typed: &str) -> Result<Target, String> {
        if !selected.is_empty() {
            let address = self
                .targets
                .iter()
                .find(|(name, _)| name == selected)
                .map(|(_, address)| address.clone());
            return Ok(Target {
                name: selected.to_owned(),
                address,
            });
        }
        let typed = typed.trim();
        if typed.is_empty() {
            return Err("Type the target as HOST:PORT, for example 127.0.0.1:8001.".to_owned());
        }
        if typed.chars().any(char::is_whitespace) {
            return Err("A target has no spaces: type it as HOST:PORT.".to_owned());
        }
        Ok(Target {
            name: typed.to_owned(),
            address: None,
        })
    }

    fn label(&self) -> String {
        self.target.as_ref().map(Target::label).unwrap_or_default()
    }

    /// What the panel shows, at `now` on the page's monotonic clock (ms).
    pub fn view(&self, now: f64) -> View {
        let label = self.label();
        let (state, text) = match self.phase {
            Phase::Idle => ("closed", self.ended.clone()),
            Phase::Checking => ("connecting", format!("Checking {label}…")),
            Phase::Connecting => ("connecting", format!("Connecting to {label}…")),
            Phase::Open => ("open", format!("Connected to {label}")),
            Phase::Closing => ("closing", "Disconnecting…".to_owned()),
            // Nothing is connecting any more: Connect may start again at once.
            Phase::Explaining => (
                "failed",
                format!("Connecting to {label} failed; asking the relay why…"),
            ),
            Phase::Waiting { at } => {
                let seconds = ((at - now) / 1000.0).ceil().max(0.0) as i64;
                (
                    "waiting",
                    format!(
                        "{}. Reconnecting in {seconds} s (attempt {})…",
                        self.ended, self.failures
                    ),
                )
            }
        };
        View {
            state,
            text,
            disconnect: matches!(
                self.phase,
                Phase::Checking | Phase::Connecting | Phase::Open | Phase::Waiting { .. }
            ),
            open: self.phase == Phase::Open,
        }
    }

    /// Applies `event`, which happened at `now` on the page's monotonic clock (ms).
    pub fn update(&mut self, event: Event, now: f64) -> Vec<Effect> {
        let stale = match &event {
            Event::Checked { generation, .. }
            | Event::SocketCreated { generation, .. }
            | Event::SocketFailed { generation, .. }
            | Event::Opened { generation }
            | Event::Closed { generation, .. } => !self.is_current(*generation),
            _ => false,
        };
        if stale {
            return Vec::new();
        }
        match (self.phase, event) {
            (_, Event::Connect(target)) => self.connect(target),
            (Phase::Waiting { at }, Event::Tick) if now >= at => match self.target.clone() {
                Some(target) => self.connect(target),
                None => self.cancel(),
            },
            (_, Event::Tick) => Vec::new(),

            (Phase::Open, Event::Disconnect) => {
                self.phase = Phase::Closing;
                vec![Effect::CloseSocket]
            }
            (Phase::Connecting, Event::Disconnect) => {
                let mut effects = vec![Effect::DropSocket];
                effects.extend(self.cancel());
                effects
            }
            (Phase::Checking | Phase::Waiting { .. }, Event::Disconnect) => self.cancel(),
            // Nothing to close or cancel: the page does not offer Disconnect here.
            (Phase::Idle | Phase::Closing | Phase::Explaining, Event::Disconnect) => Vec::new(),

            (phase, Event::Auto(on)) => {
                self.auto = on;
                if !on && matches!(phase, Phase::Waiting { .. }) {
                    // The countdown goes; what ended the connection stays on the status line.
                    self.generation += 1;
                    self.phase = Phase::Idle;
                }
                Vec::new()
            }
            (_, Event::Targets(targets)) => {
                self.targets = targets;
                Vec::new()
            }

            (Phase::Checking, Event::Checked { verdict, .. }) => self.checked(verdict, now),
            (Phase::Explaining, Event::Checked { verdict, .. }) => self.explained(verdict, now),
            (Phase::Checking, Event::SocketCreated { url, .. }) => {
                self.phase = Phase::Connecting;
                self.url = url;
                Vec::new()
            }
            (Phase::Checking, Event::SocketFailed { message, .. }) => {
                self.ended(message, Level::Error, false, now)
            }
            (Phase::Connecting, Event::Opened { .. }) => {
                self.phase = Phase::Open;
                self.failures = 0;
                let line = format!("Connected to {} via {}", self.label(), self.url);
                vec![Effect::Log(Level::Info, line), Effect::MarkOpen]
            }
            (Phase::Closing, Event::Closed { code, reason, .. }) => {
                let label = self.label();
                let message = if code == 1000 || code == 1005 {
                    format!("Disconnected from {label}")
                } else {
                    format!(
                        "Disconnected from {label}: {}",
                        close_message(code, &reason)
                    )
                };
                self.ended(message, Level::Info, false, now)
            }
            // Closed before it opened, without a code: the handshake failed, and the browser
            // will not say why. Ask the relay.
            (Phase::Connecting, Event::Closed { code: 1006, .. }) => {
                self.phase = Phase::Explaining;
                let name = self.target.as_ref().map(|t| t.name.clone());
                vec![Effect::Check {
                    generation: self.generation,
                    name: name.unwrap_or_default(),
                }]
            }
            (Phase::Connecting | Phase::Open, Event::Closed { code, reason, .. }) => {
                let level = if code == 1000 {
                    Level::Info
                } else {
                    Level::Error
                };
                self.ended(close_message(code, &reason), level, true, now)
            }

            (Phase::Open, Event::Send(frame)) => vec![Effect::Send(frame)],
            (_, Event::Send(_)) => vec![Effect::NotSent(
                "Not connected: the message was not sent. Connect first.",
            )],

            // A socket's or a check's outcome in a phase that does not wait for it: the
            // generation matches, so this attempt has already moved past it.
            (
                _,
                Event::Checked { .. }
                | Event::SocketCreated { .. }
                | Event::SocketFailed { .. }
                | Event::Opened { .. }
                | Event::Closed { .. },
            ) => Vec::new(),
        }
    }

    /// A new attempt at `target`, replacing whatever there was.
    fn connect(&mut self, target: Target) -> Vec<Effect> {
        let mut effects = vec![
            Effect::DropSocket,
            Effect::StopMeasure("the connection was replaced".to_owned()),
        ];
        if self.phase == Phase::Open {
            let line = format!(
                "Disconnected from {}, to connect to {}",
                self.label(),
                target.label()
            );
            effects.push(Effect::Log(Level::Info, line));
        }
        self.generation += 1;
        self.phase = Phase::Checking;
        effects.push(Effect::Check {
            generation: self.generation,
            name: target.name.clone(),
        });
        self.target = Some(target);
        effects
    }

    /// The user gave up on an attempt or a pending reconnect.
    fn cancel(&mut self) -> Vec<Effect> {
        self.generation += 1;
        self.phase = Phase::Idle;
        self.ended = "Not connected".to_owned();
        vec![Effect::Log(
            Level::Info,
            "Connection attempt cancelled".to_owned(),
        )]
    }

    fn checked(&mut self, verdict: Verdict, now: f64) -> Vec<Effect> {
        let Some(target) = self.target.as_mut() else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        match verdict {
            Verdict::Allowed(address) => {
                if address.is_some() {
                    target.address = address;
                }
            }
            Verdict::NoEndpoint | Verdict::Unclear => {
                let name = &target.name;
                let listed = self.targets.is_empty()
                    || self.targets.iter().any(|(n, a)| n == name || a == name);
                if !listed {
                    effects.push(Effect::Log(
                        Level::Info,
                        format!(
                            "{name} is not in the relay's list of targets (api/targets): \
                             the relay will probably refuse it"
                        ),
                    ));
                }
            }
            Verdict::Refused(reason) => {
                let message = format!("Refused by the relay: {reason}");
                return self.ended(message, Level::Error, false, now);
            }
            Verdict::Unreachable(error) => {
                let message = self.unreachable(&error);
                return self.ended(message, Level::Error, true, now);
            }
        }
        effects.push(Effect::OpenSocket {
            generation: self.generation,
            name: target.name.clone(),
        });
        effects
    }

    /// The relay's answer to why a handshake failed: the target refused since the check, the
    /// relay gone, or a refusal the browser hides (token, origin, connection limit).
    fn explained(&mut self, verdict: Verdict, now: f64) -> Vec<Effect> {
        let (message, retry) = handshake_failure(verdict, &self.label(), &self.origin);
        self.ended(message, Level::Error, retry, now)
    }

    fn unreachable(&self, error: &str) -> String {
        verdict_unreachable(&self.origin, error)
    }

    /// The connection (or the attempt) ended: say why, and reconnect later if asked to and
    /// `retry` says it may help.
    fn ended(&mut self, message: String, level: Level, retry: bool, now: f64) -> Vec<Effect> {
        let effects = vec![
            Effect::StopMeasure(message.clone()),
            Effect::Log(level, message.clone()),
        ];
        if retry && self.auto {
            self.failures += 1;
            self.phase = Phase::Waiting {
                at: now + f64::from(reconnect_delay_ms(self.failures)),
            };
        } else {
            self.phase = Phase::Idle;
        }
        self.ended = message;
        effects
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
