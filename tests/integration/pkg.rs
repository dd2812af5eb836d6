//! `/pkg/*`, the modules other origins import: CORS and CORP there only, brotli and gzip
//! copies that decode to the exact files of web/pkg, and revalidation with a 304.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use sockrelay_tests::{TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer, its body as bytes (the files are binary).
struct Got {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.head.lines().skip(1).filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        });
        let first = values.next();
        assert!(
            values.next().is_none(),
            "two {name} headers:\n{}",
            self.head
        );
        first
    }
}

/// `METHOD path` with `extra` header lines and `Connection: close`; reads to the end.
async fn ask(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Got {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the relay did not close")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Got {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

fn web_pkg(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../web/pkg")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run wasm/build.sh)", path.display()))
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn modules_arrive_compressed_and_decode_to_the_files() {
    let relay = TestRelay::start().await;
    for name in [
        "inet.js",
        "inet_bg.wasm",
        "inet-converter.js",
        "client_bg.wasm",
    ] {
        let file = web_pkg(name);
        let path = format!("/pkg/{name}");

        let br = ask(
            relay.http,
            "GET",
            &path,
            &["Accept-Encoding: gzip, deflate, br, zstd"],
        )
        .await;
        assert_eq!(br.status, 200, "{name}");
        assert_eq!(br.header("content-encoding"), Some("br"), "{name}");
        assert_eq!(br.header("vary"), Some("Accept-Encoding"), "{name}");
        assert!(br.body.len() < file.len(), "{name}: not smaller");
        assert!(
            unbrotli(&br.body) == file,
            "{name}: br does not decode to the file"
        );

        let gz = ask(
            relay.http,
            "GET",
            &path,
            &["Accept-Encoding: gzip;q=1, br;q=0.5"],
        )
        .await;
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{name}");
        assert!(
            gunzip(&gz.body) == file,
            "{name}: gzip does not decode to the file"
        );

        let plain = ask(relay.http, "GET", &path, &[]).await;
        assert_eq!(plain.header("content-encoding"), None, "{name}");
        assert_eq!(plain.header("vary"), Some("Accept-Encoding"), "{name}");
        assert!(plain.body == file, "{name}: identity is not the file");

        // Each representation has a tag of its own.
        let tags = [&br, &gz, &plain].map(|g| g.header("etag").unwrap().to_owned());
        assert!(
            tags.iter().all(|t| t.starts_with('"') && t.ends_with('"')),
            "{tags:?}"
        );
        assert!(
            tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2],
            "{tags:?}"
        );
    }
    let wasm = ask(relay.http, "GET", "/pkg/inet_bg.wasm", &[]).await;
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
}

#[tokio::test]
async fn a_held_copy_is_revalidated_with_a_304() {
    let relay = TestRelay::start().await;
    let accept = "Accept-Encoding: br";
    let first = ask(relay.http, "GET", "/pkg/inet.js", &[accept]).await;
    let etag = first.header("etag").unwrap().to_owned();
    let condition = format!("If-None-Match: \"other\", {etag}");

    let again = ask(relay.http, "GET", "/pkg/inet.js", &[accept, &condition]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("access-control-allow-origin"), Some("*"));
    assert_eq!(again.header("vary"), Some("Accept-Encoding"));

    // The tag is the brotli copy's: a client that now takes gzip gets the gzip copy.
    let other = ask(
        relay.http,
        "GET",
        "/pkg/inet.js",
        &["Accept-Encoding: gzip", &condition],
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("content-encoding"), Some("gzip"));

    // Pages and styles revalidate the same way.
    let page = ask(relay.http, "GET", "/docs", &[]).await;
    let tag = format!("If-None-Match: {}", page.header("etag").unwrap());
    assert_eq!(ask(relay.http, "GET", "/docs", &[&tag]).await.status, 304);
}

#[tokio::test]
async fn cors_and_corp_on_pkg_only() {
    let relay = TestRelay::start().await;
    let origin = "Origin: http://docs.example";
    let module = ask(relay.http, "GET", "/pkg/inet.js", &[origin]).await;
    assert_eq!(module.status, 200);
    assert_eq!(module.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        module.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    assert_eq!(module.header("cache-control"), Some("no-cache"));
    assert!(module.header("content-security-policy").is_some());

    for path in ["/", "/docs", "/css/docs.css", "/js/docs.js", "/healthz"] {
        let got = ask(
            relay.http,
            "GET",
            path,
            &[origin, "Accept-Encoding: br, gzip"],
        )
        .await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.header("access-control-allow-origin"), None, "{path}");
        assert_eq!(got.header("cross-origin-resource-policy"), None, "{path}");
        assert_eq!(got.header("content-encoding"), None, "{path}");
        assert!(got.header("content-security-policy").is_some(), "{path}");
    }
}

#[tokio::test]
async fn head_and_range_get_the_whole_file_s_headers() {
    let relay = TestRelay::start().await;
    let file = web_pkg("inet_bg.wasm");
    let get = ask(
        relay.http,
        "GET",
        "/pkg/inet_bg.wasm",
        &["Accept-Encoding: br"],
    )
    .await;
    let head = ask(
        relay.http,
        "HEAD",
        "/pkg/inet_bg.wasm",
        &["Accept-Encoding: br"],
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for name in [
        "etag",
        "content-encoding",
        "content-type",
        "access-control-allow-origin",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );

    // Ranges are not served: every file is small, so the answer is all of it.
    let ranged = ask(
        relay.http,
        "GET",
        "/pkg/inet_bg.wasm",
        &["Range: bytes=0-9"],
    )
    .await;
    assert_eq!(ranged.status, 200);
    assert!(ranged.body == file);
}
