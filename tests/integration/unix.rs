//! Unix stream socket targets: `unix:/path`, allowed by exact path only.

use std::path::PathBuf;

use futures_util::{SinkExt, StreamExt};
use sockrelay_tests::{http_get, ws_echo_roundtrip, Rng, TestRelay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio_tungstenite::tungstenite::Message;

/// A directory of its own under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sockrelay-unix-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn socket(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Unix socket echo server at `path`, one task per connection.
fn echo_at(path: &str) {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
}

/// A bridge from `relay` to the Unix socket `path`, and the target's end of it from `listener`.
async fn bridge_to(
    relay: &TestRelay,
    listener: &UnixListener,
    path: &str,
) -> (sockrelay_tests::Ws, tokio::net::UnixStream) {
    let ws = relay.ws(&format!("/ws?target=unix:{path}")).await;
    let (target, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    (ws, target)
}

/// The bytes a client receives up to the bridge's Close, and the Close's code.
async fn until_close(ws: &mut sockrelay_tests::Ws) -> (Vec<u8>, u16) {
    let mut down = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Binary(b))) => down.extend_from_slice(&b),
            Some(Ok(Message::Close(Some(f)))) => return (down, u16::from(f.code)),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_unix_socket_target_carries_exact_bytes_both_ways() {
    let dir = TempDir::new();
    let path = dir.socket("echo.sock");
    echo_at(&path);
    let relay = TestRelay::with(|s| s.allow = vec![format!("unix:{path}")]).await;
    let (status, body) = http_get(relay.http, "/api/targets").await;
    assert_eq!(status, 200);
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    let unix = format!("unix:{path}");
    assert!(
        targets
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": unix, "target": unix, "proto": "unix"})),
        "{targets}"
    );
    let (status, _) = http_get(relay.http, &format!("/api/check?target={unix}")).await;
    assert_eq!(status, 200);
    let ws = relay.ws(&format!("/ws?target={unix}")).await;
    let payload = Rng::new(16).bytes(1 << 20);
    let got = ws_echo_roundtrip(ws, &payload, &[1, 100, 4096, 65_536]).await;
    assert!(got == payload, "the echo differs");
}

#[tokio::test]
async fn a_path_is_allowed_only_as_written() {
    let dir = TempDir::new();
    let path = dir.socket("echo.sock");
    echo_at(&path);
    let relay = TestRelay::with(|s| s.allow = vec![format!("unix:{path}")]).await;
    let dir_path = dir.0.to_str().unwrap();
    for (target, reason) in [
        (format!("unix:{dir_path}//echo.sock"), "invalid target"),
        (format!("unix:{dir_path}/./echo.sock"), "invalid target"),
        (
            format!(
                "unix:{dir_path}/../{}/echo.sock",
                dir.0.file_name().unwrap().to_str().unwrap()
            ),
            "invalid target",
        ),
        ("unix:echo.sock".to_owned(), "invalid target"),
        (format!("unix:{path}2"), "is not allowed"),
    ] {
        let (status, body) = relay
            .try_ws(&format!("/ws?target={target}"), &[])
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(status, 403, "{target}");
        assert!(body.contains(reason), "{target}: {body}");
    }
}

#[tokio::test]
async fn target_eof_closes_1000_after_its_bytes_and_a_client_close_ends_its_input() {
    let dir = TempDir::new();
    let path = dir.socket("t.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![format!("unix:{path}")]).await;
    let (mut ws, mut target) = bridge_to(&relay, &listener, &path).await;
    ws.send(Message::binary(b"up".to_vec())).await.unwrap();
    let mut got = [0u8; 2];
    target.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"up");
    target.write_all(b"down").await.unwrap();
    target.shutdown().await.unwrap();
    let (down, code) = until_close(&mut ws).await;
    assert_eq!((down.as_slice(), code), (&b"down"[..], 1000));
    drop(ws);

    // The other way: the client's Close is the target's end of input.
    let mut ws = relay.ws(&format!("/ws?target=unix:{path}")).await;
    let (mut target, _) = listener.accept().await.unwrap();
    ws.send(Message::binary(b"last".to_vec())).await.unwrap();
    ws.close(None).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, target.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, b"last");
    relay.wait_bridges_closed().await;
}

#[tokio::test]
async fn a_missing_socket_closes_1011_target_unreachable() {
    let dir = TempDir::new();
    let path = dir.socket("nobody.sock");
    let relay = TestRelay::with(|s| s.allow = vec![format!("unix:{path}")]).await;
    let mut ws = relay.ws(&format!("/ws?target=unix:{path}")).await;
    // In the words a TCP target's refusal has (`connection refused`), not the system's
    // `No such file or directory (os error 2)`.
    assert_eq!(
        sockrelay_tests::next_close(&mut ws).await,
        (1011, "target unreachable: no such file or directory".into())
    );
}

/// Unix stream sockets carry urgent data too (Linux 5.15 on): the byte reaches the client in
/// its place, as from a TCP target.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn urgent_data_from_a_unix_target_arrives_in_its_place() {
    let dir = TempDir::new();
    let path = dir.socket("urgent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let relay = TestRelay::with(|s| s.allow = vec![format!("unix:{path}")]).await;
    let (mut ws, mut target) = bridge_to(&relay, &listener, &path).await;
    target.write_all(b"abc").await.unwrap();
    socket2::SockRef::from(&target)
        .send_out_of_band(b"!")
        .unwrap();
    target.write_all(b"def").await.unwrap();
    target.shutdown().await.unwrap();
    let (down, code) = until_close(&mut ws).await;
    assert_eq!((down.as_slice(), code), (&b"abc!def"[..], 1000));
}
