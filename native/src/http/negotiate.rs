//! What a request for an embedded file asks of its representation: the content coding it
//! accepts best (`Accept-Encoding`, with q-values, RFC 9110 12.5.3) and whether the copy it
//! holds is current (`If-None-Match`, RFC 9110 13.1.2).
//!
//! Owns the parsing of those two headers only; which files have compressed copies, and the
//! headers of the answer, are [`super::assets`]'s.

/// A content coding the relay can send: each compressed copy is made at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    /// The value of `Content-Encoding` (none for identity).
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }

    /// What the build appends to a file's name for its copy in this coding.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
            Coding::Identity => "",
        }
    }

    fn is_named(self, name: &str) -> bool {
        match self {
            Coding::Brotli => name.eq_ignore_ascii_case("br"),
            // RFC 9110 8.4.1.3: a recipient should treat x-gzip as gzip.
            Coding::Gzip => {
                name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")
            }
            Coding::Identity => name.eq_ignore_ascii_case("identity"),
        }
    }
}

/// A q-value in thousandths (`q=0.5` is 500), or `None` when it is not one (RFC 9110 12.4.2:
/// `0` to `1` with at most three decimals).
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// The weight `accept` (the values of every `Accept-Encoding` header, joined by commas) gives
/// `coding`: its own entry's, else `*`'s, else 0 for a content coding. Identity named by
/// neither stays acceptable (RFC 9110 12.5.3), as the least wanted: weight 0.001.
fn weight(accept: &str, coding: Coding) -> u16 {
    let mut named = None;
    let mut any = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("q") {
                    q = qvalue(value.trim());
                }
            }
        }
        // An entry whose weight cannot be read says nothing.
        let Some(q) = q else { continue };
        if coding.is_named(name) {
            named = Some(named.map_or(q, |n: u16| n.max(q)));
        } else if name == "*" {
            any = Some(q);
        }
    }
    named
        .or(any)
        .unwrap_or(u16::from(coding == Coding::Identity))
}

/// The coding to send a file in, of those it has copies in (`available`, best first, identity
/// implied): the one `accept` weighs highest, ties going to the earlier (the smaller copy).
/// Without `Accept-Encoding`, identity: a client that says nothing may not decode anything.
/// When even identity is refused, identity still: an answer it can skip beats none (RFC 9110
/// 12.5.3 allows either).
pub fn choose(accept: Option<&str>, available: &[Coding]) -> Coding {
    let Some(accept) = accept else {
        return Coding::Identity;
    };
    let mut best = (Coding::Identity, weight(accept, Coding::Identity));
    for &coding in available.iter().rev() {
        let q = weight(accept, coding);
        if q > 0 && q >= best.1 {
            best = (coding, q);
        }
    }
    best.0
}

/// Whether `if_none_match` (the values of every `If-None-Match` header, joined by commas)
/// names `etag` (a strong tag, quoted) or is `*`. The comparison is weak, as RFC 9110 13.1.2
/// says: `W/"x"` matches `"x"`.
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let mut rest = if_none_match.trim_start();
    if rest == "*" {
        return true;
    }
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let tag_start = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = tag_start.strip_prefix('"') else {
            // Not a list of entity tags: matches nothing, so the file is sent whole.
            return false;
        };
        let Some(end) = quoted.find('"') else {
            return false;
        };
        if etag.len() == end + 2 && etag[1..end + 1] == quoted[..end] {
            return true;
        }
        rest = &quoted[end + 1..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::{Brotli, Gzip, Identity};

    const BOTH: &[Coding] = &[Brotli, Gzip];

    #[test]
    fn browsers_get_brotli_and_curl_gets_the_file() {
        assert_eq!(choose(Some("gzip, deflate, br, zstd"), BOTH), Brotli);
        assert_eq!(choose(Some("gzip, deflate"), BOTH), Gzip);
        assert_eq!(choose(None, BOTH), Identity);
        assert_eq!(choose(Some(""), BOTH), Identity);
        assert_eq!(choose(Some("gzip, br"), &[]), Identity);
    }

    #[test]
    fn q_values_decide() {
        assert_eq!(choose(Some("br;q=0.5, gzip"), BOTH), Gzip);
        assert_eq!(choose(Some("br;q=0.5, gzip;q=0.4"), BOTH), Brotli);
        assert_eq!(choose(Some("br;q=0, gzip;q=0"), BOTH), Identity);
        assert_eq!(choose(Some("BR ; Q=1.000"), BOTH), Brotli);
        assert_eq!(choose(Some("x-gzip"), BOTH), Gzip);
        // Identity preferred over what the client takes reluctantly.
        assert_eq!(choose(Some("identity, br;q=0.9"), BOTH), Identity);
        assert_eq!(choose(Some("identity;q=0.1, gzip;q=0.2"), BOTH), Gzip);
        // Equal weights: the smaller copy.
        assert_eq!(choose(Some("gzip;q=0.8, br;q=0.8"), BOTH), Brotli);
    }

    #[test]
    fn star_covers_what_is_not_named() {
        assert_eq!(choose(Some("*"), BOTH), Brotli);
        assert_eq!(choose(Some("br;q=0, *"), BOTH), Gzip);
        assert_eq!(choose(Some("*;q=0"), BOTH), Identity);
        assert_eq!(choose(Some("gzip;q=0.3, *;q=0.5"), BOTH), Brotli);
    }

    #[test]
    fn unreadable_weights_are_ignored() {
        for bad in [
            "br;q=2",
            "br;q=1.5",
            "br;q=0.0001",
            "br;q=x",
            "br;q=",
            "br;q=-1",
        ] {
            assert_eq!(choose(Some(bad), BOTH), Identity, "{bad}");
        }
        assert_eq!(choose(Some("br;q=abc, gzip"), BOTH), Gzip);
        assert_eq!(choose(Some(",,, ;q=1, gzip"), BOTH), Gzip);
    }

    #[test]
    fn q_values_parse_as_the_grammar_says() {
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue("00.5"), None);
        assert_eq!(qvalue(".5"), None);
    }

    #[test]
    fn if_none_match_lists() {
        let tag = "\"abc\"";
        assert!(none_match("\"abc\"", tag));
        assert!(none_match("W/\"abc\"", tag));
        assert!(none_match("\"x\", \"abc\"", tag));
        assert!(none_match("\"x\",W/\"abc\"", tag));
        assert!(none_match("*", tag));
        assert!(!none_match("\"abcd\"", tag));
        assert!(!none_match("\"ab\"", tag));
        assert!(!none_match("abc", tag));
        assert!(!none_match("\"abc", tag));
        assert!(!none_match("", tag));
        // A comma inside a tag is part of it.
        assert!(!none_match("\"a,abc\"", tag));
    }

    /// Headers are client input: no arrangement of these characters may panic (slicing at a
    /// quote, a q-value's digits), whatever it answers.
    #[test]
    fn any_header_text_is_answered() {
        let alphabet = [
            "\"", "W/", ",", ";", "q=", "0", "1", ".", "br", "gzip", "*", " ", "é", "\"abc\"",
        ];
        let mut state = 0x2545_f491_u32;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 9) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                text.push_str(alphabet[state as usize % alphabet.len()]);
            }
            let _ = choose(Some(&text), BOTH);
            let _ = none_match(&text, "\"abc\"");
        }
    }
}
