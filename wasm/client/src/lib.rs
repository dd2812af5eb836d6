//! `sockrelay-client`, the browser client (`web/pkg/client.js`): a page for talking to sockets
//! through the relay's `/ws` bridge, measuring round trips, and converting addresses.
//!
//! This crate owns the page and nothing else: the address answers come from `sockrelay-inet`,
//! asking the relay, the bridge's socket and close reasons from `sockrelay-session`
//! (`wasm/session`, shared with the page socket library `socket.js`),
//! (`wasm/inet`), and the converter module `inet.js` is another crate (`wasm/converter`), so
//! neither module exports the other's functions. It is built for wasm32; a native build is
//! empty but for the unit tests of its pure parts.
//!
//! No UI framework: the page's markup is written in `web/index.html` (readable, labelled and
//! laid out before the module loads), and the client fills it in through `web-sys`. The UI is
//! a few forms, a growing log and a plot, which direct DOM calls handle in a few hundred lines;
//! a framework would multiply the module's size for little gain.
//!
//! # Layout
//! Plain Rust, unit-tested natively (`cargo test -p sockrelay-client`, the only native build of
//! the client: every function here is used by the page or by a test):
//! - [`bytes`]: hex as people type it, hex dumps, Python bytes literals, JSON strings, sizes.
//! - [`text`]: received bytes as text (UTF-8 across frames, control characters made visible).
//! - [`echo`]: matches echoed bytes to the messages sent, for round-trip times.
//! - [`latency`]: the latency test's run (what to send, echo checks, p50/p99/max, rates).
//! - [`plot`]: the round-trip plot as SVG markup.
//! - [`connection`]: the connection's state machine (an event in, effects out) and what the
//!   connection panel shows, derived from its state.
//! - [`conversions`]: the converter panel's answers, from [`crate::inet`].
//!
//! The page (wasm32 only):
//! - `dom`: element lookup, listeners, timers, clocks.
//! - `controller`: the wiring; performs the connection's effects and draws it, routes
//!   incoming bytes.
//! - `api`: the relay's `api/targets` and `api/check` at the page's URLs.
//! - `panel`, `log` (with `log_tools`), `composer`, `measure`, `convert`: one panel each.

#![cfg(any(test, target_arch = "wasm32"))]

use sockrelay_inet as inet;
use sockrelay_session as session;

mod bytes;
mod connection;
mod conversions;
mod echo;
mod latency;
mod plot;
mod text;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod composer;
#[cfg(target_arch = "wasm32")]
mod controller;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod log;
#[cfg(target_arch = "wasm32")]
mod log_tools;
#[cfg(target_arch = "wasm32")]
mod measure;
#[cfg(target_arch = "wasm32")]
mod panel;

#[cfg(target_arch = "wasm32")]
mod entry {
    use wasm_bindgen::prelude::*;

    use super::{controller, convert, dom};

    /// Entry point, run by wasm-bindgen as soon as `init()` has instantiated the module.
    #[wasm_bindgen(start, skip_typescript)]
    pub fn start() -> Result<(), JsValue> {
        let page = dom::Page::new()?;
        // The converter needs no connection: it works whatever happens to the relay.
        convert::attach(&page.document)?;
        // The page's event listeners own the controller from here on, for the page's lifetime.
        let controller = controller::Controller::start(page)?;
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("data-client", "ready");
        }
        dom::mark("sockrelay-ready");
        drop(controller);
        Ok(())
    }
}

// lol_alloc's free list instead of std's dlmalloc, as in the converter: the client's
// allocations are few and small, and the allocator is a tenth of the size.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
