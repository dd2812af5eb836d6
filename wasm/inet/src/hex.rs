//! Bytes typed as hex, in the one grammar every front end reads: the client's message composer
//! and converter panel (`wasm/client`) and the packed bytes of `sockrelay inet ntoa|ntop`.
//!
//! People write hex as `48656c6c6f`, `48 65 6c`, `48:65:6c`, `0x48, 0x65` or `\x48\x65`, so all
//! of those are read. Each run of digits between separators must have an even length: a byte is
//! two digits, and guessing where a missing one goes would give bytes nobody typed. Text with no
//! digits at all is [`HexError::Empty`]; a caller that gives such input a meaning of its own
//! (the CLI hands Python's functions zero bytes, for Python's own error) matches on it.

use std::fmt;

/// Why typed hex does not spell a sequence of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// Nothing but separators (or nothing at all).
    Empty,
    /// A character that is neither a hex digit, a separator nor a `0x`/`\x` prefix.
    /// `position` counts characters from 1, as a person counts them.
    BadDigit { found: char, position: usize },
    /// A run of digits of odd length: a byte is two digits, and guessing where the missing one
    /// goes would send bytes the user did not mean.
    OddDigits { group: String, position: usize },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no bytes: type pairs of hex digits, e.g. 48 65 6c 6c 6f"),
            Self::BadDigit { found, position } => {
                match found {
                    '\'' => f.write_str("\"'\"")?,
                    c if c.is_ascii_graphic() => write!(f, "'{c}'")?,
                    // Invisible, look-alike and control characters alike, plain to see and
                    // harmless in a terminal. Not `{:?}`: char's Debug links Unicode's
                    // printable tables, 2.8 KB of the client's gzipped size.
                    c => write!(f, "U+{:04X}", u32::from(*c))?,
                }
                write!(f, " at position {position} is not a hex digit (0-9, a-f)")
            }
            Self::OddDigits { group, position } => write!(
                f,
                "\"{group}\" at position {position} has an odd number of hex digits: \
                 each byte is two digits"
            ),
        }
    }
}

impl std::error::Error for HexError {}

/// Separators allowed between bytes or groups of bytes.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ':' | '-' | ';')
}

/// Parses hex bytes as people write them: `48656c6c6f`, `48 65 6c`, `48:65:6c`, `0x48, 0x65`,
/// `\x48\x65`. Each group of digits must have an even length.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, HexError> {
    let chars: Vec<char> = input.chars().collect();
    let mut bytes = Vec::with_capacity(chars.len() / 2);
    let mut group = String::new();
    let mut group_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prefix = (c == '\\' && matches!(next, Some('x' | 'X')))
            || (group.is_empty() && c == '0' && matches!(next, Some('x' | 'X')));
        if is_separator(c) || prefix {
            end_group(&mut group, group_start, &mut bytes)?;
            i += if prefix { 2 } else { 1 };
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return Err(HexError::BadDigit {
                found: c,
                position: i + 1,
            });
        }
        if group.is_empty() {
            group_start = i + 1;
        }
        group.push(c);
        i += 1;
    }
    end_group(&mut group, group_start, &mut bytes)?;
    if bytes.is_empty() {
        return Err(HexError::Empty);
    }
    Ok(bytes)
}

fn end_group(group: &mut String, position: usize, bytes: &mut Vec<u8>) -> Result<(), HexError> {
    if group.len() % 2 == 1 {
        return Err(HexError::OddDigits {
            group: std::mem::take(group),
            position,
        });
    }
    let digits = group.as_bytes();
    for pair in digits.chunks_exact(2) {
        bytes.push(hex_value(pair[0]) << 4 | hex_value(pair[1]));
    }
    group.clear();
    Ok(())
}

/// The value of an ASCII hex digit (callers pass only digits).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hex_in_the_usual_spellings() {
        let hello = b"Hello".to_vec();
        for input in [
            "48656c6c6f",
            "48 65 6c 6c 6f",
            "48:65:6C:6c:6F",
            "0x48, 0x65, 0x6c, 0x6c, 0x6f",
            "\\x48\\x65\\x6c\\x6c\\x6f",
            "  4865 6c6c6f\n",
            "48-65-6c-6c-6f",
        ] {
            assert_eq!(parse_hex(input), Ok(hello.clone()), "{input:?}");
        }
    }

    #[test]
    fn bad_hex_says_what_and_where() {
        assert_eq!(
            parse_hex("48 6g"),
            Err(HexError::BadDigit {
                found: 'g',
                position: 5
            })
        );
        assert_eq!(
            parse_hex("48 656"),
            Err(HexError::OddDigits {
                group: "656".into(),
                position: 4
            })
        );
        assert_eq!(parse_hex("  ,"), Err(HexError::Empty));
        assert_eq!(parse_hex(""), Err(HexError::Empty));
        // "0x" is a prefix only at the start of a group.
        assert!(matches!(
            parse_hex("410x42"),
            Err(HexError::BadDigit { found: 'x', .. })
        ));
        assert_eq!(
            parse_hex("zz").unwrap_err().to_string(),
            "'z' at position 1 is not a hex digit (0-9, a-f)"
        );
        // What is not printable ASCII is named by its code point.
        for (input, named) in [
            ("41\u{200b}42", "U+200B at position 3"),
            ("\u{e9}", "U+00E9 at position 1"),
            ("41\u{1b}[2J", "U+001B at position 3"),
            ("\u{1f600}", "U+1F600 at position 1"),
            ("'41'", "\"'\" at position 1"),
        ] {
            assert_eq!(
                parse_hex(input).unwrap_err().to_string(),
                format!("{named} is not a hex digit (0-9, a-f)")
            );
        }
        assert!(parse_hex("abc")
            .unwrap_err()
            .to_string()
            .contains("odd number of hex digits"));
    }
}
