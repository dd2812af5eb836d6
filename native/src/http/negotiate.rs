//! What a request for a file asks of its representation: the content coding it accepts best
//! (`Accept-Encoding`, with q-values, RFC 9110 12.5.3), whether the copy it holds is current or
//! the one it means to change is still there (`If-None-Match`, `If-Modified-Since`,
//! `If-Match`, `If-Unmodified-Since`, RFC 9110 13), and which part it wants (`Range` and
//! `If-Range`, RFC 9110 14).
//!
//! Owns the parsing of those headers only; which files have compressed copies, and the headers
//! of the answer, are [`super::assets`]'s and [`super::webdir`]'s.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, HeaderName};

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

/// Every value of a list header, joined as one (RFC 9110 5.3); `None` when there is none.
pub fn joined(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Whether `if_none_match` (the values of every `If-None-Match` header, joined by commas)
/// names `etag` (a strong tag, quoted) or is `*`. The comparison is weak, as RFC 9110 13.1.2
/// says: `W/"x"` matches `"x"`.
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    listed(if_none_match, etag, true)
}

/// Whether `if_match` (every `If-Match` header's values, joined) names `etag` or is `*`. The
/// comparison is strong, as RFC 9110 13.1.1 says: `W/"x"` matches nothing.
pub fn if_match(if_match: &str, etag: &str) -> bool {
    listed(if_match, etag, false)
}

/// Whether `list` is `*` or a list of entity tags that holds `etag`; a weak tag (`W/"x"`)
/// counts only when `weak` allows it. A list that is not one matches nothing.
fn listed(list: &str, etag: &str, weak: bool) -> bool {
    let mut rest = list.trim();
    if rest == "*" {
        return true;
    }
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let is_weak = rest.starts_with("W/");
        let tag_start = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(quoted) = tag_start.strip_prefix('"') else {
            return false;
        };
        let Some(end) = quoted.find('"') else {
            return false;
        };
        if (weak || !is_weak) && etag.len() == end + 2 && etag[1..end + 1] == quoted[..end] {
            return true;
        }
        rest = &quoted[end + 1..];
    }
    false
}

/// What the validators of a request say about a file that exists, in the order RFC 9110
/// 13.2.2 gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Answer as if they were not there (a `Range` may still apply).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: the client asked for this file only as it was, and it changed.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` of a
/// GET or HEAD for a file whose strong tag is `etag` and that last changed at `modified`, if
/// that is known (whole seconds count: an HTTP date has no finer ones). A date that does not
/// parse is ignored, as are the date headers when the tag header of their pair is present.
pub fn precondition(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> Precondition {
    let modified = modified.map(whole_seconds);
    let date = |name| single(headers, name).and_then(|v| httpdate::parse_http_date(v).ok());
    if let Some(tags) = joined(headers, header::IF_MATCH) {
        if !if_match(&tags, etag) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(modified)) = (date(header::IF_UNMODIFIED_SINCE), modified) {
        if modified > since {
            return Precondition::Failed;
        }
    }
    if let Some(tags) = joined(headers, header::IF_NONE_MATCH) {
        if none_match(&tags, etag) {
            return Precondition::NotModified;
        }
    } else if let (Some(since), Some(modified)) = (date(header::IF_MODIFIED_SINCE), modified) {
        if modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// The value of a header that takes one (a date, `If-Range`), trimmed; `None` when it is
/// absent, given more than once (RFC 9110 13.1.3: such a header is ignored) or not text.
fn single(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().map(str::trim),
        _ => None,
    }
}

/// `time` without its fraction of a second: what `Last-Modified` says of it.
pub fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

/// The part of a `len`-byte file a GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All of it: no `Range`, one this server does not serve (several ranges, another unit,
    /// a malformed one), or an `If-Range` the file no longer matches.
    Whole,
    /// 206: the bytes `start..=end`.
    Bytes { start: u64, end: u64 },
    /// 416: a range the file does not reach.
    Unsatisfiable,
}

/// Reads `Range` (one `bytes` range: `A-B`, `A-` or `-N`, written without spaces) and
/// `If-Range` (the file's strong tag, or its `Last-Modified` date when that is a strong
/// validator: the file changed a second or more before now, RFC 9110 8.8.2.2) for a file of
/// `len` bytes that last changed at `modified`.
pub fn part(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>, len: u64) -> Part {
    let Some(range) = single(headers, header::RANGE) else {
        return Part::Whole;
    };
    if headers.contains_key(header::IF_RANGE) {
        let current = match single(headers, header::IF_RANGE) {
            None => false,
            Some(tag) if tag.starts_with('"') => tag == etag,
            Some(date) => {
                let settled = modified.filter(|m| {
                    m.checked_add(Duration::from_secs(1))
                        .is_some_and(|later| later <= SystemTime::now())
                });
                let date = httpdate::parse_http_date(date).ok();
                date.is_some() && date == settled.map(whole_seconds)
            }
        };
        if !current {
            return Part::Whole;
        }
    }
    let Some((unit, spec)) = range.split_once('=') else {
        return Part::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Part::Whole;
    };
    // Digits only (`u64::from_str` would also take a sign); more than a u64 holds is as far
    // as any file reaches.
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().unwrap_or(u64::MAX))
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            None => Part::Whole,
            Some(0) => Part::Unsatisfiable,
            Some(_) if len == 0 => Part::Unsatisfiable,
            Some(n) => Part::Bytes {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (first, last) => {
            let Some(start) = number(first) else {
                return Part::Whole;
            };
            let end = match last {
                "" => u64::MAX,
                last => match number(last) {
                    Some(end) if end >= start => end,
                    _ => return Part::Whole,
                },
            };
            if start >= len {
                Part::Unsatisfiable
            } else {
                Part::Bytes {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    #[test]
    fn if_match_compares_strongly() {
        let tag = "\"abc\"";
        assert!(if_match("\"abc\"", tag));
        assert!(if_match("\"x\", \"abc\"", tag));
        assert!(if_match(" * ", tag));
        assert!(!if_match("W/\"abc\"", tag));
        assert!(!if_match("W/\"abc\", \"x\"", tag));
        assert!(if_match("W/\"abc\", \"abc\"", tag));
        assert!(!if_match("abc", tag));
    }

    fn range(value: &str, len: u64) -> Part {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, value.parse().unwrap());
        part(&headers, "\"abc\"", None, len)
    }

    #[test]
    fn one_byte_range_is_read() {
        let bytes = |start, end| Part::Bytes { start, end };
        assert_eq!(range("bytes=0-0", 10), bytes(0, 0));
        assert_eq!(range("bytes=2-", 10), bytes(2, 9));
        assert_eq!(range("BYTES=2-4", 10), bytes(2, 4));
        assert_eq!(range(" bytes=2-4 ", 10), bytes(2, 4));
        assert_eq!(range("bytes=-4", 10), bytes(6, 9));
        assert_eq!(range("bytes=-40", 10), bytes(0, 9));
        assert_eq!(range("bytes=8-40", 10), bytes(8, 9));
        assert_eq!(range("bytes=10-", 10), Part::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), Part::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), Part::Unsatisfiable);
        assert_eq!(range("bytes=-5", 0), Part::Unsatisfiable);
        assert_eq!(
            range("bytes=99999999999999999999-", 10),
            Part::Unsatisfiable
        );
        for ignored in [
            "bytes=3-2",
            "bytes=0-1,4-5",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=-+1",
            "bytes=1",
            "items=0-1",
            "bytes = 2-4",
            "bytes=2 -4",
            "bytes=2- 4",
            "0-1",
        ] {
            assert_eq!(range(ignored, 10), Part::Whole, "{ignored}");
        }
        // If-Range: the tag exactly (a weak one never), or the date exactly.
        let when = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, "bytes=1-2".parse().unwrap());
        for (if_range, answer) in [
            ("\"abc\"", bytes(1, 2)),
            ("W/\"abc\"", Part::Whole),
            ("\"abd\"", Part::Whole),
            ("Tue, 14 Nov 2023 22:13:20 GMT", bytes(1, 2)),
            ("Tue, 14 Nov 2023 22:13:19 GMT", Part::Whole),
            ("soon", Part::Whole),
        ] {
            headers.insert(header::IF_RANGE, if_range.parse().unwrap());
            assert_eq!(
                part(&headers, "\"abc\"", Some(when), 10),
                answer,
                "{if_range}"
            );
        }
        // Two of them are none.
        headers.insert(header::IF_RANGE, "\"abc\"".parse().unwrap());
        headers.append(header::IF_RANGE, "\"abc\"".parse().unwrap());
        assert_eq!(part(&headers, "\"abc\"", Some(when), 10), Part::Whole);
        // A date names one version only if the file changed a second or more before now: in
        // the same second it may have changed twice.
        let now = SystemTime::now();
        let today = httpdate::fmt_http_date(now);
        headers.insert(header::IF_RANGE, today.parse().unwrap());
        assert_eq!(part(&headers, "\"abc\"", Some(now), 10), Part::Whole);
    }

    #[test]
    fn a_date_header_given_twice_is_ignored() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let same = "Tue, 14 Nov 2023 22:13:20 GMT";
        let before = "Tue, 14 Nov 2023 22:13:19 GMT";
        for (name, pair, once) in [
            (
                header::IF_MODIFIED_SINCE,
                [same, before],
                Precondition::NotModified,
            ),
            (
                header::IF_UNMODIFIED_SINCE,
                [before, same],
                Precondition::Failed,
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), pair[0].parse().unwrap());
            assert_eq!(
                precondition(&headers, "\"abc\"", Some(when)),
                once,
                "{name}"
            );
            headers.append(name.clone(), pair[1].parse().unwrap());
            assert_eq!(
                precondition(&headers, "\"abc\"", Some(when)),
                Precondition::Proceed,
                "{name}"
            );
        }
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
            let _ = if_match(&text, "\"abc\"");
            let value = axum::http::HeaderValue::from_bytes(text.as_bytes()).unwrap();
            let mut headers = HeaderMap::new();
            for name in [header::RANGE, header::IF_RANGE, header::IF_MODIFIED_SINCE] {
                headers.insert(name, value.clone());
            }
            for len in [0, 1, 17] {
                if let Part::Bytes { start, end } = part(&headers, "\"abc\"", None, len) {
                    assert!(start <= end && end < len, "{text}: {start}-{end} of {len}");
                }
            }
            let _ = precondition(&headers, "\"abc\"", Some(SystemTime::now()));
        }
    }
}
