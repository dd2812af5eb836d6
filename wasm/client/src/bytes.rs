//! Bytes as people type and read them: hex input (the core's grammar, [`parse_hex`]), hex
//! dumps, Python bytes literals, JSON text and human sizes.

use std::fmt;

pub use crate::inet::hex::parse_hex;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two lowercase hex digits per byte, nothing between: `48656c`.
pub fn hex_compact(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// A classic hex dump, `per_row` bytes a row:
/// `0000  48 65 6c 6c 6f 0a                                |Hello.|`
/// The offset has 4 digits, or 8 for data longer than 64 KiB; rows of 16 have an extra space in
/// the middle, as `hexdump -C` writes them.
pub fn hex_dump(bytes: &[u8], per_row: usize) -> String {
    let per_row = per_row.max(1);
    let offset_width = if bytes.len() > 0x1_0000 { 8 } else { 4 };
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(per_row).enumerate() {
        if row > 0 {
            out.push('\n');
        }
        let offset = row * per_row;
        for shift in (0..offset_width).rev() {
            out.push(char::from(HEX[(offset >> (shift * 4)) & 15]));
        }
        out.push(' ');
        for column in 0..per_row {
            if per_row >= 16 && column == per_row / 2 {
                out.push(' ');
            }
            match chunk.get(column) {
                Some(&b) => {
                    out.push(' ');
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 15)]));
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for &b in chunk {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            });
        }
        out.push('|');
    }
    out
}

/// Packed bytes as the converter takes them: a Python bytes literal (`b'\x7f\x00\x00\x01'`)
/// or hex (see [`parse_hex`]).
pub fn parse_packed(input: &str) -> Result<Vec<u8>, String> {
    let trimmed = input.trim();
    let mut chars = trimmed.chars();
    match (chars.next(), chars.next()) {
        (Some('b' | 'B'), Some(quote @ ('\'' | '"'))) => parse_bytes_literal(&trimmed[2..], quote),
        _ => parse_hex(trimmed).map_err(|error| error.to_string()),
    }
}

/// The inside of a Python bytes literal up to and including its closing quote.
fn parse_bytes_literal(body: &str, quote: char) -> Result<Vec<u8>, String> {
    let Some(inner) = body.strip_suffix(quote) else {
        return Err(format!("the bytes literal has no closing {quote}"));
    };
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(format!("an unescaped {quote} ends the literal early"));
        }
        if !c.is_ascii() {
            return Err("bytes can only contain ASCII literal characters".to_owned());
        }
        if c != '\\' {
            out.push(c as u8);
            continue;
        }
        let Some(escape) = chars.next() else {
            return Err("the literal ends with a lone backslash".to_owned());
        };
        match escape {
            '\\' | '\'' | '"' => out.push(escape as u8),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            'x' => {
                let digits: String = (0..2).filter_map(|_| chars.next()).collect();
                match u8::from_str_radix(&digits, 16) {
                    Ok(value)
                        if digits.len() == 2 && digits.chars().all(|d| d.is_ascii_hexdigit()) =>
                    {
                        out.push(value)
                    }
                    _ => {
                        return Err(format!(
                            "invalid \\x escape \\x{digits}: it needs two hex digits"
                        ))
                    }
                }
            }
            '0'..='7' => {
                let mut value = u32::from(escape as u8 - b'0');
                for _ in 0..2 {
                    match chars.peek() {
                        Some(&d @ '0'..='7') => {
                            value = value * 8 + u32::from(d as u8 - b'0');
                            chars.next();
                        }
                        _ => break,
                    }
                }
                let Ok(byte) = u8::try_from(value) else {
                    return Err(format!("octal escape \\{value:o} is larger than a byte"));
                };
                out.push(byte);
            }
            // Python keeps an unknown escape as written (with a warning).
            other => {
                out.push(b'\\');
                if !other.is_ascii() {
                    return Err("bytes can only contain ASCII literal characters".to_owned());
                }
                out.push(other as u8);
            }
        }
    }
    Ok(out)
}

/// Appends `text` as a JSON string, quotes included.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `value` with `decimals` digits after the point, written with integer arithmetic: the
/// client never links `core::fmt`'s float formatting (about 10 KB of wasm) for it.
/// Halves round away from zero; NaN is written `NaN`.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub f64, pub usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.1.min(9);
        let value = self.0;
        if value.is_nan() {
            return f.write_str("NaN");
        }
        let scale = 10u64.pow(decimals as u32);
        // Saturates for the huge and the infinite, far beyond what the client shows.
        let scaled = (value.abs() * scale as f64).round() as u64;
        if value < 0.0 && scaled != 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", scaled / scale)?;
        if decimals > 0 {
            write!(f, ".{:0width$}", scaled % scale, width = decimals)?;
        }
        Ok(())
    }
}

/// A byte count as people read it: `12 B`, `1.5 KiB`, `3.0 MiB`.
pub fn format_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{} KiB", Fixed(b / KIB, 1))
    } else if b < KIB * KIB * KIB {
        format!("{} MiB", Fixed(b / (KIB * KIB), 1))
    } else {
        format!("{} GiB", Fixed(b / (KIB * KIB * KIB), 2))
    }
}

/// Milliseconds with about three significant digits: `0.412 ms`, `4.12 ms`, `41.2 ms`, `412 ms`.
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".to_owned()
    } else if ms < 1.0 {
        format!("{} ms", Fixed(ms, 3))
    } else if ms < 10.0 {
        format!("{} ms", Fixed(ms, 2))
    } else if ms < 100.0 {
        format!("{} ms", Fixed(ms, 1))
    } else {
        format!("{} ms", Fixed(ms, 0))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn compact_hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex_compact(b"\x00\x7f\xabZ"), "007fab5a");
        assert_eq!(hex_compact(b""), "");
    }

    #[test]
    fn dump_rows_like_hexdump_c() {
        let dump = hex_dump(b"Hello, world\n0123456789", 16);
        assert_eq!(
            dump,
            "0000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 30 31 32  |Hello, world.012|\n\
             0010  33 34 35 36 37 38 39                              |3456789|"
        );
        assert_eq!(
            hex_dump(b"\x00\xff", 8),
            "0000  00 ff                    |..|"
        );
        assert_eq!(hex_dump(b"", 16), "");
        assert!(hex_dump(&vec![0; 0x1_0001], 16).starts_with("00000000  00"));
    }

    #[test]
    fn packed_bytes_as_python_literals_or_hex() {
        assert_eq!(
            parse_packed("b'\\x7f\\x00\\x00\\x01'"),
            Ok(vec![127, 0, 0, 1])
        );
        assert_eq!(parse_packed(" 7f000001 "), Ok(vec![127, 0, 0, 1]));
        assert_eq!(
            parse_packed("b\"a\\n\\'\\\\\\0\\101\""),
            Ok(b"a\n'\\\0A".to_vec())
        );
        assert_eq!(parse_packed("b'\\q'"), Ok(b"\\q".to_vec()));
        assert!(parse_packed("b'\\x7'").unwrap_err().contains("\\x escape"));
        assert!(parse_packed("b'abc").unwrap_err().contains("closing"));
        assert!(parse_packed("b'é'").unwrap_err().contains("ASCII"));
        assert!(parse_packed("b'\\777'")
            .unwrap_err()
            .contains("larger than a byte"));
        assert!(parse_packed("xyz").is_err());
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\n\u{1}é\u{2028}");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001é\\u2028\"");
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\n\u{1}é\u{2028}");
    }

    #[test]
    fn fixed_point_numbers() {
        let cases = [
            (1.0, 1, "1.0"),
            (0.04, 1, "0.0"),
            (0.05, 1, "0.1"),
            (-0.04, 1, "0.0"),
            (-2.5, 0, "-3"),
            (123.456, 2, "123.46"),
            (0.000_5, 3, "0.001"),
            (1e30, 0, "18446744073709551615"),
            (f64::NAN, 2, "NaN"),
        ];
        for (value, decimals, want) in cases {
            assert_eq!(
                Fixed(value, decimals).to_string(),
                want,
                "{value} to {decimals}"
            );
        }
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 << 20), "3.0 MiB");
        assert_eq!(format_ms(0.4123), "0.412 ms");
        assert_eq!(format_ms(4.123), "4.12 ms");
        assert_eq!(format_ms(41.23), "41.2 ms");
        assert_eq!(format_ms(412.3), "412 ms");
        assert_eq!(format_ms(f64::NAN), "–");
    }
}
