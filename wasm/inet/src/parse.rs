//! Byte-level ports of glibc's address parsers (`inet_aton`, `inet_pton4`, `inet_pton6`).
//!
//! They follow glibc's control flow closely, including its odd corners, because matching Python
//! byte for byte means matching glibc: a "cleaner" grammar would disagree on inputs such as
//! `"1 .2"` (accepted by `inet_aton`) or `"1:2:3:4:5:6:7::"` (accepted by `inet_pton`).

/// C `isspace` in the "C" locale: unlike `u8::is_ascii_whitespace` it includes `\v`.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a') + 10),
        b'A'..=b'F' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// `strtoul(s + i, &end, 0)` for a part that starts with a digit, as `inet_aton` calls it.
/// Returns the value and the end index, or `None` if the value exceeds 32 bits: `inet_aton`
/// rejects that whatever follows, so the rest of the digits need not be read.
fn strtoul0(s: &[u8], start: usize) -> Option<(u32, usize)> {
    let mut i = start;
    let radix: u64 = match (s.get(i), s.get(i + 1), s.get(i + 2)) {
        // "0x" only switches to hex when a hex digit follows; otherwise strtoul reads just the
        // "0" and stops at the 'x', which then fails as trailing junk.
        (Some(b'0'), Some(b'x' | b'X'), Some(&c)) if hex_value(c).is_some() => {
            i += 2;
            16
        }
        (Some(b'0'), _, _) => 8,
        _ => 10,
    };
    let mut acc: u64 = 0;
    while let Some(&c) = s.get(i) {
        let d = match hex_value(c) {
            Some(d) if u64::from(d) < radix => u64::from(d),
            _ => break,
        };
        // acc <= u32::MAX here, so this cannot overflow u64.
        acc = acc * radix + d;
        if acc > u64::from(u32::MAX) {
            return None;
        }
        i += 1;
    }
    Some((u32::try_from(acc).ok()?, i))
}

/// glibc `inet_aton`: returns the address (host order) and the index where reading stopped
/// (the end, or the whitespace after which glibc ignores everything).
pub(super) fn aton(s: &[u8]) -> Option<(u32, usize)> {
    let mut addr: u32 = 0;
    let mut parts = 0u32;
    let mut i = 0usize;
    let last = loop {
        if !s.get(i)?.is_ascii_digit() {
            return None;
        }
        let (val, end) = strtoul0(s, i)?;
        i = end;
        if s.get(i) != Some(&b'.') {
            break val;
        }
        if parts > 2 || val > 0xff {
            return None;
        }
        addr |= val << (24 - 8 * parts);
        parts += 1;
        i += 1;
    };
    if let Some(&c) = s.get(i) {
        if !is_c_space(c) {
            return None;
        }
    }
    // The last part fills whatever the dotted parts left: 32, 24, 16 or 8 bits.
    let max = u32::MAX >> (8 * parts);
    if last > max {
        return None;
    }
    Some((addr | last, i))
}

/// glibc `inet_pton4`: exactly four decimal octets, no leading zeros, nothing else.
pub(super) fn pton4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut idx = 0usize;
    let mut cur: u16 = 0;
    let mut saw_digit = false;
    for &c in s {
        match c {
            b'0'..=b'9' => {
                if saw_digit && cur == 0 {
                    return None;
                }
                cur = cur * 10 + u16::from(c - b'0');
                if cur > 255 {
                    return None;
                }
                saw_digit = true;
            }
            b'.' if saw_digit => {
                // A fourth dot would start a fifth octet.
                if idx == 3 {
                    return None;
                }
                *out.get_mut(idx)? = u8::try_from(cur).ok()?;
                idx += 1;
                cur = 0;
                saw_digit = false;
            }
            _ => return None,
        }
    }
    if idx != 3 || !saw_digit {
        return None;
    }
    out[3] = u8::try_from(cur).ok()?;
    Some(out)
}

/// glibc `inet_pton6` (the 2.26+ rewrite).
pub(super) fn pton6(s: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut tp = 0usize; // bytes written to out
    let mut colonp: Option<usize> = None; // where "::" stands
    let mut i = 0usize;
    // A leading ':' must be the first half of "::"; the second ':' is left for the loop.
    match s.first() {
        None => return None,
        Some(b':') => {
            if s.get(1) != Some(&b':') {
                return None;
            }
            i = 1;
        }
        Some(_) => {}
    }
    let mut curtok = i;
    let mut xdigits = 0u8;
    let mut val: u32 = 0;
    while let Some(&c) = s.get(i) {
        i += 1;
        if let Some(d) = hex_value(c) {
            if xdigits == 4 {
                return None;
            }
            val = (val << 4) | d;
            xdigits += 1;
            continue;
        }
        if c == b':' {
            curtok = i;
            if xdigits == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            }
            // A single trailing ':' after a group.
            if i == s.len() {
                return None;
            }
            put16(&mut out, &mut tp, val)?;
            xdigits = 0;
            val = 0;
            continue;
        }
        if c == b'.' {
            // The hex digits read so far were really the first octet of a dotted tail.
            let v4 = pton4(s.get(curtok..)?)?;
            out.get_mut(tp..tp + 4)?.copy_from_slice(&v4);
            tp += 4;
            xdigits = 0;
            break;
        }
        return None;
    }
    if xdigits > 0 {
        put16(&mut out, &mut tp, val)?;
    }
    if let Some(cp) = colonp {
        // "::" must stand for at least one zero group.
        if tp == 16 {
            return None;
        }
        // Slide the groups written after "::" to the end, back to front because the ranges
        // overlap, and zero what they leave. (Index arithmetic instead of copy_within: no
        // panicking path, so no panic formatting code in the wasm module.)
        let gap = 16 - tp;
        for k in (cp..tp).rev() {
            let v = out.get(k).copied()?;
            *out.get_mut(k + gap)? = v;
        }
        for slot in out.iter_mut().skip(cp).take(gap) {
            *slot = 0;
        }
        tp = 16;
    }
    (tp == 16).then_some(out)
}

fn put16(out: &mut [u8; 16], tp: &mut usize, val: u32) -> Option<()> {
    let [_, _, hi, lo] = val.to_be_bytes();
    out.get_mut(*tp..*tp + 2)?.copy_from_slice(&[hi, lo]);
    *tp += 2;
    Some(())
}
