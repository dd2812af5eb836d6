#![allow(clippy::unwrap_used)]

use super::*;

const ORIGIN: &str = "http://127.0.0.1:8080";
const URL: &str = "ws://127.0.0.1:8080/ws?target=echo";

fn echo() -> Target {
    Target {
        name: "echo".to_owned(),
        address: None,
    }
}

fn info(text: &str) -> Effect {
    Effect::Log(Level::Info, text.to_owned())
}

fn error(text: &str) -> Effect {
    Effect::Log(Level::Error, text.to_owned())
}

/// A connection driven by events, on a clock the test moves.
struct Run {
    c: Connection,
    now: f64,
}

impl Run {
    fn new(auto: bool) -> Self {
        Self {
            c: Connection::new(ORIGIN, auto),
            now: 1000.0,
        }
    }

    fn on(&mut self, event: Event) -> Vec<Effect> {
        self.c.update(event, self.now)
    }

    fn generation(&self) -> u32 {
        self.c.generation
    }

    fn checked(&mut self, verdict: Verdict) -> Vec<Effect> {
        let generation = self.generation();
        self.on(Event::Checked {
            generation,
            verdict,
        })
    }

    fn closed(&mut self, code: u16, reason: &str) -> Vec<Effect> {
        let generation = self.generation();
        self.on(Event::Closed {
            generation,
            code,
            reason: reason.to_owned(),
        })
    }

    fn view(&self) -> View {
        self.c.view(self.now)
    }

    fn shows(&self, state: &str, text: &str) {
        let view = self.view();
        assert_eq!((view.state, view.text.as_str()), (state, text));
    }

    /// Connect to echo and let the check pass.
    fn checking(auto: bool) -> Self {
        let mut run = Self::new(auto);
        run.on(Event::Connect(echo()));
        run
    }

    fn connecting(auto: bool) -> Self {
        let mut run = Self::checking(auto);
        run.checked(Verdict::Allowed(Some("127.0.0.1:7".to_owned())));
        let generation = run.generation();
        run.on(Event::SocketCreated {
            generation,
            url: URL.to_owned(),
        });
        run
    }

    fn open(auto: bool) -> Self {
        let mut run = Self::connecting(auto);
        let generation = run.generation();
        run.on(Event::Opened { generation });
        run
    }

    fn waiting() -> Self {
        let mut run = Self::open(true);
        run.closed(1006, "");
        run
    }

    fn explaining() -> Self {
        let mut run = Self::connecting(false);
        run.closed(1006, "");
        run
    }

    fn closing() -> Self {
        let mut run = Self::open(false);
        run.on(Event::Disconnect);
        run
    }
}

/// One connection in each phase, with its name for messages.
fn every_phase() -> Vec<(&'static str, Run)> {
    vec![
        ("idle", Run::new(false)),
        ("checking", Run::checking(false)),
        ("connecting", Run::connecting(false)),
        ("open", Run::open(false)),
        ("closing", Run::closing()),
        ("explaining", Run::explaining()),
        ("waiting", Run::waiting()),
    ]
}

#[test]
fn starts_idle_and_offers_only_connect() {
    let run = Run::new(false);
    assert_eq!(
        run.view(),
        View {
            state: "closed",
            text: "Not connected".to_owned(),
            disconnect: false,
            open: false,
        }
    );
}

#[test]
fn connect_checks_the_target_then_opens_the_socket() {
    let mut run = Run::new(false);
    assert_eq!(
        run.on(Event::Connect(echo())),
        [
            Effect::DropSocket,
            Effect::StopMeasure("the connection was replaced".to_owned()),
            Effect::Check {
                generation: 1,
                name: "echo".to_owned()
            },
        ]
    );
    run.shows("connecting", "Checking echo…");
    assert!(run.view().disconnect);

    assert_eq!(
        run.checked(Verdict::Allowed(Some("127.0.0.1:7".to_owned()))),
        [Effect::OpenSocket {
            generation: 1,
            name: "echo".to_owned()
        }]
    );
    let effects = run.on(Event::SocketCreated {
        generation: 1,
        url: URL.to_owned(),
    });
    assert_eq!(effects, []);
    run.shows("connecting", "Connecting to echo (127.0.0.1:7)…");

    assert_eq!(
        run.on(Event::Opened { generation: 1 }),
        [
            info(&format!("Connected to echo (127.0.0.1:7) via {URL}")),
            Effect::MarkOpen
        ]
    );
    run.shows("open", "Connected to echo (127.0.0.1:7)");
    assert!(run.view().open && run.view().disconnect);
    assert_eq!(run.c.url(), URL);
}

#[test]
fn the_listed_address_names_the_target_until_the_check_gives_one() {
    let mut run = Run::new(false);
    run.on(Event::Targets(vec![(
        "echo".to_owned(),
        "127.0.0.1:5".to_owned(),
    )]));
    let target = run.c.requested("echo", "").unwrap();
    run.on(Event::Connect(target));
    run.shows("connecting", "Checking echo (127.0.0.1:5)…");
    run.checked(Verdict::Allowed(None));
    run.shows("connecting", "Checking echo (127.0.0.1:5)…");
}

#[test]
fn disconnect_while_open_closes_and_ends_idle() {
    let mut run = Run::open(true);
    assert_eq!(run.on(Event::Disconnect), [Effect::CloseSocket]);
    run.shows("closing", "Disconnecting…");
    assert!(!run.view().disconnect, "nothing left to disconnect");
    assert_eq!(
        run.on(Event::Disconnect),
        [],
        "a second click changes nothing"
    );

    let end = "Disconnected from echo (127.0.0.1:7)";
    assert_eq!(
        run.closed(1000, ""),
        [Effect::StopMeasure(end.to_owned()), info(end)]
    );
    run.shows("closed", end);
    let view = run.view();
    assert!(!view.disconnect && !view.open);
    assert_eq!(
        run.on(Event::Tick),
        [],
        "a disconnect asked for is not retried"
    );
}

#[test]
fn a_close_with_a_code_after_disconnect_says_it() {
    let mut run = Run::closing();
    run.closed(1001, "relay shutting down");
    run.shows(
        "closed",
        "Disconnected from echo (127.0.0.1:7): The relay ended the connection \
         (code 1001: relay shutting down)",
    );
}

#[test]
fn the_target_closing_shows_closed_with_connect_offered() {
    let mut run = Run::open(false);
    let end = "The target closed the connection (code 1000: target closed)";
    assert_eq!(
        run.closed(1000, "target closed"),
        [Effect::StopMeasure(end.to_owned()), info(end)]
    );
    run.shows("closed", end);
    assert!(!run.view().disconnect);
    assert_eq!(run.on(Event::Disconnect), []);
}

#[test]
fn an_unexpected_close_is_an_error_and_retried_when_asked() {
    let mut run = Run::open(false);
    let end = "The target failed (code 1011: target unreachable: connection refused)";
    assert_eq!(
        run.closed(1011, "target unreachable: connection refused"),
        [Effect::StopMeasure(end.to_owned()), error(end)]
    );
    run.shows("closed", end);

    let mut run = Run::open(true);
    run.closed(1006, "");
    run.shows(
        "waiting",
        "The connection to the relay was lost (code 1006). Reconnecting in 1 s (attempt 1)…",
    );
    assert!(run.view().disconnect, "Disconnect cancels the reconnect");
}

#[test]
fn reconnects_when_the_countdown_ends_with_a_longer_wait_each_time() {
    let mut run = Run::waiting();
    run.now += 999.0;
    assert_eq!(run.on(Event::Tick), []);
    run.shows(
        "waiting",
        "The connection to the relay was lost (code 1006). Reconnecting in 1 s (attempt 1)…",
    );
    run.now += 1.0;
    let effects = run.on(Event::Tick);
    assert_eq!(
        effects.last(),
        Some(&Effect::Check {
            generation: 2,
            name: "echo".to_owned()
        })
    );
    run.shows("connecting", "Checking echo (127.0.0.1:7)…");

    run.checked(Verdict::Unreachable("Failed to fetch".to_owned()));
    run.shows(
        "waiting",
        "Cannot reach the relay at http://127.0.0.1:8080 (Failed to fetch). \
         Reconnecting in 2 s (attempt 2)…",
    );
    run.now += 2000.0;
    run.on(Event::Tick);
    run.checked(Verdict::Allowed(None));
    let generation = run.generation();
    run.on(Event::SocketCreated {
        generation,
        url: URL.to_owned(),
    });
    run.on(Event::Opened { generation });
    run.closed(1006, "");
    assert!(
        run.view().text.contains("in 1 s (attempt 1)"),
        "an open connection resets the backoff"
    );
}

#[test]
fn turning_auto_reconnect_off_cancels_the_countdown() {
    let mut run = Run::waiting();
    assert_eq!(run.on(Event::Auto(false)), []);
    run.shows("closed", "The connection to the relay was lost (code 1006)");
    run.now += 60_000.0;
    assert_eq!(run.on(Event::Tick), []);
    run.shows("closed", "The connection to the relay was lost (code 1006)");
}

#[test]
fn a_refused_target_shows_the_relays_reason_and_is_not_retried() {
    let mut run = Run::checking(true);
    let end = "Refused by the relay: target \"127.0.0.1:9\" is not allowed";
    assert_eq!(
        run.checked(Verdict::Refused(
            "target \"127.0.0.1:9\" is not allowed".to_owned()
        )),
        [Effect::StopMeasure(end.to_owned()), error(end)]
    );
    run.shows("closed", end);
    assert!(!run.view().disconnect);
}

#[test]
fn an_unlisted_target_without_the_check_endpoint_is_tried_with_a_warning() {
    let mut run = Run::new(false);
    run.on(Event::Targets(vec![(
        "echo".to_owned(),
        "127.0.0.1:5".to_owned(),
    )]));
    let target = run.c.requested("", " 127.0.0.1:9 ").unwrap();
    run.on(Event::Connect(target));
    assert_eq!(
        run.checked(Verdict::NoEndpoint),
        [
            info(
                "127.0.0.1:9 is not in the relay's list of targets (api/targets): \
                 the relay will probably refuse it"
            ),
            Effect::OpenSocket {
                generation: 1,
                name: "127.0.0.1:9".to_owned()
            },
        ]
    );
    // A listed address, typed, is not warned about.
    let target = run.c.requested("", "127.0.0.1:5").unwrap();
    run.on(Event::Connect(target));
    assert_eq!(run.checked(Verdict::Unclear).len(), 1);
}

#[test]
fn a_socket_that_cannot_be_created_ends_the_attempt() {
    let mut run = Run::checking(true);
    run.checked(Verdict::Allowed(None));
    run.on(Event::SocketFailed {
        generation: 1,
        message: "Cannot open ws://x: SyntaxError".to_owned(),
    });
    run.shows("closed", "Cannot open ws://x: SyntaxError");
}

/// Regression: the page showed "connecting" with Disconnect after the socket had closed, and
/// Disconnect did nothing (the state was already idle while the relay was asked why).
#[test]
fn a_failed_handshake_is_explained_without_offering_disconnect() {
    let mut run = Run::connecting(false);
    assert_eq!(
        run.closed(1006, ""),
        [Effect::Check {
            generation: 1,
            name: "echo".to_owned()
        }]
    );
    let view = run.view();
    assert_eq!(view.state, "failed");
    assert_eq!(
        view.text,
        "Connecting to echo (127.0.0.1:7) failed; asking the relay why…"
    );
    assert!(
        !view.disconnect,
        "the socket is gone: nothing to disconnect"
    );
    assert_eq!(run.on(Event::Disconnect), []);

    run.checked(Verdict::NoEndpoint);
    let view = run.view();
    assert_eq!(view.state, "closed");
    assert!(view.text.starts_with(
        "The relay refused the connection to echo (127.0.0.1:7). The browser does not say why"
    ));
}

#[test]
fn the_explanation_of_a_failed_handshake() {
    let cases = [
        (
            Verdict::Refused("not allowed".to_owned()),
            "closed",
            "Refused by the relay: not allowed",
        ),
        (
            Verdict::Allowed(None),
            "closed",
            "The relay refused the WebSocket handshake for echo (127.0.0.1:7). The browser \
             does not say why: a token (--token), this page's origin (--origin) or the \
             connection limit (--max-conns) may be the reason",
        ),
        (
            Verdict::Unreachable("gone".to_owned()),
            "closed",
            "Cannot reach the relay at http://127.0.0.1:8080 (gone)",
        ),
    ];
    for (verdict, state, text) in cases {
        let mut run = Run::explaining();
        run.checked(verdict);
        run.shows(state, text);
    }
    // Retried with auto-reconnect: the relay may be back, or the limit free again.
    let mut run = Run::connecting(true);
    run.closed(1006, "");
    run.checked(Verdict::Allowed(None));
    assert_eq!(run.view().state, "waiting");
}

#[test]
fn connect_while_the_relay_is_asked_why_starts_over() {
    let mut run = Run::explaining();
    run.on(Event::Connect(echo()));
    run.shows("connecting", "Checking echo…");
    let effects = run.on(Event::Checked {
        generation: 1,
        verdict: Verdict::Refused("old".to_owned()),
    });
    assert_eq!(effects, [], "the old explanation is stale");
    run.shows("connecting", "Checking echo…");
}

/// Regression: Disconnect while the socket was opening only marked it closing; an `open`
/// that came first made the page connected again.
#[test]
fn disconnect_while_connecting_cancels_the_attempt() {
    let mut run = Run::connecting(true);
    assert_eq!(
        run.on(Event::Disconnect),
        [Effect::DropSocket, info("Connection attempt cancelled")]
    );
    run.shows("closed", "Not connected");
    assert!(!run.view().disconnect);
    // The dropped socket's last events are stale.
    assert_eq!(run.on(Event::Opened { generation: 1 }), []);
    let late = Event::Closed {
        generation: 1,
        code: 1006,
        reason: String::new(),
    };
    assert_eq!(run.on(late), []);
    run.shows("closed", "Not connected");
    run.now += 60_000.0;
    assert_eq!(run.on(Event::Tick), []);
}

#[test]
fn disconnect_while_checking_or_waiting_cancels() {
    for mut run in [Run::checking(false), Run::waiting()] {
        assert_eq!(
            run.on(Event::Disconnect),
            [info("Connection attempt cancelled")]
        );
        run.shows("closed", "Not connected");
        let generation = run.generation() - 1;
        let late = Event::Checked {
            generation,
            verdict: Verdict::Allowed(None),
        };
        assert_eq!(run.on(late), [], "the cancelled check's answer is stale");
        run.now += 60_000.0;
        assert_eq!(run.on(Event::Tick), [], "no reconnect comes back");
    }
}

/// Disconnect is offered exactly where it does something, in every phase.
#[test]
fn disconnect_is_offered_only_where_it_acts() {
    for (name, mut run) in every_phase() {
        let offered = run.view().disconnect;
        let before = run.view();
        let effects = run.on(Event::Disconnect);
        assert_eq!(offered, !effects.is_empty(), "{name}");
        if !offered {
            assert_eq!(run.view(), before, "{name}: nothing visible changes");
        }
        assert_ne!(run.view().state, "connecting", "{name}");
    }
}

#[test]
fn send_goes_out_only_while_open() {
    let frame = Frame {
        bytes: b"hi".to_vec(),
        binary: false,
    };
    for (name, mut run) in every_phase() {
        let effects = run.on(Event::Send(frame.clone()));
        let expected = if name == "open" {
            Effect::Send(frame.clone())
        } else {
            Effect::NotSent("Not connected: the message was not sent. Connect first.")
        };
        assert_eq!(effects, [expected], "{name}");
        assert_eq!(run.view().open, name == "open", "{name}");
        assert_eq!(run.c.is_open(), name == "open", "{name}");
    }
}

#[test]
fn connect_from_every_phase_starts_a_new_attempt() {
    for (name, mut run) in every_phase() {
        let generation = run.generation();
        let effects = run.on(Event::Connect(echo()));
        assert_eq!(effects[0], Effect::DropSocket, "{name}");
        assert_eq!(
            effects.last(),
            Some(&Effect::Check {
                generation: generation + 1,
                name: "echo".to_owned()
            }),
            "{name}"
        );
        let replaced = effects.contains(&info(
            "Disconnected from echo (127.0.0.1:7), to connect to echo",
        ));
        assert_eq!(replaced, name == "open", "{name}");
        run.shows("connecting", "Checking echo…");
    }
}

#[test]
fn the_requested_target() {
    let mut c = Connection::new(ORIGIN, false);
    c.update(
        Event::Targets(vec![("echo".to_owned(), "127.0.0.1:5".to_owned())]),
        0.0,
    );
    assert_eq!(
        c.requested("echo", "ignored"),
        Ok(Target {
            name: "echo".to_owned(),
            address: Some("127.0.0.1:5".to_owned())
        })
    );
    assert_eq!(c.requested("gone", "").unwrap().address, None);
    assert_eq!(c.requested("", " h:1 ").unwrap().name, "h:1");
    assert_eq!(
        c.requested("", "  "),
        Err("Type the target as HOST:PORT, for example 127.0.0.1:8001.".to_owned())
    );
    assert_eq!(
        c.requested("", "h: 1"),
        Err("A target has no spaces: type it as HOST:PORT.".to_owned())
    );
}

#[test]
fn udp_targets_are_datagrams_by_prefix_or_by_the_relays_list() {
    let mut c = Connection::new(ORIGIN, false);
    c.update(
        Event::Targets(vec![
            ("echo".to_owned(), "127.0.0.1:7".to_owned()),
            ("udp-echo".to_owned(), "udp:127.0.0.1:7".to_owned()),
        ]),
        0.0,
    );
    assert!(c.is_datagram("udp-echo"));
    assert!(c.is_datagram("udp:127.0.0.1:9"));
    assert!(!c.is_datagram("echo"));
    assert!(!c.is_datagram("127.0.0.1:9"));
    assert!(!c.is_datagram("unlisted"));
}
