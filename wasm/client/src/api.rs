//! The relay's HTTP API at the page's own URLs (with its token): the requests and their
//! reading are `sockrelay-session`'s, shared with the page socket library.

use super::connection::Verdict;
use super::dom::Page;
use super::session::api;

/// `GET api/targets`: `(name, address)` of each target the relay allows by name, or why the
/// list could not be had.
pub async fn targets(page: &Page) -> Result<Vec<(String, String)>, String> {
    let listed = api::targets(&page.endpoint("api/targets")).await?;
    Ok(listed.into_iter().map(|t| (t.name, t.target)).collect())
}

/// `GET api/check?target=`: whether the relay would bridge to `target`, and why not.
pub async fn check(page: &Page, target: &str) -> Verdict {
    let url = page.endpoint(&format!(
        "api/check?target={}",
        String::from(js_sys::encode_uri_component(target))
    ));
    api::check(&url).await
}
