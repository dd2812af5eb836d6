//! `getservbyname` / `getservbyport` over the embedded copy of Debian's `/etc/services`.
//!
//! glibc's files backend scans the file top to bottom and answers with the first line that
//! matches; the table keeps file order, so a plain linear scan gives the same answers (a few
//! hundred entries: a scan costs less than building an index at startup).

use super::pyint::c_int;
use super::services_table::{NAMES, PORT_STEPS_HIGH, PORT_STEPS_LOW, PROTOS, PROTO_NAMES};
use super::{embedded_null, has_nul, PyError, PyErrorKind};

/// `s` up to the first `c` (ASCII), and what follows that `c`. Byte scanning rather than
/// `str::split`, whose generic searcher costs the size-budgeted wasm module for nothing here.
fn cut(s: &'static str, c: u8) -> (&'static str, &'static str) {
    match s.bytes().position(|b| b == c) {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..).unwrap_or("")),
        None => (s, ""),
    }
}

/// (names line, port, protocol bits) of every entry, in file order.
fn entries() -> impl Iterator<Item = (&'static str, u16, u8)> {
    let mut rest = NAMES;
    let mut port = 0u16;
    PORT_STEPS_HIGH
        .iter()
        .zip(PORT_STEPS_LOW.iter())
        .zip(PROTOS.iter())
        .map(move |((&high, &low), &protos)| {
            let (line, tail) = cut(rest, b'\n');
            rest = tail;
            port = port.wrapping_add(u16::from_be_bytes([high, low]));
            (line, port, protos)
        })
}

/// Whether `name` is one of the ' '-separated words of `line`.
fn has_name(line: &str, name: &str) -> bool {
    line.as_bytes()
        .split(|&b| b == b' ')
        .any(|word| word == name.as_bytes())
}

/// The protocol bits a query accepts: all of them without a protocol, none for a protocol the
/// file never mentions (then nothing can match, exactly as glibc's string compare).
fn proto_mask(proto: Option<&str>) -> u8 {
    match proto {
        None => u8::MAX,
        Some(p) => PROTO_NAMES
            .iter()
            .position(|&q| q == p)
            .map_or(0, |k| 1u8 << k),
    }
}

/// `socket.getservbyname(name)` (`proto` `None`) or `socket.getservbyname(name, proto)`.
pub fn getservbyname(name: &str, proto: Option<&str>) -> Result<u16, PyError> {
    if has_nul(name.as_bytes()) || proto.is_some_and(|p| has_nul(p.as_bytes())) {
        return Err(embedded_null());
    }
    let mask = proto_mask(proto);
    entries()
        .find(|&(names, _, protos)| protos & mask != 0 && has_name(names, name))
        .map(|(_, port, _)| port)
        .ok_or_else(|| PyError::new(PyErrorKind::OSError, "service/proto not found"))
}

/// `socket.getservbyport(port)` (`proto` `None`) or `socket.getservbyport(port, proto)`.
///
/// `port` is an `i64` so that callers can pass what the user typed and get Python's errors:
/// CPython first converts the port to a C `int` (an `OverflowError` of its own beyond 32 bits),
/// then the protocol string, and only then checks the port range.
pub fn getservbyport(port: i64, proto: Option<&str>) -> Result<&'static str, PyError> {
    let port = c_int(port)?;
    if proto.is_some_and(|p| has_nul(p.as_bytes())) {
        return Err(embedded_null());
    }
    let Ok(port) = u16::try_from(port) else {
        return Err(PyError::new(
            PyErrorKind::OverflowError,
            "getservbyport: port must be 0-65535.",
        ));
    };
    let mask = proto_mask(proto);
    entries()
        .find(|&(_, p, protos)| p == port && protos & mask != 0)
        .map(|(names, _, _)| cut(names, b' ').0)
        .ok_or_else(|| PyError::new(PyErrorKind::OSError, "port/proto not found"))
}
