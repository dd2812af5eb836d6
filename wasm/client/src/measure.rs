//! The latency and throughput panel: its form, the live plot and the summary. The run itself
//! (what to send, what came back) is [`Run`]; the controller moves bytes between it and the
//! socket.

use std::cell::{Cell, RefCell};

use web_sys::{Document, Element, HtmlButtonElement, HtmlElement, HtmlInputElement};

use super::bytes::{format_ms, format_size, Fixed};
use super::dom::{by_id, now, JsResult};
use super::latency::Run;
use super::plot;

/// Limits of the form, also enforced here (the form's own checks are only a first line).
const MAX_COUNT: usize = 100_000;
const MAX_SIZE: usize = 1 << 20;
/// No echo for this long while messages are in flight: the test gives up.
const STALL_MS: f64 = 10_000.0;
const PLOT_HEIGHT: f64 = 220.0;

/// What a run did with what it was given.
pub enum Progress {
    /// Still going: send what the window allows.
    Continue,
    /// Done; the sentence for the log.
    Finished(String),
    /// Stopped with a reason (not an echo, no echo).
    Failed(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    /// Stop was pressed: the echoes in flight still belong to the run.
    Stopping,
}

struct State {
    run: Option<Run>,
    phase: Phase,
    /// The count asked for (a stopped run lowers the run's own).
    requested: usize,
    /// When the run last progressed, for the stall check.
    last_progress: f64,
    /// When the run ended, which freezes its elapsed time.
    ended: Option<f64>,
}

/// The measure panel.
pub struct Measure {
    /// `#measure-form`: submitting it runs a test.
    pub form: Element,
    count: HtmlInputElement,
    size: HtmlInputElement,
    pipelined: HtmlInputElement,
    run_button: HtmlButtonElement,
    /// `#measure-stop`: visible while a test runs.
    pub stop: HtmlButtonElement,
    /// `#measure-status`: start, end and failure, in words (a polite live region).
    status: HtmlElement,
    /// `#measure-plot`: the SVG.
    plot: Element,
    /// `#sum-*`: progress, elapsed, p50, p99, max, mean, messages/s, throughput.
    fields: [HtmlElement; 8],
    state: RefCell<State>,
    render_requested: Cell<bool>,
}

impl Measure {
    pub fn attach(document: &Document) -> JsResult<Self> {
        let field = |name: &str| by_id::<HtmlElement>(document, &format!("sum-{name}"));
        Ok(Self {
            form: by_id(document, "measure-form")?,
            count: by_id(document, "measure-count")?,
            size: by_id(document, "measure-size")?,
            pipelined: by_id(document, "measure-pipelined")?,
            run_button: by_id(document, "measure-run")?,
            stop: by_id(document, "measure-stop")?,
            status: by_id(document, "measure-status")?,
            plot: by_id(document, "measure-plot")?,
            fields: [
                field("progress")?,
                field("elapsed")?,
                field("p50")?,
                field("p99")?,
                field("max")?,
                field("mean")?,
                field("rate")?,
                field("throughput")?,
            ],
            state: RefCell::new(State {
                run: None,
                phase: Phase::Idle,
                requested: 0,
                last_progress: 0.0,
                ended: None,
            }),
            render_requested: Cell::new(false),
        })
    }

    /// Whether a test owns the connection's incoming bytes.
    pub fn active(&self) -> bool {
        self.state.borrow().phase != Phase::Idle
    }

    /// A sentence in the panel's status line.
    pub fn say(&self, text: &str) {
        self.status.set_text_content(Some(text));
    }

    /// Enables Run while a connection is open and no test runs; shows Stop while one does.
    pub fn set_connected(&self, open: bool) {
        let active = self.active();
        self.run_button.set_disabled(!open || active);
        self.stop.set_hidden(!active);
    }

    /// Starts a test from the form's values; returns its description, or what is wrong.
    pub fn begin(&self, now: f64) -> Result<String, String> {
        let count = parse_in(&self.count.value(), 1, MAX_COUNT)
            .ok_or_else(|| format!("Messages: type a whole number from 1 to {MAX_COUNT}."))?;
        let size = parse_in(&self.size.value(), 1, MAX_SIZE)
            .ok_or_else(|| format!("Bytes each: type a whole number from 1 to {MAX_SIZE}."))?;
        let pipelined = self.pipelined.checked();
        let description = format!(
            "{count} × {}, {}",
            format_size(size as u64),
            if pipelined {
                "pipelined"
            } else {
                "one at a time"
            }
        );
        *self.state.borrow_mut() = State {
            run: Some(Run::new(count, size, pipelined, now)),
            phase: Phase::Running,
            requested: count,
            last_progress: now,
            ended: None,
        };
        self.say(&format!("Running: {description}…"));
        Ok(description)
    }

    /// The messages the window allows now, recorded as sent.
    pub fn next_messages(&self, now: f64) -> Vec<Vec<u8>> {
        let mut state = self.state.borrow_mut();
        let mut messages = Vec::new();
        if state.phase == Phase::Running {
            if let Some(run) = state.run.as_mut() {
                while run.may_send() {
                    messages.push(run.next_message(now));
                }
            }
        }
        messages
    }

    /// Bytes that came back.
    pub fn receive(&self, bytes: &[u8], now: f64) -> Progress {
        let mut state = self.state.borrow_mut();
        let Some(run) = state.run.as_mut() else {
            return Progress::Continue;
        };
        match run.received(bytes, now) {
            Ok(0) => Progress::Continue,
            Ok(_) if run.done() => {
                drop(state);
                self.finish(now)
            }
            Ok(_) => {
                state.last_progress = now;
                Progress::Continue
            }
            Err(mismatch) => Progress::Failed(mismatch.to_string()),
        }
    }

    /// The user pressed Stop: no more sends; the run ends when the echoes in flight are back.
    pub fn stop(&self, now: f64) -> Progress {
        let mut state = self.state.borrow_mut();
        if state.phase != Phase::Running {
            return Progress::Continue;
        }
        state.phase = Phase::Stopping;
        let done = state.run.as_mut().is_some_and(|run| {
            run.stop();
            run.done()
        });
        drop(state);
        if done {
            self.finish(now)
        } else {
            self.say("Stopping: waiting for the echoes in flight…");
            Progress::Continue
        }
    }

    fn finish(&self, now: f64) -> Progress {
        let mut state = self.state.borrow_mut();
        state.phase = Phase::Idle;
        state.ended = Some(now);
        let Some(run) = state.run.as_ref() else {
            return Progress::Continue;
        };
        let s = run.summary(now);
        let stopped = if s.completed < state.requested {
            format!(" (stopped after {} of {})", s.completed, state.requested)
        } else {
            String::new()
        };
        let line = format!(
            "Latency test, {} × {}, {}{stopped}: p50 {}, p99 {}, max {}; {} messages/s, {}/s each way",
            s.completed,
            format_size(run.size as u64),
            if run.pipelined { "pipelined" } else { "one at a time" },
            format_ms(s.p50),
            format_ms(s.p99),
            format_ms(s.max),
            Fixed(s.messages_per_second, 0),
            format_size(s.bytes_per_second as u64),
        );
        drop(state);
        self.say(&format!(
            "Done: {} round trips in {} s{stopped}.",
            s.completed,
            Fixed(s.elapsed_ms / 1000.0, 2)
        ));
        Progress::Finished(line)
    }

    /// Ends a running test for `reason` (the connection closed, the echo differed); the
    /// results so far stay on the page. False when no test was running.
    pub fn fail(&self, reason: &str) -> bool {
        let mut state = self.state.borrow_mut();
        if state.phase == Phase::Idle {
            return false;
        }
        state.phase = Phase::Idle;
        state.ended = Some(now());
        drop(state);
        self.say(&format!("Stopped: {reason}"));
        true
    }

    /// Why a test in progress should give up: no echo for a while.
    pub fn stalled(&self, now: f64) -> Option<String> {
        let state = self.state.borrow();
        (state.phase != Phase::Idle && now - state.last_progress > STALL_MS).then(|| {
            format!(
                "no echo for {} s (is the target an echo server?)",
                Fixed(STALL_MS / 1000.0, 0)
            )
        })
    }

    /// Asks for a render; true if one was not already pending (the caller schedules it).
    pub fn request_render(&self) -> bool {
        !self.render_requested.replace(true)
    }

    /// Draws the plot and fills in the summary.
    pub fn render(&self) {
        self.render_requested.set(false);
        let state = self.state.borrow();
        let Some(run) = state.run.as_ref() else {
            self.draw(&[], &[]);
            return;
        };
        let s = run.summary(state.ended.unwrap_or_else(now));
        let texts = [
            format!("{} of {}", s.completed, state.requested),
            format!("{} s", Fixed(s.elapsed_ms / 1000.0, 2)),
            format_ms(s.p50),
            format_ms(s.p99),
            format_ms(s.max),
            format_ms(s.mean),
            if s.completed > 0 {
                Fixed(s.messages_per_second, 0).to_string()
            } else {
                "–".to_owned()
            },
            if s.completed > 0 {
                format!("{}/s", format_size(s.bytes_per_second as u64))
            } else {
                "–".to_owned()
            },
        ];
        for (field, text) in self.fields.iter().zip(&texts) {
            field.set_text_content(Some(text));
        }
        let marks: Vec<(&str, f64)> = if s.completed >= 2 {
            vec![("p50", s.p50), ("p99", s.p99)]
        } else {
            Vec::new()
        };
        self.draw(&run.samples, &marks);
        let _ = self.plot.set_attribute(
            "aria-label",
            &format!(
                "Round-trip time of {} messages over {} s: p50 {}, p99 {}, max {}",
                s.completed,
                Fixed(s.elapsed_ms / 1000.0, 2),
                format_ms(s.p50),
                format_ms(s.p99),
                format_ms(s.max)
            ),
        );
    }

    fn draw(&self, samples: &[(f64, f64)], marks: &[(&str, f64)]) {
        // The plot is drawn at its size on the page, so text stays at its CSS size however
        // wide the screen is.
        let width = self.plot.get_bounding_client_rect().width();
        let width = if width > 0.0 { width } else { 600.0 };
        let _ = self.plot.set_attribute(
            "viewBox",
            &format!("0 0 {} {}", Fixed(width, 0), Fixed(PLOT_HEIGHT, 0)),
        );
        self.plot
            .set_inner_html(&plot::rtt_plot(samples, width.round(), PLOT_HEIGHT, marks));
    }
}

/// A whole number typed in a field, within `min..=max`.
fn parse_in(text: &str, min: usize, max: usize) -> Option<usize> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
}
