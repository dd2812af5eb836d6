//! Received bytes as text: UTF-8 decoding across frame boundaries, and control characters made
//! visible.

use std::borrow::Cow;

/// Decodes a byte stream as UTF-8, holding back a character split across chunks; invalid
/// bytes become U+FFFD, as a browser's `TextDecoder` would show them.
///
/// The relay forwards TCP reads as they come, so a character may arrive in two frames.
#[derive(Default)]
pub struct Utf8Stream {
    /// The start of a character whose remaining bytes have not arrived yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn decode(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        let complete = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            // `error_len() == None`: the input ends inside a character that may yet complete.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => match bytes.iter().rposition(|&byte| byte & 0xc0 != 0x80) {
                // Invalid bytes are somewhere before; only a valid unfinished tail is held.
                Some(start)
                    if std::str::from_utf8(&bytes[start..])
                        .err()
                        .is_some_and(|error| error.error_len().is_none()) =>
                {
                    start
                }
                _ => bytes.len(),
            },
        };
        self.pending = bytes.split_off(complete);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// `text` with control characters other than newline and tab shown as Unicode control
/// pictures (`␀`, `␍`, `␛`, `␡`), so that a stray `\r` or NUL is seen rather than hidden.
pub fn control_pictures(text: &str) -> Cow<'_, str> {
    let hidden = |c: char| (c.is_ascii_control() && c != '\n' && c != '\t') || c == '\u{7f}';
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\u{7f}' => '\u{2421}',
                c if hidden(c) => char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}'),
                c => c,
            })
            .collect(),
    )
}

/// At most `max` bytes of `text`, cut at a character boundary, and whether anything was cut.
pub fn truncate(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_character_split_across_frames_arrives_whole() {
        let bytes = "grüße 🌍".as_bytes();
        for split in 0..=bytes.len() {
            let mut stream = Utf8Stream::default();
            let mut text = stream.decode(&bytes[..split]);
            text.push_str(&stream.decode(&bytes[split..]));
            assert_eq!(text, "grüße 🌍", "split at {split}");
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.decode(b"a\xffb\xf0\x9f"), "a\u{fffd}b");
        assert_eq!(stream.decode(b"\x8c\x8d"), "🌍");
    }

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(control_pictures("a\r\n\tb"), "a\u{240d}\n\tb");
        assert_eq!(
            control_pictures("\0\u{1b}\u{7f}"),
            "\u{2400}\u{241b}\u{2421}"
        );
        assert!(matches!(control_pictures("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("héllo", 2), ("h", true));
        assert_eq!(truncate("héllo", 3), ("hé", true));
        assert_eq!(truncate("hi", 5), ("hi", false));
    }
}
