//! Small DOM helpers shared by the panels: finding the shell's elements, listening, creating
//! elements with text (never HTML: received bytes are untrusted), timers and clocks.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, EventTarget, Url, Window};

pub type JsResult<T> = Result<T, JsValue>;

/// The page and where the relay's endpoints are.
pub struct Page {
    pub window: Window,
    pub document: Document,
    /// The page's own URL. Endpoints are resolved against it (`ws`, `api/targets`), so the
    /// client also works when a proxy serves the relay under a path.
    href: String,
    /// `?token=` of the page, passed on to `/ws` and `api/*` for a relay started with `--token`.
    token: Option<String>,
}

impl Page {
    pub fn new() -> JsResult<Self> {
        let window = web_sys::window().ok_or("the client needs a browser window")?;
        let document = window.document().ok_or("the client needs a document")?;
        let href = window.location().href()?;
        let token = Url::new(&href)?.search_params().get("token");
        Ok(Self {
            window,
            document,
            href,
            token,
        })
    }

    /// The absolute URL of an endpoint given relative to the page (`api/targets`), with the
    /// page's token: a relay started with `--token` wants it on its API too.
    pub fn endpoint(&self, relative: &str) -> String {
        Url::new_with_base(relative, &self.href)
            .map(|url| {
                if let Some(token) = &self.token {
                    url.search_params().set("token", token);
                }
                url.href()
            })
            .unwrap_or_else(|_| relative.to_owned())
    }

    /// The bridge's URL for `target`: `wss:` when the page came over TLS, since browsers refuse
    /// plain `ws:` from an `https:` page.
    pub fn socket_url(&self, target: &str) -> JsResult<String> {
        let url = Url::new_with_base("ws", &self.href)?;
        let secure = url.protocol() == "https:";
        url.set_protocol(if secure { "wss:" } else { "ws:" });
        url.set_hash("");
        // The URL's searchParams are live: setting one rewrites the URL's query.
        let params = url.search_params();
        params.set("target", target);
        if let Some(token) = &self.token {
            params.set("token", token);
        }
        Ok(url.href())
    }

    /// The origin of the page (`http://127.0.0.1:8080`), for messages.
    pub fn origin(&self) -> String {
        self.window.location().origin().unwrap_or_default()
    }
}

/// The element with `id`, as the type it is used as.
pub fn by_id<T: JsCast>(document: &Document, id: &str) -> JsResult<T> {
    document
        .get_element_by_id(id)
        .and_then(|element| element.dyn_into::<T>().ok())
        .ok_or_else(|| js_sys::Error::new(&format!("the page has no usable #{id}")).into())
}

/// Adds an event listener for the page's lifetime.
pub fn listen<E: JsCast + 'static>(
    target: &EventTarget,
    event: &str,
    mut handler: impl FnMut(E) + 'static,
) {
    let closure = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        handler(event.unchecked_into());
    });
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // The elements live as long as the page, so the listener must too: hand it to JS.
    closure.forget();
}

/// A new element with a class and, optionally, text.
pub fn create(
    document: &Document,
    tag: &str,
    class: &str,
    text: Option<&str>,
) -> JsResult<Element> {
    let element = document.create_element(tag)?;
    if !class.is_empty() {
        element.set_class_name(class);
    }
    if text.is_some() {
        element.set_text_content(text);
    }
    Ok(element)
}

/// Milliseconds on the page's monotonic clock (`performance.now()`), for durations.
pub fn now() -> f64 {
    thread_local! {
        static PERFORMANCE: Option<web_sys::Performance> =
            web_sys::window().and_then(|window| window.performance());
    }
    PERFORMANCE.with(|p| p.as_ref().map_or_else(js_sys::Date::now, |p| p.now()))
}

/// Runs `f` once after `ms` milliseconds; returns the timer id.
pub fn after(ms: i32, f: impl FnOnce() + 'static) -> i32 {
    let callback = Closure::once_into_js(f);
    web_sys::window()
        .and_then(|window| {
            window
                .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), ms)
                .ok()
        })
        .unwrap_or(0)
}

/// Runs `f` every `ms` milliseconds for the page's lifetime.
pub fn every(ms: i32, f: impl FnMut() + 'static) {
    let closure = Closure::<dyn FnMut()>::new(f);
    if let Some(window) = web_sys::window() {
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            closure.as_ref().unchecked_ref(),
            ms,
        );
    }
    closure.forget();
}

/// Wall-clock time (milliseconds since the epoch) as local `HH:MM:SS.mmm`.
pub fn clock(epoch_ms: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(epoch_ms));
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds(),
        date.get_milliseconds()
    )
}

/// Wall-clock time as ISO 8601 UTC (`2025-01-31T12:34:56.789Z`).
pub fn iso_time(epoch_ms: f64) -> String {
    String::from(js_sys::Date::new(&JsValue::from_f64(epoch_ms)).to_iso_string())
}

/// A JS exception as a sentence for the page.
pub use super::session::api::describe;

/// Moves the keyboard focus from `from` (about to be hidden or disabled) to `to`, if `from` has
/// it: a hidden element drops the focus to the page's start, and keyboard users lose their place.
pub fn pass_focus(document: &Document, from: &Element, to: &web_sys::HtmlElement) {
    if document.active_element().as_ref() == Some(from) {
        let _ = to.focus();
    }
}

/// A `performance.mark`, for measuring the page from tests and devtools.
pub fn mark(name: &str) {
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}
