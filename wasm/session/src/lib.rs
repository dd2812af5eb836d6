//! `sockrelay-session`: the connection logic that the page socket library (`web/pkg/socket.js`,
//! crate `sockrelay-socket`) and the client UI (`web/pkg/client.js`, crate `sockrelay-client`)
//! share, so that both ask the relay, open the bridge and explain its endings the same way.
//!
//! - [`Verdict`]: the relay's answer to `api/check`, and [`handshake_failure`], what a failed
//!   handshake means once the relay has been asked again.
//! - [`closes`]: close codes in words, reconnect backoff.
//! - `api` (wasm32): `GET api/check` and `GET api/targets`.
//! - `socket` (wasm32): the bridge's WebSocket with handlers that live exactly as long as it.
//!
//! It exports nothing to JavaScript itself: each module built on it exports its own API only.

pub mod closes;
mod verdict;

pub use verdict::{handshake_failure, unreachable as verdict_unreachable, Verdict};

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod socket;
