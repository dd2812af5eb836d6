//! The browser client (`web/pkg/client.js`): a page that talks to the relay's `/ws` bridge.
//!
//! # Layout
//! - [`view`]: the page. Finds the shell's elements (`web/index.html`) by id and renders the
//!   connection state and the message log; knows nothing about sockets.
//! - [`controller`]: the connection. Opens the WebSocket, sends what the user submits and
//!   reports what arrives, what fails and how the connection ends, through the view.

mod controller;
mod view;

use wasm_bindgen::prelude::*;
use web_sys::Location;

/// Entry point, run by wasm-bindgen as soon as `init()` has instantiated the module.
#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("the client needs a browser window")?;
    let document = window.document().ok_or("the client needs a document")?;
    let view = view::View::attach(document)?;
    let url = socket_url(&window.location())?;
    // The page's event listeners own the controller from here on, for the page's lifetime.
    controller::Controller::start(view, url);
    Ok(())
}

/// The relay's bridge on the host that served the page: `wss:` when the page came over TLS,
/// since browsers refuse plain `ws:` from an `https:` page.
fn socket_url(location: &Location) -> Result<String, JsValue> {
    let scheme = if location.protocol()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Ok(format!("{scheme}://{}/ws", location.host()?))
}
