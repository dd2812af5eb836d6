//! The traffic log: every message sent and received (time, direction, size, text or hex dump,
//! round-trip time of echoes), connection events and errors; clear, copy and export as JSON.
//!
//! The log is kept in memory as well as on the page, so that switching between the text and
//! hex views, copying and exporting work from the bytes, not from what is displayed. It is
//! never cleared except by the user: connections come and go, the log stays.

use std::cell::RefCell;
use std::collections::VecDeque;

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlButtonElement, HtmlElement, HtmlInputElement};

use super::bytes::{format_ms, format_size, hex_compact, hex_dump, push_json_string, Fixed};
use super::dom::{self, by_id, create, JsResult};
use super::echo::EchoMatcher;
use super::text::{control_pictures, truncate, Utf8Stream};

/// Entries and bytes kept; the oldest go first beyond either, so a long session or a chatty
/// target cannot exhaust memory.
const MAX_ENTRIES: usize = 5000;
const MAX_KEPT_BYTES: usize = 32 << 20;
/// Bytes of one message shown on the page; copy and export have them all.
const MAX_SHOWN: usize = 4096;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sent,
    Received,
    Error,
    Info,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
            Self::Error => "error",
            Self::Info => "info",
        }
    }

    fn is_data(self) -> bool {
        matches!(self, Self::Sent | Self::Received)
    }
}

struct Record {
    id: u64,
    kind: Kind,
    /// Wall-clock time, milliseconds since the epoch.
    time: f64,
    /// The data of a message (empty for errors and events).
    bytes: Vec<u8>,
    /// The data as text (decoded as a stream for received bytes), or the event's sentence.
    text: String,
    /// Sent as a binary frame (typed as hex).
    binary: bool,
    rtt: Option<f64>,
    item: Element,
    body: Element,
    rtt_label: Element,
}

#[derive(Default)]
struct State {
    records: VecDeque<Record>,
    next_id: u64,
    hex_view: bool,
    /// Received bytes decode as UTF-8 across frames.
    stream: Utf8Stream,
    /// A UDP target: each message is one datagram, shown and decoded on its own.
    datagrams: bool,
    echo: EchoMatcher,
    sent: (u64, u64),
    received: (u64, u64),
    dropped: u64,
    /// Bytes held by `records` (data and text).
    kept_bytes: usize,
}

/// The log panel.
pub struct Log {
    document: Document,
    /// `#log`: the entries, oldest first.
    list: Element,
    /// `#counters`: messages and bytes each way.
    counters: HtmlElement,
    /// `#log-status`: the result of copy, export and clear.
    status: HtmlElement,
    /// `#view-hex`: the hex dump view instead of text.
    view_hex: HtmlInputElement,
    view_text: HtmlInputElement,
    pub copy: HtmlButtonElement,
    pub export: HtmlButtonElement,
    pub clear: HtmlButtonElement,
    /// Whether the log area is narrow: 8 bytes a dump row instead of 16.
    narrow: Option<web_sys::MediaQueryList>,
    state: RefCell<State>,
}

impl Log {
    pub fn attach(document: &Document) -> JsResult<Self> {
        let narrow = document
            .default_view()
            .and_then(|window| window.match_media("(max-width: 40rem)").ok().flatten());
        Ok(Self {
            list: by_id(document, "log")?,
            counters: by_id(document, "counters")?,
            status: by_id(document, "log-status")?,
            view_hex: by_id(document, "view-hex")?,
            view_text: by_id(document, "view-text")?,
            copy: by_id(document, "log-copy")?,
            export: by_id(document, "log-export")?,
            clear: by_id(document, "log-clear")?,
            narrow,
            document: document.clone(),
            state: RefCell::default(),
        })
    }

    /// The radio buttons that switch views, and the media query that changes dump rows.
    pub fn view_controls(&self) -> [web_sys::EventTarget; 2] {
        [self.view_hex.clone().into(), self.view_text.clone().into()]
    }

    pub fn narrow_query(&self) -> Option<&web_sys::MediaQueryList> {
        self.narrow.as_ref()
    }

    /// A new connection: bytes from it start a new text stream and match only its echoes.
    /// To a UDP target (`datagrams`), each message is a datagram of its own instead.
    pub fn new_stream(&self, datagrams: bool) {
        let mut state = self.state.borrow_mut();
        state.stream = Utf8Stream::default();
        state.datagrams = datagrams;
        state.echo.forget();
    }

    /// Records a message sent at `at` (the page's monotonic clock).
    pub fn sent(&self, bytes: &[u8], binary: bool, at: f64) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let id = self.push(Kind::Sent, bytes.to_vec(), text, binary);
        let mut state = self.state.borrow_mut();
        state.echo.sent(id, bytes, at);
        state.sent.0 += 1;
        state.sent.1 += bytes.len() as u64;
        drop(state);
        self.show_counters();
    }

    /// Records bytes received at `at`, and the round-trip times of the echoes they complete.
    pub fn received(&self, bytes: &[u8], at: f64) {
        let (text, echoes) = {
            let mut state = self.state.borrow_mut();
            state.received.0 += 1;
            state.received.1 += bytes.len() as u64;
            let text = if state.datagrams {
                // A datagram is whole: no character continues into the next one.
                Utf8Stream::default().decode(bytes)
            } else {
                state.stream.decode(bytes)
            };
            (text, state.echo.received(bytes, at))
        };
        let id = self.push(Kind::Received, bytes.to_vec(), text, true);
        let mut state = self.state.borrow_mut();
        let mut last = None;
        for echo in &echoes {
            if let Some(record) = state.records.iter_mut().rev().find(|r| r.id == echo.id) {
                set_rtt(record, echo.rtt);
            }
            last = Some(echo.rtt);
        }
        if let (Some(rtt), Some(record)) = (last, state.records.back_mut()) {
            if record.id == id {
                set_rtt(record, rtt);
            }
        }
        drop(state);
        self.show_counters();
    }

    /// Records an event (a connection opened, a test's results).
    pub fn info(&self, text: &str) {
        self.push(Kind::Info, Vec::new(), text.to_owned(), false);
    }

    /// Records something that went wrong.
    pub fn error(&self, text: &str) {
        self.push(Kind::Error, Vec::new(), text.to_owned(), false);
    }

    fn push(&self, kind: Kind, bytes: Vec<u8>, text: String, binary: bool) -> u64 {
        let time = js_sys::Date::now();
        let mut state = self.state.borrow_mut();
        let id = state.next_id;
        state.next_id += 1;
        let datagram = state.datagrams && kind.is_data();
        let Ok((item, body, rtt_label)) = self.render_item(kind, time, &bytes, binary, datagram)
        else {
            return id;
        };
        self.fill_body(&body, kind, &bytes, &text, state.hex_view);
        // Keep the view at the end only if the user had not scrolled up to read.
        let at_end =
            self.list.scroll_height() - self.list.scroll_top() - self.list.client_height() < 40;
        let _ = self.list.append_child(&item);
        state.kept_bytes += bytes.len() + text.len();
        state.records.push_back(Record {
            id,
            kind,
            time,
            bytes,
            text,
            binary,
            rtt: None,
            item,
            body,
            rtt_label,
        });
        while state.records.len() > MAX_ENTRIES
            || (state.kept_bytes > MAX_KEPT_BYTES && state.records.len() > 1)
        {
            if let Some(old) = state.records.pop_front() {
                old.item.remove();
                state.kept_bytes -= old.bytes.len() + old.text.len();
                state.dropped += 1;
            }
        }
        if at_end {
            self.list.set_scroll_top(self.list.scroll_height());
        }
        id
    }

    /// `<li class="entry sent"><div class="meta">time, direction, size, RTT</div><pre class="data">`.
    fn render_item(
        &self,
        kind: Kind,
        time: f64,
        bytes: &[u8],
        binary: bool,
        datagram: bool,
    ) -> JsResult<(Element, Element, Element)> {
        let doc = &self.document;
        let class = if datagram {
            format!("entry {} datagram", kind.as_str())
        } else {
            format!("entry {}", kind.as_str())
        };
        let item = create(doc, "li", &class, None)?;
        let meta = create(doc, "div", "meta", None)?;
        let clock = create(doc, "time", "", Some(&dom::clock(time)))?;
        clock.set_attribute("datetime", &dom::iso_time(time))?;
        meta.append_child(&clock)?;
        let direction = create(doc, "span", "dir", Some(kind.as_str()))?;
        meta.append_child(&direction)?;
        if kind.is_data() {
            let size = create(doc, "span", "size", Some(&format_size(bytes.len() as u64)))?;
            meta.append_child(&size)?;
            if datagram {
                let label = create(doc, "span", "frame", Some("datagram"))?;
                meta.append_child(&label)?;
            }
            if kind == Kind::Sent {
                let frame = create(
                    doc,
                    "span",
                    "frame",
                    Some(if binary { "binary" } else { "text" }),
                )?;
                meta.append_child(&frame)?;
            }
        }
        let rtt_label = create(doc, "span", "rtt", None)?;
        meta.append_child(&rtt_label)?;
        let body = create(doc, if kind.is_data() { "pre" } else { "p" }, "data", None)?;
        item.append_child(&meta)?;
        item.append_child(&body)?;
        Ok((item, body, rtt_label))
    }

    fn fill_body(&self, body: &Element, kind: Kind, bytes: &[u8], text: &str, hex: bool) {
        if !kind.is_data() {
            body.set_text_content(Some(text));
            return;
        }
        let shown = if hex {
            let rows = if self.narrow.as_ref().is_some_and(|q| q.matches()) {
                8
            } else {
                16
            };
            let cut = &bytes[..bytes.len().min(MAX_SHOWN)];
            let mut dump = hex_dump(cut, rows);
            if cut.len() < bytes.len() {
                dump.push_str(&format!(
                    "\n… {} more",
                    format_size((bytes.len() - cut.len()) as u64)
                ));
            }
            dump
        } else {
            let (cut, more) = truncate(text, MAX_SHOWN);
            let mut shown = control_pictures(cut).into_owned();
            if more {
                shown.push_str(&format!(
                    "… ({} more)",
                    format_size((text.len() - cut.len()) as u64)
                ));
            }
            shown
        };
        body.set_text_content(Some(&shown));
    }

    /// Shows data entries as text or as hex dumps.
    pub fn set_hex_view(&self, hex: bool) {
        let mut state = self.state.borrow_mut();
        state.hex_view = hex;
        let _ = self
            .list
            .set_attribute("data-view", if hex { "hex" } else { "text" });
        for record in &state.records {
            if record.kind.is_data() {
                self.fill_body(&record.body, record.kind, &record.bytes, &record.text, hex);
            }
        }
    }

    /// Re-renders the hex dumps (their row length follows the width).
    pub fn refresh(&self) {
        let hex = self.state.borrow().hex_view;
        if hex {
            self.set_hex_view(true);
        }
    }

    pub fn hex_view_selected(&self) -> bool {
        self.view_hex.checked()
    }

    /// Empties the log.
    pub fn clear(&self) {
        let mut state = self.state.borrow_mut();
        let n = state.records.len();
        state.records.clear();
        state.kept_bytes = 0;
        state.sent = (0, 0);
        state.received = (0, 0);
        state.dropped = 0;
        drop(state);
        self.list.set_text_content(None);
        self.show_counters();
        self.say(&format!("Cleared {n} entries."));
    }

    pub fn len(&self) -> usize {
        self.state.borrow().records.len()
    }

    /// A sentence in the log's status line (copy, export, clear results).
    pub fn say(&self, text: &str) {
        self.status.set_text_content(Some(text));
    }

    fn show_counters(&self) {
        let state = self.state.borrow();
        let mut text = format!(
            "{} sent ({}) · {} received ({})",
            state.sent.0,
            format_size(state.sent.1),
            state.received.0,
            format_size(state.received.1)
        );
        if state.dropped > 0 {
            text.push_str(&format!(" · {} oldest entries dropped", state.dropped));
        }
        self.counters.set_text_content(Some(&text));
    }

    /// The log as plain text, one entry after another, in the current view.
    pub fn as_text(&self) -> String {
        let state = self.state.borrow();
        let mut out = String::new();
        for record in &state.records {
            out.push_str(&dom::clock(record.time));
            out.push(' ');
            out.push_str(record.kind.as_str());
            if record.kind.is_data() {
                out.push_str(&format!(" {}", format_size(record.bytes.len() as u64)));
                if let Some(rtt) = record.rtt {
                    out.push_str(&format!(" RTT {}", format_ms(rtt)));
                }
                if state.hex_view {
                    out.push('\n');
                    out.push_str(&hex_dump(&record.bytes, 16));
                } else {
                    out.push_str(": ");
                    out.push_str(&record.text);
                }
            } else {
                out.push_str(": ");
                out.push_str(&record.text);
            }
            out.push('\n');
        }
        out
    }

    /// The log as JSON: `{"exported", "relay", "entries": [{"time", "direction", "size",
    /// "frame", "text", "hex", "rtt_ms"}]}`; events and errors have `time`, `direction`, `text`.
    pub fn as_json(&self, relay: &str) -> String {
        let state = self.state.borrow();
        let mut out = String::from("{\n  \"exported\": ");
        push_json_string(&mut out, &dom::iso_time(js_sys::Date::now()));
        out.push_str(",\n  \"relay\": ");
        push_json_string(&mut out, relay);
        out.push_str(",\n  \"entries\": [");
        for (i, record) in state.records.iter().enumerate() {
            out.push_str(if i == 0 { "\n    {" } else { ",\n    {" });
            out.push_str("\"time\": ");
            push_json_string(&mut out, &dom::iso_time(record.time));
            out.push_str(", \"direction\": ");
            push_json_string(&mut out, record.kind.as_str());
            if record.kind.is_data() {
                out.push_str(&format!(", \"size\": {}", record.bytes.len()));
                if record.kind == Kind::Sent {
                    out.push_str(if record.binary {
                        ", \"frame\": \"binary\""
                    } else {
                        ", \"frame\": \"text\""
                    });
                }
            }
            out.push_str(", \"text\": ");
            push_json_string(&mut out, &record.text);
            if record.kind.is_data() {
                out.push_str(", \"hex\": ");
                push_json_string(&mut out, &hex_compact(&record.bytes));
            }
            if let Some(rtt) = record.rtt {
                out.push_str(&format!(", \"rtt_ms\": {}", Fixed(rtt, 3)));
            }
            out.push('}');
        }
        out.push_str(if state.records.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        out
    }
}

fn set_rtt(record: &mut Record, rtt: f64) {
    record.rtt = Some(rtt);
    record
        .rtt_label
        .set_text_content(Some(&format!("RTT {}", format_ms(rtt))));
}

/// Starts a download of `text` as a file called `name`.
pub fn download(document: &Document, name: &str, mime: &str, text: &str) -> JsResult<()> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    link.set_href(&url);
    link.set_download(name);
    link.click();
    // The browser has read the blob's URL once the click's navigation started.
    dom::after(10_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}
