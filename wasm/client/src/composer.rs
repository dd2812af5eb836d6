//! The send form: text or hex bytes (validated, with the error next to the field), an
//! optional newline, Enter to send, and the history of sent messages on the up and down keys.

use std::cell::RefCell;

use web_sys::{Document, Element, HtmlButtonElement, HtmlElement, HtmlInputElement, KeyboardEvent};

use super::bytes::parse_hex;
use super::dom::{by_id, JsResult};

/// Messages remembered for the up and down keys.
const MAX_HISTORY: usize = 100;

/// What the user asked to send.
pub struct Outgoing {
    pub bytes: Vec<u8>,
    /// Typed as hex: sent as a binary frame (a text frame must be UTF-8, hex need not be).
    pub binary: bool,
}

#[derive(Default)]
struct History {
    /// `(hex mode, text)`, oldest first.
    entries: Vec<(bool, String)>,
    /// The entry shown while browsing; `None` when editing a new message.
    cursor: Option<usize>,
    /// What was being typed when browsing started, restored after the newest entry.
    draft: (bool, String),
}

/// The composer form.
pub struct Composer {
    /// `#composer`: its submit (the Send button or Enter) sends.
    pub form: Element,
    /// `#message`.
    pub message: HtmlInputElement,
    /// `#send`: enabled while a message can be sent.
    send: HtmlButtonElement,
    /// `#message-error`: why the typed message cannot be sent.
    error: HtmlElement,
    /// `#mode-hex` / `#mode-text`: how the field is read.
    pub mode_hex: HtmlInputElement,
    pub mode_text: HtmlInputElement,
    /// `#newline`: append `\n`, which line-based servers wait for.
    newline: HtmlInputElement,
    history: RefCell<History>,
}

impl Composer {
    pub fn attach(document: &Document) -> JsResult<Self> {
        Ok(Self {
            form: by_id(document, "composer")?,
            message: by_id(document, "message")?,
            send: by_id(document, "send")?,
            error: by_id(document, "message-error")?,
            mode_hex: by_id(document, "mode-hex")?,
            mode_text: by_id(document, "mode-text")?,
            newline: by_id(document, "newline")?,
            history: RefCell::default(),
        })
    }

    fn hex_mode(&self) -> bool {
        self.mode_hex.checked()
    }

    /// The typed message as bytes, or why it cannot be sent.
    pub fn read(&self) -> Result<Outgoing, String> {
        let typed = self.message.value();
        let hex = self.hex_mode();
        let mut bytes = if hex {
            parse_hex(&typed).map_err(|error| format!("Bad hex: {error}."))?
        } else {
            typed.into_bytes()
        };
        if self.newline.checked() {
            bytes.push(b'\n');
        }
        if bytes.is_empty() {
            return Err("Type a message first.".to_owned());
        }
        Ok(Outgoing { bytes, binary: hex })
    }

    /// After a send: remember the message, empty the field, keep the keyboard there.
    pub fn sent(&self) {
        let entry = (self.hex_mode(), self.message.value());
        let mut history = self.history.borrow_mut();
        if history.entries.last() != Some(&entry) {
            history.entries.push(entry);
            if history.entries.len() > MAX_HISTORY {
                history.entries.remove(0);
            }
        }
        history.cursor = None;
        drop(history);
        self.message.set_value("");
        self.clear_error();
        let _ = self.message.focus();
    }

    pub fn show_error(&self, text: &str) {
        self.error.set_text_content(Some(text));
        self.error.set_hidden(false);
        let _ = self.message.set_attribute("aria-invalid", "true");
    }

    pub fn clear_error(&self) {
        if !self.error.hidden() {
            self.error.set_hidden(true);
            self.error.set_text_content(None);
            let _ = self.message.remove_attribute("aria-invalid");
        }
    }

    /// While the user types: an error shown goes away as soon as the input is good (and
    /// follows it while it is not), but no error appears before the first attempt to send.
    pub fn revalidate(&self) {
        if self.error.hidden() {
            return;
        }
        let typed = self.message.value();
        match self.hex_mode() {
            true if !typed.trim().is_empty() => match parse_hex(&typed) {
                Ok(_) => self.clear_error(),
                Err(error) => self.show_error(&format!("Bad hex: {error}.")),
            },
            _ => self.clear_error(),
        }
    }

    /// The mode changed: a placeholder that shows what to type, and the field checked again.
    pub fn mode_changed(&self) {
        self.message.set_placeholder(if self.hex_mode() {
            "48 65 6c 6c 6f"
        } else {
            "Hello, world"
        });
        self.revalidate();
    }

    /// Up and down browse the history, as in a shell.
    pub fn key(&self, event: &KeyboardEvent) {
        if event.alt_key() || event.ctrl_key() || event.meta_key() || event.shift_key() {
            return;
        }
        let older = match event.key().as_str() {
            "ArrowUp" => true,
            "ArrowDown" => false,
            _ => return,
        };
        let mut history = self.history.borrow_mut();
        if history.entries.is_empty() {
            return;
        }
        let last = history.entries.len() - 1;
        let next = match (history.cursor, older) {
            (None, true) => {
                history.draft = (self.hex_mode(), self.message.value());
                Some(last)
            }
            (None, false) => return,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            (Some(_), false) => None,
        };
        event.prevent_default();
        history.cursor = next;
        let (hex, text) = match next {
            Some(i) => history.entries.get(i).cloned().unwrap_or_default(),
            None => history.draft.clone(),
        };
        drop(history);
        self.mode_hex.set_checked(hex);
        self.mode_text.set_checked(!hex);
        self.message.set_value(&text);
        let end = text.encode_utf16().count() as u32;
        let _ = self.message.set_selection_range(end, end);
        self.mode_changed();
    }

    pub fn send_disabled(&self) -> bool {
        self.send.disabled()
    }

    /// Enables sending (an open connection and no test running).
    pub fn set_enabled(&self, enabled: bool) {
        self.send.set_disabled(!enabled);
    }
}
