//! The bridge's WebSocket with its event handlers, which live exactly as long as it does.

use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

type JsResult<T> = Result<T, JsValue>;

/// A WebSocket and its handlers. Dropping it detaches the handlers and closes the socket, so
/// it must never be dropped from inside one of its own handlers (that would free the handler
/// that is running): the next attempt replaces it instead.
pub struct Socket {
    socket: WebSocket,
    _handlers: [Closure<dyn FnMut(JsValue)>; 3],
}

impl Socket {
    /// A WebSocket to `url`, offering `protocol` if any.
    pub fn open(
        url: &str,
        protocol: Option<&str>,
        on_open: impl FnMut(JsValue) + 'static,
        on_message: impl FnMut(MessageEvent) + 'static,
        on_close: impl FnMut(CloseEvent) + 'static,
    ) -> JsResult<Self> {
        let socket = match protocol {
            Some(protocol) => WebSocket::new_with_str(url, protocol)?,
            None => WebSocket::new(url)?,
        };
        // The relay forwards target bytes as binary frames; ArrayBuffer reads them synchronously.
        socket.set_binary_type(BinaryType::Arraybuffer);
        let handlers = [handler(on_open), handler(on_message), handler(on_close)];
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

    /// Starts the close handshake; the close event follows.
    pub fn close(&self) {
        let _ = self.socket.close_with_code(1000);
    }

    /// Starts the close handshake with this code (1000 or 3000 to 4999) and reason.
    pub fn close_with(&self, code: u16, reason: &str) {
        let _ = self.socket.close_with_code_and_reason(code, reason);
    }

    /// The subprotocol the server chose (empty for none).
    pub fn protocol(&self) -> String {
        self.socket.protocol()
    }

    /// Bytes sent but not yet handed to the network.
    pub fn buffered_amount(&self) -> u32 {
        self.socket.buffered_amount()
    }

    pub fn send_bytes(&self, bytes: &[u8]) -> JsResult<()> {
        self.socket.send_with_u8_array(bytes)
    }

    /// Sends the bytes a typed array views, without copying them through wasm memory.
    pub fn send_view(&self, view: &js_sys::Uint8Array) -> JsResult<()> {
        self.socket.send_with_array_buffer_view(view)
    }

    pub fn send_text(&self, text: &str) -> JsResult<()> {
        self.socket.send_with_str(text)
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

fn handler<E: JsCast + 'static>(mut f: impl FnMut(E) + 'static) -> Closure<dyn FnMut(JsValue)> {
    Closure::new(move |event: JsValue| f(event.unchecked_into()))
}
