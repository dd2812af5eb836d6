//! One bridge through the relay: asked for (`api/check`), opened, read and written as raw
//! message streams, ended with a code and a reason. `TCPSocket`, `UDPSocket` and the Python
//! layer are views of it.
//!
//! # Backpressure
//! Where the browser has `WebSocketStream` (Chromium), the bridge's streams are its streams: a
//! page that stops reading makes the browser stop reading the connection, the relay's writes to
//! it block, and the relay stops reading the target (its buffering per bridge is bounded). A
//! write resolves as the stream takes it.
//!
//! Elsewhere the bridge is a `WebSocket`, which reads whatever arrives: incoming messages wait
//! in the readable stream's queue, and when more than [`QUEUE_LIMIT`] bytes wait unread the
//! bridge is closed (code 4000, "receive queue full") and the readable stream errors, rather
//! than the page's memory growing without bound. A write resolves once the socket's
//! `bufferedAmount` is below [`WRITE_HIGH_WATER`].

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{ArrayBuffer, Function, Promise, Uint8Array};
use sockrelay_session::closes::close_message;
use sockrelay_session::socket::Socket;
use sockrelay_session::{api, handshake_failure, verdict_unreachable, Verdict};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{CloseEvent, MessageEvent, Url};

use crate::js::{
    self, get, has_global, named_error, object, Controller, Deferred, JsResult, ReadableStream,
    WebSocketStream, WritableStream,
};

/// Unread bytes past which a WebSocket bridge (no WebSocketStream) is closed.
pub const QUEUE_LIMIT: f64 = 16.0 * 1024.0 * 1024.0;
/// Queued bytes the readable stream asks for before the page reads (the streams' high-water
/// mark; the WebSocket delivers regardless).
const QUEUE_HIGH_WATER: f64 = 1024.0 * 1024.0;
/// The most one message carries of a stream write: a write of any size goes to the relay in
/// pieces no larger, far under its `--max-message` (1 MiB by default).
pub const PIECE: u32 = 64 * 1024;
/// A write on a WebSocket bridge resolves once fewer bytes than this wait to be sent.
pub const WRITE_HIGH_WATER: u32 = 256 * 1024;

/// Where a bridge goes: the relay's URLs for a target.
pub struct Endpoint {
    /// `ws://relay/ws?target=...&token=...`.
    pub socket_url: String,
    /// `http://relay/api/check?target=...&token=...`.
    pub check_url: String,
    /// The relay's origin (`http://127.0.0.1:8080`), for messages.
    pub origin: String,
    /// The target as `/ws?target=` takes it.
    pub target: String,
}

impl Endpoint {
    /// The endpoint for `target` on `relay` (absolute, or relative to the page; default: the
    /// page's own origin's `/ws`, `wss:` when the page came over TLS), with `token`.
    pub fn new(relay: Option<String>, token: Option<String>, target: String) -> JsResult<Self> {
        let base = get(&js_sys::global(), "location");
        let base = get(&base, "href").as_string();
        let relay = relay.unwrap_or_else(|| "/ws".to_owned());
        let url = match &base {
            Some(base) => Url::new_with_base(&relay, base),
            None => Url::new(&relay),
        }
        .map_err(|_| js::type_error(&["relay: \"", &relay, "\" is not a URL"].concat()))?;
        let (socket_scheme, http_scheme) = match url.protocol().as_str() {
            "ws:" | "http:" => ("ws:", "http:"),
            "wss:" | "https:" => ("wss:", "https:"),
            other => {
                let message = ["relay: ", other, " is not ws:, wss:, http: or https:"].concat();
                return Err(js::type_error(&message));
            }
        };
        url.set_hash("");
        url.set_search("");
        url.set_protocol(http_scheme);
        let check = Url::new_with_base("api/check", &url.href())?;
        url.set_protocol(socket_scheme);
        for params in [url.search_params(), check.search_params()] {
            params.set("target", &target);
            if let Some(token) = &token {
                params.set("token", token);
            }
        }
        Ok(Self {
            socket_url: url.href(),
            check_url: check.href(),
            origin: check.origin(),
            target,
        })
    }
}

/// Why a bridge did not open.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The relay refused the target (or the token), with its reason.
    Refused(String),
    /// The relay did not answer.
    Unreachable(String),
    /// The WebSocket handshake failed, explained as well as the relay and browser allow.
    Handshake(String),
    /// `close()` came before the bridge opened.
    Aborted,
    /// The relay could not connect to the target: its Close.
    Ended(Ending),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Self::Refused(reason) => ["Refused by the relay: ", reason].concat(),
            Self::Unreachable(message) | Self::Handshake(message) => message.clone(),
            Self::Aborted => "The socket was closed before it opened".to_owned(),
            Self::Ended(ending) => close_message(ending.code, &ending.reason),
        }
    }

    /// The rejection of `opened`: a `NetworkError` (an `AbortError` for [`Failure::Aborted`])
    /// whose message is the relay's reason, as Direct Sockets rejects with a DOMException.
    pub fn to_js(&self) -> JsValue {
        let name = match self {
            Self::Aborted => "AbortError",
            Self::Ended(ending) => return ending.to_js(),
            _ => "NetworkError",
        };
        named_error(name, &self.message()).into()
    }
}

/// How a bridge ended: its close code and the relay's reason.
#[derive(Clone, Debug)]
pub struct Ending {
    pub code: u16,
    pub reason: String,
}

impl Ending {
    pub fn clean(&self) -> bool {
        matches!(self.code, 1000 | 1005)
    }

    /// The error for an unclean ending: a `NetworkError` with the close in words, and its
    /// `code` and `reason`.
    pub fn to_js(&self) -> JsValue {
        let error = named_error("NetworkError", &close_message(self.code, &self.reason));
        let _ = js_sys::Reflect::set(&error, &"code".into(), &self.code.into());
        let _ = js_sys::Reflect::set(&error, &"reason".into(), &self.reason.as_str().into());
        error.into()
    }

    /// The ending a stream's error stands for: a WebSocketStream's `WebSocketError`
    /// (`closeCode`, `reason`) or this crate's errors (`code`, `reason`); any other error (a
    /// `DOMException`, whose `code` is no close code) is an abnormal end (1006) in its words.
    pub fn of_error(error: &JsValue) -> Self {
        let reason = get(error, "reason").as_string();
        let code = get(error, "closeCode")
            .as_f64()
            .or_else(|| reason.as_ref().and(get(error, "code").as_f64()));
        let reason = reason.unwrap_or_else(|| sockrelay_session::api::describe(error));
        Self {
            code: code.map_or(1006, |c| c as u16),
            reason,
        }
    }
}

/// An open bridge: its raw streams (one chunk = one WebSocket message, an `ArrayBuffer`;
/// writes take a `BufferSource`) and its ending.
pub struct Bridge {
    pub readable: ReadableStream,
    pub writable: JsValue,
    /// Resolves once, with the [`Ending`] as `{code, reason}`; never rejects.
    pub ended: Promise,
    closer: Closer,
    /// The relay chose [`CONNECTED`]: its first message says the target is connected.
    announced: bool,
}

/// The subprotocol in which the relay says when the target is connected (its first message,
/// a text message), or with its Close that it could not: `opened` settles then.
const CONNECTED: &str = "sockrelay.connected";

enum Closer {
    Stream(WebSocketStream),
    Socket(Rc<Fallback>),
}

impl Bridge {
    /// Starts the close handshake.
    pub fn close(&self, code: u16, reason: &str) {
        match &self.closer {
            Closer::Stream(stream) => {
                let info = object(&[("closeCode", &code.into()), ("reason", &reason.into())]);
                let _ = stream.close(&info);
            }
            Closer::Socket(fallback) => {
                if let Some(socket) = &*fallback.socket.borrow() {
                    socket.close_with(code, reason);
                }
            }
        }
    }
}

/// `ended`'s value as an [`Ending`].
pub fn ending_of(value: &JsValue) -> Ending {
    Ending {
        code: get(value, "code").as_f64().map_or(1006, |c| c as u16),
        reason: get(value, "reason").as_string().unwrap_or_default(),
    }
}

/// Asks the relay about the target, then opens the bridge. `aborted` is polled between steps.
pub async fn open(endpoint: &Endpoint, aborted: &Cell<bool>) -> Result<Bridge, Failure> {
    match api::check(&endpoint.check_url).await {
        Verdict::Refused(reason) => return Err(Failure::Refused(reason)),
        Verdict::Unreachable(error) => {
            return Err(Failure::Unreachable(verdict_unreachable(
                &endpoint.origin,
                &error,
            )))
        }
        Verdict::Allowed(_) | Verdict::NoEndpoint | Verdict::Unclear => {}
    }
    if aborted.get() {
        return Err(Failure::Aborted);
    }
    let opened = if has_global("WebSocketStream") {
        open_stream(&endpoint.socket_url).await
    } else {
        open_socket(&endpoint.socket_url).await
    };
    let bridge = match opened {
        Ok(bridge) => connected(bridge).await?,
        Err(()) => {
            // The browser hides why a handshake failed: ask the relay again.
            let verdict = api::check(&endpoint.check_url).await;
            let (message, _) = handshake_failure(verdict, &endpoint.target, &endpoint.origin);
            return Err(Failure::Handshake(message));
        }
    };
    // `close()` (or a timeout that gave up) while the relay dialed: the bridge goes too.
    if aborted.get() {
        bridge.close(1000, "");
        return Err(Failure::Aborted);
    }
    Ok(bridge)
}

/// `bridge` once the relay said its target is connected (when it says so: [`CONNECTED`]), or
/// the relay's Close that came instead.
async fn connected(bridge: Bridge) -> Result<Bridge, Failure> {
    if bridge.announced {
        let reader = bridge.readable.get_reader();
        let first = JsFuture::from(reader.read()).await;
        reader.release_lock();
        if first.map_or(true, |result| get(&result, "done").is_truthy()) {
            let ended = JsFuture::from(bridge.ended.clone()).await;
            return Err(Failure::Ended(ending_of(&ended.unwrap_or_default())));
        }
    }
    Ok(bridge)
}

/// A readable stream's end as the bridge's: the `flush` of a TransformStream between the
/// bridge's readable and the page, which errors the page's stream when the bridge did not end
/// cleanly (the relay's Close 1011 ends a WebSocketStream's readable as if all were well).
pub fn flush_checking(ended: Promise) -> JsValue {
    // Promise callbacks rather than a future: each future_to_promise costs the module about a
    // kilobyte, and the closures share one signature (each signature costs an adapter).
    Closure::once_into_js(move |_: JsValue| -> JsValue {
        CHECK_ENDING.with(|check| js::then(&ended, check))
    })
}

thread_local! {
    /// `ended`'s value to nothing, or to a rejection with the error of an unclean ending.
    static CHECK_ENDING: JsValue = Callback::new(|value: JsValue| {
        let ending = ending_of(&value);
        if ending.clean() {
            JsValue::UNDEFINED
        } else {
            Promise::reject(&ending.to_js()).into()
        }
    })
    .into_js_value();
}

/// Waits for `ended`; the error of an unclean ending.
pub async fn ended_ok(ended: Promise) -> JsResult<()> {
    let ending = ending_of(&JsFuture::from(ended).await.unwrap_or(JsValue::UNDEFINED));
    if ending.clean() {
        Ok(())
    } else {
        Err(ending.to_js())
    }
}

/// `ended` for a promise that settles with a close: `{closeCode, reason}` when it resolves,
/// a `WebSocketError` (or nothing) when it rejects.
fn ended_of(closed: Promise) -> Promise {
    let ended = Deferred::new();
    let promise = ended.promise.clone();
    spawn_local(async move {
        let ending = match JsFuture::from(closed).await {
            Ok(info) => Ending {
                code: get(&info, "closeCode").as_f64().map_or(1005, |c| c as u16),
                reason: get(&info, "reason").as_string().unwrap_or_default(),
            },
            Err(error) => Ending::of_error(&error),
        };
        ended.resolve(&ending_value(&ending));
    });
    promise
}

fn ending_value(ending: &Ending) -> JsValue {
    object(&[
        ("code", &ending.code.into()),
        ("reason", &ending.reason.as_str().into()),
    ])
    .into()
}

async fn open_stream(url: &str) -> Result<Bridge, ()> {
    let protocols = js_sys::Array::of1(&CONNECTED.into());
    let options = object(&[("protocols", &protocols)]);
    let stream = WebSocketStream::new(url, &options).map_err(|_| ())?;
    let ended = ended_of(stream.closed());
    let info = JsFuture::from(stream.opened()).await.map_err(|_| ())?;
    Ok(Bridge {
        readable: get(&info, "readable").unchecked_into(),
        writable: get(&info, "writable"),
        ended,
        closer: Closer::Stream(stream),
        announced: get(&info, "protocol").as_string().as_deref() == Some(CONNECTED),
    })
}

/// A WebSocket bridge's state, shared by its handlers and stream callbacks (which hold it
/// weakly: the [`Bridge`] owns it).
struct Fallback {
    socket: RefCell<Option<Socket>>,
    controller: RefCell<Option<Controller>>,
    open: Cell<bool>,
    done: Cell<bool>,
    /// This end's reason for closing (a full queue): the relay's Close answer has none.
    closing: RefCell<Option<Ending>>,
    opened: Deferred,
    ended: Deferred,
    /// The stream callbacks, which live as long as the bridge.
    callbacks: RefCell<Vec<Callback>>,
}

async fn open_socket(url: &str) -> Result<Bridge, ()> {
    let fallback = Rc::new(Fallback {
        socket: RefCell::default(),
        controller: RefCell::default(),
        open: Cell::new(false),
        done: Cell::new(false),
        closing: RefCell::default(),
        opened: Deferred::new(),
        ended: Deferred::new(),
        callbacks: RefCell::default(),
    });
    let weak = Rc::downgrade(&fallback);
    let (on_message, on_close) = (weak.clone(), weak.clone());
    let socket = Socket::open(
        url,
        Some(CONNECTED),
        move |_: JsValue| {
            if let Some(f) = weak.upgrade() {
                f.open.set(true);
                f.opened.resolve(&JsValue::UNDEFINED);
            }
        },
        move |event: MessageEvent| {
            if let Some(f) = on_message.upgrade() {
                f.received(event.data());
            }
        },
        move |event: CloseEvent| {
            if let Some(f) = on_close.upgrade() {
                f.ended(Ending {
                    code: event.code(),
                    reason: event.reason(),
                });
            }
        },
    )
    .map_err(|_| ())?;
    *fallback.socket.borrow_mut() = Some(socket);
    let readable = fallback.readable();
    let writable = fallback.writable();
    JsFuture::from(fallback.opened.promise.clone())
        .await
        .map_err(|_| ())?;
    // Known once open.
    let announced = fallback.socket.borrow().as_ref().map(Socket::protocol);
    let announced = announced.as_deref() == Some(CONNECTED);
    Ok(Bridge {
        readable,
        writable: writable.into(),
        ended: fallback.ended.promise.clone(),
        closer: Closer::Socket(fallback),
        announced,
    })
}

impl Fallback {
    fn received(&self, data: JsValue) {
        let controller = self.controller.borrow();
        let Some(controller) = &*controller else {
            return;
        };
        let unread = -controller.desired_size().unwrap_or(0.0) + QUEUE_HIGH_WATER;
        if unread > QUEUE_LIMIT {
            let ending = Ending {
                code: 4000,
                reason: "receive queue full: the page stopped reading".to_owned(),
            };
            if let Some(socket) = &*self.socket.borrow() {
                socket.close_with(ending.code, &ending.reason);
            }
            let _ = controller.error(&ending.to_js());
            self.done.set(true);
            *self.closing.borrow_mut() = Some(ending);
            return;
        }
        let _ = controller.enqueue(&data);
    }

    fn ended(&self, ending: Ending) {
        let ending = self.closing.borrow_mut().take().unwrap_or(ending);
        if !self.open.get() {
            self.opened.reject(&JsValue::UNDEFINED);
        }
        if !self.done.replace(true) {
            if let Some(controller) = &*self.controller.borrow() {
                let _ = if ending.clean() {
                    controller.close()
                } else {
                    controller.error(&ending.to_js())
                };
            }
        }
        self.ended.resolve(&ending_value(&ending));
    }

    fn readable(self: &Rc<Self>) -> ReadableStream {
        let weak = Rc::downgrade(self);
        let start = callback(&weak, |f, controller| {
            *f.controller.borrow_mut() = Some(controller.unchecked_into());
            JsValue::UNDEFINED
        });
        let cancel = callback(&weak, |f, _| {
            if let Some(socket) = &*f.socket.borrow() {
                socket.close();
            }
            JsValue::UNDEFINED
        });
        let source = object(&[("start", start.as_ref()), ("cancel", cancel.as_ref())]);
        self.callbacks.borrow_mut().extend([start, cancel]);
        let size = byte_length_fn();
        let strategy = object(&[("highWaterMark", &QUEUE_HIGH_WATER.into()), ("size", &size)]);
        ReadableStream::new(&source, &strategy)
    }

    fn writable(self: &Rc<Self>) -> WritableStream {
        let weak = Rc::downgrade(self);
        let write = callback(&weak, |f, chunk| {
            let sent = match (view_of(&chunk), &*f.socket.borrow()) {
                (Ok(view), Some(socket)) => socket.send_view(&view),
                (Err(error), _) => Err(error),
                (_, None) => Ok(()),
            };
            match sent {
                // Resolve as the socket drains, so that a writer cannot queue without bound.
                Ok(()) => Promise::new(&mut |resolve, _| drained(Rc::downgrade(&f), resolve)),
                Err(error) => Promise::reject(&error),
            }
            .into()
        });
        let sink = object(&[("write", write.as_ref())]);
        self.callbacks.borrow_mut().push(write);
        WritableStream::new(&sink, &object(&[("highWaterMark", &1.into())]))
    }
}

/// Calls `resolve` once fewer than [`WRITE_HIGH_WATER`] bytes wait to be sent (or the socket
/// is gone or closed), checking every 5 ms.
fn drained(weak: Weak<Fallback>, resolve: Function) {
    let waiting = weak.upgrade().is_some_and(|f| {
        let buffered = f
            .socket
            .borrow()
            .as_ref()
            .map_or(0, Socket::buffered_amount);
        buffered >= WRITE_HIGH_WATER && !f.done.get()
    });
    if !waiting {
        let _ = resolve.call0(&JsValue::UNDEFINED);
        return;
    }
    let again = Closure::once_into_js(move |_: JsValue| -> JsValue {
        drained(weak, resolve);
        JsValue::UNDEFINED
    });
    js::set_timeout(again.unchecked_ref(), 5.0);
}

type Callback = Closure<dyn FnMut(JsValue) -> JsValue>;

/// A stream callback that reaches the bridge's state while it lives.
fn callback(
    weak: &Weak<Fallback>,
    f: impl Fn(Rc<Fallback>, JsValue) -> JsValue + 'static,
) -> Callback {
    let weak = weak.clone();
    Closure::new(move |arg: JsValue| match weak.upgrade() {
        Some(state) => f(state, arg),
        None => JsValue::UNDEFINED,
    })
}

thread_local! {
    static BYTE_LENGTH: Function = Callback::new(|chunk: JsValue| {
        let length = get(&chunk, "byteLength").as_f64().or_else(|| get(&chunk, "length").as_f64());
        JsValue::from_f64(length.unwrap_or(0.0))
    })
    .into_js_value()
    .unchecked_into();
}

/// The queuing strategy's `size`: a message's length in bytes.
fn byte_length_fn() -> JsValue {
    BYTE_LENGTH.with(|f| f.clone().into())
}

/// A `BufferSource` (an `ArrayBuffer` or a view of one) as a `Uint8Array` over the same
/// bytes, or a `TypeError`.
pub fn view_of(chunk: &JsValue) -> JsResult<Uint8Array> {
    if let Some(buffer) = chunk.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(buffer));
    }
    if ArrayBuffer::is_view(chunk) {
        let buffer = get(chunk, "buffer");
        let offset = get(chunk, "byteOffset").as_f64().unwrap_or(0.0);
        let length = get(chunk, "byteLength").as_f64().unwrap_or(0.0);
        return Ok(Uint8Array::new_with_byte_offset_and_length(
            &buffer,
            offset as u32,
            length as u32,
        ));
    }
    Err(js::type_error(
        "a chunk must be an ArrayBuffer or a Uint8Array",
    ))
}

/// The piece of `view` from `start` (moved past it): a copy of at most
/// [`PIECE`] bytes, so that a write of any size goes out in messages the relay
/// takes (and the page may reuse its buffer once the write resolves).
pub fn piece(view: &Uint8Array, start: &mut u32) -> Uint8Array {
    let end = start.saturating_add(PIECE);
    let piece = view.slice(*start, end);
    *start = end;
    piece
}

/// A received message as a `Uint8Array`: an `ArrayBuffer`'s bytes (not copied), or a text
/// message's UTF-8.
pub fn message_view(message: &JsValue) -> Uint8Array {
    match message.as_string() {
        Some(text) => Uint8Array::from(text.as_bytes()),
        None => view_of(message).unwrap_or_else(|_| Uint8Array::new_with_length(0)),
    }
}
