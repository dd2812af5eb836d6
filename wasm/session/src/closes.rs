//! How a connection ended, in words, and when to try again.

/// One sentence for a WebSocket close: what it means for the user, then the code and the
/// relay's reason as given (the relay's reasons are short and specific:
/// `target unreachable: connection refused`, `idle timeout`, `relay shutting down`).
pub fn close_message(code: u16, reason: &str) -> String {
    let meaning = match code {
        1000 => "The target closed the connection",
        1001 => "The relay ended the connection",
        1002 => "The relay saw a protocol error",
        1005 => "The connection closed without a status",
        // 1006 never travels in a frame: the browser reports it when the TCP connection to the
        // relay ended without a Close (the relay was killed, the network went away).
        1006 => "The connection to the relay was lost",
        1008 => "The relay refused the connection by policy",
        1009 => "A message was too big for the relay",
        1011 => "The target failed",
        1013 => "The relay is busy; try again later",
        1014 => "The relay could not reach the target",
        _ => "The connection closed",
    };
    // Concatenation, not format!: the socket library would carry core::fmt for this alone.
    let code = decimal(code);
    if reason.is_empty() {
        [meaning, " (code ", &code, ")"].concat()
    } else {
        [meaning, " (code ", &code, ": ", reason, ")"].concat()
    }
}

/// `n` in decimal, without core::fmt (see [`close_message`]).
pub fn decimal(n: u16) -> String {
    let mut digits = Vec::with_capacity(5);
    let mut n = n;
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

/// The delay before reconnection attempt `attempt` (1, 2, ...): 1 s, doubling up to 30 s.
pub fn reconnect_delay_ms(attempt: u32) -> u32 {
    let doubled = 1000u32.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    doubled.min(30_000)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn close_codes_in_words() {
        assert_eq!(
            close_message(1011, "target unreachable: connection refused"),
            "The target failed (code 1011: target unreachable: connection refused)"
        );
        assert_eq!(
            close_message(1000, "target closed"),
            "The target closed the connection (code 1000: target closed)"
        );
        assert_eq!(
            close_message(1006, ""),
            "The connection to the relay was lost (code 1006)"
        );
        assert_eq!(
            close_message(4000, "x"),
            "The connection closed (code 4000: x)"
        );
    }

    #[test]
    fn decimals() {
        for n in [0u16, 7, 10, 1000, 65535] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn backoff_doubles_up_to_half_a_minute() {
        let delays: Vec<u32> = (1..=8).map(reconnect_delay_ms).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(reconnect_delay_ms(0), 1000);
        assert_eq!(reconnect_delay_ms(u32::MAX), 30000);
    }
}
