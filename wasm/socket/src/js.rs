//! Browser bindings and small helpers. WebSocketStream has no web-sys binding; the Streams
//! constructors are declared here with the one signature used, instead of web-sys's
//! dictionary types.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

pub type JsResult<T> = Result<T, JsValue>;

#[wasm_bindgen]
extern "C" {
    /// Chromium's WebSocketStream: a WebSocket whose messages are Streams, so that a page
    /// that stops reading stops the browser reading the connection (backpressure).
    pub type WebSocketStream;
    #[wasm_bindgen(constructor, catch)]
    pub fn new(url: &str, options: &Object) -> JsResult<WebSocketStream>;
    #[wasm_bindgen(method, getter)]
    pub fn opened(this: &WebSocketStream) -> Promise;
    #[wasm_bindgen(method, getter)]
    pub fn closed(this: &WebSocketStream) -> Promise;
    #[wasm_bindgen(method, catch)]
    pub fn close(this: &WebSocketStream, info: &JsValue) -> JsResult<()>;

    pub type ReadableStream;
    #[wasm_bindgen(constructor)]
    pub fn new(source: &Object, strategy: &Object) -> ReadableStream;
    #[wasm_bindgen(method, js_name = pipeTo)]
    pub fn pipe_to(this: &ReadableStream, sink: &JsValue, options: &Object) -> Promise;
    #[wasm_bindgen(method, js_name = getReader)]
    pub fn get_reader(this: &ReadableStream) -> Reader;

    pub type Reader;
    #[wasm_bindgen(method)]
    pub fn read(this: &Reader) -> Promise;
    #[wasm_bindgen(method, js_name = releaseLock)]
    pub fn release_lock(this: &Reader);
    #[wasm_bindgen(method)]
    pub fn cancel(this: &Reader) -> Promise;

    pub type WritableStream;
    #[wasm_bindgen(constructor)]
    pub fn new(sink: &Object, strategy: &Object) -> WritableStream;
    #[wasm_bindgen(method, js_name = getWriter)]
    pub fn get_writer(this: &WritableStream) -> Writer;

    pub type Writer;
    #[wasm_bindgen(method)]
    pub fn write(this: &Writer, chunk: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = releaseLock)]
    pub fn release_lock(this: &Writer);

    pub type TransformStream;
    #[wasm_bindgen(constructor)]
    pub fn new(transformer: &Object) -> TransformStream;
    #[wasm_bindgen(method, getter)]
    pub fn readable(this: &TransformStream) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    pub fn writable(this: &TransformStream) -> JsValue;

    /// A stream controller: ReadableStreamDefaultController or TransformStreamDefaultController.
    pub type Controller;
    #[wasm_bindgen(method, catch)]
    pub fn enqueue(this: &Controller, chunk: &JsValue) -> JsResult<()>;
    #[wasm_bindgen(method, catch)]
    pub fn error(this: &Controller, error: &JsValue) -> JsResult<()>;
    #[wasm_bindgen(method, catch)]
    pub fn close(this: &Controller) -> JsResult<()>;
    #[wasm_bindgen(method, getter, js_name = desiredSize)]
    pub fn desired_size(this: &Controller) -> Option<f64>;

    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(handler: &Function, ms: f64) -> JsValue;
}

/// `object[key]`, or undefined.
pub fn get(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A plain object from `(key, value)` pairs.
pub fn object(pairs: &[(&str, &JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in pairs {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// Whether the global object has `name` (a constructor the browser may lack).
pub fn has_global(name: &str) -> bool {
    Reflect::has(&js_sys::global(), &JsValue::from_str(name)).unwrap_or(false)
}

/// A promise resolved with `value` after `ms` milliseconds.
pub fn delay(ms: f64, value: JsValue) -> Promise {
    Promise::new(&mut |resolve, _| {
        let value = value.clone();
        let done = Closure::once_into_js(move |_: JsValue| -> JsValue {
            let _ = resolve.call1(&JsValue::UNDEFINED, &value);
            JsValue::UNDEFINED
        });
        set_timeout(done.unchecked_ref(), ms);
    })
}

/// A promise with its resolve and reject functions, to settle from elsewhere.
pub struct Deferred {
    pub promise: Promise,
    pub resolve: Function,
    pub reject: Function,
}

impl Deferred {
    /// A new pending promise. Marked handled: a page that never awaits it (a socket's
    /// `closed` that rejects) gets no "uncaught in promise" error for it.
    pub fn new() -> Self {
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        // Promise's executor runs at once: `settle` is always set here.
        let (resolve, reject) = settle.unwrap_or_else(|| (noop_fn(), noop_fn()));
        mark_handled(&promise);
        Self {
            promise,
            resolve,
            reject,
        }
    }

    pub fn resolve(&self, value: &JsValue) {
        let _ = self.resolve.call1(&JsValue::UNDEFINED, value);
    }

    pub fn reject(&self, error: &JsValue) {
        let _ = self.reject.call1(&JsValue::UNDEFINED, error);
    }
}

thread_local! {
    // A closure, not `new Function`: the relay's Content-Security-Policy forbids eval.
    static NOOP: Function = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {})
        .into_js_value()
        .unchecked_into();
}

/// `promise.then(f)` for a function given as a JS value.
pub fn then(promise: &Promise, f: &JsValue) -> JsValue {
    call_method(promise, "then", f)
}

/// `promise.catch(noop)`: its rejection is no longer "uncaught"; awaiting it still throws.
pub fn mark_handled(promise: &Promise) {
    call_method(promise, "catch", &noop_fn());
}

/// `object[method](arg)`'s result, or `object` when that is no function or it throws.
pub fn call_method(object: &JsValue, method: &str, arg: &JsValue) -> JsValue {
    get(object, method)
        .dyn_into::<Function>()
        .and_then(|f| f.call1(object, arg))
        .unwrap_or_else(|_| object.clone())
}

/// A function that does nothing (to mark a promise's rejection handled), created once.
pub fn noop_fn() -> Function {
    NOOP.with(Function::clone)
}

/// An `Error` with this `name` (a Python class, `NetworkError`, ...) and message.
pub fn named_error(name: &str, message: &str) -> js_sys::Error {
    let error = js_sys::Error::new(message);
    error.set_name(name);
    error
}

/// A `TypeError` with this message, as the Streams and WebIDL throw for a wrong argument.
pub fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
