//! The relay's HTTP API as pages use it: `api/check` and `api/targets`.

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use super::Verdict;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`: a window's or a worker's alike.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> Promise;
}

/// A target the relay allows by name (`api/targets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub target: String,
    /// `tcp`, `udp` or `unix`; `tcp` from a relay that does not say.
    pub proto: String,
}

/// `GET url` (the relay's `api/targets`): each target it allows by name, or why the list
/// could not be had.
pub async fn targets(url: &str) -> Result<Vec<Listed>, String> {
    match fetch_json(url).await? {
        (200, body) => Ok(js_sys::Array::from(&body)
            .iter()
            .filter_map(|item| {
                Some(Listed {
                    name: get_string(&item, "name")?,
                    target: get_string(&item, "target")?,
                    proto: get_string(&item, "proto").unwrap_or_else(|| "tcp".to_owned()),
                })
            })
            .collect()),
        (status, _) => Err(format!("HTTP {status}")),
    }
}

/// `GET url` (the relay's `api/check?target=...`): whether the relay would bridge to the
/// target, and why not.
pub async fn check(url: &str) -> Verdict {
    let answer = fetch_json(url).await.map(|(status, body)| {
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
async fn fetch_json(url: &str) -> Result<(u16, JsValue), String> {
    let response: Response = JsFuture::from(global_fetch(url))
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

/// A thrown JS value in words: an `Error`'s message, or the value as a string.
pub fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}
