//! The relay's answer about a target, and what a refused handshake means.
//!
//! Browsers do not let a page read the status or body of a refused WebSocket handshake: a
//! refusal looks exactly like an unreachable relay (close 1006). So a page asks
//! `GET api/check?target=...` before opening the socket, and again after a handshake failed.

/// The relay's answer about a target (`api/check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed, with the address it stands for.
    Allowed(Option<String>),
    /// Refused, with the relay's reason (a target not allowed, a token missing).
    Refused(String),
    /// The relay has no `api/check`.
    NoEndpoint,
    /// The relay did not answer at all.
    Unreachable(String),
    /// Some other answer (a proxy's error page, say): try the socket anyway.
    Unclear,
}

impl Verdict {
    /// The verdict in an answer to `api/check`: its status and the body's `target` and
    /// `error` strings, or why no answer came.
    pub fn of_answer(answer: Result<(u16, Option<String>, Option<String>), String>) -> Self {
        match answer {
            Err(error) => Self::Unreachable(error),
            Ok((200, target, _)) => Self::Allowed(target),
            Ok((404 | 405, _, _)) => Self::NoEndpoint,
            // 401: a relay started with --token, asked without it; /ws would refuse too.
            Ok((400 | 401 | 403, _, error)) => {
                Self::Refused(error.unwrap_or_else(|| "the target is not allowed".into()))
            }
            Ok(_) => Self::Unclear,
        }
    }
}

/// Why the WebSocket handshake for `label` failed, given the relay's answer to `api/check`
/// asked after the failure: the message, and whether trying again may help. `origin` is the
/// relay's, for the message when it cannot be reached.
pub fn handshake_failure(verdict: Verdict, label: &str, origin: &str) -> (String, bool) {
    match verdict {
        Verdict::Refused(reason) => (["Refused by the relay: ", &reason].concat(), false),
        Verdict::Unreachable(error) => (unreachable(origin, &error), true),
        Verdict::NoEndpoint => (
            [
                "The relay refused the connection to ",
                label,
                ". The browser does not say why: the target may not be allowed, or a \
                 token, this page's origin or the connection limit may be the reason",
            ]
            .concat(),
            false,
        ),
        Verdict::Allowed(_) | Verdict::Unclear => (
            [
                "The relay refused the WebSocket handshake for ",
                label,
                ". The browser does not say why: a token (--token), this page's origin \
                 (--origin) or the connection limit (--max-conns) may be the reason",
            ]
            .concat(),
            true,
        ),
    }
}

/// The relay at `origin` did not answer, for this reason.
pub fn unreachable(origin: &str, error: &str) -> String {
    // Concatenation, not format!, as in closes::close_message.
    ["Cannot reach the relay at ", origin, " (", error, ")"].concat()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn verdicts_of_the_checks_answers() {
        let of = |status: u16, target: Option<&str>, error: Option<&str>| {
            Verdict::of_answer(Ok((
                status,
                target.map(str::to_owned),
                error.map(str::to_owned),
            )))
        };
        assert_eq!(
            of(200, Some("127.0.0.1:5"), None),
            Verdict::Allowed(Some("127.0.0.1:5".to_owned()))
        );
        assert_eq!(of(404, None, None), Verdict::NoEndpoint);
        assert_eq!(of(405, None, None), Verdict::NoEndpoint);
        assert_eq!(of(403, None, Some("no")), Verdict::Refused("no".to_owned()));
        assert_eq!(
            of(400, None, None),
            Verdict::Refused("the target is not allowed".to_owned())
        );
        assert_eq!(of(502, None, None), Verdict::Unclear);
        assert_eq!(
            Verdict::of_answer(Err("down".to_owned())),
            Verdict::Unreachable("down".to_owned())
        );
    }

    #[test]
    fn a_missing_token_is_a_refusal_with_the_relays_words() {
        let answer = Ok((401, None, Some("this relay requires a token".to_owned())));
        assert_eq!(
            Verdict::of_answer(answer),
            Verdict::Refused("this relay requires a token".to_owned())
        );
    }

    #[test]
    fn handshake_failures_in_words() {
        let (message, retry) = handshake_failure(Verdict::Refused("nope".into()), "x", "o");
        assert_eq!(
            (message.as_str(), retry),
            ("Refused by the relay: nope", false)
        );
        let (message, retry) = handshake_failure(Verdict::Unreachable("gone".into()), "x", "o");
        assert_eq!(
            (message.as_str(), retry),
            ("Cannot reach the relay at o (gone)", true)
        );
        let (message, retry) = handshake_failure(Verdict::Allowed(None), "echo", "o");
        assert!(message.contains("handshake for echo") && message.contains("--token"));
        assert!(retry);
        let (message, retry) = handshake_failure(Verdict::NoEndpoint, "echo", "o");
        assert!(message.starts_with("The relay refused the connection to echo."));
        assert!(!retry);
    }
}
