//! The controller: wires every control to the page's parts, feeds the connection's state
//! machine ([`super::connection`]) its events, performs its effects, and draws the connection
//! panel from its state after each one. Incoming bytes go to the log or a latency test.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{CloseEvent, Element, Event, EventTarget, HtmlElement, KeyboardEvent, MessageEvent};

use super::api;
use super::composer::Composer;
use super::connection::{Connection, Effect, Event as Happened, Frame, Level};
use super::dom::{self, describe, now, JsResult, Page};
use super::log::Log;
use super::log_tools;
use super::measure::{Measure, Progress};
use super::panel::Panel;
use super::session::socket::Socket;

/// The page's controller.
pub struct Controller {
    page: Page,
    panel: Panel,
    log: Log,
    composer: Composer,
    measure: Measure,
    connection: RefCell<Connection>,
    /// The last attempt's socket, replaced by the next one (see [`Socket`]).
    socket: RefCell<Option<Socket>>,
}

impl Controller {
    /// Finds the panels, wires them, and connects to the selected (default) target.
    pub fn start(page: Page) -> JsResult<Rc<Self>> {
        let document = &page.document;
        let panel = Panel::attach(document)?;
        let connection = Connection::new(&page.origin(), panel.auto.checked());
        let this = Rc::new(Self {
            panel,
            log: Log::attach(document)?,
            composer: Composer::attach(document)?,
            measure: Measure::attach(document)?,
            connection: RefCell::new(connection),
            socket: RefCell::default(),
            page,
        });
        this.wire();
        this.measure.render();
        this.panel.target_changed();
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
            this.dispatch(Happened::Disconnect)
        });
        self.on(&self.panel.target, "change", |this, _: Event| {
            this.panel.target_changed()
        });
        self.on(&self.panel.custom, "input", |this, _: Event| {
            this.panel.show_target_error(None)
        });
        self.on(&self.panel.auto, "change", |this, _: Event| {
            this.dispatch(Happened::Auto(this.panel.auto.checked()))
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
        self.on(&self.log.copy, "click", |this, _: Event| {
            let this = Rc::clone(this);
            spawn_local(async move { log_tools::copy(&this.page, &this.log).await });
        });
        self.on(&self.log.export, "click", |this, _: Event| {
            let url = this.connection.borrow().url().to_owned();
            let relay = if url.is_empty() {
                this.page.socket_url("echo").unwrap_or_default()
            } else {
                url
            };
            log_tools::export(&this.page, &this.log, &relay);
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

    // --- the connection ---------------------------------------------------------------------

    /// Feeds `event` to the connection, performs what it asks, and redraws.
    fn dispatch(self: &Rc<Self>, event: Happened) {
        let effects = self.connection.borrow_mut().update(event, now());
        for effect in effects {
            self.perform(effect);
        }
        self.render();
    }

    fn perform(self: &Rc<Self>, effect: Effect) {
        match effect {
            Effect::Check { generation, name } => {
                let this = Rc::clone(self);
                spawn_local(async move {
                    let verdict = api::check(&this.page, &name).await;
                    this.dispatch(Happened::Checked {
                        generation,
                        verdict,
                    });
                });
            }
            Effect::OpenSocket { generation, name } => self.open_socket(generation, &name),
            // Never from the socket's own handlers: the state machine drops it only on the
            // user's or the clock's events.
            Effect::DropSocket => drop(self.socket.borrow_mut().take()),
            Effect::CloseSocket => {
                if let Some(socket) = &*self.socket.borrow() {
                    socket.close();
                }
            }
            Effect::Send(frame) => self.send(&frame),
            Effect::NotSent(why) => self.composer.show_error(why),
            Effect::Log(Level::Info, line) => self.log.info(&line),
            Effect::Log(Level::Error, line) => self.log.error(&line),
            Effect::StopMeasure(reason) => {
                if self.measure.fail(&reason) {
                    self.log.error(&format!("Latency test stopped: {reason}"));
                    self.request_render();
                }
            }
            Effect::MarkOpen => dom::mark("sockrelay-open"),
        }
    }

    /// Draws the connection panel, and the controls that depend on it, from the state.
    fn render(&self) {
        let view = self.connection.borrow().view(now());
        let open = view.open;
        self.panel.render(&self.page.document, view);
        self.composer.set_enabled(open && !self.measure.active());
        self.measure.set_connected(open);
    }

    /// Connect: to the target the form asks for, replacing any current connection.
    fn connect(self: &Rc<Self>) {
        let (selected, typed) = self.panel.requested();
        let requested = self.connection.borrow().requested(&selected, &typed);
        match requested {
            Ok(target) => {
                self.panel.show_target_error(None);
                self.dispatch(Happened::Connect(target));
            }
            Err(error) => {
                self.panel.show_target_error(Some(&error));
                let _ = self.panel.custom.focus();
            }
        }
    }

    /// Fills the target list from `GET api/targets`.
    async fn load_targets(self: Rc<Self>) {
        match api::targets(&self.page).await {
            Ok(list) if list.is_empty() => {}
            Ok(list) => {
                let _ = self.panel.fill_targets(&self.page.document, &list);
                self.dispatch(Happened::Targets(list));
            }
            Err(error) => self
                .log
                .error(&format!("Could not load the relay's targets: {error}")),
        }
    }

    /// Creates the bridge socket; its events reach the connection while its attempt is the
    /// current one.
    fn open_socket(self: &Rc<Self>, generation: u32, name: &str) {
        let url = match self.page.socket_url(name) {
            Ok(url) => url,
            Err(error) => {
                let message = describe(&error);
                return self.dispatch(Happened::SocketFailed {
                    generation,
                    message,
                });
            }
        };
        let weak = Rc::downgrade(self);
        let (on_message, on_close) = (weak.clone(), weak.clone());
        let socket = Socket::open(
            &url,
            None,
            move |_: JsValue| {
                if let Some(this) = weak.upgrade() {
                    this.dispatch(Happened::Opened { generation });
                }
            },
            move |event: MessageEvent| match on_message.upgrade() {
                Some(this) if this.connection.borrow().is_current(generation) => {
                    this.on_message(&event)
                }
                _ => {}
            },
            move |event: CloseEvent| {
                if let Some(this) = on_close.upgrade() {
                    this.dispatch(Happened::Closed {
                        generation,
                        code: event.code(),
                        reason: event.reason(),
                    });
                }
            },
        );
        match socket {
            Ok(socket) => {
                *self.socket.borrow_mut() = Some(socket);
                let datagrams = self.connection.borrow().is_datagram(name);
                self.log.new_stream(datagrams);
                self.dispatch(Happened::SocketCreated { generation, url });
            }
            Err(error) => {
                let message = format!("Cannot open {url}: {}", describe(&error));
                self.dispatch(Happened::SocketFailed {
                    generation,
                    message,
                });
            }
        }
    }

    fn on_message(self: &Rc<Self>, event: &MessageEvent) {
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

    /// Four times a second: the reconnect countdown, and the latency test's stall check.
    fn tick(self: &Rc<Self>) {
        self.dispatch(Happened::Tick);
        if let Some(reason) = self.measure.stalled(now()) {
            self.measure_failed(&reason);
        }
    }

    /// Whether the connection is open, so that bytes can be sent.
    fn is_open(&self) -> bool {
        self.connection.borrow().is_open()
    }

    // --- sending ----------------------------------------------------------------------------

    /// Sends the composer's message: text as a text frame, hex as a binary frame.
    fn send_typed(self: &Rc<Self>) {
        if self.measure.active() {
            self.composer
                .show_error("A latency test is running: wait for it, or stop it, to send.");
            return;
        }
        match self.composer.read() {
            Ok(outgoing) => self.dispatch(Happened::Send(Frame {
                bytes: outgoing.bytes,
                binary: outgoing.binary,
            })),
            Err(error) => self.composer.show_error(&error),
        }
    }

    fn send(&self, frame: &Frame) {
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else {
            return;
        };
        let result = if frame.binary {
            socket.send_bytes(&frame.bytes)
        } else {
            socket.send_text(&String::from_utf8_lossy(&frame.bytes))
        };
        match result {
            Ok(()) => {
                self.log.sent(&frame.bytes, frame.binary, now());
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
        if !self.is_open() {
            self.measure.say("Connect to an echo target first.");
            return;
        }
        match self.measure.begin(now()) {
            Ok(description) => {
                self.log
                    .info(&format!("Latency test started: {description}"));
                self.render();
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
        if !self.is_open() {
            return;
        }
        let messages = self.measure.next_messages(now());
        let failed = {
            let socket = self.socket.borrow();
            let Some(socket) = socket.as_ref() else {
                return;
            };
            messages
                .iter()
                .find_map(|message| socket.send_bytes(message).err())
        };
        if let Some(error) = failed {
            return self.measure_failed(&format!("send failed: {}", describe(&error)));
        }
        self.request_render();
    }

    fn after_progress(self: &Rc<Self>, progress: Progress) {
        match progress {
            Progress::Continue => self.pump(),
            Progress::Finished(summary) => {
                self.log.info(&summary);
                self.render();
                self.request_render();
                self.pass_focus_to_run();
            }
            Progress::Failed(reason) => self.measure_failed(&reason),
        }
    }

    fn measure_failed(self: &Rc<Self>, reason: &str) {
        if self.measure.fail(reason) {
            self.log.error(&format!("Latency test stopped: {reason}"));
        }
        self.render();
        self.request_render();
        self.pass_focus_to_run();
    }

    /// After a test ends, Stop disappears: keep the keyboard in the panel.
    fn pass_focus_to_run(&self) {
        let run: Option<HtmlElement> = self
            .page
            .document
            .get_element_by_id("measure-run")
            .and_then(|e| e.dyn_into().ok());
        if let Some(run) = run {
            dom::pass_focus(&self.page.document, &self.measure.stop, &run);
        }
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
}
