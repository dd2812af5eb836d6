//! `TCPSocket` and `UDPSocket`, shaped like the Direct Sockets API (WICG) so that code written
//! for them moves to Direct Sockets later: `opened` resolves to `{readable, writable,
//! remoteAddress, remotePort}`, `closed` settles when the socket ends (rejecting with the code
//! and the relay's reason when the ending was not clean), `close()` ends it. TCP streams carry
//! `Uint8Array` chunks; UDP streams carry `{data}` messages, one per datagram.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::bridge::{self, view_of, Bridge, Endpoint};
use crate::js::{
    self, get, object, Controller, Deferred, JsResult, ReadableStream, TransformStream,
    WritableStream,
};
use crate::names;

/// What a socket of either kind shares: the bridge once open, its promises.
struct Shared {
    opened: Deferred,
    closed: Deferred,
    bridge: RefCell<Option<Bridge>>,
    /// `close()` was called before the bridge opened.
    aborted: Cell<bool>,
}

impl Shared {
    /// Opens the bridge to `target` and settles the promises; `udp` picks the streams' shape.
    fn start(
        options: &JsValue,
        target: String,
        remote_address: String,
        remote_port: u16,
        udp: bool,
    ) -> JsResult<Rc<Self>> {
        let relay = get(options, "relay").as_string();
        let token = get(options, "token").as_string();
        let endpoint = Endpoint::new(relay, token, target)?;
        let shared = Rc::new(Self {
            opened: Deferred::new(),
            closed: Deferred::new(),
            bridge: RefCell::default(),
            aborted: Cell::new(false),
        });
        let this = Rc::clone(&shared);
        spawn_local(async move {
            let bridge = match bridge::open(&endpoint, &this.aborted).await {
                Ok(bridge) => bridge,
                Err(failure) => {
                    let error = failure.to_js();
                    this.opened.reject(&error);
                    this.closed.reject(&error);
                    return;
                }
            };
            let flush = bridge::flush_checking(bridge.ended.clone());
            let (readable, writable) = if udp {
                (
                    readable_through(&bridge.readable, &to_message_fn(), &flush),
                    writable_through(&bridge.writable, &from_message_fn()),
                )
            } else {
                (
                    readable_through(&bridge.readable, &to_bytes_fn(), &flush),
                    writable_through(&bridge.writable, &from_bytes_fn()),
                )
            };
            let ended = bridge.ended.clone();
            *this.bridge.borrow_mut() = Some(bridge);
            let info = object(&[
                ("readable", &readable),
                ("writable", &writable),
                ("remoteAddress", &remote_address.as_str().into()),
                ("remotePort", &remote_port.into()),
            ]);
            this.opened.resolve(&info);
            match bridge::ended_ok(ended).await {
                Ok(()) => this.closed.resolve(&JsValue::UNDEFINED),
                Err(error) => this.closed.reject(&error),
            }
        });
        Ok(shared)
    }

    fn close(&self) -> Promise {
        match &*self.bridge.borrow() {
            Some(bridge) => bridge.close(1000, ""),
            None => self.aborted.set(true),
        }
        self.closed.promise.clone()
    }
}

/// A TCP connection through the relay.
#[wasm_bindgen(js_name = TCPSocket)]
pub struct TcpSocket {
    shared: Rc<Shared>,
}

#[wasm_bindgen(js_class = TCPSocket)]
impl TcpSocket {
    /// `new TCPSocket(remoteAddress, remotePort, {relay, token})`: a socket to
    /// `remoteAddress:remotePort` through the relay at `relay` (default: this page's origin's
    /// `/ws`), with `token` for a relay started with `--token`. Throws a `TypeError` for an
    /// address or port that cannot be a target.
    #[wasm_bindgen(constructor)]
    pub fn new(remote_address: &str, remote_port: f64, options: JsValue) -> JsResult<TcpSocket> {
        let target =
            names::target(false, remote_address, remote_port).map_err(|e| js::type_error(&e))?;
        let shared = Shared::start(
            &options,
            target,
            remote_address.to_owned(),
            remote_port as u16,
            false,
        )?;
        Ok(Self { shared })
    }

    /// Resolves to `{readable, writable, remoteAddress, remotePort}` once the bridge is open;
    /// rejects with a `NetworkError` whose message is the relay's reason when it refuses.
    #[wasm_bindgen(getter)]
    pub fn opened(&self) -> Promise {
        self.shared.opened.promise.clone()
    }

    /// Resolves when the socket ends cleanly; rejects with an error carrying `code` and
    /// `reason` otherwise.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> Promise {
        self.shared.closed.promise.clone()
    }

    /// Ends the socket (Close 1000); returns `closed`.
    pub fn close(&self) -> Promise {
        self.shared.close()
    }
}

/// UDP through the relay: one message each way is one datagram.
#[wasm_bindgen(js_name = UDPSocket)]
pub struct UdpSocket {
    shared: Rc<Shared>,
}

#[wasm_bindgen(js_class = UDPSocket)]
impl UdpSocket {
    /// `new UDPSocket({remoteAddress, remotePort, relay, token})`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> JsResult<UdpSocket> {
        let address = get(&options, "remoteAddress").as_string().ok_or_else(|| {
            js::type_error("UDPSocket: remoteAddress is required (one peer per socket)")
        })?;
        let port = get(&options, "remotePort").as_f64().unwrap_or(f64::NAN);
        let target = names::target(true, &address, port).map_err(|e| js::type_error(&e))?;
        let shared = Shared::start(&options, target, address, port as u16, true)?;
        Ok(Self { shared })
    }

    /// Resolves to `{readable, writable, remoteAddress, remotePort}`; messages are `{data}`.
    #[wasm_bindgen(getter)]
    pub fn opened(&self) -> Promise {
        self.shared.opened.promise.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> Promise {
        self.shared.closed.promise.clone()
    }

    pub fn close(&self) -> Promise {
        self.shared.close()
    }
}

/// The page's readable stream: `source` through a TransformStream running `transform` and, at
/// the end, `flush`. Not `pipeThrough`: that would hand the page the browser's own error when
/// the connection drops (Chromium's `WebSocketError`); the page gets this library's
/// `NetworkError` with `code` and `reason` instead, as from `closed`.
///
/// The page cancelling its readable does not cancel `source`: cancelling a bridge's readable
/// closes its WebSocket (a WebSocketStream's by the standard), so the writes that followed were
/// lost, and in Chromium (156) writes to a WebSocketStream whose readable was cancelled crash
/// the renderer within a few sockets. As in Direct Sockets, the writable keeps working until
/// `close()`; what arrives meanwhile is read and dropped, so that it never holds up the target.
fn readable_through(source: &ReadableStream, transform: &JsValue, flush: &JsValue) -> JsValue {
    let stream = TransformStream::new(&object(&[("transform", transform), ("flush", flush)]));
    let writable = stream.writable();
    let options = object(&[
        ("preventAbort", &true.into()),
        ("preventCancel", &true.into()),
    ]);
    let piped = source.pipe_to(&writable, &options);
    let source: ReadableStream = JsValue::clone(source).unchecked_into();
    let on_error = Closure::once_into_js(move |error: JsValue| -> JsValue {
        js::call_method(
            &writable,
            "abort",
            &bridge::Ending::of_error(&error).to_js(),
        );
        // Read and drop the rest (a failed `source` rejects at once).
        let drop_all = WritableStream::new(&Object::new(), &Object::new());
        js::mark_handled(&source.pipe_to(&drop_all, &Object::new()));
        JsValue::UNDEFINED
    });
    js::call_method(&piped, "catch", &on_error);
    stream.readable().into()
}

/// A writable stream whose chunks, through `transform`, go to `sink` (the bridge's). The
/// pipe does not close the sink when the page closes the writable: a WebSocket has no half
/// close, so the bridge stays open for reading until `close()`.
fn writable_through(sink: &JsValue, transform: &JsValue) -> JsValue {
    let stream = TransformStream::new(&object(&[("transform", transform)]));
    let piped = stream
        .readable()
        .pipe_to(sink, &object(&[("preventClose", &true.into())]));
    js::mark_handled(&piped);
    stream.writable()
}

type Transform = Closure<dyn Fn(JsValue, Controller) -> JsResult<()>>;

fn transform_fn(f: fn(&JsValue) -> JsResult<JsValue>) -> Function {
    Transform::new(move |chunk: JsValue, controller: Controller| controller.enqueue(&f(&chunk)?))
        .into_js_value()
        .unchecked_into()
}

thread_local! {
    // Stateless, so created once for every socket.
    static TO_BYTES: Function = transform_fn(|m| Ok(bridge::message_view(m).into()));
    static TO_MESSAGE: Function = transform_fn(|m| {
        Ok(object(&[("data", &bridge::message_view(m).into())]).into())
    });
    // A write of any size, in pieces that each fit a message the relay takes.
    static FROM_BYTES: Function = Transform::new(|chunk: JsValue, controller: Controller| {
        let view = view_of(&chunk)?;
        let mut start = 0;
        while start < view.length() {
            controller.enqueue(&bridge::piece(&view, &mut start))?;
        }
        Ok(())
    })
    .into_js_value()
    .unchecked_into();
    static FROM_MESSAGE: Function = transform_fn(|message| {
        let data = get(message, "data");
        if data.is_undefined() {
            return Err(js::type_error("a UDP message is {data}: data is missing"));
        }
        Ok(view_of(&data)?.slice(0, u32::MAX).into())
    });
}

fn to_bytes_fn() -> JsValue {
    TO_BYTES.with(|f| f.clone().into())
}
fn to_message_fn() -> JsValue {
    TO_MESSAGE.with(|f| f.clone().into())
}
fn from_bytes_fn() -> JsValue {
    FROM_BYTES.with(|f| f.clone().into())
}

fn from_message_fn() -> JsValue {
    FROM_MESSAGE.with(|f| f.clone().into())
}
