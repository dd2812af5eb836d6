//! `--web DIR`: files from a directory (noVNC's, say), served before the embedded pages.
//!
//! Only what is plainly inside the directory is served: a request path is percent-decoded once,
//! then refused if any part of it is empty, `.`, `..`, starts with `.` (dotfiles such as `.git`
//! or `.htpasswd` stay private), or holds a NUL or a backslash; the file found is resolved
//! (symbolic links followed) and served only if it is still under the directory's own resolved
//! path, so a link cannot lead out of it. Directories are never listed: a path naming one serves
//! its `index.html`, if any. Anything refused or missing falls through to the embedded pages,
//! which answer 404 for what they do not have.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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

    /// The answer for `path` (the request's, still percent-encoded), or `None` when the
    /// directory has no such file or the path is refused.
    pub async fn serve(&self, path: &str, request_headers: &HeaderMap) -> Option<Response> {
        let relative = relative_path(path)?;
        let mut file = self.resolve(&self.root.join(&relative)).await?;
        let mut meta = tokio::fs::metadata(&file).await.ok()?;
        if meta.is_dir() {
            file = self.resolve(&file.join("index.html")).await?;
            meta = tokio::fs::metadata(&file).await.ok()?;
        }
        if !meta.is_file() {
            return None;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{:x}-{modified:x}\"", meta.len());
        let mut response = if request_headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let opened = tokio::fs::File::open(&file).await.ok()?;
            let stream = tokio_util::io::ReaderStream::new(opened);
            let mut response = Response::new(Body::from_stream(stream));
            if let Ok(v) = HeaderValue::from_str(&meta.len().to_string()) {
                response.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            response
        };
        let mime = mime_guess::from_path(&file).first_or_octet_stream();
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
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Some(response)
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

/// The Content-Security-Policy of `--web` answers: the relay's own (`policy`), relaxed where
/// noVNC's pages need it, and only there. noVNC's `vnc.html` and `vnc_lite.html` start with an
/// inline module script and style, and noVNC draws its cursor and decodes JPEG and PNG
/// rectangles through `data:` images; the relay's own policy blocks all three. The files are
/// the operator's choice, not the relay's, so their inline code is trusted as they are;
/// everything else stays: scripts and connections only to the relay, no plugins, no framing
/// but by `--frame-ancestors`.
pub fn content_security_policy(policy: &str) -> String {
    policy.replacen(
        "script-src 'self' 'wasm-unsafe-eval';",
        "script-src 'self' 'wasm-unsafe-eval' 'unsafe-inline'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:;",
        1,
    )
}

/// The path under the directory a request path names, or `None` if it is refused.
fn relative_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path.strip_prefix('/')?)?;
    let mut relative = PathBuf::new();
    if decoded.is_empty() {
        return Some(relative);
    }
    let trimmed = decoded.strip_suffix('/').unwrap_or(&decoded);
    for part in trimmed.split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains(['\0', '\\']) {
            return None;
        }
        relative.push(part);
    }
    Some(relative)
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

    #[test]
    fn the_relaxed_policy_adds_inline_code_and_data_images_only() {
        let base = crate::http::assets::content_security_policy(Some("127.0.0.1:6080"), &[]);
        let web = content_security_policy(&base);
        assert_ne!(
            web, base,
            "the relay's policy changed shape: relax it again"
        );
        assert_eq!(
            web.replace(
                " 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:",
                ""
            ),
            base
        );
        assert!(web.contains("connect-src 'self' ws://127.0.0.1:6080 wss://127.0.0.1:6080;"));
    }

    #[test]
    fn plain_paths_only() {
        assert_eq!(relative_path("/"), Some(PathBuf::new()));
        assert_eq!(
            relative_path("/core/rfb.js"),
            Some(PathBuf::from("core/rfb.js"))
        );
        assert_eq!(
            relative_path("/app/images/"),
            Some(PathBuf::from("app/images"))
        );
        assert_eq!(
            relative_path("/a%20b.html"),
            Some(PathBuf::from("a b.html"))
        );
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
        let r = dir.serve("/vnc.html", &h).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let r = dir.serve("/core/rfb.js", &h).await.unwrap();
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = r.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            dir.serve("/core/rfb.js", &again).await.unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        assert!(dir.serve("/.secret", &h).await.is_none());
        assert!(dir.serve("/../outside.txt", &h).await.is_none());
        assert!(dir.serve("/missing.html", &h).await.is_none());
        // A directory is not listed; it has no index.html here.
        assert!(dir.serve("/core/", &h).await.is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_link_out_of_the_directory_is_not_followed() {
        let (base, dir) = temp_tree("link");
        std::os::unix::fs::symlink(base.join("outside.txt"), base.join("web/escape.txt")).unwrap();
        std::os::unix::fs::symlink(base.join("web/vnc.html"), base.join("web/index.html")).unwrap();
        let h = HeaderMap::new();
        assert!(dir.serve("/escape.txt", &h).await.is_none());
        // A link that stays inside is fine, and a directory serves its index.html.
        assert_eq!(dir.serve("/", &h).await.unwrap().status(), StatusCode::OK);
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
        assert!(dir.serve("/cfg/config", &h).await.is_none());
        assert!(dir.serve("/shown.txt", &h).await.is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
