//! The latency and throughput test: which message to send next, which echoes came back and how
//! long each took, and the summary (p50, p99, max, messages per second).
//!
//! Message `i` of `size` bytes is a known pattern, different for each `i`, so the echo can be
//! checked byte by byte as it streams in without keeping copies of what was sent: a target that
//! answers anything else (the acknowledge server, say) stops the test with a clear reason
//! instead of producing numbers that mean nothing.

use std::fmt;

/// Pipelined runs keep at most this many bytes in flight (sent, echo not back yet)...
pub const WINDOW_BYTES: usize = 256 * 1024;
/// ...and at most this many messages, so tiny messages do not flood the relay either.
pub const WINDOW_MESSAGES: usize = 1024;

const PATTERN: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Byte `k` of message `i`: printable, and shifted by one for each message, so a lost, doubled
/// or reordered message shows up as a mismatch.
pub fn payload_byte(i: usize, k: usize) -> u8 {
    PATTERN[(i + k) % PATTERN.len()]
}

/// Message `i` of `size` bytes.
pub fn payload(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|k| payload_byte(i, k)).collect()
}

/// The echo differed from what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A byte that is not the one sent at that place.
    Different { message: usize, offset: usize },
    /// More bytes came back than were sent.
    Extra,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Different { message, offset } => write!(
                f,
                "the target does not echo: byte {offset} of message {} differs from what was \
                 sent (measure against an echo target)",
                message + 1
            ),
            Self::Extra => f.write_str(
                "the target sent more bytes than it was sent (measure against an echo target)",
            ),
        }
    }
}

/// One test run.
pub struct Run {
    pub count: usize,
    pub size: usize,
    pub pipelined: bool,
    /// When the run started, in milliseconds.
    pub started: f64,
    /// Send time of each message sent so far.
    sent_at: Vec<f64>,
    /// `(completion time since the start, round-trip time)` of each echo, in order.
    pub samples: Vec<(f64, f64)>,
    /// Bytes of echo received so far.
    received: usize,
}

impl Run {
    pub fn new(count: usize, size: usize, pipelined: bool, now: f64) -> Self {
        Self {
            count,
            size: size.max(1),
            pipelined,
            started: now,
            sent_at: Vec::with_capacity(count),
            samples: Vec::with_capacity(count),
            received: 0,
        }
    }

    pub fn sent(&self) -> usize {
        self.sent_at.len()
    }

    pub fn completed(&self) -> usize {
        self.samples.len()
    }

    pub fn done(&self) -> bool {
        self.completed() == self.count
    }

    /// Bytes sent whose echo has not come back.
    pub fn in_flight_bytes(&self) -> usize {
        self.sent() * self.size - self.received
    }

    /// Whether another message may be sent now.
    pub fn may_send(&self) -> bool {
        if self.sent() >= self.count {
            return false;
        }
        let in_flight = self.sent() - self.completed();
        if self.pipelined {
            in_flight == 0
                || (self.in_flight_bytes() + self.size <= WINDOW_BYTES
                    && in_flight < WINDOW_MESSAGES)
        } else {
            in_flight == 0
        }
    }

    /// Sends nothing more: the run ends when the echoes already in flight are back.
    pub fn stop(&mut self) {
        self.count = self.sent();
    }

    /// Records the next message as sent at `now` and returns its bytes.
    pub fn next_message(&mut self, now: f64) -> Vec<u8> {
        let i = self.sent();
        self.sent_at.push(now);
        payload(i, self.size)
    }

    /// Checks echoed bytes received at `now`; returns how many messages they completed.
    pub fn received(&mut self, chunk: &[u8], now: f64) -> Result<usize, Mismatch> {
        let before = self.completed();
        for &byte in chunk {
            let (message, offset) = (self.received / self.size, self.received % self.size);
            if message >= self.sent() {
                return Err(Mismatch::Extra);
            }
            if byte != payload_byte(message, offset) {
                return Err(Mismatch::Different { message, offset });
            }
            self.received += 1;
            if offset + 1 == self.size {
                let rtt = now - self.sent_at[message];
                self.samples.push((now - self.started, rtt));
            }
        }
        Ok(self.completed() - before)
    }

    /// The numbers so far; `now` ends the elapsed time while the run is going.
    pub fn summary(&self, now: f64) -> Summary {
        let end = if self.done() {
            self.samples
                .last()
                .map_or(now, |&(at, _)| self.started + at)
        } else {
            now
        };
        let mut rtts: Vec<f64> = self.samples.iter().map(|&(_, rtt)| rtt).collect();
        rtts.sort_by(f64::total_cmp);
        let elapsed = (end - self.started).max(0.0);
        let completed = rtts.len();
        let per_second = |n: f64| {
            if elapsed > 0.0 {
                n * 1000.0 / elapsed
            } else {
                0.0
            }
        };
        Summary {
            sent: self.sent(),
            completed,
            elapsed_ms: elapsed,
            min: rtts.first().copied().unwrap_or(f64::NAN),
            p50: percentile(&rtts, 50.0),
            p99: percentile(&rtts, 99.0),
            max: rtts.last().copied().unwrap_or(f64::NAN),
            mean: if completed > 0 {
                rtts.iter().sum::<f64>() / completed as f64
            } else {
                f64::NAN
            },
            messages_per_second: per_second(completed as f64),
            bytes_per_second: per_second((completed * self.size) as f64),
        }
    }
}

/// The numbers of a run (times in milliseconds; NaN before the first echo).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub sent: usize,
    pub completed: usize,
    pub elapsed_ms: f64,
    pub min: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    /// Completed round trips per second.
    pub messages_per_second: f64,
    /// Echoed bytes per second (the same amount went each way).
    pub bytes_per_second: f64,
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p` percent
/// of the values at or below it. NaN for no values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[1.0, 2.0], 50.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn one_at_a_time_waits_for_each_echo() {
        let mut run = Run::new(3, 4, false, 100.0);
        assert!(run.may_send());
        let first = run.next_message(100.0);
        assert_eq!(first, b"0123");
        assert!(!run.may_send(), "the echo of the first is not back");
        assert_eq!(run.received(&first[..2], 101.0), Ok(0));
        assert_eq!(run.received(&first[2..], 102.0), Ok(1));
        assert_eq!(run.samples, vec![(2.0, 2.0)]);
        assert!(run.may_send());
        let second = run.next_message(103.0);
        assert_eq!(second, b"1234", "each message differs");
        run.received(&second, 104.0).unwrap();
        let third = run.next_message(104.0);
        run.received(&third, 110.0).unwrap();
        assert!(run.done());
        assert!(!run.may_send());
        let summary = run.summary(500.0);
        assert_eq!((summary.sent, summary.completed), (3, 3));
        assert_eq!(
            summary.elapsed_ms, 10.0,
            "ends at the last echo, not at `now`"
        );
        assert_eq!((summary.min, summary.p50, summary.max), (1.0, 2.0, 6.0));
        assert_eq!(summary.messages_per_second, 300.0);
        assert_eq!(summary.bytes_per_second, 1200.0);
    }

    #[test]
    fn pipelined_runs_fill_a_bounded_window() {
        let mut run = Run::new(10_000, 1000, true, 0.0);
        let mut batch = Vec::new();
        while run.may_send() {
            batch.extend(run.next_message(0.0));
        }
        assert_eq!(run.sent(), WINDOW_BYTES / 1000);
        assert_eq!(run.received(&batch, 5.0), Ok(run.sent()));
        assert!(run.may_send());

        let mut tiny = Run::new(5000, 1, true, 0.0);
        while tiny.may_send() {
            tiny.next_message(0.0);
        }
        assert_eq!(tiny.sent(), WINDOW_MESSAGES);

        let mut huge = Run::new(2, 1 << 20, true, 0.0);
        assert!(
            huge.may_send(),
            "a message larger than the window still goes alone"
        );
        huge.next_message(0.0);
        assert!(!huge.may_send());
    }

    #[test]
    fn anything_but_an_echo_stops_the_run() {
        let mut run = Run::new(2, 8, true, 0.0);
        run.next_message(0.0);
        assert_eq!(
            run.received(b"server received you message.", 1.0),
            Err(Mismatch::Different {
                message: 0,
                offset: 0
            })
        );
        let mut run = Run::new(1, 2, false, 0.0);
        let message = run.next_message(0.0);
        assert_eq!(
            run.received(&[&message[..], b"x"].concat(), 1.0),
            Err(Mismatch::Extra)
        );
        assert!(Mismatch::Extra.to_string().contains("echo target"));
    }

    #[test]
    fn a_stopped_run_ends_with_the_echoes_in_flight() {
        let mut run = Run::new(100, 2, true, 0.0);
        let mut batch = Vec::new();
        for _ in 0..3 {
            batch.extend(run.next_message(0.0));
        }
        run.stop();
        assert!(!run.may_send() && !run.done());
        run.received(&batch, 1.0).unwrap();
        assert!(run.done());
        assert_eq!(run.summary(9.0).completed, 3);
    }

    #[test]
    fn a_summary_before_any_echo_is_empty_not_wrong() {
        let mut run = Run::new(5, 10, false, 0.0);
        run.next_message(0.0);
        let summary = run.summary(10.0);
        assert_eq!((summary.sent, summary.completed), (1, 0));
        assert!(summary.p50.is_nan() && summary.max.is_nan() && summary.mean.is_nan());
        assert_eq!(summary.messages_per_second, 0.0);
    }
}
