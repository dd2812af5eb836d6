//! Address facts: the numbers and the category behind an address, for the converter docs.
//!
//! # Kind
//! Python's `ipaddress` has several overlapping flags (`is_loopback`, `is_private`, ...); an
//! address gets exactly one [`AddressKind`], the first that applies in this order:
//!
//! 1. `unspecified`: `0.0.0.0`, `::` (`is_unspecified`)
//! 2. `loopback`: `127.0.0.0/8`, `::1` (`is_loopback`)
//! 3. `broadcast`: `255.255.255.255` (limited broadcast; `ipaddress` calls it private)
//! 4. `multicast`: `224.0.0.0/4`, `ff00::/8` (`is_multicast`)
//! 5. `link-local`: `169.254.0.0/16`, `fe80::/10` (`is_link_local`)
//! 6. `documentation`: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` (RFC 5737),
//!    `2001:db8::/32` (RFC 3849), `3fff::/20` (RFC 9637); `ipaddress` has no such flag
//! 7. `global`: `is_global`
//! 8. `private`: everything else: `is_private`, plus the shared address space `100.64.0.0/10`,
//!    which `ipaddress` calls neither private nor global
//!
//! The private/global split is the IANA special-purpose registries as CPython implements them
//! since the 2024 fix (3.11.10, 3.12.4, 3.13): e.g. `192.0.0.0/24` but not `192.0.0.9` is
//! private, `2002::/16` is private.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) gets the kind of its IPv4 address, as
//! `ipaddress` does for `is_private`/`is_global` (and, since 3.13, for the other flags too):
//! `::ffff:127.0.0.1` is loopback.

use super::format::{
    binary_string, decimal_u128, hex_string, ntop4, ntop6, python_bytes_repr, python_str_repr,
};
use super::parse::{pton4, pton6};
use super::{PyError, PyErrorKind, AF_INET, AF_INET6};

/// The one category of an address; see the module docs for the precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    Private,
    Unspecified,
    Broadcast,
    Multicast,
    LinkLocal,
    Documentation,
    Global,
}

impl AddressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::Unspecified => "unspecified",
            Self::Broadcast => "broadcast",
            Self::Multicast => "multicast",
            Self::LinkLocal => "link-local",
            Self::Documentation => "documentation",
            Self::Global => "global",
        }
    }
}

/// Facts about one IPv4 or IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: i32,
    /// `inet_pton(family, s)`.
    pub bytes: Vec<u8>,
    /// `inet_ntop(family, bytes)`.
    pub canonical: String,
    /// The address as an unsigned integer in decimal (a string: JavaScript numbers lose IPv6).
    pub integer: String,
    /// `"0x"` and two hex digits per byte: `"0xc0a801be"`.
    pub hex: String,
    /// IPv4: `"11000000.10101000.00000001.10111110"`; IPv6: sixteen bits per group, `':'`
    /// between groups.
    pub binary: String,
    /// `repr(socket.inet_pton(family, s))`, e.g. `b'\x7f\x00\x00\x01'`.
    pub python_bytes: String,
    pub kind: AddressKind,
}

/// `(network, prefix length)` pairs, the address in the top bits of a u32.
type Net4 = (u32, u32);
type Net6 = (u128, u32);

const V4_DOCUMENTATION: [Net4; 3] = [
    (0xc000_0200, 24), // 192.0.2.0/24
    (0xc633_6400, 24), // 198.51.100.0/24
    (0xcb00_7100, 24), // 203.0.113.0/24
];

/// `ipaddress._IPv4Constants._private_networks`.
const V4_PRIVATE: [Net4; 14] = [
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc000_0000, 24), // 192.0.0.0/24
    (0xc000_00aa, 31), // 192.0.0.170/31
    (0xc000_0200, 24), // 192.0.2.0/24
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc612_0000, 15), // 198.18.0.0/15
    (0xc633_6400, 24), // 198.51.100.0/24
    (0xcb00_7100, 24), // 203.0.113.0/24
    (0xf000_0000, 4),  // 240.0.0.0/4
    (0xffff_ffff, 32), // 255.255.255.255/32
];

/// `ipaddress._IPv4Constants._private_networks_exceptions`: globally reachable after all.
const V4_PRIVATE_EXCEPTIONS: [Net4; 2] = [
    (0xc000_0009, 32), // 192.0.0.9/32
    (0xc000_000a, 32), // 192.0.0.10/32
];

const V4_SHARED: Net4 = (0x6440_0000, 10); // 100.64.0.0/10

const V6_DOCUMENTATION: [Net6; 2] = [
    (0x2001_0db8 << 96, 32), // 2001:db8::/32
    (0x3fff << 112, 20),     // 3fff::/20
];

/// `ipaddress._IPv6Constants._private_networks` (IPv4-mapped addresses are handled apart).
const V6_PRIVATE: [Net6; 9] = [
    (1, 128),                     // ::1/128
    (0, 128),                     // ::/128
    (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48
    (0x0100 << 112, 64),          // 100::/64
    (0x2001 << 112, 23),          // 2001::/23
    (0x2001_0db8 << 96, 32),      // 2001:db8::/32
    (0x2002 << 112, 16),          // 2002::/16
    (0xfc00 << 112, 7),           // fc00::/7
    (0xfe80 << 112, 10),          // fe80::/10
];

/// `ipaddress._IPv6Constants._private_networks_exceptions`.
const V6_PRIVATE_EXCEPTIONS: [Net6; 6] = [
    (0x2001_0001 << 96 | 1, 128), // 2001:1::1/128
    (0x2001_0001 << 96 | 2, 128), // 2001:1::2/128
    (0x2001_0003 << 96, 32),      // 2001:3::/32
    (0x2001_0004_0112 << 80, 48), // 2001:4:112::/48
    (0x2001_0020 << 96, 28),      // 2001:20::/28
    (0x2001_0030 << 96, 28),      // 2001:30::/28
];

fn in4(a: u32, (net, prefix): Net4) -> bool {
    // checked_shr: a shift by 32 (prefix 0) would overflow.
    (a ^ net).checked_shr(32 - prefix).unwrap_or(0) == 0
}

fn in6(a: u128, (net, prefix): Net6) -> bool {
    (a ^ net).checked_shr(128 - prefix).unwrap_or(0) == 0
}

fn kind_v4(a: u32) -> AddressKind {
    let private =
        V4_PRIVATE.iter().any(|&n| in4(a, n)) && !V4_PRIVATE_EXCEPTIONS.iter().any(|&n| in4(a, n));
    if a == 0 {
        AddressKind::Unspecified
    } else if a >> 24 == 127 {
        AddressKind::Loopback
    } else if a == u32::MAX {
        AddressKind::Broadcast
    } else if a >> 28 == 0xe {
        AddressKind::Multicast
    } else if a >> 16 == 0xa9fe {
        AddressKind::LinkLocal
    } else if V4_DOCUMENTATION.iter().any(|&n| in4(a, n)) {
        AddressKind::Documentation
    } else if !private && !in4(a, V4_SHARED) {
        AddressKind::Global
    } else {
        AddressKind::Private
    }
}

fn kind_v6(a: u128) -> AddressKind {
    if a >> 32 == 0xffff {
        return kind_v4(a as u32);
    }
    let private =
        V6_PRIVATE.iter().any(|&n| in6(a, n)) && !V6_PRIVATE_EXCEPTIONS.iter().any(|&n| in6(a, n));
    if a == 0 {
        AddressKind::Unspecified
    } else if a == 1 {
        AddressKind::Loopback
    } else if a >> 120 == 0xff {
        AddressKind::Multicast
    } else if a >> 118 == 0xfe80 >> 6 {
        AddressKind::LinkLocal
    } else if V6_DOCUMENTATION.iter().any(|&n| in6(a, n)) {
        AddressKind::Documentation
    } else if private {
        AddressKind::Private
    } else {
        AddressKind::Global
    }
}

/// Facts about an IPv4 or IPv6 address, parsed as strictly as `inet_pton` (so no `127.1`, no
/// `%scope`).
pub fn address_facts(s: &str) -> Result<AddressFacts, PyError> {
    let (family, bytes, canonical, int, kind) = if let Some(a) = pton4(s.as_bytes()) {
        let v = u32::from_be_bytes(a);
        (AF_INET, a.to_vec(), ntop4(a), u128::from(v), kind_v4(v))
    } else if let Some(a) = pton6(s.as_bytes()) {
        let v = u128::from_be_bytes(a);
        (AF_INET6, a.to_vec(), ntop6(a), v, kind_v6(v))
    } else {
        let mut message = python_str_repr(s);
        message.push_str(" does not appear to be an IPv4 or IPv6 address");
        return Err(PyError::new(PyErrorKind::ValueError, message));
    };
    Ok(AddressFacts {
        family,
        integer: decimal_u128(int),
        hex: hex_string(&bytes),
        binary: binary_string(&bytes),
        python_bytes: python_bytes_repr(&bytes),
        canonical,
        bytes,
        kind,
    })
}
