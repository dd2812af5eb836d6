//! glibc's `inet_ntop` text forms, plus the small number formatting the facts need.
//!
//! Written by hand instead of with `format!`: each function allocates only its result, and the
//! module stays free of `core::fmt` and of 128-bit division, which would cost the size-budgeted
//! wasm module several kilobytes. The `inet_ntop` forms are written into a fixed array
//! ([`write_ntop4`], [`write_ntop6`]) and allocate nothing at all: the converter module's IPv6
//! fast path calls `write_ntop6` per address (IPv4's is joined in JS), and `String::push` is a
//! call per character in a wasm module optimised for size.

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(nibble: u32) -> u8 {
    HEX.get((nibble & 0xf) as usize).copied().unwrap_or(b'0')
}

fn push_hex_digit(out: &mut String, nibble: u32) {
    out.push(char::from(hex_digit(nibble)));
}

/// The longest text `inet_ntop` writes: `INET6_ADDRSTRLEN` less the NUL.
pub const TEXT_MAX: usize = 45;

/// Text being written into a caller's fixed array.
struct Cursor<'a> {
    out: &'a mut [u8; TEXT_MAX],
    len: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn push(&mut self, c: u8) {
        // Never short: the texts written into it are at most TEXT_MAX bytes.
        if let Some(slot) = self.out.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }

    /// `%u` of one byte.
    fn dec_u8(&mut self, v: u8) {
        if v >= 100 {
            self.push(b'0' + v / 100);
        }
        if v >= 10 {
            self.push(b'0' + v / 10 % 10);
        }
        self.push(b'0' + v % 10);
    }

    fn dotted(&mut self, [a, b, c, d]: [u8; 4]) {
        self.dec_u8(a);
        for v in [b, c, d] {
            self.push(b'.');
            self.dec_u8(v);
        }
    }

    /// `%x` of one 16-bit group: lowercase, no leading zeros.
    fn hex_u16(&mut self, v: u16) {
        let v = u32::from(v);
        let mut shift = 12;
        while shift > 0 && v >> shift == 0 {
            shift -= 4;
        }
        loop {
            self.push(hex_digit(v >> shift));
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
    }
}

/// The text a writer below wrote (ASCII).
fn ascii_string(text: &[u8]) -> String {
    text.iter().map(|&c| char::from(c)).collect()
}

/// Dotted decimal of 4 bytes into `out`; returns the length.
pub(super) fn write_ntop4(a: [u8; 4], out: &mut [u8; TEXT_MAX]) -> usize {
    let mut text = Cursor { out, len: 0 };
    text.dotted(a);
    text.len
}

pub(super) fn ntop4(a: [u8; 4]) -> String {
    let mut out = [0; TEXT_MAX];
    let len = write_ntop4(a, &mut out);
    ascii_string(out.get(..len).unwrap_or_default())
}

/// glibc `inet_ntop6` into `out`; returns the length.
pub(super) fn write_ntop6(b: [u8; 16], out: &mut [u8; TEXT_MAX]) -> usize {
    let mut words = [0u16; 8];
    for (w, pair) in words.iter_mut().zip(b.chunks_exact(2)) {
        if let [hi, lo] = *pair {
            *w = u16::from_be_bytes([hi, lo]);
        }
    }
    // Longest run of zero groups; a later run must be strictly longer to win, so the first of
    // equal runs is compressed. Runs of one group are written out ("1:0:1::").
    let (mut best_base, mut best_len) = (0usize, 0usize);
    let (mut cur_base, mut cur_len) = (0usize, 0usize);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_len == 0 {
                cur_base = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let in_run = |i: usize| best_len > 0 && i >= best_base && i < best_base + best_len;

    let mut text = Cursor { out, len: 0 };
    for (i, &w) in words.iter().enumerate() {
        if in_run(i) {
            if i == best_base {
                text.push(b':');
            }
            continue;
        }
        if i != 0 {
            text.push(b':');
        }
        // IPv4-compatible (::a.b.c.d, but not ::1 or ::) and IPv4-mapped (::ffff:a.b.c.d)
        // addresses end in dotted decimal; glibc decides from the zero run alone.
        let words5 = words.get(5).copied().unwrap_or(0);
        if i == 6
            && best_len > 0
            && best_base == 0
            && (best_len == 6 || (best_len == 5 && words5 == 0xffff))
        {
            let [.., p, q, r, t] = b;
            text.dotted([p, q, r, t]);
            return text.len;
        }
        text.hex_u16(w);
    }
    if best_len > 0 && best_base + best_len == 8 {
        text.push(b':');
    }
    text.len
}

pub(super) fn ntop6(b: [u8; 16]) -> String {
    let mut out = [0; TEXT_MAX];
    let len = write_ntop6(b, &mut out);
    ascii_string(out.get(..len).unwrap_or_default())
}

/// `"0x"` then two lowercase hex digits per byte (zero padded, like `bytes.hex()`).
pub(super) fn hex_string(b: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * b.len());
    out.push_str("0x");
    for &x in b {
        push_hex_digit(&mut out, u32::from(x >> 4));
        push_hex_digit(&mut out, u32::from(x));
    }
    out
}

/// IPv4: eight bits per octet, octets joined by '.'. IPv6: sixteen bits per group, groups joined
/// by ':', so the separators sit where the text forms put them.
pub(super) fn binary_string(b: &[u8]) -> String {
    let (chunk, sep) = if b.len() == 4 { (1, '.') } else { (2, ':') };
    let mut out = String::with_capacity(b.len() * 9);
    for (i, group) in b.chunks(chunk).enumerate() {
        if i > 0 {
            out.push(sep);
        }
        for &x in group {
            for bit in (0..8).rev() {
                out.push(if x >> bit & 1 == 1 { '1' } else { '0' });
            }
        }
    }
    out
}

/// `repr(bytes)`, as CPython's `bytes_repr` writes it.
// `has` is a loop, not `contains`, which links a word-wise memchr into the wasm module.
#[allow(clippy::manual_contains)]
pub(super) fn python_bytes_repr(b: &[u8]) -> String {
    // Double quotes only when that avoids escaping: a ' and no ".
    let has = |q: u8| b.iter().any(|&c| c == q);
    let quote = if has(b'\'') && !has(b'"') { '"' } else { '\'' };
    let mut out = String::with_capacity(3 + 4 * b.len());
    out.push('b');
    out.push(quote);
    for &x in b {
        match x {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(x) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(x)),
            _ => {
                out.push_str("\\x");
                push_hex_digit(&mut out, u32::from(x >> 4));
                push_hex_digit(&mut out, u32::from(x));
            }
        }
    }
    out.push(quote);
    out
}

/// `repr(str)` for error messages, as CPython's `unicode_repr` writes it. Exact for ASCII and
/// Latin-1; beyond that every character counts as printable (CPython consults the Unicode
/// tables, which are far too big to embed for an error message).
// `has` is a loop, not `contains`, which links a word-wise memchr into the wasm module.
#[allow(clippy::manual_contains)]
pub(super) fn python_str_repr(s: &str) -> String {
    // Byte by byte, copying the runs between escapes as slices: decoding and pushing `char`s
    // took twice the code in the wasm module. Every escape is of an ASCII byte or of a
    // two-byte character 0xc2 0x80..=0xa0 / 0xc2 0xad, so the runs end on character boundaries.
    let bytes = s.as_bytes();
    let has = |q: u8| bytes.iter().any(|&c| c == q);
    let quote = if has(b'\'') && !has(b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(char::from(quote));
    let (mut start, mut i) = (0, 0);
    while let Some(&c) = bytes.get(i) {
        // U+0080..=U+00A0 and U+00AD (CPython's non-printable Latin-1), as their low byte.
        let latin1 = match (c, bytes.get(i + 1)) {
            (0xc2, Some(&low)) if low <= 0xa0 || low == 0xad => Some(low),
            _ => None,
        };
        if latin1.is_none() && !(c < 0x20 || c == 0x7f || c == b'\\' || c == quote) {
            i += 1;
            continue;
        }
        out.push_str(s.get(start..i).unwrap_or(""));
        out.push('\\');
        match latin1.unwrap_or(c) {
            b'\\' => out.push('\\'),
            b'\t' => out.push('t'),
            b'\n' => out.push('n'),
            b'\r' => out.push('r'),
            v if v == quote => out.push(char::from(quote)),
            v => {
                out.push('x');
                push_hex_digit(&mut out, u32::from(v >> 4));
                push_hex_digit(&mut out, u32::from(v));
            }
        }
        i += if latin1.is_some() { 2 } else { 1 };
        start = i;
    }
    out.push_str(s.get(start..).unwrap_or(""));
    out.push(char::from(quote));
    out
}

/// Decimal text of a u128 by long division on 32-bit limbs with 64-bit arithmetic: the same
/// digits as `to_string`, without the 128-bit division routine in the wasm module.
pub(super) fn decimal_u128(v: u128) -> String {
    let [a, b, c, d] = [
        (v >> 96) as u32,
        (v >> 64) as u32,
        (v >> 32) as u32,
        v as u32,
    ];
    let mut limbs = [a, b, c, d];
    // Chunks of nine decimal digits, least significant first; 2^128 has 39 digits.
    let mut chunks = [0u32; 5];
    let mut n = 0usize;
    loop {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut() {
            let cur = rem << 32 | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        if let Some(slot) = chunks.get_mut(n) {
            *slot = rem as u32;
        }
        n += 1;
        if limbs.iter().all(|&l| l == 0) || n == chunks.len() {
            break;
        }
    }
    let mut out = String::with_capacity(n * 9);
    for (i, &chunk) in chunks.iter().take(n).rev().enumerate() {
        let mut digits = [b'0'; 9];
        let mut x = chunk;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (x % 10) as u8;
            x /= 10;
        }
        let skip = if i == 0 {
            // The leading chunk has no zero padding; a zero value still prints "0".
            digits.iter().take(8).take_while(|&&c| c == b'0').count()
        } else {
            0
        };
        for &c in digits.iter().skip(skip) {
            out.push(char::from(c));
        }
    }
    out
}
