//! `--web DIR`: files from a directory (noVNC's, say), served before the embedded pages.
//!
//! Only what is plainly inside the directory is served: a request path is percent-decoded once,
//! then refused if any part of it is empty, `.`, `..`, starts with `.` (dotfiles such as `.git`
//! or `.htpasswd` stay private), or holds a NUL or a backslash; the file found is resolved
//! (symbolic links followed) and served only if it is still under the directory's own resolved
//! path, so a link cannot lead out of it. Directories are never listed: a path naming one serves
//! its `index.html`, if any. Anything refused or missing falls through to the embedded pages,
//! which answer 404 for what they do not have.
//!
//! An HTML page's Content-Security-Policy allows its own inline `<script>` and `<style>` blocks
//! by their SHA-256 hashes ([`Inline`]), and nothing else inline: noVNC's `vnc.html` and
//! `vnc_lite.html` start with such blocks, and an `'unsafe-inline'` for the whole directory would
//! let any injected markup run (an `onerror=` attribute, a script copied from another page).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::assets;
use super::negotiate::{self, Part, Precondition};

/// A directory to serve.
#[derive(Debug, Clone)]
pub struct WebDir {
    /// The directory's resolved path: what every served file must be under.
    root: PathBuf,
}

impl WebDir {
    /// Opens `dir`, which must be a directory.
    pub fn open(dir: &Path) -> std::io::Result<WebDir> {
        let root = std::fs::canonicalize(dir)?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(WebDir { root })
    }

    /// The answer to `request` (a GET's or HEAD's head), with the inline code its policy
    /// allows (see [`content_security_policy`]), or `None` when the directory has no such file
    /// or the path is refused. A directory's path without its final `/` is redirected to it
    /// (its page's relative links need it), and a file's path with one is no file.
    pub async fn serve(&self, request: &Parts) -> Option<(Response, Inline)> {
        let (relative, named_as_directory) = relative_path(request.uri.path())?;
        let mut file = self.resolve(&self.root.join(&relative)).await?;
        let mut meta = tokio::fs::metadata(&file).await.ok()?;
        if meta.is_dir() {
            file = self.resolve(&file.join("index.html")).await?;
            meta = tokio::fs::metadata(&file).await.ok()?;
            if meta.is_file() && !named_as_directory {
                return Some((to_directory(&request.uri), Inline::default()));
            }
        } else if named_as_directory {
            return None;
        }
        if !meta.is_file() {
            return None;
        }
        // Strong, as a file server's tag usually is: a rewrite to the same length within the
        // file system's clock step (1 ns on ext4, tmpfs, xfs and btrfs) would keep it.
        let mtime = meta.modified().ok();
        let stamp = mtime
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{:x}-{stamp:x}\"", meta.len());
        // Never later than now (RFC 9110 8.8.2.1): a clock set back, a file from elsewhere.
        let modified = mtime.map(|t| t.min(SystemTime::now()));
        let mime = mime_guess::from_path(&file).first_or_octet_stream();
        // A page is read whole, so that its hashes are those of the bytes served (and of the
        // cached copy a 304 confirms).
        let page = if mime.essence_str() == "text/html" && meta.len() <= MAX_PAGE_BYTES {
            let bytes = tokio::fs::read(&file).await.ok()?;
            let inline =
                std::str::from_utf8(&bytes).map_or_else(|_| Inline::default(), inline_code);
            Some((bytes, inline))
        } else {
            None
        };
        // The page as read (the file may have changed since it was looked at).
        let len = page
            .as_ref()
            .map_or(meta.len(), |(bytes, _)| bytes.len() as u64);
        let headers = &request.headers;
        let mut response = match negotiate::precondition(headers, &etag, modified) {
            Precondition::Failed => {
                return Some((assets::precondition_failed(), Inline::default()))
            }
            Precondition::NotModified => {
                let mut response = StatusCode::NOT_MODIFIED.into_response();
                // The length a 200 would have (an empty body's 0 is wrong for HEAD).
                let length = HeaderValue::from(len);
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, length);
                response
            }
            Precondition::Proceed => {
                let part = if request.method == Method::GET {
                    negotiate::part(headers, &etag, modified, len)
                } else {
                    Part::Whole
                };
                let page = page.as_ref().map(|(bytes, _)| bytes.as_slice());
                contents(&file, page, len, part).await?
            }
        };
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // A 304 carries the validator and the caching rule only (RFC 9110 15.4.5).
        if response.status() == StatusCode::NOT_MODIFIED {
            return Some((response, page.map(|(_, inline)| inline).unwrap_or_default()));
        }
        let headers = response.headers_mut();
        let content_type = match mime.type_() {
            mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
            _ if mime.subtype() == mime_guess::mime::JAVASCRIPT => {
                "text/javascript; charset=utf-8".to_owned()
            }
            _ => mime.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        if let Some(modified) = modified {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
                headers.insert(header::LAST_MODIFIED, v);
            }
        }
        Some((response, page.map(|(_, inline)| inline).unwrap_or_default()))
    }

    /// `path` with its links resolved, if it exists and is under the root, and no part of it
    /// below the root is a dotfile (a link `cfg -> .git` must not serve `.git/config`).
    async fn resolve(&self, path: &Path) -> Option<PathBuf> {
        let resolved = tokio::fs::canonicalize(path).await.ok()?;
        let below = resolved.strip_prefix(&self.root).ok()?;
        let hidden = below
            .components()
            .any(|part| part.as_os_str().as_encoded_bytes().starts_with(b"."));
        (!hidden).then_some(resolved)
    }
}

/// The 200 with all of a file of `len` bytes (`page`: as read already), or the 206 with the
/// `part` asked for, or the 416 for a part past its end.
async fn contents(file: &Path, page: Option<&[u8]>, len: u64, part: Part) -> Option<Response> {
    let (start, end) = match part {
        Part::Whole => (0, len.checked_sub(1)),
        Part::Bytes { start, end } => (start, Some(end)),
        Part::Unsatisfiable => return Some(unsatisfiable(len)),
    };
    let count = end.map_or(0, |end| end + 1 - start);
    let body = match page {
        Some(bytes) => {
            let from = usize::try_from(start).ok()?;
            let to = usize::try_from(start + count).ok()?;
            Body::from(bytes.get(from..to)?.to_vec())
        }
        None => {
            let mut opened = tokio::fs::File::open(file).await.ok()?;
            if start > 0 {
                opened.seek(SeekFrom::Start(start)).await.ok()?;
            }
            Body::from_stream(tokio_util::io::ReaderStream::new(opened.take(count)))
        }
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let (Part::Bytes { .. }, Some(end)) = (part, end) {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            headers.insert(header::CONTENT_RANGE, v);
        }
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Some(response)
}

/// 301 to `uri`'s path with a `/` added (its query kept): where a directory's page is.
fn to_directory(uri: &Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response = (
        StatusCode::MOVED_PERMANENTLY,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("moved to {location}\n"),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// 416, for a `Range` that starts past the end of a `len`-byte file.
fn unsatisfiable(len: u64) -> Response {
    let mut response = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("range not satisfiable: the file has {len} bytes\n"),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// The largest HTML page whose inline code is allowed; a larger one is served with none.
const MAX_PAGE_BYTES: u64 = 1 << 20;

/// The inline `<script>` and `<style>` blocks of an HTML page, as CSP hash sources
/// (`'sha256-...'`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inline {
    scripts: Vec<String>,
    styles: Vec<String>,
}

/// The Content-Security-Policy of `--web` answers: the relay's own (`policy`), with the page's
/// own inline blocks allowed by hash (`inline`) and `data:` and `blob:` images, which noVNC
/// draws its cursor and decodes JPEG rectangles through. Nothing else is relaxed: no
/// `'unsafe-inline'` (so no inline event handlers, `style=` attributes or injected blocks),
/// scripts and connections only to the relay, no plugins, no framing but by
/// `--frame-ancestors`.
pub fn content_security_policy(policy: &str, inline: &Inline) -> String {
    let sources =
        |hashes: &[String]| -> String { hashes.iter().map(|h| format!(" '{h}'")).collect() };
    policy.replacen(
        "script-src 'self' 'wasm-unsafe-eval';",
        &format!(
            "script-src 'self' 'wasm-unsafe-eval'{}; style-src 'self'{}; \
             img-src 'self' data: blob:;",
            sources(&inline.scripts),
            sources(&inline.styles)
        ),
        1,
    )
}

/// The inline code of an HTML page: each `<script>` without `src` and each `<style>`, hashed as
/// a browser hashes it: the text between the tags as the HTML tokenizer reads it (line endings
/// normalised to LF, NUL as U+FFFD; a script ends at the `</script>` that closes it, past the
/// ones inside a `<!-- <script>` escape). Comments, bogus comments, doctypes and the text of
/// `<textarea>`, `<title>` and the like are skipped, and quoted attribute values are not
/// mistaken for tags. Only text of the page's own file is ever hashed; where this reading still
/// differs from the browser's (a block inside `<svg>` or `<math>`, which are parsed otherwise),
/// the browser refuses that block, and nothing else runs.
fn inline_code(html: &str) -> Inline {
    let html = html
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\0', "\u{fffd}");
    let mut inline = Inline::default();
    let mut rest = html.as_str();
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = after_comment(comment);
            continue;
        }
        // A doctype, or a bogus comment (`<!x`, `<?x`): up to the next `>`.
        if rest.starts_with(['!', '?']) {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        let closing = rest.starts_with('/');
        let tag = &rest[usize::from(closing)..];
        if !tag.starts_with(|c: char| c.is_ascii_alphabetic()) {
            if closing {
                // `</>` is dropped; `</` and anything else starts a bogus comment.
                rest = tag.find('>').map_or("", |end| &tag[end + 1..]);
            }
            // Otherwise the `<` is text.
            continue;
        }
        let name_len = tag
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(tag.len());
        let name = tag[..name_len].to_ascii_lowercase();
        // An end tag is read as a start tag is (its attributes may hold a quoted `>`).
        let Some((attrs, after)) = start_tag(&tag[name_len..]) else {
            // A tag cut off by the end of the page, which the browser drops.
            break;
        };
        rest = after;
        if closing {
            continue;
        }
        match name.as_str() {
            "script" => {
                let end = script_end(rest);
                if !attrs.iter().any(|a| a == "src") {
                    inline.scripts.push(sha256_source(&rest[..end]));
                }
                rest = &rest[end..];
            }
            "style" => {
                let end = find_end_tag(rest, &name).unwrap_or(rest.len());
                inline.styles.push(sha256_source(&rest[..end]));
                rest = &rest[end..];
            }
            // Text up to their end tag, where `<script>` is no element.
            "textarea" | "title" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                rest = &rest[find_end_tag(rest, &name).unwrap_or(rest.len())..];
            }
            // Text to the end of the page.
            "plaintext" => break,
            _ => {}
        }
    }
    inline
}

/// What follows a comment whose `<!--` came just before `text`: it ends at the first `-->` or
/// `--!>`, and `<!-->` and `<!--->` are whole (empty) comments.
fn after_comment(text: &str) -> &str {
    for whole in [">", "->"] {
        if let Some(after) = text.strip_prefix(whole) {
            return after;
        }
    }
    let end = ["-->", "--!>"]
        .iter()
        .filter_map(|close| text.find(close).map(|at| at + close.len()))
        .min();
    end.map_or("", |end| &text[end..])
}

/// Where the text of a script ends in `text` (what follows its start tag): at the `</script`
/// that closes it, found as the tokenizer's script data states find it. After a `<!--`, a
/// `<script` starts a part where `</script>` does not close the element but ends that part;
/// `-->` leaves both.
fn script_end(text: &str) -> usize {
    let b = text.as_bytes();
    let script_at = |at: usize| {
        b.get(at..at + 6)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"script"))
            && matches!(
                b.get(at + 6),
                Some(b'\t' | b'\n' | b'\x0c' | b' ' | b'/' | b'>')
            )
    };
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let (mut state, mut dashes, mut i) = (State::Data, 0u8, 0);
    while i < b.len() {
        let end_tag = b[i] == b'<' && b.get(i + 1) == Some(&b'/') && script_at(i + 2);
        match state {
            State::Data if end_tag => return i,
            State::Data if b[i..].starts_with(b"<!--") => {
                // Its dashes count towards a `-->` (`<!-->` leaves at once).
                (state, dashes, i) = (State::Escaped, 2, i + 4);
                continue;
            }
            State::Data => {}
            State::Escaped if end_tag => return i,
            State::Escaped | State::DoubleEscaped if b[i] == b'-' => {
                (dashes, i) = ((dashes + 1).min(2), i + 1);
                continue;
            }
            State::Escaped | State::DoubleEscaped if b[i] == b'>' && dashes == 2 => {
                state = State::Data;
            }
            State::Escaped if b[i] == b'<' && script_at(i + 1) => {
                (state, dashes, i) = (State::DoubleEscaped, 0, i + 7);
                continue;
            }
            State::DoubleEscaped if end_tag => {
                (state, dashes, i) = (State::Escaped, 0, i + 8);
                continue;
            }
            State::Escaped | State::DoubleEscaped => {}
        }
        dashes = 0;
        i += 1;
    }
    b.len()
}

/// Reads a tag's attributes up to its `>`: their names (lower case), and what follows the
/// tag; `None` when the page ends first.
fn start_tag(text: &str) -> Option<(Vec<String>, &str)> {
    let mut names = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if let Some(after) = rest.strip_prefix('>') {
            return Some((names, after));
        }
        if rest.is_empty() {
            return None;
        }
        // A name starts with any character but these (a first `=` included).
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let name_end = rest[first..]
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '/' | '>' | '='))
            .map_or(rest.len(), |end| end + first);
        names.push(rest[..name_end].to_ascii_lowercase());
        rest = rest[name_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        if let Some(value) = rest.strip_prefix('=') {
            let value = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
            rest = match value.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &value[1..];
                    &inner[inner.find(quote)? + 1..]
                }
                _ => {
                    let end = value
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(value.len());
                    &value[end..]
                }
            };
        }
    }
}

/// Where the end tag `</name` (any case, then whitespace, `/` or `>`) starts in `text`.
fn find_end_tag(text: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("</") {
        let at = from + at;
        let after = &text[at + 2..];
        if after.len() >= name.len()
            && after.is_char_boundary(name.len())
            && after[..name.len()].eq_ignore_ascii_case(name)
            && after[name.len()..]
                .starts_with(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// The CSP hash source of `text`: `sha256-` and the base64 of its UTF-8 bytes' SHA-256.
fn sha256_source(text: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The path under the directory a request path names, and whether it ends with a `/` (once
/// decoded: `%2F` is one too), or `None` if it is refused.
fn relative_path(path: &str) -> Option<(PathBuf, bool)> {
    let decoded = percent_decode(path.strip_prefix('/')?)?;
    let mut relative = PathBuf::new();
    if decoded.is_empty() {
        return Some((relative, true));
    }
    let trimmed = decoded.strip_suffix('/');
    for part in trimmed.unwrap_or(&decoded).split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains(['\0', '\\']) {
            return None;
        }
        relative.push(part);
    }
    Some((relative, trimmed.is_some()))
}

/// Decodes `%XX` escapes once; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::{HeaderMap, HeaderName};

    /// The head of a GET for `path` with `headers`.
    fn ask(path: &str, headers: &HeaderMap) -> Parts {
        let mut request = axum::http::Request::get(path).body(()).unwrap();
        *request.headers_mut() = headers.clone();
        request.into_parts().0
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    fn scripts(html: &str) -> Vec<String> {
        inline_code(html).scripts
    }

    fn hashed(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| sha256_source(t)).collect()
    }

    #[test]
    fn the_policy_adds_a_page_s_own_hashes_and_data_images_only() {
        let base = crate::http::assets::content_security_policy(Some("127.0.0.1:6080"), &[]);
        let none = content_security_policy(&base, &Inline::default());
        assert_ne!(
            none, base,
            "the relay's policy changed shape: relax it again"
        );
        assert_eq!(
            none.replace(" style-src 'self'; img-src 'self' data: blob:;", ""),
            base
        );
        let inline = Inline {
            scripts: vec!["sha256-a".into(), "sha256-b".into()],
            styles: vec!["sha256-c".into()],
        };
        let page = content_security_policy(&base, &inline);
        assert!(
            page.contains(
                "script-src 'self' 'wasm-unsafe-eval' 'sha256-a' 'sha256-b'; \
                 style-src 'self' 'sha256-c'; img-src 'self' data: blob:;"
            ),
            "{page}"
        );
        assert!(page.contains("connect-src 'self' ws://127.0.0.1:6080 wss://127.0.0.1:6080;"));
        assert!(!page.contains("unsafe-inline"), "{page}");
    }

    #[test]
    fn inline_blocks_are_hashed_as_a_browser_hashes_them() {
        // The hash CSP's own examples give for `alert(1)`.
        let alert = "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=";
        assert_eq!(scripts("<script>alert(1)</script>"), [alert]);
        assert_eq!(scripts("<SCRIPT type=module>alert(1)</Script >"), [alert]);
        // The parser turns CRLF and CR into LF before the page sees its text.
        assert_eq!(
            scripts("<script>\r\n  import RFB from \"./core/rfb.js\";\r</script>"),
            ["sha256-mfzGdBFgH5mDLEkk69FvP6aJcrSKtSE5PT9K7GzXx4c="]
        );
        assert_eq!(
            inline_code("<style media=\"a>b\">b{}</style>").styles,
            ["sha256-7yqHVAesot11p6HczDsgKRipvI5UPgs97z80zNXlans="]
        );
        // A script with `src` runs the file, not its text.
        assert!(scripts("<script src=\"app/ui.js\">alert(1)</script>").is_empty());
        assert!(scripts("<script type=module crossorigin SRC='x.js'></script>").is_empty());
        // Not scripts: in a comment, a quoted attribute, a textarea, another element's name.
        for not_a_script in [
            "<!-- <script>alert(1)</script> -->",
            "<a title=\"<script>alert(1)</script>\">x</a>",
            "<textarea><script>alert(1)</script></textarea>",
            "<script-like>alert(1)</script-like>",
            "a < b <script",
            "<p title='<script>alert(1)",
        ] {
            assert!(scripts(not_a_script).is_empty(), "{not_a_script}");
        }
        // A `</script>` in a string ends the block, as in the browser; what follows is text.
        assert_eq!(scripts("<script>alert(1)</script>x'</script>"), [alert]);
        // A tag's name runs to white space, `/` or `>`; an attribute's name may be any text.
        assert_eq!(
            scripts("<div>\u{e9}<script\u{e9}>a</script><script \u{e9}=1>b{}</script>"),
            hashed(&["b{}"])
        );
        assert_eq!(
            scripts("<script/>alert(1)</script/>"),
            [alert],
            "no self-closing script"
        );
        // Comments end at `-->` or `--!>`, and `<!-->` and `<!--->` are whole.
        for page in [
            "<!--><script>alert(1)</script>",
            "<!--->x<script>alert(1)</script>",
            "<!-- a --!><script>alert(1)</script><!-- -->",
            "<!-- a --->\n<script>alert(1)</script>",
        ] {
            assert_eq!(scripts(page), [alert], "{page}");
        }
        // A doctype, `<!x`, `<?x` and `</ x` run to the first `>`, which here is `<script>`'s;
        // `<plaintext>` makes the rest of the page text.
        for page in [
            "<!x <script>alert(1)</script> >",
            "<?x <script>alert(1)</script> ?>",
            "</ x <script>alert(1)</script> >",
            "<plaintext><script>alert(1)</script>",
        ] {
            assert!(scripts(page).is_empty(), "{page}");
        }
        assert_eq!(scripts("<!doctype html><script>alert(1)</script>"), [alert]);
        // Inside a script, `<!--` and then `<script` hide the next `</script>`; `-->` ends that.
        for (page, text) in [
            ("<script>a<!--b</script>c", "a<!--b"),
            (
                "<script><!--<script>x</script>y</script>z</script>",
                "<!--<script>x</script>y",
            ),
            ("<script><!--<SCRIPT>x--></script>", "<!--<SCRIPT>x-->"),
            ("<script><!-->x<script>y</script>", "<!-->x<script>y"),
            ("<script><!-- --><script></script>", "<!-- --><script>"),
            ("<script><!--<scripts>x</script>", "<!--<scripts>x"),
        ] {
            assert_eq!(scripts(page), hashed(&[text]), "{page}");
        }
        assert_eq!(
            inline_code("<style>a<!--<script></style>b{}</style>").styles,
            hashed(&["a<!--<script>"])
        );
    }

    /// Regression: `--web` answers allowed every inline script and style (`'unsafe-inline'`),
    /// so markup injected into any page of the directory ran.
    #[tokio::test]
    async fn a_page_allows_its_own_inline_code_and_nothing_else() {
        let (base, dir) = temp_tree("inline");
        let web = base.join("web");
        std::fs::write(
            web.join("lite.html"),
            "<!doctype html><style>b{}</style><script type=\"module\">alert(1)</script>",
        )
        .unwrap();
        std::fs::write(web.join("other.html"), "<script>alert(2)</script>").unwrap();
        let h = HeaderMap::new();
        let policy_of = |inline: &Inline| {
            let base = crate::http::assets::content_security_policy(None, &[]);
            content_security_policy(&base, inline)
        };
        let (_, lite) = dir.serve(&ask("/lite.html", &h)).await.unwrap();
        let (_, other) = dir.serve(&ask("/other.html", &h)).await.unwrap();
        assert_eq!(
            lite,
            Inline {
                scripts: vec!["sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=".into()],
                styles: vec!["sha256-7yqHVAesot11p6HczDsgKRipvI5UPgs97z80zNXlans=".into()],
            }
        );
        // The other page's script is not allowed on this one, nor this one's there.
        let (lite, other) = (policy_of(&lite), policy_of(&other));
        let (two, one) = (&sha256_source("alert(2)"), &sha256_source("alert(1)"));
        assert!(lite.contains(one) && !lite.contains(two), "{lite}");
        assert!(other.contains(two) && !other.contains(one), "{other}");
        // A page without inline code, and a file that is no page, allow none.
        for path in ["/vnc.html", "/core/rfb.js"] {
            let (_, inline) = dir.serve(&ask(path, &h)).await.unwrap();
            assert_eq!(inline, Inline::default(), "{path}");
        }
        // A 304 carries the page's policy too.
        let (r, _) = dir.serve(&ask("/lite.html", &h)).await.unwrap();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, r.headers()[header::ETAG].clone());
        let (r, inline) = dir.serve(&ask("/lite.html", &again)).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(inline.scripts.len(), 1);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn plain_paths_only() {
        let path = |p: &str, slash| Some((PathBuf::from(p), slash));
        assert_eq!(relative_path("/"), path("", true));
        assert_eq!(relative_path("/core/rfb.js"), path("core/rfb.js", false));
        assert_eq!(relative_path("/app/images/"), path("app/images", true));
        assert_eq!(relative_path("/app/images%2F"), path("app/images", true));
        assert_eq!(relative_path("/a%20b.html"), path("a b.html", false));
        for refused in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/core/%2E%2E/%2e%2e/x",
            "/..%2fx",
            "/a/../b",
            "/./a",
            "//etc/passwd",
            "/a//b",
            "/.git/config",
            "/a/.htpasswd",
            "/a%00.html",
            "/a%5c..%5cb",
            "/app%2F/",
            "/app/%2F",
            "/bad%zz",
            "/%ff",
            "relative",
        ] {
            assert_eq!(relative_path(refused), None, "{refused}");
        }
    }

    fn temp_tree(name: &str) -> (PathBuf, WebDir) {
        let base =
            std::env::temp_dir().join(format!("sockrelay-web-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let web = base.join("web");
        std::fs::create_dir_all(web.join("core")).unwrap();
        std::fs::write(web.join("vnc.html"), "<!doctype html>").unwrap();
        std::fs::write(web.join("core/rfb.js"), "export default 1;").unwrap();
        std::fs::write(web.join(".secret"), "no").unwrap();
        std::fs::write(base.join("outside.txt"), "outside").unwrap();
        let dir = WebDir::open(&web).unwrap();
        (base, dir)
    }

    #[tokio::test]
    async fn files_with_their_types_and_nothing_outside() {
        let (base, dir) = temp_tree("serve");
        let h = HeaderMap::new();
        let (r, _) = dir.serve(&ask("/vnc.html", &h)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let (r, _) = dir.serve(&ask("/core/rfb.js", &h)).await.unwrap();
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = r.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            dir.serve(&ask("/core/rfb.js", &again))
                .await
                .unwrap()
                .0
                .status(),
            StatusCode::NOT_MODIFIED
        );
        assert!(dir.serve(&ask("/.secret", &h)).await.is_none());
        assert!(dir.serve(&ask("/../outside.txt", &h)).await.is_none());
        assert!(dir.serve(&ask("/missing.html", &h)).await.is_none());
        // A directory is not listed; it has no index.html here.
        assert!(dir.serve(&ask("/core/", &h)).await.is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Sets the modification time of `file` to `millis` after the epoch.
    fn set_modified(file: &Path, millis: u64) {
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(UNIX_EPOCH + std::time::Duration::from_millis(millis))
            .unwrap();
    }

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Regression: `/dir` served `dir/index.html` where its relative links resolve against
    /// `/`, and `/file.js/` served the file.
    #[tokio::test]
    async fn a_directory_is_named_with_its_slash_and_a_file_without() {
        let (base, dir) = temp_tree("slash");
        std::fs::create_dir(base.join("web/app")).unwrap();
        std::fs::write(base.join("web/app/index.html"), "<p>app</p>").unwrap();
        let h = HeaderMap::new();
        for (path, location) in [
            ("/app", "/app/"),
            ("/app?autoconnect=1", "/app/?autoconnect=1"),
        ] {
            let (r, _) = dir.serve(&ask(path, &h)).await.unwrap();
            assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY, "{path}");
            assert_eq!(r.headers()[header::LOCATION], location);
        }
        for path in ["/app/", "/app%2F", "/app%2f?x"] {
            let (r, _) = dir.serve(&ask(path, &h)).await.unwrap();
            assert_eq!(body_of(r).await, "<p>app</p>", "{path}");
        }
        assert!(dir.serve(&ask("/core/rfb.js/", &h)).await.is_none());
        assert!(dir.serve(&ask("/vnc.html/", &h)).await.is_none());
        // A directory without a page is not redirected to a 404.
        assert!(dir.serve(&ask("/core", &h)).await.is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Regression: `If-Match` and the date validators were ignored, and a list of tags in
    /// `If-None-Match` was taken for one tag.
    #[tokio::test]
    async fn conditional_requests_are_answered_as_rfc_9110_says() {
        let (base, dir) = temp_tree("conditional");
        let when = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        set_modified(&base.join("web/core/rfb.js"), 1_700_000_000_300);
        let (r, _) = dir
            .serve(&ask("/core/rfb.js", &HeaderMap::new()))
            .await
            .unwrap();
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let date = httpdate::fmt_http_date(when);
        assert_eq!(r.headers()[header::LAST_MODIFIED], date.as_str());
        let before = httpdate::fmt_http_date(when - std::time::Duration::from_secs(1));
        let weak = format!("W/{etag}");
        let listed = format!("\"x\", {etag}");
        use header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
        for (asked, status) in [
            (vec![(IF_NONE_MATCH, listed.as_str())], 304),
            (vec![(IF_NONE_MATCH, weak.as_str())], 304),
            (vec![(IF_NONE_MATCH, "*")], 304),
            (vec![(IF_NONE_MATCH, "\"x\"")], 200),
            (vec![(IF_MODIFIED_SINCE, date.as_str())], 304),
            (vec![(IF_MODIFIED_SINCE, before.as_str())], 200),
            (vec![(IF_MODIFIED_SINCE, "yesterday")], 200),
            // The tag decides when both are there.
            (
                vec![(IF_NONE_MATCH, "\"x\""), (IF_MODIFIED_SINCE, date.as_str())],
                200,
            ),
            (vec![(IF_MATCH, listed.as_str())], 200),
            (vec![(IF_MATCH, "*")], 200),
            (vec![(IF_MATCH, "\"x\"")], 412),
            // If-Match compares strongly.
            (vec![(IF_MATCH, weak.as_str())], 412),
            (vec![(IF_UNMODIFIED_SINCE, date.as_str())], 200),
            (vec![(IF_UNMODIFIED_SINCE, before.as_str())], 412),
            (
                vec![
                    (IF_MATCH, etag.as_str()),
                    (IF_UNMODIFIED_SINCE, before.as_str()),
                ],
                200,
            ),
            (vec![(IF_MATCH, "\"x\""), (IF_NONE_MATCH, "\"x\"")], 412),
        ] {
            let (r, _) = dir
                .serve(&ask("/core/rfb.js", &headers(&asked)))
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{asked:?}");
            if status == 304 {
                // The validator, and the length a 200 has (not an empty body's 0); no
                // representation metadata.
                let h = r.headers();
                assert_eq!(h[header::ETAG], etag.as_str());
                assert_eq!(h[header::CONTENT_LENGTH], "17");
                assert!(!h.contains_key(header::CONTENT_TYPE), "{h:?}");
                assert!(!h.contains_key(header::LAST_MODIFIED), "{h:?}");
            }
        }
        // A file dated in the future is dated now at the latest (RFC 9110 8.8.2.1), so that a
        // client's copy from now on is not refused as older than the file.
        set_modified(&base.join("web/core/rfb.js"), 4_102_444_800_000);
        let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let soon = httpdate::fmt_http_date(soon);
        let (r, _) = dir
            .serve(&ask(
                "/core/rfb.js",
                &headers(&[(IF_UNMODIFIED_SINCE, &soon)]),
            ))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let date = httpdate::parse_http_date(r.headers()[header::LAST_MODIFIED].to_str().unwrap());
        assert!(date.unwrap() <= std::time::SystemTime::now());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Regression: `Range` was ignored, so a download could not be resumed.
    #[tokio::test]
    async fn one_range_of_a_file_or_a_page_is_sent() {
        let (base, dir) = temp_tree("range");
        std::fs::write(base.join("web/page.html"), "<p>0123456789</p>").unwrap();
        let page_modified = std::fs::metadata(base.join("web/page.html"))
            .unwrap()
            .modified()
            .unwrap();
        let page_date = httpdate::fmt_http_date(page_modified);
        set_modified(&base.join("web/core/rfb.js"), 1_700_000_000_300);
        let (r, _) = dir
            .serve(&ask("/core/rfb.js", &HeaderMap::new()))
            .await
            .unwrap();
        assert_eq!(r.headers()[header::ACCEPT_RANGES], "bytes");
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let modified = r.headers()[header::LAST_MODIFIED]
            .to_str()
            .unwrap()
            .to_owned();
        use header::{IF_RANGE, RANGE};
        // rfb.js holds `export default 1;` (17 bytes).
        for (path, asked, status, range, body) in [
            // A page written this second: its date may name two versions.
            (
                "/page.html",
                vec![(RANGE, "bytes=3-12"), (IF_RANGE, page_date.as_str())],
                200,
                "",
                "<p>0123456789</p>",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=0-5")],
                206,
                "bytes 0-5/17",
                "export",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=15-")],
                206,
                "bytes 15-16/17",
                "1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=-2")],
                206,
                "bytes 15-16/17",
                "1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=-99")],
                206,
                "bytes 0-16/17",
                "export default 1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=7-99999999999999999999999")],
                206,
                "bytes 7-16/17",
                "default 1;",
            ),
            (
                "/page.html",
                vec![(RANGE, "bytes=3-12")],
                206,
                "bytes 3-12/17",
                "0123456789",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=0-1"), (IF_RANGE, etag.as_str())],
                206,
                "bytes 0-1/17",
                "ex",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=0-1"), (IF_RANGE, modified.as_str())],
                206,
                "bytes 0-1/17",
                "ex",
            ),
            // Not served as ranges: the whole file.
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=0-1"), (IF_RANGE, "\"x\"")],
                200,
                "",
                "export default 1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=0-1,3-4")],
                200,
                "",
                "export default 1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=5-1")],
                200,
                "",
                "export default 1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "lines=0-1")],
                200,
                "",
                "export default 1;",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=+1-2")],
                200,
                "",
                "export default 1;",
            ),
            // Past the end.
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=17-")],
                416,
                "bytes */17",
                "",
            ),
            (
                "/core/rfb.js",
                vec![(RANGE, "bytes=-0")],
                416,
                "bytes */17",
                "",
            ),
        ] {
            let (r, _) = dir.serve(&ask(path, &headers(&asked))).await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{path} {asked:?}");
            let content_range = r.headers().get(header::CONTENT_RANGE);
            assert_eq!(content_range.map_or("", |v| v.to_str().unwrap()), range);
            if status != 416 {
                assert_eq!(
                    r.headers()[header::CONTENT_LENGTH],
                    body.len().to_string().as_str()
                );
                assert_eq!(body_of(r).await, body, "{path} {asked:?}");
            }
        }
        // HEAD is answered whole.
        let mut head = ask("/core/rfb.js", &headers(&[(RANGE, "bytes=0-1")]));
        head.method = Method::HEAD;
        assert_eq!(dir.serve(&head).await.unwrap().0.status(), StatusCode::OK);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_link_out_of_the_directory_is_not_followed() {
        let (base, dir) = temp_tree("link");
        std::os::unix::fs::symlink(base.join("outside.txt"), base.join("web/escape.txt")).unwrap();
        std::os::unix::fs::symlink(base.join("web/vnc.html"), base.join("web/index.html")).unwrap();
        let h = HeaderMap::new();
        assert!(dir.serve(&ask("/escape.txt", &h)).await.is_none());
        // A link that stays inside is fine, and a directory serves its index.html.
        assert_eq!(
            dir.serve(&ask("/", &h)).await.unwrap().0.status(),
            StatusCode::OK
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Regression: the dotfile rule looked at the request's path only, so a link inside the
    /// directory to a dotfile or into a dot-directory served it.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_link_to_a_dotfile_inside_is_not_followed() {
        let (base, dir) = temp_tree("dotlink");
        std::fs::create_dir(base.join("web/.git")).unwrap();
        std::fs::write(base.join("web/.git/config"), "secret").unwrap();
        std::os::unix::fs::symlink(base.join("web/.git"), base.join("web/cfg")).unwrap();
        std::os::unix::fs::symlink(base.join("web/.secret"), base.join("web/shown.txt")).unwrap();
        let h = HeaderMap::new();
        assert!(dir.serve(&ask("/cfg/config", &h)).await.is_none());
        assert!(dir.serve(&ask("/shown.txt", &h)).await.is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
