//! The controller: the connection's life (check, open, close, reconnect with backoff), what
//! the user sends, where incoming bytes go (the log, or a latency test), and the wiring of
//! every control to it.
//!
//! # Connecting
//! Browsers do not let a page read the status or body of a refused WebSocket handshake: a
//! refusal looks exactly like an unreachable relay (close 1006). So before opening the socket,
//! the controller asks the relay `GET api/check?target=...` (200 `{"target"}` or 403
//! `{"error"}`) and shows the relay's own reason for a refusal. A relay without that endpoint
//! (404) is still usable: the target is then compared with `GET api/targets`, and a failed
//! handshake is explained as well as the browser allows.
//!
//! # State
//! One `Link` holds the connection. A generation number, bumped by every new attempt, lets
//! late answers (a check that returns after the user pressed Disconnect, a timer) recognise
//! that they are stale. A socket is never dropped from inside its own event handlers (that
//! would free the handler that is running); it is replaced by the next attempt.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    BinaryType, CloseEvent, Document, Element, Event, EventTarget, HtmlButtonElement, HtmlElement,
    HtmlInputElement, HtmlSelectElement, KeyboardEvent, MessageEvent, Response, WebSocket, Window,
};

use super::closes::{close_message, reconnect_delay_ms};
use super::composer::Composer;
use super::dom::{self, by_id, describe, now, JsResult, Page};
use super::log::{self, Log};
use super::measure::{Measure, Progress};

/// Where the connection is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// No connection, none coming.
    #[default]
    Idle,
    /// Asking the relay whether the target is allowed.
    Checking,
    /// The WebSocket is opening.
    Connecting,
    Open,
    /// The user asked to disconnect; the close handshake is under way.
    Closing,
    /// Waiting to reconnect (auto-reconnect after a failure).
    Waiting,
}

impl Phase {
    /// The status line's `data-state`, for CSS and tests.
    fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "closed",
            Self::Checking | Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Closing => "closing",
            Self::Waiting => "waiting",
        }
    }
}

/// A target as `/ws?target=` takes it, and its address when known.
#[derive(Clone, Debug)]
struct Target {
    /// `echo`, `ack` or `HOST:PORT`.
    name: String,
    /// `127.0.0.1:65432`, from `api/targets` or `api/check`.
    address: Option<String>,
}

impl Target {
    fn label(&self) -> String {
        match &self.address {
            Some(address) if *address != self.name => format!("{} ({address})", self.name),
            _ => self.name.clone(),
        }
    }
}

#[derive(Default)]
struct Link {
    phase: Phase,
    generation: u32,
    socket: Option<Socket>,
    target: Option<Target>,
    /// The bridge URL of the current connection.
    url: String,
    /// Failed attempts since the last open connection, for the backoff.
    failures: u32,
    /// When to reconnect, on the monotonic clock.
    reconnect_at: Option<f64>,
    /// The countdown's seconds last shown, to update the status only when they change.
    shown_seconds: i64,
    /// Why the last connection ended, shown with the countdown.
    last_end: String,
    /// `(name, address)` of each target from `api/targets`.
    targets: Vec<(String, String)>,
}

/// The relay's answer about a target.
enum Verdict {
    /// Allowed, with the address it stands for.
    Allowed(Option<String>),
    /// Refused, with the relay's reason.
    Refused(String),
    /// The relay has no `api/check`.
    NoEndpoint,
    /// The relay did not answer at all.
    Unreachable(String),
    /// Some other answer (a proxy's error page, say): try the socket anyway.
    Unclear,
}

/// The connection panel's elements.
struct Panel {
    /// `#connect-form`: its submit (Connect, or Enter in the target field) connects.
    form: Element,
    /// `#target`: the relay's targets, and "Other" (value `""`) for a typed one.
    target: HtmlSelectElement,
    /// `#custom-target-field`, shown for "Other", and its input.
    custom_field: HtmlElement,
    custom: HtmlInputElement,
    /// `#target-error`: why the typed target cannot be used.
    target_error: HtmlElement,
    connect: HtmlButtonElement,
    /// `#disconnect`: shown while connected or trying to be.
    disconnect: HtmlButtonElement,
    /// `#auto-reconnect`.
    auto: HtmlInputElement,
    /// `#status`: the connection state in words (a polite live region).
    status: HtmlElement,
}

impl Panel {
    fn attach(document: &Document) -> JsResult<Self> {
        Ok(Self {
            form: by_id(document, "connect-form")?,
            target: by_id(document, "target")?,
            custom_field: by_id(document, "custom-target-field")?,
            custom: by_id(document, "custom-target")?,
            target_error: by_id(document, "target-error")?,
            connect: by_id(document, "connect")?,
            disconnect: by_id(document, "disconnect")?,
            auto: by_id(document, "auto-reconnect")?,
            status: by_id(document, "status")?,
        })
    }
}

/// The page's controller.
pub struct Controller {
    page: Page,
    panel: Panel,
    log: Log,
    composer: Composer,
    measure: Measure,
    link: RefCell<Link>,
}

impl Controller {
    /// Finds the panels, wires them, and connects to the selected (default) target.
    pub fn start(page: Page) -> JsResult<Rc<Self>> {
        let document = &page.document;
        let this = Rc::new(Self {
            panel: Panel::attach(document)?,
            log: Log::attach(document)?,
            composer: Composer::attach(document)?,
            measure: Measure::attach(document)?,
            link: RefCell::default(),
            page,
        });
        this.wire();
        this.measure.render();
        this.target_changed();
        this.connect();
        let loader = Rc::clone(&this);
        spawn_local(async move { loader.load_targets().await });
        let weak = Rc::downgrade(&this);
        dom::every(250, move || {
            if let Some(this) = weak.upgrade() {
                this.tick();
            }
        });
        Ok(this)
    }

    /// Connects each control to its handler, for the page's lifetime.
    fn wire(self: &Rc<Self>) {
        let submit = |form: &Element, method: fn(&Rc<Self>)| {
            let this = Rc::clone(self);
            dom::listen(form, "submit", move |event: Event| {
                // The forms are keyboard-friendly ways to act: never navigate.
                event.prevent_default();
                method(&this);
            });
        };
        submit(&self.panel.form, Self::connect);
        submit(&self.composer.form, Self::send_typed);
        submit(&self.measure.form, Self::start_measure);

        self.on(&self.panel.disconnect, "click", |this, _: Event| {
            this.disconnect()
        });
        self.on(&self.panel.target, "change", |this, _: Event| {
            this.target_changed()
        });
        self.on(&self.panel.custom, "input", |this, _: Event| {
            this.show_target_error(None)
        });
        self.on(&self.panel.auto, "change", |this, _: Event| {
            this.auto_changed()
        });
        self.on(
            &self.composer.message,
            "keydown",
            |this, event: KeyboardEvent| {
                // With Send disabled, Enter submits nothing; it should still say why.
                if event.key() == "Enter" && !event.is_composing() && this.composer.send_disabled()
                {
                    event.prevent_default();
                    this.send_typed();
                } else {
                    this.composer.key(&event);
                }
            },
        );
        self.on(&self.composer.message, "input", |this, _: Event| {
            this.composer.revalidate()
        });
        for mode in [&self.composer.mode_hex, &self.composer.mode_text] {
            self.on(mode, "change", |this, _: Event| {
                this.composer.mode_changed()
            });
        }
        for view in self.log.view_controls() {
            self.on(&view, "change", |this, _: Event| {
                this.log.set_hex_view(this.log.hex_view_selected())
            });
        }
        if let Some(query) = self.log.narrow_query() {
            self.on(query, "change", |this, _: Event| this.log.refresh());
        }
        self.on(&self.log.copy, "click", |this, _: Event| this.copy_log());
        self.on(&self.log.export, "click", |this, _: Event| {
            this.export_log()
        });
        self.on(&self.log.clear, "click", |this, _: Event| this.log.clear());
        self.on(&self.measure.stop, "click", |this, _: Event| {
            this.stop_measure()
        });
        self.on(&self.page.window, "resize", |this, _: Event| {
            this.request_render()
        });
    }

    fn on<E: JsCast + 'static>(
        self: &Rc<Self>,
        target: &EventTarget,
        event: &str,
        method: fn(&Rc<Self>, E),
    ) {
        let this = Rc::clone(self);
        dom::listen(target, event, move |event: E| method(&this, event));
    }

    // --- targets ----------------------------------------------------------------------------

    /// Fills the target list from `GET api/targets`.
    async fn load_targets(self: Rc<Self>) {
        let list = match fetch_json(&self.page.window, &self.page.endpoint("api/targets")).await {
            Ok((200, body)) => js_sys::Array::from(&body)
                .iter()
                .filter_map(|item| Some((get_string(&item, "name")?, get_string(&item, "target")?)))
                .collect::<Vec<_>>(),
            Ok((status, _)) => {
                self.log.error(&format!(
                    "Could not load the relay's targets: HTTP {status}"
                ));
                return;
            }
            Err(error) => {
                self.log
                    .error(&format!("Could not load the relay's targets: {error}"));
                return;
            }
        };
        if list.is_empty() {
            return;
        }
        let _ = self.fill_targets(&list);
        self.link.borrow_mut().targets = list;
    }

    fn fill_targets(&self, list: &[(String, String)]) -> JsResult<()> {
        let select = &self.panel.target;
        let selected = select.value();
        let document = &self.page.document;
        select.set_text_content(None);
        for (name, address) in list {
            let text = if name == address {
                name.clone()
            } else {
                format!("{name} — {address}")
            };
            let option = dom::create(document, "option", "", Some(&text))?;
            option.set_attribute("value", name)?;
            select.append_child(&option)?;
        }
        let other = dom::create(document, "option", "", Some("Other (HOST:PORT)…"))?;
        other.set_attribute("value", "")?;
        select.append_child(&other)?;
        let known = selected.is_empty() || list.iter().any(|(name, _)| *name == selected);
        if known {
            select.set_value(&selected);
        } else {
            // A name the relay no longer lists: keep it as a typed target.
            select.set_value("");
            self.panel.custom.set_value(&selected);
        }
        self.target_changed();
        Ok(())
    }

    /// "Other" shows the field for a typed target.
    fn target_changed(&self) {
        let other = self.panel.target.value().is_empty();
        self.panel.custom_field.set_hidden(!other);
        if !other {
            self.show_target_error(None);
        }
    }

    fn show_target_error(&self, error: Option<&str>) {
        self.panel.target_error.set_hidden(error.is_none());
        self.panel.target_error.set_text_content(error);
        if error.is_some() {
            let _ = self.panel.custom.set_attribute("aria-invalid", "true");
        } else {
            let _ = self.panel.custom.remove_attribute("aria-invalid");
        }
    }

    /// The target the form asks for.
    fn requested_target(&self) -> Result<Target, String> {
        let name = self.panel.target.value();
        if !name.is_empty() {
            let link = self.link.borrow();
            let address = link
                .targets
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| a.clone());
            return Ok(Target { name, address });
        }
        let typed = self.panel.custom.value().trim().to_owned();
        if typed.is_empty() {
            return Err("Type the target as HOST:PORT, for example 127.0.0.1:8001.".to_owned());
        }
        if typed.chars().any(char::is_whitespace) {
            return Err("A target has no spaces: type it as HOST:PORT.".to_owned());
        }
        Ok(Target {
            name: typed,
            address: None,
        })
    }

    fn listed(&self, target: &Target) -> bool {
        let link = self.link.borrow();
        link.targets.is_empty()
            || link
                .targets
                .iter()
                .any(|(name, address)| *name == target.name || *address == target.name)
    }

    /// `GET api/check?target=`: whether the relay would bridge to `target`, and why not.
    async fn check(&self, target: &str) -> Verdict {
        let url = self.page.endpoint(&format!(
            "api/check?target={}",
            String::from(js_sys::encode_uri_component(target))
        ));
        match fetch_json(&self.page.window, &url).await {
            Err(error) => Verdict::Unreachable(error),
            Ok((200, body)) => Verdict::Allowed(get_string(&body, "target")),
            Ok((404 | 405, _)) => Verdict::NoEndpoint,
            Ok((400 | 403, body)) => Verdict::Refused(
                get_string(&body, "error").unwrap_or_else(|| "the target is not allowed".into()),
            ),
            Ok(_) => Verdict::Unclear,
        }
    }

    // --- the connection's life --------------------------------------------------------------

    /// Connect: to the target the form asks for, replacing any current connection.
    fn connect(self: &Rc<Self>) {
        match self.requested_target() {
            Ok(target) => {
                self.show_target_error(None);
                self.connect_to(target);
            }
            Err(error) => {
                self.show_target_error(Some(&error));
                let _ = self.panel.custom.focus();
            }
        }
    }

    fn connect_to(self: &Rc<Self>, target: Target) {
        let (generation, was_open) = {
            let mut link = self.link.borrow_mut();
            let was_open = (link.phase == Phase::Open)
                .then(|| link.target.as_ref().map(Target::label))
                .flatten();
            link.generation += 1;
            link.reconnect_at = None;
            link.phase = Phase::Checking;
            link.target = Some(target.clone());
            // Closes the old socket; this never runs inside that socket's handlers.
            link.socket = None;
            (link.generation, was_open)
        };
        if self.measure.fail("the connection was replaced") {
            self.log
                .error("Latency test stopped: the connection was replaced");
        }
        if let Some(old) = was_open {
            self.log.info(&format!(
                "Disconnected from {old}, to connect to {}",
                target.label()
            ));
        }
        self.show(Phase::Checking, &format!("Checking {}…", target.label()));
        let this = Rc::clone(self);
        spawn_local(async move {
            let verdict = this.check(&target.name).await;
            if this.link.borrow().generation != generation {
                return;
            }
            match verdict {
                Verdict::Allowed(address) => {
                    let address = address.or(target.address);
                    this.open(Target { address, ..target }, generation);
                }
                Verdict::NoEndpoint | Verdict::Unclear => {
                    if !this.listed(&target) {
                        this.log.info(&format!(
                            "{} is not in the relay's list of targets (api/targets): \
                             the relay will probably refuse it",
                            target.name
                        ));
                    }
                    this.open(target, generation);
                }
                Verdict::Refused(reason) => {
                    this.ended(&format!("Refused by the relay: {reason}"), true, false)
                }
                Verdict::Unreachable(error) => {
                    let message = this.unreachable(&error);
                    this.ended(&message, true, true);
                }
            }
        });
    }

    fn unreachable(&self, error: &str) -> String {
        format!("Cannot reach the relay at {} ({error})", self.page.origin())
    }

    /// Opens the WebSocket once the target is known to be allowed.
    fn open(self: &Rc<Self>, target: Target, generation: u32) {
        let url = match self.page.socket_url(&target.name) {
            Ok(url) => url,
            Err(error) => return self.ended(&describe(&error), true, false),
        };
        match Socket::open(&url, Rc::downgrade(self), generation) {
            Ok(socket) => {
                {
                    let mut link = self.link.borrow_mut();
                    link.socket = Some(socket);
                    link.phase = Phase::Connecting;
                    link.url = url;
                    link.target = Some(target.clone());
                }
                self.log.new_stream();
                self.show(
                    Phase::Connecting,
                    &format!("Connecting to {}…", target.label()),
                );
            }
            Err(error) => self.ended(
                &format!("Cannot open {url}: {}", describe(&error)),
                true,
                false,
            ),
        }
    }

    /// Disconnect: closes the connection, or cancels an attempt or a pending reconnect.
    fn disconnect(self: &Rc<Self>) {
        let phase = self.link.borrow().phase;
        match phase {
            Phase::Open | Phase::Connecting => {
                let mut link = self.link.borrow_mut();
                link.phase = Phase::Closing;
                if let Some(socket) = &link.socket {
                    let _ = socket.socket.close_with_code(1000);
                }
                drop(link);
                self.show(Phase::Closing, "Disconnecting…");
            }
            Phase::Checking | Phase::Waiting => {
                {
                    let mut link = self.link.borrow_mut();
                    link.generation += 1;
                    link.reconnect_at = None;
                    link.phase = Phase::Idle;
                }
                self.log.info("Connection attempt cancelled");
                self.show(Phase::Idle, "Not connected");
            }
            Phase::Idle | Phase::Closing => {}
        }
    }

    /// Turning auto-reconnect off cancels a pending reconnect.
    fn auto_changed(self: &Rc<Self>) {
        if !self.panel.auto.checked() && self.link.borrow().phase == Phase::Waiting {
            let message = {
                let mut link = self.link.borrow_mut();
                link.generation += 1;
                link.reconnect_at = None;
                link.phase = Phase::Idle;
                link.last_end.clone()
            };
            self.show(Phase::Idle, &message);
        }
    }

    fn on_open(self: &Rc<Self>, _: Event) {
        let (label, url) = {
            let mut link = self.link.borrow_mut();
            link.phase = Phase::Open;
            link.failures = 0;
            let label = link.target.as_ref().map(Target::label).unwrap_or_default();
            (label, link.url.clone())
        };
        self.show(Phase::Open, &format!("Connected to {label}"));
        self.log.info(&format!("Connected to {label} via {url}"));
        mark("sockrelay-open");
    }

    fn on_message(self: &Rc<Self>, event: MessageEvent) {
        let at = now();
        let data = event.data();
        let bytes = if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            Uint8Array::new(buffer).to_vec()
        } else if let Some(text) = data.as_string() {
            text.into_bytes()
        } else {
            self.log.error("Received a message of an unknown kind");
            return;
        };
        if self.measure.active() {
            let progress = self.measure.receive(&bytes, at);
            self.after_progress(progress);
        } else {
            self.log.received(&bytes, at);
        }
    }

    fn on_close(self: &Rc<Self>, event: CloseEvent) {
        let (phase, generation, label) = {
            let mut link = self.link.borrow_mut();
            let phase = link.phase;
            link.phase = Phase::Idle;
            let label = link.target.as_ref().map(Target::label).unwrap_or_default();
            (phase, link.generation, label)
        };
        let (code, reason) = (event.code(), event.reason());
        match phase {
            Phase::Closing => {
                let message = if code == 1000 || code == 1005 {
                    format!("Disconnected from {label}")
                } else {
                    format!(
                        "Disconnected from {label}: {}",
                        close_message(code, &reason)
                    )
                };
                self.ended(&message, false, false);
            }
            // Closed before it opened, without a code: the handshake failed, and the browser
            // will not say why. Ask the relay.
            Phase::Connecting if code == 1006 => self.diagnose(generation, label),
            _ => self.ended(&close_message(code, &reason), code != 1000, true),
        }
    }

    /// Explains a handshake that failed: the target refused since the check, the relay gone,
    /// or a refusal the browser hides (token, origin, connection limit).
    fn diagnose(self: &Rc<Self>, generation: u32, label: String) {
        self.show(
            Phase::Connecting,
            &format!("Connecting to {label} failed; asking the relay why…"),
        );
        let this = Rc::clone(self);
        spawn_local(async move {
            let name = this
                .link
                .borrow()
                .target
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default();
            let verdict = this.check(&name).await;
            if this.link.borrow().generation != generation {
                return;
            }
            match verdict {
                Verdict::Refused(reason) => {
                    this.ended(&format!("Refused by the relay: {reason}"), true, false)
                }
                Verdict::Unreachable(error) => {
                    let message = this.unreachable(&error);
                    this.ended(&message, true, true);
                }
                Verdict::NoEndpoint => this.ended(
                    &format!(
                        "The relay refused the connection to {label}. The browser does not \
                         say why: the target may not be allowed, or a token, this page's \
                         origin or the connection limit may be the reason"
                    ),
                    true,
                    false,
                ),
                Verdict::Allowed(_) | Verdict::Unclear => this.ended(
                    &format!(
                        "The relay refused the WebSocket handshake for {label}. The browser \
                         does not say why: a token (--token), this page's origin (--origin) \
                         or the connection limit (--max-conns) may be the reason"
                    ),
                    true,
                    true,
                ),
            }
        });
    }

    /// The connection (or the attempt) ended: say why, keep the log, and reconnect later if
    /// asked to and `retry` says it may help.
    fn ended(self: &Rc<Self>, message: &str, error: bool, retry: bool) {
        if self.measure.fail(message) {
            self.log.error(&format!("Latency test stopped: {message}"));
        }
        if error {
            self.log.error(message);
        } else {
            self.log.info(message);
        }
        if retry && self.panel.auto.checked() {
            let mut link = self.link.borrow_mut();
            link.failures += 1;
            link.reconnect_at = Some(now() + f64::from(reconnect_delay_ms(link.failures)));
            link.phase = Phase::Waiting;
            link.shown_seconds = -1;
            link.last_end = message.to_owned();
            drop(link);
            self.tick();
        } else {
            self.link.borrow_mut().phase = Phase::Idle;
            self.show(Phase::Idle, message);
        }
    }

    /// Four times a second: the reconnect countdown, and the latency test's stall check.
    fn tick(self: &Rc<Self>) {
        let at = now();
        let waiting = {
            let link = self.link.borrow();
            match (link.phase, link.reconnect_at) {
                (Phase::Waiting, Some(when)) => Some((when - at, link.target.clone())),
                _ => None,
            }
        };
        match waiting {
            Some((remaining, Some(target))) if remaining <= 0.0 => self.connect_to(target),
            Some((remaining, Some(_))) => {
                let seconds = (remaining / 1000.0).ceil() as i64;
                let text = {
                    let mut link = self.link.borrow_mut();
                    (link.shown_seconds != seconds).then(|| {
                        link.shown_seconds = seconds;
                        format!(
                            "{}. Reconnecting in {seconds} s (attempt {})…",
                            link.last_end, link.failures
                        )
                    })
                };
                if let Some(text) = text {
                    self.show(Phase::Waiting, &text);
                }
            }
            Some((_, None)) | None => {}
        }
        if let Some(reason) = self.measure.stalled(at) {
            self.measure_failed(&reason);
        }
    }

    /// Shows the state in the status line and enables the controls that make sense in it.
    fn show(&self, phase: Phase, text: &str) {
        let status = &self.panel.status;
        let _ = status.set_attribute("data-state", phase.as_str());
        status.set_text_content(Some(text));
        let idle = phase == Phase::Idle;
        if idle {
            dom::pass_focus(
                &self.page.document,
                &self.panel.disconnect,
                &self.panel.connect,
            );
        }
        self.panel.disconnect.set_hidden(idle);
        self.refresh_controls();
    }

    fn refresh_controls(&self) {
        let open = self.link.borrow().phase == Phase::Open;
        self.composer.set_enabled(open && !self.measure.active());
        self.measure.set_connected(open);
    }

    /// The open socket, if there is one.
    fn socket(&self) -> Option<WebSocket> {
        let link = self.link.borrow();
        if link.phase != Phase::Open {
            return None;
        }
        link.socket.as_ref().map(|s| s.socket.clone())
    }

    // --- sending ----------------------------------------------------------------------------

    /// Sends the composer's message: text as a text frame, hex as a binary frame.
    fn send_typed(self: &Rc<Self>) {
        if self.measure.active() {
            self.composer
                .show_error("A latency test is running: wait for it, or stop it, to send.");
            return;
        }
        let outgoing = match self.composer.read() {
            Ok(outgoing) => outgoing,
            Err(error) => return self.composer.show_error(&error),
        };
        let Some(socket) = self.socket() else {
            self.composer
                .show_error("Not connected: the message was not sent. Connect first.");
            return;
        };
        let result = if outgoing.binary {
            socket.send_with_u8_array(&outgoing.bytes)
        } else {
            socket.send_with_str(&String::from_utf8_lossy(&outgoing.bytes))
        };
        match result {
            Ok(()) => {
                self.log.sent(&outgoing.bytes, outgoing.binary, now());
                self.composer.sent();
            }
            Err(error) => self
                .composer
                .show_error(&format!("Send failed: {}", describe(&error))),
        }
    }

    // --- the latency test -------------------------------------------------------------------

    fn start_measure(self: &Rc<Self>) {
        if self.measure.active() {
            return;
        }
        if self.socket().is_none() {
            self.measure.say("Connect to an echo target first.");
            return;
        }
        match self.measure.begin(now()) {
            Ok(description) => {
                self.log
                    .info(&format!("Latency test started: {description}"));
                self.refresh_controls();
                let _ = self.measure.stop.focus();
                self.pump();
            }
            Err(error) => self.measure.say(&error),
        }
    }

    fn stop_measure(self: &Rc<Self>) {
        let progress = self.measure.stop(now());
        self.after_progress(progress);
    }

    /// Sends what the test's window allows.
    fn pump(self: &Rc<Self>) {
        let Some(socket) = self.socket() else {
            return;
        };
        for message in self.measure.next_messages(now()) {
            if let Err(error) = socket.send_with_u8_array(&message) {
                return self.measure_failed(&format!("send failed: {}", describe(&error)));
            }
        }
        self.request_render();
    }

    fn after_progress(self: &Rc<Self>, progress: Progress) {
        match progress {
            Progress::Continue => self.pump(),
            Progress::Finished(summary) => {
                self.log.info(&summary);
                self.refresh_controls();
                self.request_render();
                pass_focus_to_run(self);
            }
            Progress::Failed(reason) => self.measure_failed(&reason),
        }
    }

    fn measure_failed(self: &Rc<Self>, reason: &str) {
        if self.measure.fail(reason) {
            self.log.error(&format!("Latency test stopped: {reason}"));
        }
        self.refresh_controls();
        self.request_render();
        pass_focus_to_run(self);
    }

    /// Redraws the plot and summary soon, at most about fifteen times a second.
    fn request_render(self: &Rc<Self>) {
        if self.measure.request_render() {
            let weak = Rc::downgrade(self);
            dom::after(66, move || {
                if let Some(this) = weak.upgrade() {
                    this.measure.render();
                }
            });
        }
    }

    // --- the log's tools --------------------------------------------------------------------

    fn copy_log(self: &Rc<Self>) {
        let text = self.log.as_text();
        let count = self.log.len();
        let this = Rc::clone(self);
        spawn_local(async move {
            let navigator = this.page.window.navigator();
            // navigator.clipboard exists only in secure contexts (https, localhost).
            let has_clipboard = Reflect::get(&navigator, &JsValue::from_str("clipboard"))
                .is_ok_and(|c| !c.is_undefined());
            let result = if has_clipboard {
                JsFuture::from(navigator.clipboard().write_text(&text))
                    .await
                    .map(|_| ())
            } else {
                Err(JsValue::from_str("no clipboard in this context"))
            };
            let copied = result.is_ok() || copy_with_selection(&this.page.document, &text);
            match result {
                _ if copied => this
                    .log
                    .say(&format!("Copied {count} entries to the clipboard.")),
                Err(error) => this.log.say(&format!("Copy failed: {}", describe(&error))),
                Ok(()) => {}
            }
        });
    }

    fn export_log(&self) {
        let relay = {
            let link = self.link.borrow();
            if link.url.is_empty() {
                self.page.socket_url("echo").unwrap_or_default()
            } else {
                link.url.clone()
            }
        };
        let json = self.log.as_json(&relay);
        let stamp = dom::iso_time(js_sys::Date::now()).replace(':', "-");
        let name = format!("sockrelay-log-{stamp}.json");
        match log::download(&self.page.document, &name, "application/json", &json) {
            Ok(()) => self
                .log
                .say(&format!("Exported {} entries as {name}.", self.log.len())),
            Err(error) => self
                .log
                .say(&format!("Export failed: {}", describe(&error))),
        }
    }
}

/// After a test ends, Stop disappears: keep the keyboard in the panel.
fn pass_focus_to_run(this: &Controller) {
    let run: Option<HtmlElement> = this
        .page
        .document
        .get_element_by_id("measure-run")
        .and_then(|e| e.dyn_into().ok());
    if let Some(run) = run {
        dom::pass_focus(&this.page.document, &this.measure.stop, &run);
    }
}

/// The old way to copy, for pages the Clipboard API refuses (no permission, not a secure
/// context): select the text in a hidden field and ask the browser to copy it.
fn copy_with_selection(document: &Document, text: &str) -> bool {
    let Some(body) = document.body() else {
        return false;
    };
    let Ok(area) = document
        .create_element("textarea")
        .map(|e| e.unchecked_into::<web_sys::HtmlTextAreaElement>())
    else {
        return false;
    };
    area.set_value(text);
    let _ = area.set_attribute("class", "visually-hidden");
    let _ = area.set_attribute("aria-hidden", "true");
    let _ = body.append_child(&area);
    area.select();
    let copied = document
        .dyn_ref::<web_sys::HtmlDocument>()
        .and_then(|d| d.exec_command("copy").ok())
        .unwrap_or(false);
    area.remove();
    copied
}

/// `fetch(url)` and its JSON body (`null` when it has none): `(status, body)`, or why the
/// request got no answer at all.
async fn fetch_json(window: &Window, url: &str) -> Result<(u16, JsValue), String> {
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "not an HTTP response".to_owned())?;
    let body = match response.json() {
        Ok(promise) => JsFuture::from(promise).await.unwrap_or(JsValue::NULL),
        Err(_) => JsValue::NULL,
    };
    Ok((response.status(), body))
}

fn get_string(object: &JsValue, key: &str) -> Option<String> {
    if !object.is_object() {
        return None;
    }
    Reflect::get(object, &JsValue::from_str(key))
        .ok()
        .and_then(|value| value.as_string())
}

/// A `performance.mark`, for measuring the page from tests and devtools.
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

/// A WebSocket with its event handlers, which must live exactly as long as it does.
struct Socket {
    socket: WebSocket,
    _handlers: [Closure<dyn FnMut(JsValue)>; 3],
}

impl Socket {
    fn open(url: &str, controller: Weak<Controller>, generation: u32) -> JsResult<Self> {
        let socket = WebSocket::new(url)?;
        // The relay forwards target bytes as binary frames; ArrayBuffer reads them synchronously.
        socket.set_binary_type(BinaryType::Arraybuffer);
        let handlers = [
            handler(&controller, generation, Controller::on_open),
            handler(&controller, generation, Controller::on_message),
            handler(&controller, generation, Controller::on_close),
        ];
        socket.set_onopen(Some(handlers[0].as_ref().unchecked_ref()));
        socket.set_onmessage(Some(handlers[1].as_ref().unchecked_ref()));
        socket.set_onclose(Some(handlers[2].as_ref().unchecked_ref()));
        // No onerror: browsers give no detail on purpose, and the close event that follows
        // has the code.
        Ok(Self {
            socket,
            _handlers: handlers,
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Detach first: the handlers are freed with `self`, and JS must not call them after.
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

/// An event handler that calls `method` while the controller lives and the socket is still
/// the current attempt's. Weak, because the controller owns the socket that owns the handler.
fn handler<E: JsCast + 'static>(
    controller: &Weak<Controller>,
    generation: u32,
    method: fn(&Rc<Controller>, E),
) -> Closure<dyn FnMut(JsValue)> {
    let controller = controller.clone();
    Closure::new(move |event: JsValue| {
        let Some(controller) = controller.upgrade() else {
            return;
        };
        let current = controller.link.borrow().generation == generation;
        if current {
            method(&controller, event.unchecked_into());
        }
    })
}
