//! The traffic log's Copy and Export: the clipboard (with the old fallback) and a download.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Document;

use super::dom::{self, describe, Page};
use super::log::{self, Log};

/// Copies the log as text; says how it went in the log's status line.
pub async fn copy(page: &Page, log: &Log) {
    let text = log.as_text();
    let count = log.len();
    let navigator = page.window.navigator();
    // navigator.clipboard exists only in secure contexts (https, localhost).
    let has_clipboard =
        Reflect::get(&navigator, &JsValue::from_str("clipboard")).is_ok_and(|c| !c.is_undefined());
    let result = if has_clipboard {
        JsFuture::from(navigator.clipboard().write_text(&text))
            .await
            .map(|_| ())
    } else {
        Err(JsValue::from_str("no clipboard in this context"))
    };
    match result {
        _ if result.is_ok() || copy_with_selection(&page.document, &text) => {
            log.say(&format!("Copied {count} entries to the clipboard."))
        }
        Err(error) => log.say(&format!("Copy failed: {}", describe(&error))),
        Ok(()) => {}
    }
}

/// Downloads the log as JSON, naming `relay` as the URL it was recorded through.
pub fn export(page: &Page, log: &Log, relay: &str) {
    let json = log.as_json(relay);
    let stamp = dom::iso_time(js_sys::Date::now()).replace(':', "-");
    let name = format!("sockrelay-log-{stamp}.json");
    match log::download(&page.document, &name, "application/json", &json) {
        Ok(()) => log.say(&format!("Exported {} entries as {name}.", log.len())),
        Err(error) => log.say(&format!("Export failed: {}", describe(&error))),
    }
}

/// The old way to copy, for pages the Clipboard API refuses (no permission, not a secure
/// context): select the text in a hidden field and ask the browser to copy it.
fn copy_with_selection(document: &Document, text: &str) -> bool {
    let Some(body) = document.body() else {
        return false;
    };
    let Ok(area) = document
        .create_element("textarea")
        .map(|e| e.unchecked_into::<web_sys::HtmlTextAreaElement>())
    else {
        return false;
    };
    area.set_value(text);
    let _ = area.set_attribute("class", "visually-hidden");
    let _ = area.set_attribute("aria-hidden", "true");
    let _ = body.append_child(&area);
    area.select();
    let copied = document
        .dyn_ref::<web_sys::HtmlDocument>()
        .and_then(|d| d.exec_command("copy").ok())
        .unwrap_or(false);
    area.remove();
    copied
}
