//! `sockrelay inet|serv|host`: the address helpers from a terminal, on the same core as the
//! browser module. Output looks like Python's by default (`b'\x7f\x00\x00\x01'`, `'ssh'`), or
//! JSON with `--json`. Bad input is a [`ToolError`]: `main` prints it and exits with status 2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use sockrelay_inet::hex::HexError;
use sockrelay_inet::pyint::long_from_decimal;
use sockrelay_inet::{self as inet, PyError, AF_INET, AF_INET6};

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
    Hex { input: String, why: HexError },
    #[error("{0}")]
    Lookup(String),
}

/// Packed bytes written as hex, in the grammar the browser client reads too
/// ([`inet::hex`]: `7f000001`, `7f:00:00:01`, `0x7f 0x00 ...`, `\x7f\x00...`). No digits at
/// all is zero bytes, so that Python's function answers with its own error, as
/// `inet_ntoa(b'')` does.
pub fn parse_hex(input: &str) -> Result<Vec<u8>, ToolError> {
    match inet::hex::parse_hex(input) {
        Err(HexError::Empty) => Ok(Vec::new()),
        parsed => parsed.map_err(|why| ToolError::Hex {
            input: input.to_owned(),
            why,
        }),
    }
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

/// Runs `sockrelay serv NAME|PORT [--proto P]`. What reads as an integer (digits, optionally
/// after a `-`) is a port, looked up as Python's `getservbyport(int(PORT))` would, with its
/// errors; anything else is a service name.
pub fn serv(name_or_port: &str, proto: Option<&str>, as_json: bool) -> Result<String, ToolError> {
    if let Some(port) = long_from_decimal(name_or_port) {
        let port = port?;
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

/// Runs `sockrelay host [NAME]`: `gethostname()`, or [`gethostbyname`].
pub fn host(name: Option<&str>, as_json: bool) -> Result<String, ToolError> {
    let Some(name) = name else {
        let hostname = hostname()?;
        return Ok(if as_json {
            json!({ "hostname": hostname }).to_string()
        } else {
            py_str(&hostname)
        });
    };
    let ip = gethostbyname(name)?.to_string();
    Ok(if as_json {
        json!({ "name": name, "address": ip }).to_string()
    } else {
        py_str(&ip)
    })
}

/// `socket.gethostbyname(name)` as CPython 3 on glibc answers it: the name is IDNA-encoded
/// (only ASCII names are checked here, as the codec's ASCII fast path does; others go to the
/// resolver as UTF-8, which refuses them, where Python would punycode them), `""` is
/// `0.0.0.0`, `"<broadcast>"` is `255.255.255.255`, a dotted quad is itself, and anything else
/// is the first IPv4 address the system resolver (`getaddrinfo`) gives, or Python's
/// `socket.gaierror` with glibc's code and text.
pub fn gethostbyname(name: &str) -> Result<Ipv4Addr, ToolError> {
    check_idna_labels(name)?;
    if name.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    if name == "<broadcast>" {
        return Ok(Ipv4Addr::BROADCAST);
    }
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    // Python asks for AF_INET only: glibc refuses an IPv6 literal outright.
    if name.parse::<Ipv6Addr>().is_ok() {
        return Err(gaierror(EAI_ADDRFAMILY));
    }
    let addrs = (name, 0).to_socket_addrs().map_err(|e| lookup_error(&e))?;
    // Found, but without an IPv4 address (`::1 ip6-localhost` in /etc/hosts): glibc's AF_INET
    // lookup skips such entries and finds nothing.
    addrs
        .filter_map(|addr| match addr.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| gaierror(EAI_NONAME))
}

/// The `idna` codec's checks on an ASCII name: every label but the last is 1 to 63 bytes, the
/// last at most 63 (it may be empty: a trailing dot).
fn check_idna_labels(name: &str) -> Result<(), ToolError> {
    if !name.is_ascii() {
        return Ok(());
    }
    let labels: Vec<&str> = name.split('.').collect();
    let (last, rest) = labels.split_last().unwrap_or((&"", &[]));
    let why = if rest
        .iter()
        .any(|label| label.is_empty() || label.len() > 63)
    {
        "label empty or too long"
    } else if last.len() > 63 {
        "label too long"
    } else {
        return Ok(());
    };
    Err(ToolError::Lookup(format!(
        "UnicodeError: encoding with 'idna' codec failed (UnicodeError: {why})"
    )))
}

/// glibc's `getaddrinfo` error codes and `gai_strerror` texts (`<netdb.h>`), which Python's
/// `socket.gaierror` shows as `[Errno CODE] TEXT`.
const GAI_ERRORS: [(i32, &str); 12] = [
    (-1, "Bad value for ai_flags"),
    (EAI_NONAME, "Name or service not known"),
    (-3, "Temporary failure in name resolution"),
    (-4, "Non-recoverable failure in name resolution"),
    (-5, "No address associated with hostname"),
    (-6, "ai_family not supported"),
    (-7, "ai_socktype not supported"),
    (-8, "Servname not supported for ai_socktype"),
    (EAI_ADDRFAMILY, "Address family for hostname not supported"),
    (-10, "Memory allocation failure"),
    (-11, "System error"),
    (-12, "Argument buffer overflow"),
];
const EAI_NONAME: i32 = -2;
const EAI_ADDRFAMILY: i32 = -9;

fn gaierror(code: i32) -> ToolError {
    let text = GAI_ERRORS
        .iter()
        .find(|&&(c, _)| c == code)
        .map_or("Unknown error", |&(_, text)| text);
    ToolError::Lookup(format!("socket.gaierror: [Errno {code}] {text}"))
}

/// A failed `to_socket_addrs` as Python reports it. std words a `getaddrinfo` failure as
/// "failed to lookup address information: " and `gai_strerror`'s text (English: Rust never
/// calls `setlocale`), from which the code is recovered; `EAI_SYSTEM` comes as the `errno`
/// error, which Python raises as a plain `OSError`.
fn lookup_error(error: &std::io::Error) -> ToolError {
    if let Some(errno) = error.raw_os_error() {
        let text = error.to_string();
        let suffix = format!(" (os error {errno})");
        let text = text.strip_suffix(&suffix).unwrap_or(&text);
        return ToolError::Lookup(format!("OSError: [Errno {errno}] {text}"));
    }
    let text = error.to_string();
    let detail = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    match GAI_ERRORS.iter().find(|&&(_, t)| t == detail) {
        Some(&(code, _)) => gaierror(code),
        None => ToolError::Lookup(format!("socket.gaierror: {detail}")),
    }
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

    fn message<T: std::fmt::Debug>(result: Result<T, ToolError>) -> String {
        result.unwrap_err().to_string()
    }

    /// The client's grammar (`sockrelay_inet::hex`): a run of digits of odd length is refused,
    /// no longer joined to the next (`7 f0 00 01` read as 7f000001), and the client's `\x`,
    /// `0X` and `;` are read. No digits is still zero bytes, for Python's own error.
    #[test]
    fn hex_is_read_as_the_client_reads_it() {
        assert!(matches!(
            parse_hex("7 f0 00 01"),
            Err(ToolError::Hex {
                why: HexError::OddDigits { .. },
                ..
            })
        ));
        assert_eq!(
            message(parse_hex("7f0 001")),
            "invalid packed bytes \"7f0 001\": \"7f0\" at position 1 has an odd number of hex \
             digits: each byte is two digits"
        );
        for input in [
            "\\x7f\\x00\\x00\\x01",
            "0X7F;00;00;01",
            "0x7f 0x00 0x00 0x01",
        ] {
            assert_eq!(parse_hex(input).unwrap(), vec![127, 0, 0, 1], "{input:?}");
        }
        assert_eq!(parse_hex(" , ").unwrap(), Vec::<u8>::new());
        let empty = InetCommand::Ntoa {
            packed: String::new(),
        };
        assert_eq!(
            message(inet(&empty, false)),
            "OSError: packed IP wrong length for inet_ntoa"
        );
    }

    /// The conversion itself is tested in `sockrelay_inet::pyint`.
    #[test]
    fn ports_convert_as_python_ints() {
        assert_eq!(
            message(serv("99999999999999999999", None, false)),
            "OverflowError: Python int too large to convert to C long"
        );
        assert_eq!(
            message(serv("2147483648", None, false)),
            "OverflowError: signed integer is greater than maximum"
        );
        assert_eq!(
            message(serv("1-2", None, false)),
            "OSError: service/proto not found"
        );
    }

    #[test]
    fn host_names_are_checked_as_the_idna_codec_does() {
        assert!(check_idna_labels("localhost.").is_ok());
        assert!(check_idna_labels(&"a".repeat(63)).is_ok());
        let empty = "UnicodeError: encoding with 'idna' codec failed \
                     (UnicodeError: label empty or too long)";
        for name in ["a..b", ".", "..", &format!("{}.b", "a".repeat(64))] {
            assert_eq!(message(gethostbyname(name)), empty, "{name:?}");
        }
        assert_eq!(
            message(gethostbyname(&"a".repeat(64))),
            "UnicodeError: encoding with 'idna' codec failed (UnicodeError: label too long)"
        );
    }

    #[test]
    fn special_and_numeric_host_names_need_no_resolver() {
        assert_eq!(gethostbyname("").unwrap(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(gethostbyname("<broadcast>").unwrap(), Ipv4Addr::BROADCAST);
        assert_eq!(
            gethostbyname("192.168.1.190").unwrap(),
            Ipv4Addr::new(192, 168, 1, 190)
        );
        assert_eq!(
            message(gethostbyname("::1")),
            "socket.gaierror: [Errno -9] Address family for hostname not supported"
        );
    }

    #[test]
    fn resolver_failures_read_as_gaierror() {
        let std_error = std::io::Error::other(
            "failed to lookup address information: Temporary failure in name resolution",
        );
        assert_eq!(
            lookup_error(&std_error).to_string(),
            "socket.gaierror: [Errno -3] Temporary failure in name resolution"
        );
        assert_eq!(
            lookup_error(&std::io::Error::from_raw_os_error(24)).to_string(),
            "OSError: [Errno 24] Too many open files"
        );
    }
}
