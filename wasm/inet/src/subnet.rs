//! A subnet calculator with the answers of `ipaddress.ip_network(text, strict=False)`.
//!
//! Accepted text, as `ipaddress` accepts it: `ADDR`, `ADDR/PREFIX` (ASCII digits, leading zeros
//! allowed), and for IPv4 also `ADDR/NETMASK` (`255.255.255.0`) or `ADDR/HOSTMASK`
//! (`0.0.0.255`). Host bits are allowed and cleared. Differences from `ipaddress`, on purpose:
//! the address is parsed as strictly as `inet_pton` (`ipaddress` also takes an IPv6 `%scope`),
//! and addresses are written in `inet_ntop` form (`::ffff:1.2.3.4`, where CPython 3.11's
//! `ipaddress` writes `::ffff:102:304`), like everything else in this module.

use super::format::{decimal_u128, ntop4, ntop6, python_str_repr};
use super::parse::{pton4, pton6};
use super::{PyError, PyErrorKind, AF_INET, AF_INET6};

/// An IPv4 or IPv6 network and its usable host range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: i32,
    pub prefix: u8,
    pub network: String,
    pub netmask: String,
    /// First address of `ip_network(...).hosts()`.
    pub first_host: String,
    /// Last address of `ip_network(...).hosts()`.
    pub last_host: String,
    /// IPv4 only: `broadcast_address`. `None` for IPv6, which has no broadcast.
    pub broadcast: Option<String>,
    /// `num_addresses` in decimal (2^128 for `::/0` does not fit a u128).
    pub size: String,
    /// `len(list(hosts()))` in decimal: `hosts()` leaves out the network and broadcast addresses
    /// of IPv4 networks up to /30 and the subnet-router anycast (network) address of IPv6
    /// networks up to /126; /31, /32, /127 and /128 use every address.
    pub hosts: String,
}

/// `(address, family width in bits)`, the address right-aligned in a u128.
fn parse_addr(s: &str) -> Option<(u128, u32)> {
    if let Some(a) = pton4(s.as_bytes()) {
        Some((u128::from(u32::from_be_bytes(a)), 32))
    } else {
        pton6(s.as_bytes()).map(|a| (u128::from_be_bytes(a), 128))
    }
}

/// `ipaddress`'s `_prefix_from_prefix_string`: ASCII digits only, any number of leading zeros.
fn parse_prefix(s: &str, width: u32) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        // Saturating: any value past the width is rejected anyway, however long the digits.
        v = v.saturating_mul(10).saturating_add(u32::from(c - b'0'));
    }
    (v <= width).then_some(v)
}

/// A mask with contiguous leading ones, as its prefix length.
fn mask_prefix(m: u32) -> Option<u32> {
    (m.leading_ones() == m.count_ones()).then_some(m.leading_ones())
}

/// `ipaddress`'s `_prefix_from_ip_string`: a netmask, else a hostmask.
fn parse_v4_mask(s: &str) -> Option<u32> {
    let m = u32::from_be_bytes(pton4(s.as_bytes())?);
    mask_prefix(m).or_else(|| mask_prefix(!m))
}

/// `s.split_once(c)` for an ASCII `c`, as `(before, after)`, without the generic char searcher.
fn split_at_byte(s: &str, c: u8) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == c) {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..)),
        None => (s, None),
    }
}

fn text(v: u128, width: u32) -> String {
    if width == 32 {
        ntop4((v as u32).to_be_bytes())
    } else {
        ntop6(v.to_be_bytes())
    }
}

/// Network facts for `"192.168.1.0/24"`, `"192.168.1.77/24"` (host bits cleared),
/// `"10.0.0.1/255.0.0.0"`, `"2001:db8::/32"`, or a bare address (`/32`, `/128`).
pub fn subnet(cidr: &str) -> Result<Subnet, PyError> {
    let invalid = || {
        let mut message = python_str_repr(cidr);
        message.push_str(" does not appear to be an IPv4 or IPv6 network");
        PyError::new(PyErrorKind::ValueError, message)
    };
    let (addr_text, mask_text) = split_at_byte(cidr, b'/');
    let (addr, width) = parse_addr(addr_text).ok_or_else(invalid)?;
    let prefix = match mask_text {
        None => width,
        Some(m) => parse_prefix(m, width)
            .or_else(|| if width == 32 { parse_v4_mask(m) } else { None })
            .ok_or_else(invalid)?,
    };

    // All in a u128 with the address right-aligned; `host_bits` may be 128 (IPv6 /0).
    let host_bits = width - prefix;
    let all = u128::MAX.checked_shr(128 - width).unwrap_or(0);
    let hostmask = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
    let netmask = all & !hostmask;
    let network = addr & netmask;
    let last = network | hostmask;
    // size = 2^host_bits; hostmask = size - 1, exact even when size itself overflows.
    let (first_host, last_host, hosts) = match host_bits {
        0 => (network, network, 1),
        1 => (network, last, 2),
        _ if width == 32 => (network + 1, last - 1, hostmask - 1),
        _ => (network + 1, last, hostmask),
    };
    let size = if host_bits == 128 {
        // 2^128, one past u128::MAX.
        "340282366920938463463374607431768211456".to_owned()
    } else {
        decimal_u128(hostmask + 1)
    };
    Ok(Subnet {
        family: if width == 32 { AF_INET } else { AF_INET6 },
        prefix: u8::try_from(prefix).map_err(|_| invalid())?,
        network: text(network, width),
        netmask: text(netmask, width),
        first_host: text(first_host, width),
        last_host: text(last_host, width),
        broadcast: (width == 32).then(|| text(last, width)),
        size,
        hosts: decimal_u128(hosts),
    })
}
