//! One HTTP/1.1 client connection into `sockrelay::http::serve_connection`, over an in-memory
//! duplex pipe, with every route and the WebSocket bridge behind it.
//!
//! Input: `FLAGS BYTES...`. `FLAGS & 7` picks a fixed request prefix (0: none, the bytes are the
//! whole stream; 1..=3 and 7: a valid WebSocket upgrade, so that `BYTES` are client frames for
//! the bridge's WebSocket codec and the bridge; 4..=6: refused or other requests, `BYTES` then
//! pipelined after them).
//! Bit 3 requires a token, bit 4 sets an `--origin`, bit 5 marks the relay as TLS (for the
//! same-origin check), bits 6..7 pick how the client writes: all at once or in 1- or 7-byte
//! pieces, then either keeping its side open or shutting it down (half-close, EOF); in the
//! 1-byte mode the idle timeout is longer than the connection's time, so bridges are still
//! open when the relay shuts down.
//!
//! The runtime is a current-thread one on a paused clock: every timeout (header read, idle,
//! close grace, drain) fires as soon as the runtime has nothing else to do, so an input costs
//! no wall time waiting. The default target is a real echo service on 127.0.0.1 (the project's
//! own); `ack` points at a closed 127.0.0.1 port, so bridges to it fail to connect (Close 1011);
//! `closer` is a 127.0.0.1 service that sends one line and closes (Close 1000).
//! Nothing is sent anywhere but 127.0.0.1.
//!
//! Invariants checked, beyond "no panic" (panics in spawned tasks abort too: libfuzzer-sys
//! installs an aborting panic hook):
//! - whatever the server writes starts with an HTTP/1.x status line;
//! - a valid upgrade prefix is answered 101 (when the client keeps its side open);
//! - after shutdown (cancel, as on SIGTERM) the connection and every bridge task end within
//!   the drain time, and the metrics show no bridge left open.
#![no_main]

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockrelay::config::Settings;
use sockrelay::echo::{self, ServiceContext, TcpService};
use sockrelay::http::{router, serve_connection, AppState};
use sockrelay::metrics::Metrics;
use sockrelay::origin::OriginPolicy;
use sockrelay::target::{AllowList, Proto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Virtual time one connection gets before the relay is shut down under it.
const CONNECTION_TIME: Duration = Duration::from_secs(30);
/// Virtual time the connection and its bridge get to end after shutdown (the relay allows
/// 5 s for HTTP connections and 3 s for a bridge's closing handshake).
const DRAIN: Duration = Duration::from_secs(10);
/// How much of the server's output is kept for the checks.
const HEAD: usize = 64;
const TOKEN: &str = "s3cret";
/// Small, so that fuzz inputs can reach the 1009 "message too big" path.
const MAX_MESSAGE: usize = 1024;

/// Request prefixes; see [`is_upgrade`] for those that must be answered 101.
const PREFIXES: [&str; 8] = [
    "",
    // Default target: the echo service.
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Authorization: Bearer s3cret\r\n\r\n",
    // Named target, subprotocol `binary`, the relay's own Origin (refused only when the relay
    // is TLS, so that its own origin is https, and `--origin` replaces the localhost default).
    "GET /ws?target=echo HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive, Upgrade\r\n\
     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Sec-WebSocket-Protocol: chat, binary\r\nOrigin: http://localhost:8080\r\n\
     Authorization: Bearer s3cret\r\n\r\n",
    // A built-in whose port is closed: the bridge fails to connect.
    "GET /ws?target=ack&token=s3cret HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\n\
     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    // Cross-site Origin: 403, then the rest is the next request on the connection.
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Origin: http://evil.example\r\n\r\n",
    // A target outside the allow-list: 403.
    "GET /ws?target=%5B::ffff:127.0.0.1%5D:65432 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
     Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    "GET /api/targets HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    // A target that sends a line and closes: everything it sent, then Close 1000.
    "GET /ws?target=closer HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: Upgrade\r\n\
     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
     Authorization: Bearer s3cret\r\n\r\n",
];

/// Whether `PREFIXES[i]` is a valid upgrade (answered 101 unless noted at its definition).
fn is_upgrade(prefix: usize) -> bool {
    matches!(prefix, 1..=3 | 7)
}

/// `SOCKRELAY_FUZZ_DEBUG=1`: print what the server wrote and the metrics of each input (to
/// look at a reproducer: `.../http_handshake crash-...`).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("SOCKRELAY_FUZZ_DEBUG").is_some())
}

fn head_limit() -> usize {
    if debug() {
        1 << 20
    } else {
        HEAD
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    allow: AllowList,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let allow = rt.block_on(async {
            let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            // The project's echo service, for the whole run: it only runs while an input does.
            let listener = tokio::net::TcpListener::bind(loopback)
                .await
                .expect("bind echo");
            let echo_addr = listener.local_addr().expect("echo addr");
            let ctx = ServiceContext {
                metrics: Arc::new(Metrics::new()),
                limit: Arc::new(Semaphore::new(1024)),
                cancel: CancellationToken::new(),
            };
            tokio::spawn(echo::serve_tcp(listener, TcpService::Echo, ctx));
            // A port that was just free: connecting to it is refused.
            let closed = tokio::net::TcpListener::bind(loopback)
                .await
                .expect("bind")
                .local_addr()
                .expect("addr");
            let closer = tokio::net::TcpListener::bind(loopback).await.expect("bind");
            let closer_addr = closer.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = closer.accept().await {
                    tokio::spawn(async move {
                        let _ = conn.write_all(b"bye\n").await;
                        let _ = conn.shutdown().await;
                        // Drain until the bridge lets go, so the close is a FIN, not a reset.
                        let mut sink = [0u8; 1024];
                        while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
                    });
                }
            });
            let builtins = [
                ("echo", Proto::Tcp, echo_addr),
                ("ack", Proto::Tcp, closed),
                ("closer", Proto::Tcp, closer_addr),
            ];
            AllowList::build(&builtins, &[]).await.expect("allow-list")
        });
        Fixture { rt, allow }
    })
}

fn state(flags: u8, allow: &AllowList) -> AppState {
    let mut settings = Settings::ephemeral();
    settings.handshake_timeout = Duration::from_secs(2);
    // Shorter than CONNECTION_TIME, so that idle bridges close by themselves; except in the
    // 1-byte-writes mode, whose bridges are still open at shutdown (Close 1001).
    settings.idle_timeout = Duration::from_secs(if flags >> 6 == 2 { 60 } else { 5 });
    settings.max_message = MAX_MESSAGE;
    settings.max_conns = 4;
    if flags & 8 != 0 {
        settings.token = Some(TOKEN.to_owned());
    }
    if flags & 16 != 0 {
        settings.origin = vec!["https://docs.example".to_owned()];
    }
    let settings = Arc::new(settings);
    AppState {
        origin: OriginPolicy::new(&settings.origin),
        bridges: Arc::new(Semaphore::new(settings.max_conns)),
        settings,
        allow: allow.clone(),
        metrics: Arc::new(Metrics::new()),
        cancel: CancellationToken::new(),
        listening: CancellationToken::new(),
        tracker: TaskTracker::new(),
        tls: flags & 32 != 0,
        tokens: None,
        proxy: Default::default(),
        web: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let prefix = PREFIXES[usize::from(flags & 7)];
    // (write size, whether the client then shuts its write side down)
    let (chunk, half_close) = match flags >> 6 {
        0 => (usize::MAX, false),
        1 => (usize::MAX, true),
        2 => (1, false),
        _ => (7, true),
    };
    let mut stream = Vec::with_capacity(prefix.len() + body.len());
    stream.extend_from_slice(prefix.as_bytes());
    stream.extend_from_slice(body);

    let state = Arc::new(state(flags, &f.allow));
    let head = RefCell::new(Vec::new());
    f.rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(16 * 1024);
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
        let server = serve_connection(server, peer, router(state.clone()), &state);
        let client = async {
            let (mut rx, mut tx) = tokio::io::split(&mut client);
            let send = async {
                for piece in stream.chunks(chunk.min(stream.len()).max(1)) {
                    if tx.write_all(piece).await.is_err() {
                        return;
                    }
                }
                if half_close {
                    let _ = tx.shutdown().await;
                }
            };
            // Read everything (so the server never blocks on a full pipe); keep the head.
            let receive = async {
                let mut buf = [0u8; 4096];
                while let Ok(n) = rx.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut head = head.borrow_mut();
                    let keep = n.min(head_limit().saturating_sub(head.len()));
                    head.extend_from_slice(&buf[..keep]);
                }
            };
            tokio::join!(send, receive);
        };
        let connection = async { tokio::join!(server, client) };
        tokio::pin!(connection);
        let ended = tokio::select! {
            _ = &mut connection => true,
            () = tokio::time::sleep(CONNECTION_TIME) => false,
        };
        // Shut the relay down under whatever is still running (SIGTERM): the connection and
        // every bridge must end within the drain time.
        state.cancel.cancel();
        state.tracker.close();
        if !ended {
            assert!(
                tokio::time::timeout(DRAIN, &mut connection).await.is_ok(),
                "HTTP connection still open {DRAIN:?} after shutdown"
            );
        }
        assert!(
            tokio::time::timeout(DRAIN, state.tracker.wait())
                .await
                .is_ok(),
            "{} bridge task(s) still running {DRAIN:?} after shutdown",
            state.tracker.len()
        );
    });

    let head = head.into_inner();
    if debug() {
        eprintln!(
            "--- server wrote:\n{}\n--- metrics:\n{}",
            String::from_utf8_lossy(&head).escape_debug(),
            state.metrics.encode()
        );
    }
    assert_eq!(state.metrics.bridges_active(), 0, "bridge left open");
    let shown = || String::from_utf8_lossy(&head).into_owned();
    if !head.is_empty() {
        assert!(
            head.starts_with(b"HTTP/1.1 ") || head.starts_with(b"HTTP/1.0 "),
            "response does not start with a status line: {:?}",
            shown()
        );
    }
    // A client that half-closes may lose its response (hyper drops a request whose connection
    // reads EOF before the response is written); one that keeps its side open must get 101.
    let origin_refused = flags & 7 == 2 && flags & 48 == 48;
    if is_upgrade(usize::from(flags & 7)) && !origin_refused && !half_close {
        assert!(
            head.starts_with(b"HTTP/1.1 101 "),
            "valid upgrade not answered 101: {:?}",
            shown()
        );
    }
});
