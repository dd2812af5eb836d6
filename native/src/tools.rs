//! `sockrelay inet|serv|host`: the address helpers from a terminal, on the same core as the
//! browser module. Output looks like Python's by default (`b'\x7f\x00\x00\x01'`, `'ssh'`), or
//! JSON with `--json`. Bad input is a [`ToolError`]: `main` prints it and exits with status 2.

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use sockrelay_wasm::inet::{self, PyError, AF_INET, AF_INET6};

/// `sockrelay inet ...`
#[derive(Debug, Subcommand)]
pub enum InetCommand {
    /// Dotted IPv4 string (glibc-permissive, e.g. 127.1) to its 4 packed bytes
    Aton { address: String },
    /// 4 packed bytes (hex, e.g. 7f000001 or 7f:00:00:01) to a dotted IPv4 string
    Ntoa { packed: String },
    /// Address string to packed bytes, strictly (family: 4, 6, AF_INET or AF_INET6)
    Pton { family: Family, address: String },
    /// Packed bytes (hex) to the canonical address string
    Ntop { family: Family, packed: String },
}

/// An address family as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Family {
    #[value(name = "AF_INET", alias = "4", alias = "inet", alias = "af_inet")]
    Inet,
    #[value(name = "AF_INET6", alias = "6", alias = "inet6", alias = "af_inet6")]
    Inet6,
}

impl Family {
    fn code(self) -> i32 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }
}

/// Input the helpers refuse, with the message to print.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// What Python would raise, e.g. `OSError: illegal IP address string passed to inet_aton`.
    #[error("{0}")]
    Python(#[from] PyError),
    #[error("invalid packed bytes {input:?}: {why}")]
    Hex { input: String, why: &'static str },
    #[error("{0}")]
    Lookup(String),
}

/// Parses packed bytes written as hex, with optional `0x` and separators (`:`, `-`, spaces).
pub fn parse_hex(input: &str) -> Result<Vec<u8>, ToolError> {
    let err = |why| ToolError::Hex {
        input: input.to_owned(),
        why,
    };
    let body = input
        .trim()
        .strip_prefix("0x")
        .unwrap_or_else(|| input.trim());
    let digits: Vec<u8> = body
        .bytes()
        .filter(|b| !matches!(b, b':' | b'-' | b' ' | b'\t' | b','))
        .collect();
    if digits.len() % 2 != 0 {
        return Err(err("an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(err("expected hex digits, e.g. 7f000001")),
            }
        })
        .collect()
}

use inet::{python_bytes_repr as py_bytes, python_str_repr as py_str};

/// Runs `sockrelay inet ...` and returns what to print.
pub fn inet(cmd: &InetCommand, as_json: bool) -> Result<String, ToolError> {
    let (bytes, text) = match cmd {
        InetCommand::Aton { address } => (Some(inet::inet_aton(address)?.to_vec()), None),
        InetCommand::Ntoa { packed } => (None, Some(inet::inet_ntoa(&parse_hex(packed)?)?)),
        InetCommand::Pton { family, address } => {
            (Some(inet::inet_pton(family.code(), address)?), None)
        }
        InetCommand::Ntop { family, packed } => (
            None,
            Some(inet::inet_ntop(family.code(), &parse_hex(packed)?)?),
        ),
    };
    Ok(match (bytes, text) {
        (Some(b), _) if as_json => json!({ "bytes": b, "python": py_bytes(&b) }).to_string(),
        (Some(b), _) => py_bytes(&b),
        (None, Some(t)) if as_json => json!({ "address": t }).to_string(),
        (None, Some(t)) => py_str(&t),
        (None, None) => String::new(),
    })
}

/// Runs `sockrelay serv NAME|PORT [--proto P]`.
pub fn serv(name_or_port: &str, proto: Option<&str>, as_json: bool) -> Result<String, ToolError> {
    if !name_or_port.is_empty()
        && name_or_port
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-')
    {
        let port: i64 = name_or_port
            .parse()
            .map_err(|_| ToolError::Lookup(format!("invalid port {name_or_port:?}")))?;
        let name = inet::getservbyport(port, proto)?;
        return Ok(if as_json {
            json!({ "port": port, "name": name, "proto": proto }).to_string()
        } else {
            py_str(name)
        });
    }
    let port = inet::getservbyname(name_or_port, proto)?;
    Ok(if as_json {
        json!({ "name": name_or_port, "port": port, "proto": proto }).to_string()
    } else {
        port.to_string()
    })
}

/// Runs `sockrelay host [NAME]`: `gethostname()`, or `gethostbyname(NAME)` (first IPv4 address,
/// as Python's `socket.gethostbyname` returns).
pub fn host(name: Option<&str>, as_json: bool) -> Result<String, ToolError> {
    let Some(name) = name else {
        let hostname = hostname()?;
        return Ok(if as_json {
            json!({ "hostname": hostname }).to_string()
        } else {
            py_str(&hostname)
        });
    };
    use std::net::ToSocketAddrs;
    let addr = (name, 0)
        .to_socket_addrs()
        .map_err(|e| ToolError::Lookup(format!("socket.gaierror: {name}: {e}")))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| ToolError::Lookup(format!("socket.gaierror: {name}: no IPv4 address")))?;
    let ip = addr.ip().to_string();
    Ok(if as_json {
        json!({ "name": name, "address": ip }).to_string()
    } else {
        py_str(&ip)
    })
}

fn hostname() -> Result<String, ToolError> {
    // The kernel's view (what gethostname(2) returns), without a libc binding.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .map_err(|_| ToolError::Lookup("cannot determine the host name".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("7f000001").unwrap(), vec![127, 0, 0, 1]);
        assert_eq!(parse_hex("0x7F:00:00:01").unwrap(), vec![127, 0, 0, 1]);
        assert_eq!(parse_hex("c0 a8 01 be").unwrap(), vec![192, 168, 1, 190]);
        assert!(parse_hex("7f0").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
