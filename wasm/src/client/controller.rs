//! The connection: opens the WebSocket to the relay, sends what the user submits, and reports
//! through the [`View`] what arrives, what fails and how the connection ends.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use super::view::{Entry, State, View};

/// Drives one page: at most one connection at a time.
pub struct Controller {
    view: View,
    /// The relay's `/ws` URL.
    url: String,
    /// The current connection; replaced on reconnect.
    connection: RefCell<Option<Connection>>,
    /// Received bytes decode as UTF-8 across frame boundaries: the relay forwards TCP reads,
    /// which may split a character.
    received: RefCell<Utf8Stream>,
}

impl Controller {
    /// Wires the view's controls and opens the first connection.
    pub fn start(view: View, url: String) -> Rc<Self> {
        let controller = Rc::new(Self {
            view,
            url,
            connection: RefCell::new(None),
            received: RefCell::new(Utf8Stream::default()),
        });
        let this = Rc::clone(&controller);
        controller.view.on_submit(move || this.send());
        let this = Rc::clone(&controller);
        controller.view.on_connect(move || this.connect());
        controller.connect();
        controller
    }

    /// Drops any previous connection and opens a new one.
    fn connect(self: &Rc<Self>) {
        self.connection.replace(None);
        *self.received.borrow_mut() = Utf8Stream::default();
        self.view
            .show_state(State::Connecting, &format!("Connecting to {}…", self.url));
        match Connection::open(&self.url, Rc::downgrade(self)) {
            Ok(connection) => *self.connection.borrow_mut() = Some(connection),
            Err(error) => {
                self.view.show_state(State::Closed, "Not connected");
                self.view.append(
                    Entry::Error,
                    &format!("cannot open {}: {}", self.url, describe(&error)),
                );
            }
        }
    }

    /// Sends the message field's text as one text frame.
    fn send(&self) {
        let text = self.view.message();
        if text.is_empty() {
            return;
        }
        let connection = self.connection.borrow();
        let socket = match connection.as_ref() {
            Some(connection) if connection.socket.ready_state() == WebSocket::OPEN => {
                &connection.socket
            }
            // The Send button is disabled then, but Enter in the field still submits.
            _ => {
                self.view
                    .append(Entry::Error, "not connected: message not sent");
                return;
            }
        };
        match socket.send_with_str(&text) {
            Ok(()) => {
                self.view.append(Entry::Sent, &text);
                self.view.clear_message();
            }
            Err(error) => self
                .view
                .append(Entry::Error, &format!("send failed: {}", describe(&error))),
        }
    }

    fn on_open(&self, _: Event) {
        self.view
            .show_state(State::Open, &format!("Connected to {}", self.url));
        self.view
            .append(Entry::Info, &format!("connected to {}", self.url));
    }

    fn on_message(&self, event: MessageEvent) {
        let data = event.data();
        let text = if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
            self.received
                .borrow_mut()
                .decode(&Uint8Array::new(buffer).to_vec())
        } else if let Some(text) = data.as_string() {
            text
        } else {
            self.view
                .append(Entry::Error, "received a message of an unknown kind");
            return;
        };
        if !text.is_empty() {
            self.view.append(Entry::Received, &text);
        }
    }

    fn on_error(&self, _: Event) {
        // Browsers give no detail on purpose; the close event that follows has the code.
        self.view
            .append(Entry::Error, &format!("connection to {} failed", self.url));
    }

    fn on_close(&self, event: CloseEvent) {
        let code = event.code();
        let reason = event.reason();
        let mut detail = format!("code {code}");
        if !reason.is_empty() {
            detail.push_str(": ");
            detail.push_str(&reason);
        }
        self.view
            .show_state(State::Closed, &format!("Disconnected ({detail})"));
        // 1000 is a normal close (the target ended); anything else is worth an error line.
        let entry = if code == 1000 && event.was_clean() {
            Entry::Info
        } else {
            Entry::Error
        };
        self.view
            .append(entry, &format!("connection closed ({detail})"));
    }
}

/// A WebSocket with its event handlers, which must live exactly as long as it does.
struct Connection {
    socket: WebSocket,
    _handlers: [Closure<dyn FnMut(JsValue)>; 4],
}

impl Connection {
    fn open(url: &str, controller: Weak<Controller>) -> Result<Self, JsValue> {
        let socket = WebSocket::new(url)?;
        // The relay forwards target bytes as binary frames; ArrayBuffer reads them synchronously.
        socket.set_binary_type(BinaryType::Arraybuffer);
        let handlers = [
            handler(&controller, Controller::on_open),
            handler(&controller, Controller::on_message),
            handler(&controller, Controller::on_error),
            handler(&controller, Controller::on_close),
        ];
        socket.set_onopen(Some(handlers[0].as_ref().unchecked_ref()));
        socket.set_onmessage(Some(handlers[1].as_ref().unchecked_ref()));
        socket.set_onerror(Some(handlers[2].as_ref().unchecked_ref()));
        socket.set_onclose(Some(handlers[3].as_ref().unchecked_ref()));
        Ok(Self {
            socket,
            _handlers: handlers,
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Detach first: the handlers are freed with `self`, and JS must not call them after.
        self.socket.set_onopen(None);
        self.socket.set_onmessage(None);
        self.socket.set_onerror(None);
        self.socket.set_onclose(None);
        let _ = self.socket.close();
    }
}

/// An event handler that calls `method` on the controller while the page still has one.
/// Weak, because the controller owns the connection that owns this handler.
fn handler<E: JsCast + 'static>(
    controller: &Weak<Controller>,
    method: fn(&Controller, E),
) -> Closure<dyn FnMut(JsValue)> {
    let controller = controller.clone();
    Closure::new(move |event: JsValue| {
        if let Some(controller) = controller.upgrade() {
            method(&controller, event.unchecked_into());
        }
    })
}

/// A JS exception as a sentence for the log.
fn describe(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        String::from(error.message())
    } else {
        error
            .as_string()
            .unwrap_or_else(|| "unknown error".to_owned())
    }
}

/// Decodes a byte stream as UTF-8, holding back a character split across chunks; invalid
/// bytes become U+FFFD, as a browser's `TextDecoder` would show them.
#[derive(Default)]
struct Utf8Stream {
    /// The start of a character whose remaining bytes have not arrived yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn decode(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        let complete = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            // `error_len() == None`: the input ends inside a character that may yet complete.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => match bytes.iter().rposition(|&byte| byte & 0xc0 != 0x80) {
                // Invalid bytes are somewhere before; only a valid unfinished tail is held.
                Some(start)
                    if std::str::from_utf8(&bytes[start..])
                        .err()
                        .is_some_and(|error| error.error_len().is_none()) =>
                {
                    start
                }
                _ => bytes.len(),
            },
        };
        self.pending = bytes.split_off(complete);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
