//! The relay's HTTP API as the page uses it: `api/targets` and `api/check`.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, Window};

use super::connection::Verdict;
use super::dom::{describe, Page};

/// `GET api/targets`: `(name, address)` of each target the relay allows by name, or why the
/// list could not be had.
pub async fn targets(page: &Page) -> Result<Vec<(String, String)>, String> {
    match fetch_json(&page.window, &page.endpoint("api/targets")).await? {
        (200, body) => Ok(js_sys::Array::from(&body)
            .iter()
            .filter_map(|item| Some((get_string(&item, "name")?, get_string(&item, "target")?)))
            .collect()),
        (status, _) => Err(format!("HTTP {status}")),
    }
}

/// `GET api/check?target=`: whether the relay would bridge to `target`, and why not.
pub async fn check(page: &Page, target: &str) -> Verdict {
    let url = page.endpoint(&format!(
        "api/check?target={}",
        String::from(js_sys::encode_uri_component(target))
    ));
    let answer = fetch_json(&page.window, &url).await.map(|(status, body)| {
        (
            status,
            get_string(&body, "target"),
            get_string(&body, "error"),
        )
    });
    Verdict::of_answer(answer)
}

/// `fetch(url)` and its JSON body (`null` when it has none): `(status, body)`, or why the
/// request got no answer at all.
async fn fetch_json(window: &Window, url: &str) -> Result<(u16, JsValue), String> {
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|error| describe(&error))?
        .dyn_into()
        .map_err(|_| "not an HTTP response".to_owned())?;
    let body = match response.json() {
        Ok(promise) => JsFuture::from(promise).await.unwrap_or(JsValue::NULL),
        Err(_) => JsValue::NULL,
    };
    Ok((response.status(), body))
}

fn get_string(object: &JsValue, key: &str) -> Option<String> {
    if !object.is_object() {
        return None;
    }
    Reflect::get(object, &JsValue::from_str(key))
        .ok()
        .and_then(|value| value.as_string())
}
