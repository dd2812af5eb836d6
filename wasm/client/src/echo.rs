//! Round-trip times of typed messages: matches the bytes that come back against the messages
//! sent, in order, as an echo server returns them.
//!
//! The relay forwards TCP reads as they come, so one echo may arrive in several frames and one
//! frame may hold several echoes; matching is on the byte stream, not on frames. As soon as a
//! received byte differs from what was sent, the target is not (or no longer) echoing, and
//! every pending message is forgotten rather than timed wrongly.

use std::collections::VecDeque;

/// Messages sent whose echo has not fully come back.
#[derive(Default)]
pub struct EchoMatcher {
    pending: VecDeque<Pending>,
    /// Bytes held in `pending`, to bound memory when the target never echoes.
    pending_bytes: usize,
}

struct Pending {
    /// The caller's id for the message (a log entry).
    id: u64,
    bytes: Vec<u8>,
    /// How many of `bytes` have come back so far.
    matched: usize,
    /// When it was sent, in milliseconds.
    sent_at: f64,
}

/// An echo that came back whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    /// The id given to [`EchoMatcher::sent`].
    pub id: u64,
    /// Milliseconds from the send to the last byte of the echo.
    pub rtt: f64,
}

/// At most this many bytes wait for an echo; older messages are dropped beyond it.
const MAX_PENDING_BYTES: usize = 4 << 20;

impl EchoMatcher {
    /// Records a message sent at `at` (milliseconds).
    pub fn sent(&mut self, id: u64, bytes: &[u8], at: f64) {
        if bytes.is_empty() {
            return;
        }
        self.pending_bytes += bytes.len();
        self.pending.push_back(Pending {
            id,
            bytes: bytes.to_vec(),
            matched: 0,
            sent_at: at,
        });
        while self.pending_bytes > MAX_PENDING_BYTES {
            match self.pending.pop_front() {
                Some(dropped) => self.pending_bytes -= dropped.bytes.len(),
                None => break,
            }
        }
    }

    /// Matches bytes received at `at` and returns the echoes they complete, oldest first.
    pub fn received(&mut self, mut chunk: &[u8], at: f64) -> Vec<Echo> {
        let mut echoes = Vec::new();
        while !chunk.is_empty() {
            let Some(head) = self.pending.front_mut() else {
                break;
            };
            let expected = &head.bytes[head.matched..];
            let n = expected.len().min(chunk.len());
            if expected[..n] != chunk[..n] {
                self.forget();
                break;
            }
            head.matched += n;
            chunk = &chunk[n..];
            if head.matched == head.bytes.len() {
                echoes.push(Echo {
                    id: head.id,
                    rtt: at - head.sent_at,
                });
                self.pending_bytes -= head.bytes.len();
                self.pending.pop_front();
            }
        }
        echoes
    }

    /// Forgets every pending message (a new connection, or a target that does not echo).
    pub fn forget(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn echoes_split_and_merged_across_frames() {
        let mut m = EchoMatcher::default();
        m.sent(1, b"hello", 10.0);
        m.sent(2, b"world", 11.0);
        assert_eq!(m.received(b"hel", 12.0), vec![]);
        assert_eq!(m.received(b"lowor", 13.5), vec![Echo { id: 1, rtt: 3.5 }]);
        assert_eq!(m.received(b"ld", 15.0), vec![Echo { id: 2, rtt: 4.0 }]);
        m.sent(3, b"a", 20.0);
        m.sent(4, b"b", 20.0);
        assert_eq!(
            m.received(b"ab", 21.0),
            vec![Echo { id: 3, rtt: 1.0 }, Echo { id: 4, rtt: 1.0 }]
        );
    }

    #[test]
    fn a_target_that_does_not_echo_times_nothing() {
        let mut m = EchoMatcher::default();
        m.sent(1, b"hello", 0.0);
        assert_eq!(m.received(b"server received you message.", 1.0), vec![]);
        // The pending message is gone: its real echo (if any) is not timed either.
        assert_eq!(m.received(b"hello", 2.0), vec![]);
        m.sent(2, b"x", 3.0);
        assert_eq!(m.received(b"x", 4.0), vec![Echo { id: 2, rtt: 1.0 }]);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut m = EchoMatcher::default();
        let big = vec![7u8; 1 << 20];
        for id in 0..10 {
            m.sent(id, &big, 0.0);
        }
        assert!(m.pending_bytes <= MAX_PENDING_BYTES);
        assert_eq!(m.pending.front().map(|p| p.id), Some(6));
    }
}
