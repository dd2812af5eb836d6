//! The `#[wasm_bindgen]` surface of the converter module `inet.js`: a thin layer over
//! [`sockrelay_inet`] that converts JS arguments the way CPython converts Python arguments and
//! turns [`PyError`]s into JS `Error`s named after the Python exception class.
//!
//! Arguments are taken as `JsValue` rather than `&str`/`&[u8]` so that a wrong JS type throws
//! `TypeError` with Python's message instead of being silently coerced by the generated glue.
//! `AF_INET`/`AF_INET6` cannot be exported by wasm-bindgen; `wasm/js/constants.js` is appended
//! to the generated entry by `wasm/build.sh` (the unit tests below keep it in step with Rust).
//!
//! The public functions themselves are JS, appended the same way: CPython refuses a call with
//! the wrong number of arguments before it converts any, and an export made by wasm-bindgen
//! cannot tell an argument left out from `undefined`, nor see extra ones. `wasm/js/arity.js`
//! checks the count (`arguments.length`) and calls the checked export here, which is exported
//! under the same name with a `_` in front; `wasm/build.sh` keeps every `_` export out of the
//! module's exports.
//!
//! `inet_pton` and `inet_ntop` also have fast paths, for callers converting many addresses:
//! `wasm/js/fast.js` is their public JS side. For argument types that need no conversion it
//! passes plain numbers and ASCII bytes in a scratch buffer to the typed exports below (each
//! `JsValue` check would be a call from wasm back into JS), and for anything else it calls the
//! checked exports.

use std::cell::RefCell;

use js_sys::{ArrayBuffer, Error, JsString, Uint8Array};
use wasm_bindgen::prelude::*;

use sockrelay_inet::{self as inet, pyint, PyError};

type JsResult<T> = Result<T, JsValue>;

/// A [`PyError`] as the JS `Error` to throw (a function: the orphan rule forbids a `From`
/// between two other crates' types).
fn thrown_py(error: PyError) -> JsValue {
    py_error(error.kind.name(), &error.message)
}

/// A JS `Error` whose `name` is a Python exception class, so callers can branch on `e.name`.
fn py_error(class: &str, message: &str) -> JsValue {
    let error = Error::new(message);
    error.set_name(class);
    error.into()
}

fn type_error(parts: &[&str]) -> JsValue {
    py_error("TypeError", &parts.concat())
}

/// The name of the Python type a JS value stands for, as Python's messages spell it.
fn py_type_name(value: &JsValue) -> &'static str {
    if value.is_string() {
        "str"
    } else if let Some(number) = value.as_f64() {
        // `fract` is NaN for infinities, so they and NaN are floats, as in Python.
        if number.fract() == 0.0 {
            "int"
        } else {
            "float"
        }
    } else if value.as_bool().is_some() {
        "bool"
    } else if value.is_null() || value.is_undefined() {
        "NoneType"
    } else if value.is_bigint() {
        "int"
    } else if js_sys::Array::is_array(value) {
        "list"
    } else if value.is_instance_of::<ArrayBuffer>() || ArrayBuffer::is_view(value) {
        "bytes"
    } else if value.is_function() {
        "function"
    } else {
        "dict"
    }
}

/// A `str` argument, converted as CPython's argument parser does (`s` / `str` converters).
fn str_arg(function: &str, position: &str, value: &JsValue) -> JsResult<String> {
    let Some(text) = value.as_string() else {
        // CPython names `None` itself here but its type everywhere else.
        let type_name = if value.is_null() || value.is_undefined() {
            "None"
        } else {
            py_type_name(value)
        };
        return Err(type_error(&[
            function,
            "() argument ",
            position,
            " must be str, not ",
            type_name,
        ]));
    };
    // Lone surrogates arrive as U+FFFD (0xef 0xbf 0xbd); only then is the slow exact check
    // worth it. Its first byte is enough to decide that: the check is exact by itself.
    if text.bytes().any(|b| b == 0xef) {
        check_encodable(value.unchecked_ref())?;
    }
    Ok(text)
}

/// Python cannot encode a lone surrogate to UTF-8 and raises `UnicodeEncodeError` for the run
/// of consecutive lone surrogates that starts at the first one (CPython's UTF-8 encoder hands
/// its error handler the whole run). Positions count code points, as Python's string indices
/// do: a surrogate pair is one (non-BMP) character.
#[cold]
fn check_encodable(text: &JsString) -> JsResult<()> {
    let length = text.length();
    // `charCodeAt` past the end is NaN, which `as` turns into 0: no surrogate.
    let unit = |index| text.char_code_at(index) as u32;
    let (mut index, mut position) = (0, 0);
    // The first lone surrogate and its position, once one is found.
    let mut run = None;
    while index < length {
        let first = unit(index);
        let paired =
            (0xd800..0xdc00).contains(&first) && (0xdc00..0xe000).contains(&unit(index + 1));
        let lone = (0xd800..0xe000).contains(&first) && !paired;
        if lone && run.is_none() {
            run = Some((first, position));
        } else if !lone && run.is_some() {
            break;
        }
        index += if paired { 2 } else { 1 };
        position += 1;
    }
    let Some((first, start)) = run else {
        return Ok(());
    };
    // The run ends (exclusive) where the loop stopped; Python names its last character.
    let what = if position - start == 1 {
        let start = digits(start, 10, 1);
        [
            "character '\\u",
            &digits(first, 16, 4),
            "' in position ",
            &start,
        ]
        .concat()
    } else {
        let (start, last) = (digits(start, 10, 1), digits(position - 1, 10, 1));
        ["characters in position ", &start, "-", &last].concat()
    };
    Err(py_error(
        "UnicodeEncodeError",
        &[
            "'utf-8' codec can't encode ",
            &what,
            ": surrogates not allowed",
        ]
        .concat(),
    ))
}

/// `value` in `radix` (lowercase), zero-padded to `width`: without `core::fmt`, which the
/// converter otherwise links only for panics.
fn digits(value: u32, radix: u32, width: usize) -> String {
    let mut text = String::new();
    push_digits(&mut text, value, radix, width);
    text
}

/// Most significant digit first: the higher digits, then this one.
fn push_digits(text: &mut String, value: u32, radix: u32, width: usize) {
    if value >= radix || width > 1 {
        push_digits(text, value / radix, radix, width.saturating_sub(1));
    }
    text.push(char::from_digit(value % radix, radix).unwrap_or('?'));
}

/// An optional `str` argument: `undefined` is an argument left out (what JS passes for a
/// missing one); `null` is Python's `None`, which CPython refuses as a `str`.
fn optional_str_arg(function: &str, position: &str, value: &JsValue) -> JsResult<Option<String>> {
    if value.is_undefined() {
        Ok(None)
    } else {
        str_arg(function, position, value).map(Some)
    }
}

/// A bytes-like argument: `Uint8Array`, any other typed array or `DataView` (its bytes, as a
/// Python `memoryview` would give them), or an `ArrayBuffer`.
fn bytes_arg(value: &JsValue) -> JsResult<Vec<u8>> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        Ok(bytes.to_vec())
    } else if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        Ok(Uint8Array::new(buffer).to_vec())
    } else if ArrayBuffer::is_view(value) {
        // Every view has `buffer`, `byteOffset` and `byteLength`; reading them through the
        // `Uint8Array` bindings just reads those properties.
        let view: &Uint8Array = value.unchecked_ref();
        Ok(Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset(),
            view.byte_length(),
        )
        .to_vec())
    } else {
        Err(type_error(&[
            "a bytes-like object is required, not '",
            py_type_name(value),
            "'",
        ]))
    }
}

/// An integer argument, converted as CPython's `PyLong_AsLong` does ([`pyint`]): booleans are
/// 0 and 1, non-integers are a `TypeError`, integers beyond a C long an `OverflowError`.
fn long_arg(value: &JsValue) -> JsResult<i64> {
    if let Some(flag) = value.as_bool() {
        return Ok(i64::from(flag));
    }
    if let Some(number) = value.as_f64() {
        if let Some(long) = pyint::long_from_f64(number) {
            return long.map_err(thrown_py);
        }
    } else if value.is_bigint() {
        return i64::try_from(value.clone()).map_err(|_| thrown_py(pyint::long_overflow()));
    }
    Err(type_error(&[
        "'",
        py_type_name(value),
        "' object cannot be interpreted as an integer",
    ]))
}

/// A C `int` argument (the `i` converter): a long, then range-checked.
fn int_arg(value: &JsValue) -> JsResult<i32> {
    pyint::c_int(long_arg(value)?).map_err(thrown_py)
}

// The checked exports, called by the public functions of `wasm/js/` once they have checked the
// number of arguments (see the module documentation). The declarations of the public functions,
// with their documentation, are in `TYPES` below.
// The packed results are boxed slices: a `Vec` cost the module 40 gzipped bytes more.
#[wasm_bindgen(js_name = "_inet_aton", skip_typescript)]
pub fn inet_aton(ip_string: &JsValue) -> JsResult<Box<[u8]>> {
    let text = str_arg("inet_aton", "1", ip_string)?;
    Ok(Box::new(inet::inet_aton(&text).map_err(thrown_py)?))
}

#[wasm_bindgen(js_name = "_inet_ntoa", skip_typescript)]
pub fn inet_ntoa(packed_ip: &JsValue) -> JsResult<String> {
    inet::inet_ntoa(&bytes_arg(packed_ip)?).map_err(thrown_py)
}

// The checked `inet_pton` and `inet_ntop`: `wasm/js/fast.js` calls them for what its fast
// paths do not take (see the module documentation).
#[wasm_bindgen(js_name = "_inet_pton", skip_typescript)]
pub fn inet_pton(address_family: &JsValue, ip_string: &JsValue) -> JsResult<Box<[u8]>> {
    let family = int_arg(address_family)?;
    let text = str_arg("inet_pton", "2", ip_string)?;
    Ok(inet::inet_pton(family, &text).map_err(thrown_py)?[..].into())
}

#[wasm_bindgen(js_name = "_inet_ntop", skip_typescript)]
pub fn inet_ntop(address_family: &JsValue, packed_ip: &JsValue) -> JsResult<String> {
    let family = int_arg(address_family)?;
    let bytes = bytes_arg(packed_ip)?;
    inet::inet_ntop(family, &bytes).map_err(thrown_py)
}

/// Bytes in the scratch buffer: more than the longest text the fast paths give (45) and the
/// longest they take (`wasm/js/fast.js` sends longer text, never valid, to the checked path).
const IO_LEN: usize = 64;

thread_local! {
    /// The fast paths' text and bytes, where the JS side reads and writes them directly.
    static IO: RefCell<[u8; IO_LEN]> = const { RefCell::new([0; IO_LEN]) };
}

/// The address of the scratch buffer in wasm memory (fixed for the instance's lifetime).
#[wasm_bindgen(js_name = "_io", skip_typescript)]
pub fn io_address() -> usize {
    IO.with(|io| io.as_ptr() as usize)
}

/// Fast `inet_pton` of `family` (`AF_INET`, else `AF_INET6`) and the `length` bytes of ASCII
/// text at the start of the scratch buffer: writes the packed address over the text and
/// returns its length (4 or 16), or returns 0 where [`inet_pton`] fails.
#[wasm_bindgen(js_name = "_pton", skip_typescript)]
pub fn pton_fast(family: i32, length: usize) -> usize {
    IO.with(|io| {
        let Ok(mut io) = io.try_borrow_mut() else {
            return 0;
        };
        let Some(text) = io.get(..length) else {
            return 0;
        };
        if family == inet::AF_INET {
            if let Some(packed) = inet::parse_ipv4(text) {
                return put(&mut io, &packed);
            }
        } else if let Some(packed) = inet::parse_ipv6(text) {
            return put(&mut io, &packed);
        }
        0
    })
}

/// Copies `packed` to the start of the scratch buffer; returns its length. (Generic over
/// `[u8; N]` with `first_chunk_mut`, the module came out 290 gzipped bytes larger.)
fn put(io: &mut [u8; IO_LEN], packed: &[u8]) -> usize {
    for (slot, &b) in io.iter_mut().zip(packed) {
        *slot = b;
    }
    packed.len()
}

/// Fast `inet_ntop(AF_INET6, ...)` of 16 bytes given as four big-endian words: writes the text
/// at the start of the scratch buffer and returns its length. (IPv4's `inet_ntop` is joined in
/// `wasm/js/fast.js`: four numbers cost less there than a crossing into wasm and back.)
#[wasm_bindgen(js_name = "_ntop6", skip_typescript)]
pub fn ntop6_fast(w0: u32, w1: u32, w2: u32, w3: u32) -> usize {
    let [a, b, c, d] = w0.to_be_bytes();
    let [e, f, g, h] = w1.to_be_bytes();
    let [i, j, k, l] = w2.to_be_bytes();
    let [m, n, o, p] = w3.to_be_bytes();
    let packed = [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p];
    with_text(|out| inet::write_ipv6(packed, out))
}

fn with_text(write: impl FnOnce(&mut [u8; inet::TEXT_MAX]) -> usize) -> usize {
    IO.with(|io| match io.try_borrow_mut() {
        Ok(mut io) => io.first_chunk_mut().map_or(0, write),
        Err(_) => 0,
    })
}

#[wasm_bindgen(js_name = "_getservbyname", skip_typescript)]
pub fn getservbyname(service_name: &JsValue, protocol_name: &JsValue) -> JsResult<u16> {
    let name = str_arg("getservbyname", "1", service_name)?;
    // CPython's `s` converter refuses a NUL as it reads the name, before the protocol's type is
    // looked at; the core checks it too late for that.
    if name.bytes().any(|b| b == 0) {
        return Err(thrown_py(inet::embedded_null()));
    }
    let protocol = optional_str_arg("getservbyname", "2", protocol_name)?;
    inet::getservbyname(&name, protocol.as_deref()).map_err(thrown_py)
}

// CPython parses `port` with the `i` converter, C `int` range check included, before it looks
// at the protocol, and checks the port range only after both: so `int_arg` comes first here.
#[wasm_bindgen(js_name = "_getservbyport", skip_typescript)]
pub fn getservbyport(port: &JsValue, protocol_name: &JsValue) -> JsResult<String> {
    let port = int_arg(port)?;
    let protocol = optional_str_arg("getservbyport", "2", protocol_name)?;
    Ok(inet::getservbyport(port.into(), protocol.as_deref())
        .map_err(thrown_py)?
        .to_owned())
}

// `address_facts` and `subnet` answer with their fields as lines of one string, in the order of
// the object `wasm/js/arity.js` makes of them (`AddressFacts`, `Subnet` below): an object built
// here, a `Reflect.set` and a string conversion per field, took 5.4 KB of the module.
// No field can hold a line break (texts of addresses and numbers, a bytes repr with `\n`
// escaped).

/// `family` (2 or 10) in decimal.
fn family_text(family: i32) -> &'static str {
    if family == inet::AF_INET {
        "2"
    } else {
        "10"
    }
}

/// family, canonical, integer, hex, binary, python_bytes, kind (arity.js makes `bytes` of `hex`).
#[wasm_bindgen(js_name = "_address_facts", skip_typescript)]
pub fn address_facts(address: &JsValue) -> JsResult<String> {
    let text = str_arg("address_facts", "1", address)?;
    let facts = inet::address_facts(&text).map_err(thrown_py)?;
    Ok([
        family_text(facts.family),
        "\n",
        &facts.canonical,
        "\n",
        &facts.integer,
        "\n",
        &facts.hex,
        "\n",
        &facts.binary,
        "\n",
        &facts.python_bytes,
        "\n",
        facts.kind.as_str(),
    ]
    .concat())
}

/// family, prefix, network, netmask, first_host, last_host, broadcast (empty for none), size,
/// hosts.
#[wasm_bindgen(js_name = "_subnet", skip_typescript)]
pub fn subnet(cidr: &JsValue) -> JsResult<String> {
    let text = str_arg("subnet", "1", cidr)?;
    let subnet = inet::subnet(&text).map_err(thrown_py)?;
    Ok([
        family_text(subnet.family),
        "\n",
        &digits(subnet.prefix.into(), 10, 1),
        "\n",
        &subnet.network,
        "\n",
        &subnet.netmask,
        "\n",
        &subnet.first_host,
        "\n",
        &subnet.last_host,
        "\n",
        subnet.broadcast.as_deref().unwrap_or(""),
        "\n",
        &subnet.size,
        "\n",
        &subnet.hosts,
    ]
    .concat())
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/*
 * Arguments are taken as CPython's `socket` module takes them, and the functions beyond Python
 * (address_facts, subnet) follow the same rules:
 * - The number of arguments is checked first, counted as JavaScript counts them
 *   (`arguments.length`): too few or too many throws Python's `TypeError`, such as
 *   `inet_pton() takes exactly 2 arguments (1 given)` or
 *   `getservbyname() takes at most 2 arguments (3 given)`. (So `texts.map(inet_aton)`, which
 *   passes three, throws: write `texts.map((text) => inet_aton(text))`.)
 * - `null` is Python's `None`. An explicit `undefined` counts as an argument given, as in Web
 *   IDL: in a required position it is `None` too (`inet_pton(AF_INET, undefined)` throws
 *   `TypeError: inet_pton() argument 2 must be str, not None`); as the optional `protocol_name`
 *   of getservbyname and getservbyport it is the argument left out.
 */

/** Address family of IPv4: `2`, Linux's value, as Python on Linux shows it. */
export const AF_INET: 2;
/** Address family of IPv6: `10`, Linux's value, as Python on Linux shows it. */
export const AF_INET6: 10;

/**
 * Convert an IPv4 address string in any form glibc's `inet_aton` accepts (`"127.1"`,
 * `"0x7f.1"`, octal parts) to its 4 bytes in network order.
 *
 * Throws `OSError("illegal IP address string passed to inet_aton")` for other strings and
 * `TypeError("inet_aton() takes exactly 1 argument (N given)")` for N arguments other than 1.
 */
export function inet_aton(ip_string: string): Uint8Array;

/**
 * Convert 4 bytes (a `Uint8Array`, any typed array or `ArrayBuffer`) to dotted-quad text.
 *
 * Throws `OSError("packed IP wrong length for inet_ntoa")` unless exactly 4 bytes are given,
 * and `TypeError("inet_ntoa() takes exactly 1 argument (N given)")` for N arguments other
 * than 1.
 */
export function inet_ntoa(packed_ip: Uint8Array | ArrayBuffer | ArrayBufferView): string;

/**
 * Convert an address string of `family` (`AF_INET` or `AF_INET6`) to its packed bytes
 * (4 or 16), as strictly as glibc's `inet_pton`.
 *
 * Throws `OSError("illegal IP address string passed to inet_pton")` for a malformed string,
 * `ValueError("embedded null character")` for a string holding a NUL,
 * `OSError("[Errno 97] Address family not supported by protocol")` for other families, and
 * `TypeError("inet_pton() takes exactly 2 arguments (N given)")` for N arguments other than 2.
 */
export function inet_pton(address_family: number, ip_string: string): Uint8Array;

/**
 * Convert packed bytes of `family` (`AF_INET`: 4 bytes, `AF_INET6`: 16) to the canonical
 * text glibc's `inet_ntop` writes (`"::ffff:1.2.3.4"`, `"2001:db8::1"`).
 *
 * Throws `ValueError("invalid length of packed IP address string")` for a wrong length,
 * `ValueError("unknown address family N")` for other families, and
 * `TypeError("inet_ntop() takes exactly 2 arguments (N given)")` for N arguments other than 2.
 */
export function inet_ntop(address_family: number, packed_ip: Uint8Array | ArrayBuffer | ArrayBufferView): string;

/**
 * The port of an Internet service name (`"http"` → 80), from the embedded copy of Debian's
 * `/etc/services`. `protocol_name` (`"tcp"`, `"udp"`, ...) is optional: left out (or
 * `undefined`), any protocol matches; `null` is Python's `None` and throws
 * `TypeError("getservbyname() argument 2 must be str, not None")`, as Python does.
 *
 * Throws `OSError("service/proto not found")` for unknown names, and
 * `TypeError("getservbyname() takes at least 1 argument (0 given)")` or
 * `TypeError("getservbyname() takes at most 2 arguments (N given)")` for a wrong number.
 */
export function getservbyname(service_name: string, protocol_name?: string): number;

/**
 * The service name of a port (80 → `"http"`), from the embedded copy of Debian's
 * `/etc/services`. `protocol_name` (`"tcp"`, `"udp"`, ...) is optional: left out (or
 * `undefined`), any protocol matches; `null` is Python's `None` and throws
 * `TypeError("getservbyport() argument 2 must be str, not None")`, as Python does.
 *
 * Throws `OverflowError` for ports outside 0-65535, `OSError("port/proto not found")` for
 * ports with no name, and `TypeError("getservbyport() takes at least 1 argument (0 given)")`
 * or `TypeError("getservbyport() takes at most 2 arguments (N given)")` for a wrong number.
 */
export function getservbyport(port: number, protocol_name?: string): string;

/**
 * Facts about an IPv4 or IPv6 address: family, bytes, canonical text, integer, hex, binary,
 * Python bytes literal and kind (`"loopback"`, `"private"`, ... `"global"`).
 *
 * Throws `ValueError` for text that is neither an IPv4 nor an IPv6 address, and
 * `TypeError("address_facts() takes exactly 1 argument (N given)")` for N arguments other
 * than 1.
 */
export function address_facts(address: string): AddressFacts;

/**
 * The subnet of an IPv4 or IPv6 prefix (`"192.168.1.0/24"`): network, netmask, first and
 * last host, broadcast (IPv4 only, else `null`), size and usable host count (as decimal
 * strings: an IPv6 subnet can hold more addresses than a JS number counts exactly).
 *
 * Throws `ValueError` for text that is not an address with a prefix length, and
 * `TypeError("subnet() takes exactly 1 argument (N given)")` for N arguments other than 1.
 */
export function subnet(cidr: string): Subnet;

/** What {@link address_facts} tells about an address. */
export interface AddressFacts {
  /** `AF_INET` or `AF_INET6`. */
  family: number;
  /** The packed address, 4 or 16 bytes in network order. */
  bytes: Uint8Array;
  /** The canonical text (`inet_ntop`'s). */
  canonical: string;
  /** The address as an unsigned decimal integer. */
  integer: string;
  /** The address as `0x`-prefixed hex. */
  hex: string;
  /** The address as dotted or grouped binary. */
  binary: string;
  /** The packed bytes as a Python bytes literal, such as `b'\x7f\x00\x00\x01'`. */
  python_bytes: string;
  /** One of `loopback`, `private`, `unspecified`, `broadcast`, `multicast`, `link-local`, `documentation`, `global`. */
  kind: string;
}

/** What {@link subnet} tells about a prefix. */
export interface Subnet {
  /** `AF_INET` or `AF_INET6`. */
  family: number;
  /** The prefix length. */
  prefix: number;
  /** The network address. */
  network: string;
  /** The netmask, as an address. */
  netmask: string;
  /** The first usable host address. */
  first_host: string;
  /** The last usable host address. */
  last_host: string;
  /** The broadcast address (IPv4), else `null`. */
  broadcast: string | null;
  /** The number of addresses, in decimal. */
  size: string;
  /** The number of usable host addresses, in decimal. */
  hosts: string;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use js_sys::{Object, Reflect};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A plain JS object built from `(key, value)` pairs.
    fn object(entries: &[(&str, JsValue)]) -> Object {
        let object = Object::new();
        for (key, value) in entries {
            let _ = Reflect::set(&object, &JsValue::from_str(key), value);
        }
        object
    }

    /// The `(name, message)` of the error a call threw.
    fn thrown<T: std::fmt::Debug>(result: JsResult<T>) -> (String, String) {
        let error: Error = result.expect_err("should throw").unchecked_into();
        (error.name().into(), error.message().into())
    }

    fn expect_error<T: std::fmt::Debug>(result: JsResult<T>, name: &str, message: &str) {
        assert_eq!(thrown(result), (name.to_owned(), message.to_owned()));
    }

    fn s(text: &str) -> JsValue {
        JsValue::from_str(text)
    }

    fn bytes(data: &[u8]) -> JsValue {
        Uint8Array::from(data).into()
    }

    #[wasm_bindgen_test]
    fn constants_appended_to_the_entry_match_the_core() {
        let constants = include_str!("../../js/constants.js");
        for line in [
            format!("export const AF_INET = {};", inet::AF_INET),
            format!("export const AF_INET6 = {};", inet::AF_INET6),
        ] {
            assert!(constants.contains(&line), "constants.js lacks {line:?}");
        }
        assert_eq!((inet::AF_INET, inet::AF_INET6), (2, 10));
        let fast = include_str!("../../js/fast.js");
        let line = format!("const IO_LEN = {IO_LEN};");
        assert!(fast.contains(&line), "fast.js lacks {line:?}");
    }

    /// `_pton` of `text`, as `wasm/js/fast.js` calls it: the packed bytes, or `None` for 0.
    fn pton_via_buffer(family: i32, text: &str) -> Option<Vec<u8>> {
        IO.with(|io| io.borrow_mut()[..text.len()].copy_from_slice(text.as_bytes()));
        let length = pton_fast(family, text.len());
        (length > 0).then(|| IO.with(|io| io.borrow()[..length].to_vec()))
    }

    /// The text `_ntop6` left in the scratch buffer.
    fn text_in_buffer(length: usize) -> String {
        IO.with(|io| String::from_utf8(io.borrow()[..length].to_vec()).expect("ASCII"))
    }

    #[wasm_bindgen_test]
    fn fast_paths_agree_with_the_checked_ones() {
        for (family, text) in [
            (inet::AF_INET, "192.168.1.190"),
            (inet::AF_INET, "0.0.0.0"),
            (inet::AF_INET, "255.255.255.255"),
            (inet::AF_INET, "127.1"),
            (inet::AF_INET, "01.2.3.4"),
            (inet::AF_INET, "1.2.3.4\0"),
            (inet::AF_INET, ""),
            (inet::AF_INET6, "::"),
            (inet::AF_INET6, "::ffff:1.2.3.4"),
            (inet::AF_INET6, "2001:DB8::1"),
            (inet::AF_INET6, "1:2:3:4:5:6:7::"),
            (inet::AF_INET6, "1::2::3"),
            (inet::AF_INET6, "1.2.3.4"),
            (
                inet::AF_INET6,
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            ),
        ] {
            let checked = inet_pton(&family.into(), &s(text)).ok().map(Vec::from);
            assert_eq!(pton_via_buffer(family, text), checked, "{text:?}");
        }
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for round in 0..200 {
            // Zero runs, and the IPv4-mapped and -compatible forms.
            let mut words = [next(), next(), next(), next()];
            match round % 4 {
                0 => words[round / 4 % 4] = 0,
                1 => words[..3].copy_from_slice(&[0, 0, 0xffff]),
                2 => words[..3].copy_from_slice(&[0, 0, 0]),
                _ => words[1] &= 0xffff,
            }
            let length = ntop6_fast(words[0], words[1], words[2], words[3]);
            let packed: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let checked = inet_ntop(&inet::AF_INET6.into(), &bytes(&packed));
            assert_eq!(Some(text_in_buffer(length)), checked.ok());
        }
    }

    #[wasm_bindgen_test]
    fn inet_aton_values_and_errors() {
        assert_eq!(
            inet_aton(&s("192.168.1.190")).ok().as_deref(),
            Some(&[192, 168, 1, 190][..])
        );
        assert_eq!(
            inet_aton(&s("127.1")).ok().as_deref(),
            Some(&[127, 0, 0, 1][..])
        );
        assert_eq!(
            inet_aton(&s("0x7f.1")).ok().as_deref(),
            Some(&[127, 0, 0, 1][..])
        );
        expect_error(
            inet_aton(&s("x")),
            "OSError",
            "illegal IP address string passed to inet_aton",
        );
        expect_error(
            inet_aton(&5.into()),
            "TypeError",
            "inet_aton() argument 1 must be str, not int",
        );
        expect_error(
            inet_aton(&JsValue::NULL),
            "TypeError",
            "inet_aton() argument 1 must be str, not None",
        );
        expect_error(
            inet_aton(&true.into()),
            "TypeError",
            "inet_aton() argument 1 must be str, not bool",
        );
        expect_error(
            inet_aton(&bytes(b"1234")),
            "TypeError",
            "inet_aton() argument 1 must be str, not bytes",
        );
    }

    /// A JS string of UTF-16 code units, lone surrogates allowed (a Rust `&str` cannot hold
    /// them).
    fn units(units: &[u16]) -> JsValue {
        JsString::from_char_code(units).into()
    }

    #[wasm_bindgen_test]
    fn lone_surrogates_cannot_be_encoded() {
        expect_error(
            inet_aton(&units(&[0x31, 0x2e, 0xdcff])),
            "UnicodeEncodeError",
            "'utf-8' codec can't encode character '\\udcff' in position 2: surrogates not allowed",
        );
        // A real U+FFFD is encodable and only the address is wrong.
        expect_error(
            inet_aton(&s("\u{fffd}")),
            "OSError",
            "illegal IP address string passed to inet_aton",
        );
    }

    /// CPython's UTF-8 encoder reports the whole run of lone surrogates that starts at the
    /// first one, in code points (messages from python3).
    #[wasm_bindgen_test]
    fn a_run_of_lone_surrogates_is_reported_whole() {
        let encode =
            |what: &str| format!("'utf-8' codec can't encode {what}: surrogates not allowed");
        let (emoji_high, emoji_low) = (0xd83d, 0xde00);
        for (text, what) in [
            (&[0xdc00, 0xdc01][..], "characters in position 0-1"),
            (&[0xdfff, 0xd800, 0xd801], "characters in position 0-2"),
            (
                &[0x61, 0xdc00, 0x62, 0xdc01],
                "character '\\udc00' in position 1",
            ),
            // After a non-BMP character, which is one position.
            (
                &[emoji_high, emoji_low, 0xdc00, 0xdc01],
                "characters in position 1-2",
            ),
            // A high surrogate before a pair is lone; the pair ends the run.
            (
                &[0xd800, emoji_high, emoji_low, 0xdc00],
                "character '\\ud800' in position 0",
            ),
            (
                &[emoji_high, emoji_high, emoji_low, 0xdc00],
                "character '\\ud83d' in position 0",
            ),
            (
                &[0xdbff, 0xdbff, 0xdfff, 0xdfff],
                "character '\\udbff' in position 0",
            ),
            (&[0x31, 0, 0xd800, 0xd800], "characters in position 2-3"),
        ] {
            expect_error(inet_aton(&units(text)), "UnicodeEncodeError", &encode(what));
        }
    }

    #[wasm_bindgen_test]
    fn inet_ntoa_accepts_bytes_like_values() {
        assert_eq!(
            inet_ntoa(&bytes(&[192, 168, 1, 190])).ok().as_deref(),
            Some("192.168.1.190")
        );
        let buffer = Uint8Array::from(&[9, 127, 0, 0, 1, 9][..]).buffer();
        assert!(
            inet_ntoa(&buffer.clone().into()).is_err(),
            "6 bytes are not an IPv4 address"
        );
        let view = js_sys::DataView::new(&buffer, 1, 4);
        assert_eq!(inet_ntoa(&view.into()).ok().as_deref(), Some("127.0.0.1"));
        let words = js_sys::Uint16Array::new_with_byte_offset_and_length(&buffer, 2, 2);
        assert_eq!(inet_ntoa(&words.into()).ok().as_deref(), Some("0.0.1.9"));
        expect_error(
            inet_ntoa(&bytes(&[1, 2, 3])),
            "OSError",
            "packed IP wrong length for inet_ntoa",
        );
        expect_error(
            inet_ntoa(&s("x")),
            "TypeError",
            "a bytes-like object is required, not 'str'",
        );
        expect_error(
            inet_ntoa(&js_sys::Array::of4(&1.into(), &2.into(), &3.into(), &4.into()).into()),
            "TypeError",
            "a bytes-like object is required, not 'list'",
        );
        expect_error(
            inet_ntoa(&JsValue::UNDEFINED),
            "TypeError",
            "a bytes-like object is required, not 'NoneType'",
        );
        expect_error(
            inet_ntoa(&1.5.into()),
            "TypeError",
            "a bytes-like object is required, not 'float'",
        );
    }

    #[wasm_bindgen_test]
    fn inet_pton_and_ntop_round_trip() {
        let af_inet: JsValue = inet::AF_INET.into();
        let af_inet6: JsValue = inet::AF_INET6.into();
        let mut loopback6 = vec![0; 16];
        loopback6[15] = 1;
        assert_eq!(
            inet_pton(&af_inet6, &s("::1")).ok().map(Vec::from),
            Some(loopback6.clone())
        );
        assert_eq!(
            inet_ntop(&af_inet6, &bytes(&loopback6)).ok().as_deref(),
            Some("::1")
        );
        assert_eq!(
            inet_ntop(&af_inet, &bytes(&[127, 0, 0, 1])).ok().as_deref(),
            Some("127.0.0.1")
        );
        expect_error(
            inet_pton(&af_inet, &s("127.1")),
            "OSError",
            "illegal IP address string passed to inet_pton",
        );
        expect_error(
            inet_pton(&af_inet, &s("1.2.3.4\0")),
            "ValueError",
            "embedded null character",
        );
        expect_error(
            inet_ntop(&af_inet, &bytes(&[1, 2, 3])),
            "ValueError",
            "invalid length of packed IP address string",
        );
    }

    #[wasm_bindgen_test]
    fn integer_arguments_convert_as_python_does() {
        expect_error(
            inet_pton(&true.into(), &s("1.2.3.4")),
            "OSError",
            "[Errno 97] Address family not supported by protocol",
        );
        expect_error(
            inet_pton(&2.5.into(), &s("x")),
            "TypeError",
            "'float' object cannot be interpreted as an integer",
        );
        expect_error(
            inet_pton(&s("2"), &s("x")),
            "TypeError",
            "'str' object cannot be interpreted as an integer",
        );
        expect_error(
            inet_pton(&JsValue::NULL, &s("x")),
            "TypeError",
            "'NoneType' object cannot be interpreted as an integer",
        );
        expect_error(
            inet_pton(&2f64.powi(40).into(), &s("x")),
            "OverflowError",
            "signed integer is greater than maximum",
        );
        expect_error(
            inet_pton(&(-(2f64.powi(40))).into(), &s("x")),
            "OverflowError",
            "signed integer is less than minimum",
        );
        expect_error(
            inet_pton(&2f64.powi(70).into(), &s("x")),
            "OverflowError",
            "Python int too large to convert to C long",
        );
        expect_error(
            inet_pton(&JsValue::bigint_from_str("2"), &5.into()),
            "TypeError",
            "inet_pton() argument 2 must be str, not int",
        );
        expect_error(
            inet_pton(&JsValue::bigint_from_str("1180591620717411303424"), &s("x")),
            "OverflowError",
            "Python int too large to convert to C long",
        );
    }

    #[wasm_bindgen_test]
    fn services_by_name_and_port() {
        assert_eq!(getservbyname(&s("mysql"), &s("tcp")).ok(), Some(3306));
        assert_eq!(
            getservbyname(&s("http"), &JsValue::UNDEFINED).ok(),
            Some(80)
        );
        assert_eq!(
            getservbyport(&80.into(), &s("tcp")).ok().as_deref(),
            Some("http")
        );
        assert_eq!(
            getservbyport(&JsValue::bigint_from_str("443"), &JsValue::UNDEFINED)
                .ok()
                .as_deref(),
            Some("https")
        );
        expect_error(
            getservbyname(&s("no-such-service"), &JsValue::UNDEFINED),
            "OSError",
            "service/proto not found",
        );
        expect_error(
            getservbyname(&5.into(), &JsValue::UNDEFINED),
            "TypeError",
            "getservbyname() argument 1 must be str, not int",
        );
        expect_error(
            getservbyname(&s("http"), &5.into()),
            "TypeError",
            "getservbyname() argument 2 must be str, not int",
        );
        expect_error(
            getservbyport(&(-1).into(), &JsValue::UNDEFINED),
            "OverflowError",
            "getservbyport: port must be 0-65535.",
        );
        expect_error(
            getservbyport(&s("80"), &JsValue::UNDEFINED),
            "TypeError",
            "'str' object cannot be interpreted as an integer",
        );
        expect_error(
            getservbyport(&80.into(), &5.into()),
            "TypeError",
            "getservbyport() argument 2 must be str, not int",
        );
    }

    /// CPython converts the port to a C `int` (range check included) before it parses the
    /// protocol, and checks 0-65535 only after both (values from python3's `socket`).
    #[wasm_bindgen_test]
    fn getservbyport_checks_the_port_before_the_protocol() {
        let bad_protocol = || JsValue::from(5);
        expect_error(
            getservbyport(&2f64.powi(31).into(), &bad_protocol()),
            "OverflowError",
            "signed integer is greater than maximum",
        );
        expect_error(
            getservbyport(&JsValue::bigint_from_str("2147483648"), &bad_protocol()),
            "OverflowError",
            "signed integer is greater than maximum",
        );
        expect_error(
            getservbyport(&(-(2f64.powi(31)) - 1.0).into(), &bad_protocol()),
            "OverflowError",
            "signed integer is less than minimum",
        );
        expect_error(
            getservbyport(&2f64.powi(63).into(), &bad_protocol()),
            "OverflowError",
            "Python int too large to convert to C long",
        );
        expect_error(
            getservbyport(&2f64.powi(31).into(), &JsValue::UNDEFINED),
            "OverflowError",
            "signed integer is greater than maximum",
        );
        expect_error(
            getservbyport(&1.5.into(), &bad_protocol()),
            "TypeError",
            "'float' object cannot be interpreted as an integer",
        );
        // A C int that is no port: the protocol's type is reported first.
        for port in [2f64.powi(31) - 1.0, 65536.0, -1.0] {
            expect_error(
                getservbyport(&port.into(), &bad_protocol()),
                "TypeError",
                "getservbyport() argument 2 must be str, not int",
            );
        }
        expect_error(
            getservbyport(&80.into(), &bytes(b"tcp")),
            "TypeError",
            "getservbyport() argument 2 must be str, not bytes",
        );
        expect_error(
            getservbyport(&65536.into(), &JsValue::UNDEFINED),
            "OverflowError",
            "getservbyport: port must be 0-65535.",
        );
    }

    /// As Python's `None`, `null` is no protocol but a wrong type; `undefined` is what JS
    /// passes for an argument left out.
    #[wasm_bindgen_test]
    fn a_null_protocol_is_none_and_undefined_is_left_out() {
        expect_error(
            getservbyname(&s("http"), &JsValue::NULL),
            "TypeError",
            "getservbyname() argument 2 must be str, not None",
        );
        expect_error(
            getservbyport(&80.into(), &JsValue::NULL),
            "TypeError",
            "getservbyport() argument 2 must be str, not None",
        );
        assert_eq!(
            getservbyname(&s("http"), &JsValue::UNDEFINED).ok(),
            Some(80)
        );
        assert_eq!(
            getservbyport(&80.into(), &JsValue::UNDEFINED)
                .ok()
                .as_deref(),
            Some("http")
        );
    }

    /// CPython reads arguments in order, each completely (type, UTF-8, NUL), before the next.
    #[wasm_bindgen_test]
    fn getservbyname_refuses_a_nul_in_the_name_before_it_reads_the_protocol() {
        for protocol in [units(&[0x74, 0xd800]), JsValue::NULL, 5.into(), s("tcp")] {
            expect_error(
                getservbyname(&s("\0x"), &protocol),
                "ValueError",
                "embedded null character",
            );
        }
        expect_error(
            getservbyname(&units(&[0, 0xdc00]), &5.into()),
            "UnicodeEncodeError",
            "'utf-8' codec can't encode character '\\udc00' in position 1: surrogates not allowed",
        );
    }

    /// `value` as `tests/data/inet_js_cases.json` writes results: Uint8Arrays as arrays of
    /// numbers, inside objects too.
    fn plain(value: JsValue) -> JsValue {
        if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
            return js_sys::Array::from(bytes).into();
        }
        if value.is_object() {
            for entry in Object::entries(value.unchecked_ref()).iter() {
                let entry: js_sys::Array = entry.unchecked_into();
                let _ = Reflect::set(&value, &entry.get(0), &plain(entry.get(1)));
            }
        }
        value
    }

    /// An argument of the case file as the JS value it stands for (format: the generator).
    fn argument(value: JsValue) -> JsValue {
        if js_sys::Array::is_array(&value) || !value.is_object() {
            return value;
        }
        // `{"bytes": [...]}` or `{"dict": {}}`.
        let bytes = Reflect::get(&value, &s("bytes")).expect("an object");
        if bytes.is_undefined() {
            Object::new().into()
        } else {
            Uint8Array::new(&bytes).into()
        }
    }

    /// CPython's answers to arguments of every type (`tools/gen_inet_cases.py`), through the
    /// checked exports; only JS's JSON parser reads the file's lone surrogates. The cases of a
    /// wrong number of arguments are skipped: the JS entry counts them (`wasm/js/arity.js`),
    /// and tests/node/inet.test.mjs replays them there.
    #[wasm_bindgen_test]
    fn matches_cpython_on_arguments_of_every_type() {
        let text = include_str!("../../inet/tests/data/inet_js_cases.json");
        let data = js_sys::JSON::parse(text).expect("JSON");
        let cases: js_sys::Array = Reflect::get(&data, &s("cases"))
            .expect("cases")
            .unchecked_into();
        let mut wrong = Vec::new();
        let mut skipped = 0;
        for case in cases.iter() {
            let field = |key| Reflect::get(&case, &s(key)).expect("a case");
            let args: js_sys::Array = field("args").unchecked_into();
            let takes = match field("fn").as_string().as_deref() {
                Some("inet_pton" | "inet_ntop") => 2..=2,
                Some("getservbyname" | "getservbyport") => 1..=2,
                _ => 1..=1,
            };
            if !takes.contains(&args.length()) {
                skipped += 1;
                continue;
            }
            let arg = |i| argument(args.get(i));
            let got: JsResult<JsValue> = match field("fn").as_string().as_deref() {
                Some("inet_aton") => inet_aton(&arg(0)).map(|b| Uint8Array::from(&b[..]).into()),
                Some("inet_ntoa") => inet_ntoa(&arg(0)).map(JsValue::from),
                Some("inet_pton") => {
                    inet_pton(&arg(0), &arg(1)).map(|b| Uint8Array::from(&b[..]).into())
                }
                Some("inet_ntop") => inet_ntop(&arg(0), &arg(1)).map(JsValue::from),
                Some("getservbyname") => getservbyname(&arg(0), &arg(1)).map(JsValue::from),
                Some("getservbyport") => getservbyport(&arg(0), &arg(1)).map(JsValue::from),
                // Their objects are made in JS (arity.js): tests/node/inet.test.mjs replays
                // these cases, and the tests below check the lines they are made of.
                Some("address_facts" | "subnet") => {
                    skipped += 1;
                    continue;
                }
                other => panic!("unknown function {other:?}"),
            };
            let got = match got {
                Ok(value) => object(&[("ok", plain(value))]),
                Err(error) => {
                    let error: Error = error.unchecked_into();
                    let error = object(&[
                        ("type", error.name().into()),
                        ("message", error.message().into()),
                    ]);
                    object(&[("error", error.into())])
                }
            };
            let want = object(&[("ok", field("ok")), ("error", field("error"))]);
            let json = |value: &Object| {
                js_sys::JSON::stringify(value)
                    .ok()
                    .and_then(|t| t.as_string())
            };
            if json(&got) != json(&want) {
                wrong.push(format!(
                    "{:?}: {:?}, not {:?}",
                    json(&object(&[("fn", field("fn")), ("args", args.into())])),
                    json(&got),
                    json(&want)
                ));
            }
        }
        let compared = cases.length() - skipped;
        assert!(compared > 1000, "{compared} cases");
        assert!(
            wrong.is_empty(),
            "{} of {} differ:\n{}",
            wrong.len(),
            compared,
            wrong.join("\n")
        );
    }

    #[wasm_bindgen_test]
    fn address_facts_are_lines_in_the_order_of_the_object() {
        let facts = address_facts(&s("127.0.0.1")).expect("an address");
        assert_eq!(
            facts,
            "2\n127.0.0.1\n2130706433\n0x7f000001\n\
             01111111.00000000.00000000.00000001\nb'\\x7f\\x00\\x00\\x01'\nloopback"
        );
        let facts = address_facts(&s("::a")).expect("an address");
        assert_eq!(facts.lines().next(), Some("10"));
        // A byte 0x0a is escaped in the repr: no field holds a line break.
        assert_eq!(
            facts.lines().nth(5),
            Some(
                "b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\n'"
            )
        );
        assert_eq!(thrown(address_facts(&s("nope"))).0, "ValueError");
    }

    #[wasm_bindgen_test]
    fn subnet_is_lines_in_the_order_of_the_object() {
        let net = subnet(&s("192.168.1.0/24")).expect("a prefix");
        assert_eq!(
            net,
            "2\n24\n192.168.1.0\n255.255.255.0\n192.168.1.1\n192.168.1.254\n\
             192.168.1.255\n256\n254"
        );
        let net6 = subnet(&s("2001:db8::/32")).expect("a prefix");
        let fields: Vec<&str> = net6.lines().collect();
        assert_eq!(fields.len(), 9);
        assert_eq!((fields[0], fields[1], fields[6]), ("10", "32", ""));
        assert_eq!(thrown(subnet(&s("nope"))).0, "ValueError");
    }
}
