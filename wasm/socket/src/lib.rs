//! `sockrelay-socket`, the page socket library (`web/pkg/socket.js`): `TCPSocket` and
//! `UDPSocket` shaped like the Direct Sockets API (WICG), over the relay's `/ws`, and a
//! Python-style `socket` layer on top of the same bridges.
//!
//! How a bridge is asked for, opened and explained when it fails or ends is
//! `sockrelay-session`'s, shared with the client UI: this crate adds the Streams.
//!
//! - [`names`]: targets and Python exception classes (pure, unit-tested natively).
//! - `js` (wasm32): the few browser bindings web-sys lacks or makes large (WebSocketStream,
//!   the Streams constructors), timers, errors.
//! - `bridge` (wasm32): one bridge: check, open (WebSocketStream where the browser has it,
//!   else a WebSocket with a bounded queue), its raw message streams, its ending.
//! - `sockets` (wasm32): `TCPSocket`, `UDPSocket`.
//! - `py` (wasm32): the Python-style layer.

#![cfg(any(test, target_arch = "wasm32"))]

mod names;

#[cfg(target_arch = "wasm32")]
mod bridge;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod py;
#[cfg(target_arch = "wasm32")]
mod sockets;

// lol_alloc's free list instead of std's dlmalloc, as in the converter and the client.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
