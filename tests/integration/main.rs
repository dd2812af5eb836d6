//! Integration tests: each starts the real relay in process on ephemeral loopback ports and
//! talks to it with real clients. Modules are grouped by feature.

#![allow(clippy::unwrap_used)]

mod cli;
mod echo;
mod flood;
mod handshake;
mod heads;
mod heartbeat;
mod hostile;
mod http;
mod pkg;
mod process;
mod udp;
mod unix;
mod websockify;
mod ws;
