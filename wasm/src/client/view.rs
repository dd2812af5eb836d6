//! The page: the shell's elements, found by id, and how state and messages are shown on them.
//!
//! Every element the view needs is written in `web/index.html`, so the page is readable and
//! laid out before the module loads; the view only fills it in. Text is set with
//! `textContent`, never as HTML: received bytes are untrusted.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, Event, HtmlButtonElement, HtmlElement, HtmlInputElement};

/// The connection state, as the status line and the controls show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The socket is being opened: nothing can be sent yet.
    Connecting,
    /// Messages can be sent.
    Open,
    /// The socket has ended; the user may reconnect.
    Closed,
}

impl State {
    /// The `data-state` value, for CSS and tests.
    fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// What a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A message the user sent.
    Sent,
    /// Bytes that came back from the target, as text.
    Received,
    /// Something that went wrong and that the user should see.
    Error,
    /// A change of connection state.
    Info,
}

impl Entry {
    /// The entry's class and the word shown before its text.
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
            Self::Error => "error",
            Self::Info => "info",
        }
    }
}

/// The elements of the client page.
pub struct View {
    /// Creates log entries.
    document: Document,
    /// `#composer`: the form whose submit (Send button or Enter) sends a message.
    composer: Element,
    /// `#message`: the text to send.
    message: HtmlInputElement,
    /// `#send`: enabled only while the socket is open.
    send: HtmlButtonElement,
    /// `#connect`: shown once the socket has closed, to open a new one.
    connect: HtmlButtonElement,
    /// `#status`: the connection state in words (a polite live region).
    status: HtmlElement,
    /// `#log`: sent and received messages, errors and state changes, oldest first.
    log: Element,
}

impl View {
    /// Finds the shell's elements; fails with a message naming the first one missing.
    pub fn attach(document: Document) -> Result<Self, JsValue> {
        Ok(Self {
            composer: by_id(&document, "composer")?,
            message: by_id(&document, "message")?,
            send: by_id(&document, "send")?,
            connect: by_id(&document, "connect")?,
            status: by_id(&document, "status")?,
            log: by_id(&document, "log")?,
            document,
        })
    }

    /// Calls `handler` when the user sends (the Send button or Enter in the message field).
    pub fn on_submit(&self, mut handler: impl FnMut() + 'static) {
        listen(&self.composer, "submit", move |event| {
            // The form is only a keyboard-friendly way to send: never navigate.
            event.prevent_default();
            handler();
        });
    }

    /// Calls `handler` when the user asks for a new connection.
    pub fn on_connect(&self, mut handler: impl FnMut() + 'static) {
        listen(&self.connect, "click", move |_| handler());
    }

    /// Shows the connection state: `detail` is the sentence in the status line.
    pub fn show_state(&self, state: State, detail: &str) {
        let _ = self.status.set_attribute("data-state", state.as_str());
        self.status.set_text_content(Some(detail));
        self.send.set_disabled(state != State::Open);
        self.connect.set_hidden(state != State::Closed);
    }

    /// Adds an entry at the end of the log and scrolls it into view.
    pub fn append(&self, entry: Entry, text: &str) {
        let (Ok(item), Ok(label), Ok(body)) = (
            self.document.create_element("li"),
            self.document.create_element("span"),
            self.document.create_element("span"),
        ) else {
            return;
        };
        item.set_class_name(entry.label());
        label.set_class_name("label");
        label.set_text_content(Some(entry.label()));
        body.set_class_name("text");
        body.set_text_content(Some(text));
        let _ = item.append_with_node_2(&label, &body);
        let _ = self.log.append_child(&item);
        self.log.set_scroll_top(self.log.scroll_height());
    }

    /// The text in the message field.
    pub fn message(&self) -> String {
        self.message.value()
    }

    /// Empties the message field for the next message and keeps the keyboard there.
    pub fn clear_message(&self) {
        self.message.set_value("");
        let _ = self.message.focus();
    }
}

/// The element with `id`, as the type the view uses it as.
fn by_id<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<T>().ok())
        .ok_or_else(|| js_sys::Error::new(&format!("the page has no usable #{id}")).into())
}

/// Adds an event listener for the page's lifetime.
fn listen(target: &Element, event: &str, handler: impl FnMut(Event) + 'static) {
    let closure = Closure::<dyn FnMut(Event)>::new(handler);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // The elements live as long as the page, so the listener must too: hand it to JS.
    closure.forget();
}
