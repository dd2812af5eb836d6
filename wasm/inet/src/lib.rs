//! `sockrelay-inet`: CPython 3.11's `socket` address helpers on Linux/glibc, reproduced in
//! plain std Rust, and the input grammars every front end shares.
//!
//! This crate owns the address semantics and nothing else: no I/O, no dependencies, no
//! wasm-bindgen. Its users are thin front ends over it: the converter module `web/pkg/inet.js`
//! (`wasm/converter`), the browser client (`wasm/client`), the native `sockrelay inet|serv`
//! commands and target parser (`native/`) and the fuzz targets (`fuzz/`). What those would
//! otherwise each write again lives here as well: [`hex`] (bytes typed as hex) and [`pyint`]
//! (CPython's conversion of an integer argument to a C `long` or `int`).
//!
//! Every function answers what `python3 -c 'import socket; ...'` answers on a Debian machine,
//! byte for byte: the same result, or a [`PyError`] with the same exception class and the same
//! `str(exc)`. That is the contract the converter module (`web/pkg/inet.js`), the native CLI and
//! the tests share; `tools/gen_inet_cases.py` records Python's answers to a few thousand inputs
//! in `wasm/inet/tests/data/inet_cases.json` and `wasm/inet/tests/python_oracle.rs` replays them.
//!
//! | function | glibc / CPython behaviour reproduced |
//! |---|---|
//! | [`inet_aton`] | permissive `inet_aton(3)`: 1 to 4 parts, octal `0..` and hex `0x..` parts, the last part fills the remaining bytes, anything after a whitespace is ignored |
//! | [`inet_ntoa`] | 4 bytes to dotted decimal |
//! | [`inet_pton`] | strict `inet_pton(3)`: dotted quad without leading zeros, RFC 4291 text for IPv6 |
//! | [`inet_ntop`] | glibc's canonical text: longest run (first on ties) of two or more zero groups compressed, `::a.b.c.d` and `::ffff:a.b.c.d` tails |
//! | [`getservbyname`], [`getservbyport`] | Debian netbase's `/etc/services`, embedded, first match in file order |
//!
//! Beyond Python: [`address_facts`] (integer, hex, binary, Python bytes literal, kind) and
//! [`subnet`] (an `ipaddress.ip_network(..., strict=False)` style calculator).
//!
//! Parsers work on the input bytes in place: the only allocation is the returned value.
//!
//! # Example
//! ```
//! use sockrelay_inet::{self as inet, AF_INET6, PyErrorKind};
//!
//! // glibc's inet_aton reads "127.1" as 127.0.0.1, and so does Python.
//! assert_eq!(inet::inet_aton("127.1"), Ok([127, 0, 0, 1]));
//! let packed = inet::inet_pton(AF_INET6, "0:0:0:0:0:ffff:c0a8:1be").unwrap();
//! assert_eq!(inet::inet_ntop(AF_INET6, &packed).unwrap(), "::ffff:192.168.1.190");
//!
//! let err = inet::inet_pton(AF_INET6, "1::2::3").unwrap_err();
//! assert_eq!(err.kind, PyErrorKind::OSError);
//! assert_eq!(err.to_string(), "OSError: illegal IP address string passed to inet_pton");
//!
//! assert_eq!(inet::getservbyname("www", None), Ok(80));
//! assert_eq!(inet::getservbyport(3306, Some("tcp")), Ok("mysql"));
//!
//! let net = inet::subnet("192.168.1.77/24").unwrap();
//! assert_eq!((net.network.as_str(), net.first_host.as_str()), ("192.168.1.0", "192.168.1.1"));
//! assert_eq!(net.broadcast.as_deref(), Some("192.168.1.255"));
//! ```

mod facts;
mod format;
pub mod hex;
mod parse;
pub mod pyint;
mod services;
mod services_table;
mod subnet;

pub use facts::{address_facts, AddressFacts, AddressKind};
pub use services::{getservbyname, getservbyport};
pub use subnet::{subnet, Subnet};

/// `socket.AF_INET` on Linux.
pub const AF_INET: i32 = 2;
/// `socket.AF_INET6` on Linux.
pub const AF_INET6: i32 = 10;

/// Python exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyErrorKind {
    OSError,
    ValueError,
    TypeError,
    OverflowError,
}

impl PyErrorKind {
    /// The class name as Python prints it (`type(exc).__name__`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OSError => "OSError",
            Self::ValueError => "ValueError",
            Self::TypeError => "TypeError",
            Self::OverflowError => "OverflowError",
        }
    }
}

/// An error exactly as Python would raise it: class + message (`str(exc)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyError {
    pub kind: PyErrorKind,
    pub message: String,
}

impl PyError {
    pub fn new(kind: PyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for PyError {}

/// CPython converts `str` arguments with the `s` format, which refuses NUL before the C function
/// ever runs; callers check this only once parsing failed (or left text unread), so the hot path
/// does not scan the input twice.
pub fn embedded_null() -> PyError {
    PyError::new(PyErrorKind::ValueError, "embedded null character")
}

// A loop, not `contains`: that links a word-wise memchr (300 bytes) into the wasm module.
#[allow(clippy::manual_contains)]
fn has_nul(s: &[u8]) -> bool {
    s.iter().any(|&b| b == 0)
}

/// `socket.inet_aton(s)`: glibc's permissive IPv4 parser.
pub fn inet_aton(s: &str) -> Result<[u8; 4], PyError> {
    let bytes = s.as_bytes();
    match parse::aton(bytes) {
        // glibc stops reading at the first whitespace after the address, but CPython has
        // already rejected a NUL anywhere in the string.
        Some((addr, end)) => match bytes.get(end..) {
            Some(rest) if has_nul(rest) => Err(embedded_null()),
            _ => Ok(addr.to_be_bytes()),
        },
        None if has_nul(bytes) => Err(embedded_null()),
        None => Err(PyError::new(
            PyErrorKind::OSError,
            "illegal IP address string passed to inet_aton",
        )),
    }
}

/// `socket.inet_ntoa(b)`.
pub fn inet_ntoa(b: &[u8]) -> Result<String, PyError> {
    match <[u8; 4]>::try_from(b) {
        Ok(a) => Ok(format::ntop4(a)),
        Err(_) => Err(PyError::new(
            PyErrorKind::OSError,
            "packed IP wrong length for inet_ntoa",
        )),
    }
}

/// `socket.inet_pton(family, s)`: glibc's strict parser.
pub fn inet_pton(family: i32, s: &str) -> Result<Vec<u8>, PyError> {
    let bytes = s.as_bytes();
    let parsed = match family {
        AF_INET => parse::pton4(bytes).map(|a| a.to_vec()),
        AF_INET6 => parse::pton6(bytes).map(|a| a.to_vec()),
        _ if has_nul(bytes) => return Err(embedded_null()),
        // glibc fails with EAFNOSUPPORT and CPython raises it as an errno OSError.
        _ => {
            return Err(PyError::new(
                PyErrorKind::OSError,
                "[Errno 97] Address family not supported by protocol",
            ))
        }
    };
    match parsed {
        Some(v) => Ok(v),
        None if has_nul(bytes) => Err(embedded_null()),
        None => Err(PyError::new(
            PyErrorKind::OSError,
            "illegal IP address string passed to inet_pton",
        )),
    }
}

/// `socket.inet_ntop(family, b)`.
pub fn inet_ntop(family: i32, b: &[u8]) -> Result<String, PyError> {
    let text = match family {
        AF_INET => <[u8; 4]>::try_from(b).ok().map(format::ntop4),
        AF_INET6 => <[u8; 16]>::try_from(b).ok().map(format::ntop6),
        _ => {
            let mut message = String::from("unknown address family ");
            if family < 0 {
                message.push('-');
            }
            message.push_str(&format::decimal_u128(u128::from(family.unsigned_abs())));
            return Err(PyError::new(PyErrorKind::ValueError, message));
        }
    };
    text.ok_or_else(|| {
        PyError::new(
            PyErrorKind::ValueError,
            "invalid length of packed IP address string",
        )
    })
}

/// Strict (`inet_pton`) IPv4 parse without Python's error reporting, for callers that only need
/// the bytes. The text may be a `&str` or bytes (`&[u8]`: no UTF-8 check needed first).
pub fn parse_ipv4(s: impl AsRef<[u8]>) -> Option<[u8; 4]> {
    parse::pton4(s.as_ref())
}

/// Strict (`inet_pton`) IPv6 parse without Python's error reporting.
pub fn parse_ipv6(s: impl AsRef<[u8]>) -> Option<[u8; 16]> {
    parse::pton6(s.as_ref())
}

/// glibc `inet_ntop(AF_INET6, ...)` text of 16 bytes, infallibly.
pub fn format_ipv6(b: [u8; 16]) -> String {
    format::ntop6(b)
}

/// The longest text [`inet_ntop`] writes (`INET6_ADDRSTRLEN` less the NUL).
pub use format::TEXT_MAX;

/// [`inet_ntop`]'s text of 4 bytes (`AF_INET`), written to the start of `out` without
/// allocating, for callers that convert many addresses (the converter module's fast path);
/// returns its length.
///
/// ```
/// use sockrelay_inet::{self as inet, TEXT_MAX};
///
/// let mut out = [0; TEXT_MAX];
/// let len = inet::write_ipv4([192, 168, 1, 190], &mut out);
/// assert_eq!(&out[..len], b"192.168.1.190");
/// let len = inet::write_ipv6(inet::parse_ipv6(b"0::ffff:7f00:1").unwrap(), &mut out);
/// assert_eq!(&out[..len], b"::ffff:127.0.0.1");
/// ```
pub fn write_ipv4(a: [u8; 4], out: &mut [u8; TEXT_MAX]) -> usize {
    format::write_ntop4(a, out)
}

/// [`inet_ntop`]'s text of 16 bytes (`AF_INET6`), written as [`write_ipv4`] writes.
pub fn write_ipv6(b: [u8; 16], out: &mut [u8; TEXT_MAX]) -> usize {
    format::write_ntop6(b, out)
}

/// Python's `repr()` of a `bytes` object, e.g. `b'\x7f\x00\x00\x01'`.
pub fn python_bytes_repr(b: &[u8]) -> String {
    format::python_bytes_repr(b)
}

/// Python's `repr()` of a `str`, e.g. `'2001:db8::1'`.
pub fn python_str_repr(s: &str) -> String {
    format::python_str_repr(s)
}
