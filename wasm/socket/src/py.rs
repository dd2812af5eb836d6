//! The Python-style layer: `socket.socket(AF_INET, SOCK_STREAM)` or `SOCK_DGRAM` and the
//! methods the tutorial uses, each returning a promise (`await s.recv(1024)`), raising what
//! CPython raises as an `Error` whose `name` is the Python class (`TimeoutError`,
//! `ConnectionRefusedError`, `OSError`, ...), as the converter module does.
//!
//! A stream socket is one bridge. A datagram socket opens one bridge per peer it sends to
//! (the relay's UDP socket is connected: only that peer's datagrams come back), and `recvfrom`
//! answers with whichever peer's datagram comes first.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

use crate::bridge::{self, view_of, Bridge, Ending, Endpoint, Failure};
use crate::js::{self, delay, get, named_error, Deferred, JsResult, Reader, Writer};
use crate::names::{self, Class};

const AF_INET: f64 = 2.0;
const AF_INET6: f64 = 10.0;
const SOCK_STREAM: f64 = 1.0;
const SOCK_DGRAM: f64 = 2.0;

fn py(class: &str, message: &str) -> JsValue {
    named_error(class, message).into()
}

fn bad_fd() -> JsValue {
    py("OSError", "[Errno 9] Bad file descriptor")
}

/// A failed attempt as Python raises it.
fn failure_error(failure: &Failure) -> JsValue {
    let class = match failure {
        Failure::Aborted => Class::ConnectionAbortedError,
        // The target refused (ConnectionRefusedError), timed out, ...: as the relay says.
        Failure::Ended(ending) => return closed_error(ending),
        _ => Class::ConnectionRefusedError,
    };
    py(
        class.name(),
        &["[Errno 111] Connection refused: ", &failure.message()].concat(),
    )
}

/// A bridge's stream error (its unclean ending) as Python raises it.
fn ending_error(error: &JsValue) -> JsValue {
    closed_error(&Ending::of_error(error))
}

/// A bridge's ending as Python raises it.
fn closed_error(ending: &Ending) -> JsValue {
    let class = names::class_of_close(ending.code, &ending.reason);
    py(
        class.name(),
        &sockrelay_session::closes::close_message(ending.code, &ending.reason),
    )
}

/// One bridge of a Python socket, and its peer.
struct Conn {
    host: String,
    port: u16,
    bridge: Bridge,
    reader: Reader,
    writer: Writer,
    /// A read that a timeout left unanswered: the next receive takes its answer.
    pending: RefCell<Option<Promise>>,
}

impl Conn {
    fn read(&self) -> Promise {
        self.pending
            .borrow_mut()
            .take()
            .unwrap_or_else(|| self.reader.read())
    }

    fn address(&self) -> JsValue {
        Array::of2(&self.host.as_str().into(), &self.port.into()).into()
    }
}

struct State {
    dgram: bool,
    relay: Option<String>,
    token: Option<String>,
    /// Seconds, or `None` for blocking.
    timeout: Cell<Option<f64>>,
    conns: RefCell<Vec<Rc<Conn>>>,
    /// The connected peer's bridge (stream sockets, and datagram sockets after `connect`).
    connected: RefCell<Option<Rc<Conn>>>,
    /// Bytes of a chunk that a smaller `recv` left.
    leftover: RefCell<Vec<u8>>,
    closed: Cell<bool>,
}

/// The outcome of waiting with the socket's timeout.
enum Waited {
    Done(JsValue),
    Failed(JsValue),
    TimedOut,
}

impl State {
    async fn wait(&self, promise: Promise) -> Waited {
        let Some(seconds) = self.timeout.get() else {
            return match JsFuture::from(promise).await {
                Ok(value) => Waited::Done(value),
                Err(error) => Waited::Failed(error),
            };
        };
        let sentinel: JsValue = Object::new().into();
        let timer = delay(seconds * 1000.0, sentinel.clone());
        match JsFuture::from(Promise::race(&Array::of2(&promise, &timer))).await {
            Ok(value) if value == sentinel => Waited::TimedOut,
            Ok(value) => Waited::Done(value),
            Err(error) => Waited::Failed(error),
        }
    }

    /// What a wait past the timeout raises: `TimeoutError`, or for a socket that never waits
    /// (`settimeout(0)`, `setblocking(False)`) `BlockingIOError`, as CPython raises.
    fn timed_out(&self) -> JsValue {
        if self.timeout.get() == Some(0.0) {
            py(
                "BlockingIOError",
                "[Errno 11] Resource temporarily unavailable",
            )
        } else {
            py("TimeoutError", "timed out")
        }
    }

    fn check_open(&self) -> JsResult<()> {
        if self.closed.get() {
            Err(bad_fd())
        } else {
            Ok(())
        }
    }

    /// Opens a bridge to `(host, port)` within the timeout; a late one is closed.
    async fn open(self: &Rc<Self>, host: String, port: u16) -> JsResult<Rc<Conn>> {
        let target =
            names::target(self.dgram, &host, f64::from(port)).map_err(|e| py("OSError", &e))?;
        let endpoint = Endpoint::new(self.relay.clone(), self.token.clone(), target)?;
        let abandoned = Rc::new(Cell::new(false));
        let slot: Rc<RefCell<Option<Bridge>>> = Rc::default();
        let (abandoned_in, slot_in) = (Rc::clone(&abandoned), Rc::clone(&slot));
        // Settled from a task rather than made by future_to_promise: smaller, and its promise
        // is marked handled, so a refusal that comes after a timeout is no uncaught error.
        let attempt = Deferred::new();
        let promise = attempt.promise.clone();
        spawn_local(async move {
            match bridge::open(&endpoint, &abandoned_in).await {
                Ok(bridge) => {
                    *slot_in.borrow_mut() = Some(bridge);
                    attempt.resolve(&JsValue::TRUE);
                }
                Err(failure) => attempt.reject(&failure_error(&failure)),
            }
        });
        match self.wait(promise).await {
            Waited::Done(_) => {}
            Waited::Failed(error) => return Err(error),
            Waited::TimedOut => {
                abandoned.set(true);
                // A socket that never waits: CPython's non-blocking connect.
                if self.timeout.get() == Some(0.0) {
                    return Err(py(
                        "BlockingIOError",
                        "[Errno 115] Operation now in progress",
                    ));
                }
                return Err(self.timed_out());
            }
        }
        let bridge = slot.borrow_mut().take().ok_or_else(|| self.timed_out())?;
        if self.closed.get() {
            bridge.close(1000, "");
            return Err(bad_fd());
        }
        // A stream's bytes go through TCPSocket's pieces (a write of any size fits the relay's
        // messages); a datagram goes whole, checked in `send_on`.
        let writable = bridge.writable.clone();
        let conn = Rc::new(Conn {
            host,
            port,
            reader: bridge.readable.get_reader(),
            writer: js_sys::Reflect::get(&writable, &"getWriter".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .and_then(|f| f.call0(&writable).ok())
                .ok_or_else(|| py("OSError", "the bridge cannot be written"))?
                .unchecked_into(),
            bridge,
            pending: RefCell::default(),
        });
        self.conns.borrow_mut().push(Rc::clone(&conn));
        Ok(conn)
    }

    /// The bridge to `(host, port)`, opened if there is none yet.
    async fn conn_for(self: &Rc<Self>, host: String, port: u16) -> JsResult<Rc<Conn>> {
        let existing = self
            .conns
            .borrow()
            .iter()
            .find(|c| c.host == host && c.port == port)
            .cloned();
        match existing {
            Some(conn) => Ok(conn),
            None => self.open(host, port).await,
        }
    }

    /// Sends `data` on `conn`: a datagram whole (or `OSError` EMSGSIZE, the socket still
    /// usable, when the relay could not send it), a stream's bytes in pieces that each fit a
    /// message the relay takes.
    async fn send_on(&self, conn: &Conn, data: Uint8Array) -> JsResult<()> {
        // EMSGSIZE here: the relay would end the bridge for it. A stream's bytes are copied
        // and cut into pieces by its writable.
        if self.dgram && data.length() > names::max_datagram(&conn.host) {
            return Err(py("OSError", "[Errno 90] Message too long"));
        }
        // Every piece is queued at once: the last one's write settles after the others (and
        // fails if one of them did, whose own rejection is then handled).
        let mut start = 0;
        let written = loop {
            let written = conn.writer.write(&bridge::piece(&data, &mut start));
            if start >= data.length() {
                break written;
            }
            js::mark_handled(&written);
        };
        match self.wait(written).await {
            Waited::Done(_) => Ok(()),
            Waited::Failed(error) => Err(ending_error(&error)),
            Waited::TimedOut => Err(self.timed_out()),
        }
    }

    /// The next message of `conn`: `Some(bytes)`, or `None` at the end of the stream.
    async fn next_message(&self, conn: &Conn) -> JsResult<Option<Uint8Array>> {
        let read = conn.read();
        match self.wait(read.clone()).await {
            Waited::Done(result) => match message_of(&result) {
                Some(message) => Ok(Some(message)),
                // The end of the stream: a clean one, or the relay's Close with a reason.
                None => match bridge::ended_ok(conn.bridge.ended.clone()).await {
                    Ok(()) => Ok(None),
                    Err(error) => Err(ending_error(&error)),
                },
            },
            Waited::Failed(error) => Err(ending_error(&error)),
            Waited::TimedOut => {
                *conn.pending.borrow_mut() = Some(read);
                Err(self.timed_out())
            }
        }
    }

    /// The next datagram from any peer, and that peer.
    async fn next_datagram(&self) -> JsResult<(Uint8Array, Rc<Conn>)> {
        let conns: Vec<Rc<Conn>> = self.conns.borrow().clone();
        if conns.is_empty() {
            // CPython would wait for a datagram to an unbound socket's port forever.
            return Err(py(
                "OSError",
                "nothing sent yet: sendto() first, so the relay knows the peer",
            ));
        }
        let reads: Vec<Promise> = conns.iter().map(|c| c.read()).collect();
        let tagged = Array::new();
        for (index, read) in reads.iter().enumerate() {
            let index = index as u32;
            let tag = Closure::once_into_js(move |value: JsValue| -> JsValue {
                Array::of2(&index.into(), &value).into()
            });
            tagged.push(&js::then(read, &tag));
        }
        let outcome = self.wait(Promise::race(&tagged)).await;
        // Every read but the one answered stays pending for the next receive.
        let winner = match &outcome {
            Waited::Done(pair) => Array::from(pair).get(0).as_f64().map(|i| i as usize),
            _ => None,
        };
        for (index, (conn, read)) in conns.iter().zip(reads).enumerate() {
            if Some(index) != winner {
                *conn.pending.borrow_mut() = Some(read);
            }
        }
        match (outcome, winner) {
            (Waited::Done(pair), Some(index)) => {
                let conn = Rc::clone(&conns[index]);
                match message_of(&Array::from(&pair).get(1)) {
                    Some(data) => Ok((data, conn)),
                    None => Err(py("OSError", "the relay ended the datagram bridge")),
                }
            }
            (Waited::Failed(error), _) => Err(ending_error(&error)),
            _ => Err(self.timed_out()),
        }
    }

    /// Up to `bufsize` bytes and the peer they came from: of the stream, or of the next
    /// datagram (cut to `bufsize`, the rest lost, as in Python); empty at the stream's end.
    async fn receive(&self, bufsize: usize) -> JsResult<(Uint8Array, Rc<Conn>)> {
        let connected = self.connected.borrow().clone();
        let (data, conn) = match connected {
            None if self.dgram => self.next_datagram().await?,
            None => return Err(not_connected()),
            Some(conn) => {
                if let Some(data) = self.take_leftover(bufsize) {
                    return Ok((data, conn));
                }
                // One wait for both kinds: a stream skips empty chunks and reads nothing for
                // `recv(0)`; a datagram socket takes the next datagram, empty or cut to 0.
                loop {
                    let chunk = match bufsize {
                        0 if !self.dgram => None,
                        _ => self.next_message(&conn).await?,
                    };
                    match chunk {
                        Some(chunk) if chunk.length() == 0 && !self.dgram => {}
                        Some(chunk) => break (chunk, conn),
                        None => break (Uint8Array::new_with_length(0), conn),
                    }
                }
            }
        };
        let length = data.length();
        if length as usize > bufsize && !self.dgram {
            *self.leftover.borrow_mut() = data.subarray(bufsize as u32, length).to_vec();
        }
        let end = bufsize.min(length as usize) as u32;
        Ok((data.subarray(0, end), conn))
    }

    fn take_leftover(&self, bufsize: usize) -> Option<Uint8Array> {
        let mut leftover = self.leftover.borrow_mut();
        if leftover.is_empty() {
            return None;
        }
        let at = bufsize.min(leftover.len());
        let rest = leftover.split_off(at);
        let out = std::mem::replace(&mut *leftover, rest);
        Some(Uint8Array::from(&out[..]))
    }
}

/// `{done, value}` of a read as the message's bytes, or `None` when done.
fn message_of(result: &JsValue) -> Option<Uint8Array> {
    if get(result, "done").is_truthy() {
        None
    } else {
        Some(bridge::message_view(&get(result, "value")))
    }
}

/// `(host, port)` as a JS array `[host, port]`.
fn address_of(address: &JsValue) -> JsResult<(String, u16)> {
    let wrong = || py("TypeError", "an address is a [host, port] pair");
    if !Array::is_array(address) {
        return Err(wrong());
    }
    let pair = Array::from(address);
    let host = pair.get(0).as_string().ok_or_else(wrong)?;
    let port = pair.get(1).as_f64().ok_or_else(wrong)?;
    if !(port.fract() == 0.0 && (0.0..=65535.0).contains(&port)) {
        return Err(py("OverflowError", "port must be 0-65535."));
    }
    Ok((host, port as u16))
}

/// Python wants bytes: a `Uint8Array`, an `ArrayBuffer` or another view of one.
fn bytes_arg(data: &JsValue) -> JsResult<Uint8Array> {
    view_of(data).map_err(|_| {
        let kind = if data.is_string() { "str" } else { "object" };
        py(
            "TypeError",
            &["a bytes-like object is required, not '", kind, "'"].concat(),
        )
    })
}

fn bufsize_arg(bufsize: &JsValue) -> JsResult<usize> {
    let n = bufsize
        .as_f64()
        .ok_or_else(|| py("TypeError", "'bufsize' must be an integer"))?;
    if n.fract() != 0.0 {
        return Err(py(
            "TypeError",
            "'float' object cannot be interpreted as an integer",
        ));
    }
    if n < 0.0 {
        return Err(py("ValueError", "negative buffersize in recv"));
    }
    Ok(n as usize)
}

/// A call of the Python layer, to be performed: one future type for all of them keeps the
/// module small (each `async` block would be a state machine of its own).
enum Op {
    /// `connect` (no data: answers nothing), `send` (no address: answers the length), `sendall`
    /// (answers nothing) and `sendto` (answers the length): one arm for all four, so that the
    /// module has one copy of each wait.
    Send(Option<JsValue>, Option<JsValue>, bool),
    /// `recv` and `recvfrom` (which answers the peer too): one arm for both.
    Recv(JsValue, bool),
}

impl State {
    async fn perform(self: Rc<Self>, op: Op) -> JsResult<JsValue> {
        let state = self;
        state.check_open()?;
        match op {
            Op::Send(data, to, all) => {
                if data.is_some() && to.is_some() && !state.dgram {
                    return Err(already_connected());
                }
                let data = data.as_ref().map(bytes_arg).transpose()?;
                let target = to.as_ref().map(address_of).transpose()?;
                if data.is_none() && !state.dgram && state.connected.borrow().is_some() {
                    return Err(already_connected());
                }
                let conn = match target {
                    Some((host, port)) => state.conn_for(host, port).await?,
                    None => state.connected.borrow().clone().ok_or_else(not_connected)?,
                };
                let Some(data) = data else {
                    *state.connected.borrow_mut() = Some(conn);
                    return Ok(JsValue::UNDEFINED);
                };
                let length = data.length();
                state.send_on(&conn, data).await?;
                Ok(if all {
                    JsValue::UNDEFINED
                } else {
                    length.into()
                })
            }
            Op::Recv(bufsize, from) => {
                let (data, conn) = state.receive(bufsize_arg(&bufsize)?).await?;
                Ok(if from {
                    Array::of2(&data, &conn.address()).into()
                } else {
                    data.into()
                })
            }
        }
    }
}

/// A socket in Python's manner (`socket.socket(...)` in `socket.js`).
#[wasm_bindgen(js_name = PySocket)]
pub struct PySocket {
    state: Rc<State>,
}

#[wasm_bindgen(js_class = PySocket)]
impl PySocket {
    /// `family` is `AF_INET` or `AF_INET6`, `kind` `SOCK_STREAM` or `SOCK_DGRAM`; `options`
    /// (`{relay, token}`) says which relay, as for `TCPSocket`.
    #[wasm_bindgen(constructor)]
    pub fn new(family: JsValue, kind: JsValue, options: JsValue) -> JsResult<PySocket> {
        let family = if family.is_undefined() {
            AF_INET
        } else {
            family.as_f64().unwrap_or(-1.0)
        };
        let kind = if kind.is_undefined() {
            SOCK_STREAM
        } else {
            kind.as_f64().unwrap_or(-1.0)
        };
        if family != AF_INET && family != AF_INET6 {
            return Err(py(
                "OSError",
                "[Errno 97] Address family not supported by protocol",
            ));
        }
        if kind != SOCK_STREAM && kind != SOCK_DGRAM {
            return Err(py("OSError", "[Errno 94] Socket type not supported"));
        }
        Ok(Self {
            state: Rc::new(State {
                dgram: kind == SOCK_DGRAM,
                relay: get(&options, "relay").as_string(),
                token: get(&options, "token").as_string(),
                timeout: Cell::new(None),
                conns: RefCell::default(),
                connected: RefCell::default(),
                leftover: RefCell::default(),
                closed: Cell::new(false),
            }),
        })
    }

    fn call(&self, op: Op) -> Promise {
        future_to_promise(Rc::clone(&self.state).perform(op))
    }

    /// `settimeout(seconds)`: `null` blocks; `0` never waits; otherwise operations that take
    /// longer raise `TimeoutError("timed out")`.
    pub fn settimeout(&self, seconds: JsValue) -> JsResult<()> {
        if seconds.is_null() || seconds.is_undefined() {
            self.state.timeout.set(None);
            return Ok(());
        }
        let value = seconds
            .as_f64()
            .ok_or_else(|| py("TypeError", "Timeout value must be int, float or None"))?;
        if value.is_nan() || value < 0.0 {
            return Err(py("ValueError", "Timeout value out of range"));
        }
        self.state.timeout.set(Some(value));
        Ok(())
    }

    /// `gettimeout()`: the seconds `settimeout` set, or `null` for blocking.
    pub fn gettimeout(&self) -> JsValue {
        self.state
            .timeout
            .get()
            .map_or(JsValue::NULL, JsValue::from)
    }

    /// `setblocking(flag)`: `settimeout(null)` when true, `settimeout(0)` when false.
    pub fn setblocking(&self, flag: bool) {
        self.state.timeout.set((!flag).then_some(0.0));
    }

    /// `await connect([host, port])`.
    pub fn connect(&self, address: JsValue) -> Promise {
        self.call(Op::Send(None, Some(address), true))
    }

    /// `await sendall(bytes)`: every byte, or an error.
    pub fn sendall(&self, data: JsValue) -> Promise {
        self.call(Op::Send(Some(data), None, true))
    }

    /// `await send(bytes)`: the number of bytes sent (all of them).
    pub fn send(&self, data: JsValue) -> Promise {
        self.call(Op::Send(Some(data), None, false))
    }

    /// `await sendto(bytes, [host, port])`: one datagram.
    pub fn sendto(&self, data: JsValue, address: JsValue) -> Promise {
        self.call(Op::Send(Some(data), Some(address), false))
    }

    /// `await recv(bufsize)`: up to `bufsize` bytes; an empty array at the end of the stream.
    /// A datagram longer than `bufsize` is cut to it, the rest lost, as in Python.
    pub fn recv(&self, bufsize: JsValue) -> Promise {
        self.call(Op::Recv(bufsize, false))
    }

    /// `await recvfrom(bufsize)`: `[bytes, [host, port]]`.
    pub fn recvfrom(&self, bufsize: JsValue) -> Promise {
        self.call(Op::Recv(bufsize, true))
    }

    /// Closes every bridge; later calls raise `OSError` (bad file descriptor).
    pub fn close(&self) {
        if self.state.closed.replace(true) {
            return;
        }
        for conn in self.state.conns.borrow_mut().drain(..) {
            conn.bridge.close(1000, "");
        }
        self.state.connected.borrow_mut().take();
    }
}

fn already_connected() -> JsValue {
    py(
        "OSError",
        "[Errno 106] Transport endpoint is already connected",
    )
}

fn not_connected() -> JsValue {
    py("OSError", "[Errno 107] Transport endpoint is not connected")
}
