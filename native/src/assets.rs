//! The web client and docs, embedded in the binary at build time so `sockrelay` runs from any
//! directory. Lookups go to a compiled-in table, never to the file system, so no request path
//! can reach outside it.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "../web/"]
#[exclude = "node_modules/*"]
struct Web;

/// True when the browser modules were built before this binary was compiled.
pub fn client_built() -> bool {
    Web::get("pkg/client.js").is_some() && Web::get("pkg/client_bg.wasm").is_some()
}

/// Maps a request path to an embedded file name.
fn file_name(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    match trimmed {
        "" => "index.html".into(),
        "docs" => "docs.html".into(),
        p if p.ends_with('/') => format!("{p}index.html"),
        p => p.to_owned(),
    }
}

/// Serves an embedded file, with an ETag so browsers revalidate cheaply.
pub fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let name = file_name(path);
    if (name == "index.html" || name == "docs.html") && !client_built() {
        return not_built_page();
    }
    let Some(file) = Web::get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("not found: /{name}\n"),
        )
            .into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut response = if request_headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data))
    };
    let mime = mime_guess::from_path(&name).first_or_octet_stream();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shown instead of the client when the binary was built before the browser modules.
fn not_built_page() -> Response {
    const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sockrelay: browser client not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}code,pre{background:#8882;padding:.1rem .3rem;border-radius:4px}</style>
</head><body>
<h1>The browser client has not been built</h1>
<p>This <code>sockrelay</code> binary was compiled before the WebAssembly modules in <code>web/pkg/</code> existed,
so it has no page to serve. The relay itself works: <code>/ws</code>, <code>/api/targets</code>, <code>/healthz</code> and <code>/metrics</code> are up.</p>
<p>From the source checkout, run:</p>
<pre>make run</pre>
<p>which builds the modules (<code>wasm/build.sh</code>) and then the binary with them embedded.</p>
</body></html>
"#;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_files() {
        assert_eq!(file_name("/"), "index.html");
        assert_eq!(file_name("/docs"), "docs.html");
        assert_eq!(file_name("/pkg/inet.js"), "pkg/inet.js");
        assert_eq!(file_name("/examples/"), "examples/index.html");
    }

    #[test]
    fn traversal_finds_nothing() {
        for p in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/..%2fCargo.toml",
            "//etc/passwd",
            "/pkg/../../native/src/lib.rs",
        ] {
            let r = serve(p, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
        }
    }
}
