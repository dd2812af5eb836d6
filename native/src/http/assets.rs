//! The web client and docs, embedded in the binary at build time so `sockrelay` runs from any
//! directory. Lookups go to a compiled-in table, never to the file system, so no request path
//! can reach outside it.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::negotiate::{self, Coding, Precondition};

#[derive(rust_embed::Embed)]
#[folder = "../web/"]
#[exclude = "node_modules/*"]
struct Web;

/// True when the browser modules were built before this binary was compiled.
pub fn client_built() -> bool {
    Web::get("pkg/client.js").is_some() && Web::get("pkg/client_bg.wasm").is_some()
}

/// The Content-Security-Policy of every answer: the pages load scripts, styles, the icon and
/// the wasm modules from the relay only (`'wasm-unsafe-eval'` lets them compile wasm, and
/// nothing else: no inline code, no `eval`), and connect back only to the relay. CSP's
/// `'self'` does not cover `ws:`/`wss:` in every browser, so the relay's own WebSocket
/// origin is listed, from `host` (the request's `Host`, already checked to be a plain
/// authority): both schemes, since a TLS proxy in front turns `ws:` into `wss:`.
/// `frame_ancestors` is `--frame-ancestors` (default `'self'`).
pub fn content_security_policy(host: Option<&str>, frame_ancestors: &[String]) -> String {
    let sockets = host.map_or_else(String::new, |h| format!(" ws://{h} wss://{h}"));
    let ancestors = match frame_ancestors {
        [] => "'self'".to_owned(),
        sources => sources.join(" "),
    };
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
         connect-src 'self'{sockets}; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors {ancestors}"
    )
}

/// Checks a `--frame-ancestors` source: `'self'`, `'none'`, `*`, a scheme (`https:`), or
/// `[scheme://]host[:port]` where the host may start with `*.` and the port may be `*`
/// (CSP's source expressions, without paths). Anything that could end the directive or
/// start another (`;`, `,`, spaces, quotes) is refused.
pub fn validate_frame_ancestor(source: &str) -> Result<(), String> {
    let expected = || {
        Err("expected 'self', 'none', *, a scheme such as https:, or \
             [scheme://]host[:port] such as https://*.example.org"
            .to_owned())
    };
    let scheme_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    if matches!(source, "'self'" | "'none'" | "*") {
        return Ok(());
    }
    if source.eq_ignore_ascii_case("self") || source.eq_ignore_ascii_case("none") {
        return Err(format!("write '{source}' with its single quotes"));
    }
    if let Some(scheme) = source.strip_suffix(':') {
        return if scheme_ok(scheme) {
            Ok(())
        } else {
            expected()
        };
    }
    let authority = match source.split_once("://") {
        Some((scheme, rest)) if scheme_ok(scheme) => rest,
        Some(_) => return expected(),
        None => source,
    };
    let port_ok =
        |p: &str| p == "*" || (p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    let (host, port) = authority
        .split_once(':')
        .map_or((authority, None), |(h, p)| (h, Some(p)));
    if host == "*" && port.is_none_or(port_ok) {
        return Ok(());
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.split('.').all(label_ok) && port.is_none_or(port_ok) {
        Ok(())
    } else {
        expected()
    }
}

/// Maps a request path to an embedded file name.
fn file_name(path: &str) -> String {
    // One slash only: `//index.html` is no page here (nor in a `--web` directory, which is
    // asked first and refuses empty parts), not the built-in client.
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed {
        "" => "index.html".into(),
        "docs" => "docs.html".into(),
        // Browsers ask for it on pages that name no icon; every page here names this one.
        "favicon.ico" => "favicon.svg".into(),
        p if p.ends_with('/') => format!("{p}index.html"),
        p => p.to_owned(),
    }
}

/// Serves an embedded file, with a strong ETag (a hash of the bytes sent) so that browsers
/// revalidate with a 304 instead of a download. Under `/pkg/` (the modules, public code for
/// pages on any origin) also with CORS and `Cross-Origin-Resource-Policy: cross-origin`, and in
/// the best coding the client accepts of the copies the build made (`NAME.br`, `NAME.gz`).
/// `Range` is ignored: every file is small, so a 200 with all of it is the answer.
pub fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let name = file_name(path);
    if (name == "index.html" || name == "docs.html") && !client_built() {
        return not_built_page();
    }
    let Some(file) = Web::get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("not found: {path}\n"),
        )
            .into_response();
    };
    let public = name.starts_with("pkg/");
    let compressed: Vec<Coding> = [Coding::Brotli, Coding::Gzip]
        .into_iter()
        .filter(|c| public && Web::get(&format!("{name}{}", c.suffix())).is_some())
        .collect();
    let coding = negotiate::choose(
        negotiate::joined(request_headers, header::ACCEPT_ENCODING).as_deref(),
        &compressed,
    );
    let file = match coding {
        Coding::Identity => file,
        _ => Web::get(&format!("{name}{}", coding.suffix())).unwrap_or(file),
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let precondition = negotiate::precondition(request_headers, &etag, None);
    let mut response = match precondition {
        Precondition::Proceed => Response::new(Body::from(file.data)),
        Precondition::NotModified => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            // The length a 200 would have (an empty body's 0 is wrong for HEAD).
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(file.data.len()));
            response
        }
        Precondition::Failed => precondition_failed(),
    };
    let headers = response.headers_mut();
    if precondition != Precondition::Failed {
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        // Names carry no hash, so a cached copy is checked each time: a 304 costs a round trip.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if !compressed.is_empty() {
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    // A 304 carries the validator and the caching rule only (RFC 9110 15.4.5).
    if precondition == Precondition::Proceed {
        let mime = mime_guess::from_path(&name).first_or_octet_stream();
        if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        if let Some(encoding) = coding.header() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
    }
    // Every answer, a 412 too, is readable by pages of any origin.
    if public {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        );
    }
    response
}

/// 412, for a request whose `If-Match` or `If-Unmodified-Since` the file no longer meets.
pub(crate) fn precondition_failed() -> Response {
    (
        StatusCode::PRECONDITION_FAILED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "precondition failed: the file is not the one asked for\n",
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shown instead of the client when the binary was built before the browser modules. It has
/// no inline style or script, which the Content-Security-Policy would block.
const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sockrelay: browser client not built</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="css/docs.css">
</head><body>
<h1>The browser client has not been built</h1>
<p>This <code>sockrelay</code> binary was compiled before the WebAssembly modules in <code>web/pkg/</code> existed,
so it has no page to serve. The relay itself works: <code>/ws</code>, <code>/api/targets</code>, <code>/healthz</code> and <code>/metrics</code> are up.</p>
<p>From the source checkout, run:</p>
<pre>make run</pre>
<p>which builds the modules (<code>wasm/build.sh</code>) and then the binary with them embedded.</p>
</body></html>
"#;

fn not_built_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        NOT_BUILT_PAGE,
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
        for doubled in [
            "//",
            "//index.html",
            "///index.html",
            "//docs",
            "//pkg/inet.js",
        ] {
            let r = serve(doubled, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{doubled}");
        }
    }

    #[test]
    fn the_icon_is_served_where_browsers_look_for_it() {
        assert_eq!(file_name("/favicon.ico"), "favicon.svg");
        let r = serve("/favicon.ico", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "image/svg+xml");
    }

    /// Regression: `If-Match` was ignored.
    #[test]
    fn a_file_is_sent_only_as_the_validators_ask() {
        let r = serve("/favicon.ico", &HeaderMap::new());
        let etag = r.headers()[header::ETAG].clone();
        for (name, value, status) in [
            (
                header::IF_NONE_MATCH,
                etag.clone(),
                StatusCode::NOT_MODIFIED,
            ),
            (header::IF_MATCH, etag.clone(), StatusCode::OK),
            (
                header::IF_MATCH,
                HeaderValue::from_static("\"x\""),
                StatusCode::PRECONDITION_FAILED,
            ),
            // No date to compare with: the date validators are not used.
            (
                header::IF_MODIFIED_SINCE,
                HeaderValue::from_static("Sun, 06 Nov 2050 08:49:37 GMT"),
                StatusCode::OK,
            ),
        ] {
            let mut asked = HeaderMap::new();
            asked.insert(name.clone(), value);
            assert_eq!(serve("/favicon.ico", &asked).status(), status, "{name}");
        }
        // A 304 gives the validator and the length a 200 has, not an empty body's 0 (which
        // HEAD sent), and no representation metadata.
        let mut asked = HeaderMap::new();
        asked.insert(header::IF_NONE_MATCH, etag);
        let fresh = serve("/favicon.ico", &asked);
        let whole = Web::get("favicon.svg").map(|f| f.data.len().to_string());
        let length = fresh.headers().get(header::CONTENT_LENGTH);
        assert_eq!(length.and_then(|v| v.to_str().ok()), whole.as_deref());
        assert!(!fresh.headers().contains_key(header::CONTENT_TYPE));
        // A public module's 412 is readable by the page of another origin that asked.
        if client_built() {
            let mut asked = HeaderMap::new();
            asked.insert(header::IF_MATCH, HeaderValue::from_static("\"x\""));
            let refused = serve("/pkg/inet.js", &asked);
            assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
            assert_eq!(refused.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        }
    }

    #[test]
    fn the_not_built_page_needs_nothing_inline() {
        let page = NOT_BUILT_PAGE;
        assert!(!page.contains("<style") && !page.contains("style="));
        assert!(!page.contains("<script"));
        assert!(Web::get("css/docs.css").is_some(), "the page's stylesheet");
    }

    #[test]
    fn the_policy_names_the_relay_s_sockets_and_frame_ancestors() {
        let csp = content_security_policy(Some("127.0.0.1:8080"), &[]);
        assert_eq!(
            csp,
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
             connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080; object-src 'none'; \
             base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
        );
        let csp = content_security_policy(None, &["https://a.example".into(), "'self'".into()]);
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(
            csp.ends_with("frame-ancestors https://a.example 'self'"),
            "{csp}"
        );
    }

    #[test]
    fn frame_ancestor_sources() {
        for ok in [
            "'self'",
            "'none'",
            "*",
            "https:",
            "https://docs.example.org",
            "https://*.example.org",
            "https://*",
            "https://docs.example.org:8443",
            "http://127.0.0.1:*",
            "docs.example.org",
            "chrome-extension://abc",
        ] {
            assert!(validate_frame_ancestor(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "self",
            "none",
            "'unsafe-inline'",
            "https://a.example; script-src *",
            "https://a.example,https://b.example",
            "https://a.example b.example",
            "https://a.example/path",
            "https://user@a.example",
            "https://a.example:",
            "https://a.example:99999",
            "https://a.*.example",
            "https://[::1]",
            "1https://a.example",
            "://a.example",
            ":",
        ] {
            assert!(validate_frame_ancestor(bad).is_err(), "{bad}");
        }
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
