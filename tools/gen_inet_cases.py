#!/usr/bin/env python3
r"""Record CPython's answers for the converter functions in wasm/inet/tests/data/.

Usage: python3 tools/gen_inet_cases.py [DIR]

Writes two files into DIR (default wasm/inet/tests/data):

  inet_cases.json     the core: every argument a value the Rust core takes (`&str` without lone
                      surrogates, bytes, integers). Replayed by wasm/inet/tests/python_oracle.rs
                      (native) and by tests/node/inet.test.mjs (the built module).
  inet_js_cases.json  the JS surface: arguments of any type, strings with lone surrogates,
                      None/null, omitted arguments, and every combination of bad arguments of
                      the functions that take two, to pin down which error CPython raises first
                      (it converts arguments in order, each completely: type, UTF-8, NUL); and
                      every function called with 0 to 2 more arguments than it takes (CPython
                      counts them before it converts any). Replayed by tests/node/inet.test.mjs
                      and wasm/converter/src/js.rs's wasm-bindgen tests (only JavaScript's JSON.parse reads
                      lone surrogates), which skip the wrong counts: the module's JS checks the
                      count (wasm/js/arity.js), not the wasm exports those tests call.

Python is the oracle: every expected value below comes from calling CPython's `socket` module
(glibc underneath) on this machine, or, for the two functions Python does not have, from a small
reference built on `socket` and `ipaddress` (see py_address_facts and py_subnet). The inputs are
hand-picked glibc/CPython corner cases plus random ones from a fixed seed, so the output is the
same on every run with the same Python, glibc and /etc/services (Debian netbase).

File format (JSON, UTF-8, one case per line inside "cases"):

  {
    "format": 1,
    "about": "...",
    "python": "3.11.7",              # sys.version of the oracle, for the record
    "cases": [ CASE, ... ]
  }

  CASE = {"fn": NAME, "args": [ARG, ...], "ok": VALUE}
       | {"fn": NAME, "args": [ARG, ...], "error": {"type": CLASS, "message": TEXT}}

  NAME and ARGs, in Python's argument order:
    "inet_aton"      [str]
    "inet_ntoa"      [bytes]
    "inet_pton"      [family, str]
    "inet_ntop"      [family, bytes]
    "getservbyname"  [name] or [name, proto]   (one argument = proto omitted)
    "getservbyport"  [port] or [port, proto]
    "address_facts"  [str]
    "subnet"         [str]
  In inet_cases.json:
  bytes   = a list of ints 0..255, in arguments and in results alike.
  family  = an int that fits in 32 bits (signed).
  port    = an int that fits in 53 bits (a JavaScript number), not always in 0..65535.
  str     = any string without lone surrogates (may contain NUL and non-ASCII characters).
  In inet_js_cases.json an ARG may be any of these, in any position (the JS value in brackets):
    a string, possibly with lone surrogates, as \udXXX escapes [the string JSON.parse reads;
      a surrogate pair in the file is one non-BMP character, in Python as in JavaScript];
    an integer, exact as a double [number]; a number with a fraction: a Python float [number];
    true/false: a Python bool [boolean]; null: None [null];
    a list: a Python list [Array]; {"bytes": [ints]}: Python bytes [Uint8Array];
    {"dict": {}}: an empty Python dict [a plain object {}].
  Results are as in inet_cases.json (bytes as lists of ints). Here "args" may also hold fewer or
  more arguments than the function takes, to be passed as they are (JS `f(...args)`); Python's
  TypeError for the count is the answer, and for address_facts and subnet the one CPython gives
  a function of one "s" argument (inet_aton's, with the function's name).

  VALUE per function: inet_aton / inet_pton -> bytes; inet_ntoa / inet_ntop -> str;
  getservbyname -> int; getservbyport -> str;
  address_facts -> {"family", "bytes", "canonical", "integer", "hex", "binary", "python_bytes",
                    "kind"}  (field meanings: wasm/inet/src/facts.rs)
  subnet        -> {"family", "prefix", "network", "netmask", "first_host", "last_host",
                    "broadcast" (null for IPv6), "size", "hosts"}  (see wasm/inet/src/subnet.rs)
  CLASS is one of "OSError", "ValueError", "TypeError", "OverflowError", "UnicodeEncodeError"
  (the last in inet_js_cases.json only); TEXT is str(exc).
"""

import ipaddress
import json
import os
import random
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(ROOT, "wasm", "inet", "tests", "data")
SEED = 0x50C4E7
AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6
assert (int(AF_INET), int(AF_INET6)) == (2, 10), "run this on Linux"

# UnicodeEncodeError is a ValueError; run() names the first of these in the exception's MRO.
CLASSES = ("OSError", "ValueError", "TypeError", "OverflowError", "UnicodeEncodeError")

# --------------------------------------------------------------------------------------------
# Reference implementations of the two functions beyond Python.
# --------------------------------------------------------------------------------------------

DOCUMENTATION = [
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
]


# The private/global split: CPython's lists since the 2024 fix (3.11.10, 3.12.4, 3.13;
# distributions backported it, e.g. Debian's 3.11.2). Spelled out here rather than read from
# ipaddress.is_private so that the recorded kinds do not depend on which Python runs this script
# (pyenv's 3.11.7, for one, still has the older lists); check_private_lists compares them with
# ipaddress whenever the running Python has the new implementation.
PRIVATE = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
        "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10",
    )
]
PRIVATE_EXCEPTIONS = [
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:3::/32",
        "2001:4:112::/48", "2001:20::/28", "2001:30::/28",
    )
]
SHARED = ipaddress.ip_network("100.64.0.0/10")  # neither private nor global


def within(a, nets):
    return any(a.version == n.version and a in n for n in nets)


def is_private(a):
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return within(a, PRIVATE) and not within(a, PRIVATE_EXCEPTIONS)


def is_global(a):
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    return not is_private(a) and not within(a, [SHARED])


def check_private_lists(samples):
    if not hasattr(ipaddress._IPv4Constants, "_private_networks_exceptions"):
        print("note: this Python's ipaddress has the pre-2024 private lists; using the "
              "script's own", file=sys.stderr)
        return
    for s in samples:
        a = ipaddress.ip_address(s)
        # Only is_private: CPython documents is_global of a mapped address as the IPv4
        # address's, but 3.11/3.12 compute it as `not is_private` (wrong for 100.64.0.0/10).
        if a.is_private != is_private(a):
            sys.exit(f"PRIVATE lists disagree with this Python's ipaddress on {s}")


def kind(a):
    """The precedence documented in wasm/inet/src/facts.rs."""
    if a.version == 6 and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if a.is_unspecified:
        return "unspecified"
    if a.is_loopback:
        return "loopback"
    if a.version == 4 and int(a) == 0xFFFFFFFF:
        return "broadcast"
    if a.is_multicast:
        return "multicast"
    if a.is_link_local:
        return "link-local"
    if within(a, DOCUMENTATION):
        return "documentation"
    if is_global(a):
        return "global"
    return "private"


def pton_any(s):
    """(family, packed) as inet_pton parses s, or None."""
    for fam in (AF_INET, AF_INET6):
        try:
            return int(fam), socket.inet_pton(fam, s)
        except (OSError, ValueError):
            pass
    return None


def ntop(packed):
    return socket.inet_ntop(AF_INET if len(packed) == 4 else AF_INET6, packed)


def str_converter(fn, value):
    """What CPython's conversion of a `str` argument raises before a NUL check, for the two
    functions Python does not have: a real converter's TypeError for another type (with the
    function's name), and the UnicodeEncodeError of lone surrogates. Their references read a
    NUL as any other character."""
    if not isinstance(value, str):
        try:
            socket.inet_aton(value)
        except TypeError as e:
            raise TypeError(str(e).replace("inet_aton()", f"{fn}()", 1)) from None
        raise AssertionError(f"inet_aton took {value!r}")
    value.encode("utf-8")


def py_address_facts(s):
    str_converter("address_facts", s)
    parsed = pton_any(s)
    if parsed is None:
        raise ValueError(f"{s!r} does not appear to be an IPv4 or IPv6 address")
    fam, b = parsed
    a = ipaddress.ip_address(b)
    if len(b) == 4:
        binary = ".".join(f"{x:08b}" for x in b)
    else:
        binary = ":".join(f"{int.from_bytes(b[i:i + 2], 'big'):016b}" for i in range(0, 16, 2))
    return {
        "family": fam,
        "bytes": list(b),
        "canonical": socket.inet_ntop(fam, b),
        "integer": str(int(a)),
        "hex": "0x" + b.hex(),
        "binary": binary,
        "python_bytes": repr(b),
        "kind": kind(a),
    }


def py_subnet(s):
    str_converter("subnet", s)
    err = ValueError(f"{s!r} does not appear to be an IPv4 or IPv6 network")
    addr = s.split("/", 1)[0]
    # Strict like inet_pton: ipaddress alone would also take "fe80::1%eth0/64".
    if pton_any(addr) is None:
        raise err
    try:
        n = ipaddress.ip_network(s, strict=False)
    except ValueError:
        raise err from None
    v4 = n.version == 4
    if n.num_addresses <= 1 << 16:
        hosts = list(n.hosts())
        first, last, count = hosts[0], hosts[-1], len(hosts)
    else:
        # Too many to list; the rule below is what the listed (small) networks show.
        first = n.network_address + 1
        last = n.broadcast_address - 1 if v4 else n.broadcast_address
        count = n.num_addresses - (2 if v4 else 1)
    return {
        "family": int(AF_INET if v4 else AF_INET6),
        "prefix": n.prefixlen,
        "network": ntop(n.network_address.packed),
        "netmask": ntop(n.netmask.packed),
        "first_host": ntop(first.packed),
        "last_host": ntop(last.packed),
        "broadcast": ntop(n.broadcast_address.packed) if v4 else None,
        "size": str(n.num_addresses),
        "hosts": str(count),
    }


FUNCS = {
    "inet_aton": lambda s: socket.inet_aton(s),
    "inet_ntoa": lambda b: socket.inet_ntoa(bytes(b)),
    "inet_pton": lambda f, s: socket.inet_pton(f, s),
    "inet_ntop": lambda f, b: socket.inet_ntop(f, bytes(b)),
    "getservbyname": lambda *a: socket.getservbyname(*a),
    "getservbyport": lambda *a: socket.getservbyport(*a),
    "address_facts": py_address_facts,
    "subnet": py_subnet,
}


def one_argument(fn, impl):
    """A function beyond Python called with any number of arguments, as CPython would take it
    if it were a function of one "s" argument: the count checked first, with the TypeError
    inet_aton raises (the same format), with the function's name."""

    def call(*args):
        if len(args) != 1:
            try:
                socket.inet_aton(*args)
            except TypeError as e:
                raise TypeError(str(e).replace("inet_aton()", f"{fn}()", 1)) from None
            raise AssertionError(f"inet_aton took {len(args)} arguments")
        return impl(*args)

    return call


# For inet_js_cases.json, whose arguments are Python values of any type as they are, in any
# number: CPython's own functions, so that a wrong count is CPython's TypeError.
JS_FUNCS = dict(
    FUNCS,
    inet_aton=socket.inet_aton,
    inet_ntoa=socket.inet_ntoa,
    inet_pton=socket.inet_pton,
    inet_ntop=socket.inet_ntop,
    address_facts=one_argument("address_facts", py_address_facts),
    subnet=one_argument("subnet", py_subnet),
)


def run(fn, args, funcs=FUNCS):
    try:
        r = funcs[fn](*args)
    except Exception as e:  # noqa: BLE001 - recording whatever Python raises is the point
        cls = next(c.__name__ for c in type(e).__mro__ if c.__name__ in CLASSES)
        return {"error": {"type": cls, "message": str(e)}}
    if isinstance(r, bytes):
        r = list(r)
    return {"ok": r}


# --------------------------------------------------------------------------------------------
# Inputs.
# --------------------------------------------------------------------------------------------

R = random.Random(SEED)
SPACES = " \t\n\x0b\x0c\r"

ATON_HAND = [
    "", " ", ".", "..", "0", "1", "00", "08", "09", "010", "0x", "0X", "0x0", "0xg", "0x.1",
    "1.2.3.4", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2.3.4.5", "127.1", "127.0.1", "0x7f.1",
    "0177.0.0.1", "0x7f000001", "2130706433", "017700000001", "4294967295", "4294967296",
    "0xffffffff", "0x100000000", "037777777777", "040000000000", "1.16777215", "1.16777216",
    "1.0xffffff", "1.0x1000000", "1.2.65535", "1.2.65536", "1.2.0xffff", "1.2.3.255",
    "1.2.3.256", "1.2.3.0377", "1.2.3.0400", "256.1", "255.1", "0x100.1", "0400.1",
    "1.2.3.4 ", "1.2.3.4  junk", "1.2.3.4\tx", "1.2.3.4\nx", "1.2.3.4\x0bx", "1.2.3.4\x0cx",
    "1.2.3.4\rx", "1 .2", "1 2", "1\t", " 1.2.3.4", "\t1", "1.2.3.4x", "1.2.3.4/24",
    "1.2.3.4:80", "1.2.3.4\x85", "1.2.3.4\xa0", "1.2.3.4\u2028", "\u0663.1.1.1", "1.2.3.\u0664",
    "1.2.3.4\x00", "\x00", "1.2.3.4 \x00", "1.2.3.4 x\x00y", "\x001.2.3.4", "1\x00.2",
    "-1", "+1", "1.-2", "1.+2", "1.2.3.-4", "0x-1", "0x+1", " 0x1", "0x 1", "1.0x", "1.0x.2",
    "00000000000000000000000000000000000000001", "0x0000000000000000000000000000001",
    "99999999999999999999999999", "0xfffffffffffffffffff", "18446744073709551615",
    "18446744073709551616", "1.2.3.4.", "0.0.0.0", "255.255.255.255", "0377.0377.0377.0377",
    "0xff.0xff.0xff.0xff", "0XFF.0Xff.0xFf.0xfF", "012.034.056.070", "1.2.3.08", "1.2.3.09",
    "1.2.3.0x", "1.2.3.0x1", "1.2.3.0x100", "localhost", "::1", "1e3", "1_000", "١٢٣",
    "1.2.3.4\u00e9", "\u00e91.2.3.4",
]

PTON4_HAND = [
    "0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.02.3.4", "1.2.3.04", "00.1.1.1",
    "0.00.0.0", "1.2.3", "1.2.3.4.5", "1.2.3.4.", ".1.2.3.4", "1..2.3.4", "256.1.1.1",
    "1.2.3.256", "1.2.3.1000", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n", "127.1", "0x7f.0.0.1",
    "1.2.3.4\x00", "1.2.3.4\x00x", "\x00", "", ".", "...", "1.2.3.-4", "1.2.3.+4", "1.2.3.٤",
    "1.2.3.4/32", "192.168.1.190", "999.1.1.1", "25.25.25.25", "255.255.255.2555",
]

PTON6_HAND = [
    "::", "::1", "1::", "::ffff:1.2.3.4", "::FFFF:1.2.3.4", "::1.2.3.4", "::0.0.0.0",
    "::ffff:0.0.0.0", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
    "1::3:4:5:6:7:8", "1:2:3:4:5:6::8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:",
    ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8",
    "1::2::3", ":::", "::::", "1:::2", ":1::", "::1:", "1:", ":", "1", "", "12345::",
    "::12345", "0000::", "00000::", "::0000", "::00000", "ffff::", "FFFF::", "fFfF::",
    "g::", "::g", "::ffff:01.2.3.4", "::ffff:1.2.3", "::ffff:1.2.3.4.5", "::ffff:256.1.1.1",
    "::ffff:1.2.3.4:1", "::1.2.3.4:1", "1.2.3.4::", "1.2.3.4", "::1.2.3.4.", "::.1.2.3",
    "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5::1.2.3.4",
    "1:2:3:4:5:6::1.2.3.4", "::1:2:3:4:5:1.2.3.4", "::1:2:3:4:5:6:1.2.3.4", "::a.2.3.4",
    "::1234.1.1.1", "::12345.1.1.1", "::ffff:1.2.3.4%eth0", "fe80::1%eth0", "fe80::1%1",
    "[::1]", "::1/128", " ::1", "::1 ", "::1\x00", "\x00::1", "::0x1", "::-1", "::+1",
    "2001:db8::1", "2001:DB8:0:0:0:0:0:1", "2001:0db8:0000:0000:0000:0000:0000:0001",
    "fe80::", "fe80:0:0:0:0:0:0:0", "::ffff:c0a8:1be", "0:0:0:0:0:ffff:192.168.1.190",
    "::ffff:192.168.1.190", "64:ff9b::192.0.2.33", "1::2:3:4:5:6:7", "1:2::3:4:5:6:7",
    "::١", "fe80::\u00e9", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:1.2.3.4",
    "::1.2.3.4.", "::1..2.3", "::1.2..3", "::01.2.3.4", "::1.02.3.4", "::0.0.0.01",
]

# Long texts, for inet_aton and inet_pton of both families: runs of leading zeros that strtoul
# and inet_pton read digit by digit (a value, an overflow, or too many hex digits), junk and a
# NUL far past the space where inet_aton stops reading, and far too many parts or groups.
LONG_HAND = [
    "0" * 300, "0" * 300 + "1.2.3.4", "0x" + "0" * 300 + "ff.1", "0" * 300 + "377.0x" + "0" * 300,
    "1" + "0" * 300, "1.2.3.4" + " " * 300, "1.2.3.4 " + "x" * 300 + "\x00", "1." * 150 + "1",
    "::" + "0" * 300 + "1", "0:" * 150 + "0", ":" * 300, "::ffff:" + "0" * 300 + "1.2.3.4",
]

NTOP6_HAND = [
    "::", "::1", "::2", "::ffff:0:0", "::0.1.0.0", "::1:0:0", "::ffff:1.2.3.4", "::1.2.3.4",
    "1::", "1:0:1::", "1:0:0:1::", "1::1:0:0:1", "1:0:0:1:0:0:1:0", "0:0:1::", "::1:0:0:0",
    "0:0:0:0:0:ffff::", "::ffff:0:1", "::fffe:1.2.3.4", "1::ffff:1.2.3.4", "::ffff",
    "::ffff:0", "ffff::", "0:1:0:0:0:0:0:0", "1:2:3:4:5:6:7:8", "2001:db8::1",
    "fe80::1:2:3:4", "0:0:0:1::", "::0:0:1:0:0", "a:b:c:d:e:f:10:11",
]

SERVICE_PROTOS = [None, "tcp", "udp", "sctp", "ddp"]
ODD_PROTOS = ["", "TCP", "Udp", "icmp", "tcp ", " tcp", "tc", "tcpx", "udp\x00", "t\x00cp",
              "\u00e9"]


def rand_number_text(r, value):
    """value in a random C base, with random leading zeros, as strtoul(..., 0) reads it."""
    base = r.choice(["dec", "dec", "oct", "hex", "HEX"])
    if base == "dec":
        return str(value)
    if base == "oct":
        return "0" * r.choice([1, 1, 1, 2, 5]) + format(value, "o")
    return (
        r.choice(["0x", "0X"]) + "0" * r.choice([0, 0, 1, 3]) + format(value, r.choice("xX"))
    )


def rand_aton(r):
    nparts = r.choice([1, 2, 3, 4, 4, 4, 4, 5])
    parts = []
    for i in range(nparts):
        last = i == nparts - 1
        cap = r.choice(
            [0xFF, 0xFF, 0xFF, 0x1FF]
            if not last
            else [0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, 0xFFFFFFFF, 0x100000000]
        )
        v = r.choice([0, cap, r.randint(0, cap), r.randint(0, cap)])
        if r.random() < 0.02:
            v = r.randint(0, 10**25)
        parts.append(rand_number_text(r, v))
    s = ".".join(parts)
    roll = r.random()
    if roll < 0.15:
        s += r.choice(SPACES) + rand_junk(r, r.randint(0, 6))
    elif roll < 0.25:
        s += rand_junk(r, r.randint(1, 3))
    elif roll < 0.30:
        s = r.choice(SPACES + "+-.") + s
    if r.random() < 0.25:
        s = mutate(r, s, "0123456789abcdefxX.8 \t\x0b-+")
    return s


def rand_junk(r, n):
    return "".join(r.choice("abcxyz0189.:/ \t\x0b\x0c\x00\u00e9\u0663") for _ in range(n))


def mutate(r, s, alphabet):
    for _ in range(r.randint(1, 3)):
        op = r.randrange(6)
        i = r.randint(0, len(s))
        if op == 0 and s:
            i = r.randrange(len(s))
            s = s[:i] + s[i + 1:]
        elif op == 1:
            s = s[:i] + r.choice(alphabet) + s[i:]
        elif op == 2 and s:
            i = r.randrange(len(s))
            s = s[:i] + r.choice(alphabet) + s[i + 1:]
        elif op == 3:
            s = s[:i]
        elif op == 4 and s:
            i = r.randrange(len(s))
            s = s[:i] + s[i] + s[i:]
        else:
            s = s + r.choice(alphabet)
    return s


def rand_v6_bytes(r):
    out = b""
    for _ in range(8):
        c = r.random()
        if c < 0.45:
            w = 0
        elif c < 0.55:
            w = 0xFFFF
        elif c < 0.75:
            w = r.randint(1, 0xFF)
        else:
            w = r.randint(0, 0xFFFF)
        out += w.to_bytes(2, "big")
    if r.random() < 0.15:  # IPv4-mapped / -compatible neighbours
        out = bytes(10) + r.choice([b"\xff\xff", b"\x00\x00", b"\xff\xfe"]) + out[12:]
    return out


def rand_v6_text(r, b, valid=False):
    """A text form of b: canonical, full, or "::" over a random zero run (valid), or, unless
    valid is set, "::" inserted anywhere (mostly invalid)."""
    words = [int.from_bytes(b[i:i + 2], "big") for i in range(0, 16, 2)]
    style = r.randrange(4 if valid else 5)
    if style == 0:
        return socket.inet_ntop(AF_INET6, b)

    def fmt(w):
        return format(w, r.choice(["x", "x", "X", "04x"]))

    if style == 1:
        return ":".join(fmt(w) for w in words)
    tail4 = r.random() < 0.3
    groups = [fmt(w) for w in words[:6]] if tail4 else [fmt(w) for w in words]
    if tail4:
        groups.append(".".join(str(x) for x in b[12:]))
    # "::" over a random stretch of zero groups (possibly empty: an invalid text).
    zero_runs = [i for i, w in enumerate(words[: len(groups)]) if w == 0]
    if zero_runs and style != 4:
        start = r.choice(zero_runs)
        end = start
        while end + 1 < len(groups) and words[end + 1] == 0 and r.random() < 0.8:
            end += 1
        return ":".join(groups[:start]) + "::" + ":".join(groups[end + 1:])
    start = r.randint(0, len(groups))
    return ":".join(groups[:start]) + "::" + ":".join(groups[start:])


def rand_v6(r):
    s = rand_v6_text(r, rand_v6_bytes(r))
    if r.random() < 0.35:
        s = mutate(r, s, "0123456789abcdefABCDEFg:::..%/ \x00")
    return s


def all_strings(alphabet, max_len):
    out = [""]
    level = [""]
    for _ in range(max_len):
        level = [p + c for p in level for c in alphabet]
        out += level
    return out


def services():
    """[(names, port, proto)] of /etc/services, in file order."""
    out = []
    with open("/etc/services", encoding="ascii") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2:
                port, proto = fields[1].split("/")
                out.append(([fields[0]] + fields[2:], int(port), proto))
    return out


def special_addresses(r):
    """Edges and insides of every network the kind rules name, plus their neighbours."""
    nets = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.0.8/29", "192.0.0.170/31", "192.0.2.0/24",
        "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "233.252.0.0/24", "240.0.0.0/4",
        "255.255.255.255/32", "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b::/96",
        "64:ff9b:1::/48", "100::/64", "2001::/23", "2001::/32", "2001:1::1/128",
        "2001:1::2/128", "2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:10::/28",
        "2001:20::/28", "2001:30::/28", "2001:db8::/32", "2002::/16", "3fff::/20",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    ]
    out = []
    for text in nets:
        n = ipaddress.ip_network(text)
        lo, hi = int(n.network_address), int(n.broadcast_address)
        top = (1 << n.max_prefixlen) - 1
        for v in (lo, hi, r.randint(lo, hi), lo - 1, hi + 1):
            if 0 <= v <= top:
                out.append(str(ipaddress.ip_address(v) if n.version == 4 else
                               ipaddress.IPv6Address(v)))
    # The same for IPv4 through IPv4-mapped IPv6 addresses.
    for s in list(out):
        if "." in s and ":" not in s:
            out.append("::ffff:" + s)
    return out


def build_cases():
    r = R
    cases = []

    def add(fn, *args):
        cases.append((fn, list(args)))

    # inet_aton
    for s in ATON_HAND + LONG_HAND:
        add("inet_aton", s)
    for s in all_strings("0x. 8", 4):
        add("inet_aton", s)
    for _ in range(1700):
        add("inet_aton", rand_aton(r))

    # inet_ntoa
    for b in ([], [1, 2, 3], [1, 2, 3, 4], [0] * 4, [255] * 4, [1, 2, 3, 4, 5], [0] * 16):
        add("inet_ntoa", b)
    for _ in range(400):
        n = r.choice([4, 4, 4, r.randint(0, 20)])
        add("inet_ntoa", [r.choice([0, 255, r.randrange(256)]) for _ in range(n)])

    # inet_pton
    for s in PTON4_HAND:
        add("inet_pton", 2, s)
        add("inet_pton", 10, s)
    for s in PTON6_HAND:
        add("inet_pton", 10, s)
        add("inet_pton", 2, s)
    for s in LONG_HAND:
        add("inet_pton", 2, s)
        add("inet_pton", 10, s)
    for s in all_strings("0:.a", 5):
        add("inet_pton", 10, s)
    for s in all_strings("1.0 ", 4):
        add("inet_pton", 2, s)
    for _ in range(800):
        add("inet_pton", 2, rand_aton(r) if r.random() < 0.5 else
            mutate(r, ".".join(str(r.randint(0, 300)) for _ in range(4)), "0123456789. x"))
    for _ in range(1600):
        add("inet_pton", 10, rand_v6(r))
    for fam in (0, 1, 3, 17, 23, 28, -1, 2**31 - 1, -(2**31)):
        for s in ("1.2.3.4", "::1", "", "junk", "1.2.3.4\x00"):
            add("inet_pton", fam, s)

    # inet_ntop
    for s in NTOP6_HAND:
        add("inet_ntop", 10, list(socket.inet_pton(AF_INET6, s)))
    for mask in range(256):  # every pattern of zero / non-zero groups
        for filler in (1, 0xFFFF, r.randint(1, 0xFFFF)):
            words = [filler if mask >> i & 1 else 0 for i in range(8)]
            add("inet_ntop", 10, list(b"".join(w.to_bytes(2, "big") for w in words)))
    for _ in range(700):
        add("inet_ntop", 10, list(rand_v6_bytes(r)))
    for _ in range(300):
        add("inet_ntop", 2, [r.randrange(256) for _ in range(4)])
    for _ in range(300):
        fam = r.choice([2, 10, 2, 10, 0, 1, 3, 23, -1, 2**31 - 1, -(2**31)])
        add("inet_ntop", fam, [r.randrange(256) for _ in range(r.randint(0, 20))])

    # getservbyname / getservbyport
    table = services()
    names = []
    for ns, _, _ in table:
        for n in ns:
            if n not in names:
                names.append(n)
    for n in names:
        for p in SERVICE_PROTOS:
            add("getservbyname", *([n] if p is None else [n, p]))
    for n in ("", "http\x00", "\x00", "HTTP", "Http", "http ", " http", "80", "www.",
              "\u00e9", "kerberos5", "krb5", "sink", "null", "echo", "rtmp", "amqp"):
        for p in SERVICE_PROTOS + ODD_PROTOS[:4]:
            add("getservbyname", *([n] if p is None else [n, p]))
    for _ in range(400):
        n = r.choice(names)
        n = mutate(r, n, "abcdefghijklmnopqrstuvwxyz-0123456789ABC") if r.random() < 0.6 else n
        p = r.choice(SERVICE_PROTOS + ODD_PROTOS)
        add("getservbyname", *([n] if p is None else [n, p]))
    ports = []
    for _, port, _ in table:
        if port not in ports:
            ports.append(port)
    for port in ports:
        for p in SERVICE_PROTOS:
            add("getservbyport", *([port] if p is None else [port, p]))
    edge_ports = [0, 1, -1, 65535, 65536, -65535, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
                  2**32, -(2**32), 2**53 - 1, -(2**53) + 1, 10**12]
    for port in edge_ports:
        for p in (None, "tcp", "t\x00"):
            add("getservbyport", *([port] if p is None else [port, p]))
    for _ in range(500):
        port = r.choice([r.randrange(65536), r.randrange(1024), r.choice(ports),
                         r.randint(-(2**40), 2**40)])
        p = r.choice(SERVICE_PROTOS + ODD_PROTOS)
        add("getservbyport", *([port] if p is None else [port, p]))

    # address_facts
    facts_hand = [
        "192.168.1.190", "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3", "8.8.8.8",
        "::1", "::", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::ffff:192.168.1.190",
        "::127.0.0.1", "2001:db8::1", "fe80::1", "ff02::1", "2606:4700::1111", "39.0.0.39",
        "34.34.34.34", "92.10.39.34", "10.9.34.39", "127.1", "0x7f.0.0.1", "01.2.3.4",
        "fe80::1%eth0", "1.2.3.4/24", "", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\x00", "x'y", 'x"y',
        "x'\"y", "a\\b", "\t\n\r\x7f\x85\xa0\xad\xe9", "\u00e9", "1::2::3",
    ]
    specials = special_addresses(r)
    check_private_lists(specials)
    for s in facts_hand + specials:
        add("address_facts", s)
    for _ in range(250):
        add("address_facts", socket.inet_ntop(AF_INET, r.randbytes(4)))
        add("address_facts", rand_v6_text(r, rand_v6_bytes(r), valid=True))
    for _ in range(150):
        s = r.choice([rand_aton(r), rand_v6(r)])
        add("address_facts", mutate(r, s, "0123456789abcdef.:'\"\\ \t/x%"))

    # subnet
    subnet_hand = [
        "192.168.1.0/24", "192.168.1.77/24", "192.168.1.190", "10.0.0.0/8", "10.0.0.0/31",
        "10.0.0.1/31", "10.0.0.1/32", "10.0.0.0/30", "0.0.0.0/0", "1.2.3.4/0",
        "255.255.255.255/32", "1.2.3.4/255.255.255.0", "1.2.3.4/0.0.0.255",
        "1.2.3.4/255.255.255.255", "1.2.3.4/0.0.0.0", "1.2.3.4/255.0.255.0",
        "1.2.3.4/0.255.0.0", "1.2.3.4/024", "1.2.3.4/0000000000000000000024", "1.2.3.4/33",
        "1.2.3.4/99999999999999999999", "1.2.3.4/", "1.2.3.4//24", "1.2.3.4/24/24",
        "/24", "1.2.3.4/ 24", "1.2.3.4/24 ", "1.2.3.4/+24", "1.2.3.4/-1", "1.2.3.4/2\u0664",
        "1.2.3.4/\u00b2", "127.1/8", "01.2.3.4/8", "2001:db8::/32", "2001:db8::1/32",
        "2001:db8::/126", "2001:db8::/127", "2001:db8::1/127", "2001:db8::/128", "::/0",
        "::1/0", "::/128", "::1", "::ffff:1.2.3.4/120", "::ffff:1.2.3.4/96", "fe80::1/64",
        "fe80::1%eth0/64", "2001:db8::/129", "2001:db8::/ffff::", "2001:db8::/0128",
        "2001:db8::/255.255.255.0", "ff02::1/16", "1.2.3.4/32/", "", "/", "x'y/1",
    ]
    for s in subnet_hand:
        add("subnet", s)
    for _ in range(350):
        a = socket.inet_ntop(AF_INET, r.randbytes(4))
        prefix = r.choice([r.randint(0, 32), r.randint(24, 32), r.randint(0, 34)])
        if r.random() < 0.15:
            mask = (0xFFFFFFFF << (32 - min(prefix, 32))) & 0xFFFFFFFF
            if r.random() < 0.5:
                mask ^= 0xFFFFFFFF
            tail = socket.inet_ntop(AF_INET, mask.to_bytes(4, "big"))
        else:
            tail = str(prefix)
        add("subnet", a + r.choice(["/", "/", "/", "/0"]) + tail)
    for _ in range(350):
        a = rand_v6_text(r, rand_v6_bytes(r), valid=True)
        prefix = r.choice([r.randint(0, 128), r.randint(112, 128), r.randint(0, 130)])
        add("subnet", f"{a}/{prefix}")
    for _ in range(100):
        s = r.choice([f"{rand_aton(r)}/{r.randint(0, 40)}", f"{rand_v6(r)}/{r.randint(0, 140)}"])
        add("subnet", mutate(r, s, "0123456789abcdef.:/ x%'"))

    return dedup(cases)


# --------------------------------------------------------------------------------------------
# The JS surface: argument conversion (inet_js_cases.json).
# --------------------------------------------------------------------------------------------

# Strings with lone surrogates, and some with surrogate pairs only (non-BMP characters, which
# encode): runs of one to five, high and low mixed, after non-BMP characters (Python's positions
# count code points, not UTF-16 units), pairs next to lone halves, several runs (the first is
# reported), with NUL (the surrogate is reported: CPython encodes before it looks for NUL).
SURROGATE_TEXTS = [
    "\udc00", "\ud800", "\udfff", "\udbff", "\udc00\udc01", "\ud800\ud800", "\udfff\ud800",
    "\udc00\udbff", "\ud800\ud801\ud802", "\udc80\udc81\udc82\udc83\udc84", "a\udc00b\udc01",
    "ab\udc80\udc81\udc82", "1.2.3.\udcff", "1.2\udc80", "::1\ud800\ud800", "\ud800::1",
    "\U0001f600\udc00", "\U0001f600\udc00\udc01", "\U0001f600\U0001f600\ud800x\udc00",
    "\U0001f600" * 3 + "\udc80\udc81", "\udc00\U00010000\udc00", "\udbff\U0010ffff",
    "\U0010ffff\udfff", "\udbff\U0010ffff\udfff", "\ud83d\U0001f600\ude00",
    "\udc00\U0001f600\udc00\udc00", "\u00e9\udc00\u0663\ud800\udbff", "\udc00\x00", "\x00\udc00",
    "1\x00\ud800\ud800", "1" * 9 + "\ud800", "1" * 10 + "\udc01\ud800",
    "1" * 99 + "\udc00\udc00", "\U0001f600" * 70 + "\udc00", "\U0001f600", "1.2.3.4\U0001f600",
    "\U0001f600::1", "http\U0001f600",
]
# (Only printable non-BMP characters where the text may reach address_facts' or subnet's repr
# in an error message: their repr treats every character beyond Latin-1 as printable.)

# Values for each kind of parameter, good and bad: for every function of two arguments every
# pair is recorded, so which argument's error CPython raises first is pinned down.
OMITTED = object()
FAMILY_VALUES = [2, 10, 7, True, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63,
                 -(2**63), -(2**63) - 2**11, 2**70, 2.5, "2", None, b"\x02", [2], {}]
STR_VALUES = ["1.2.3.4", "::1", "127.1", "x", "", "1.2.3.4\x00", "\x00x", "\udc00", "\udc00\udc01",
              "\udc00\x00", "\x00\udc00", "1.2.3.4\U0001f600", 5, 2.5, True, None, b"1.2.3.4",
              ["1.2.3.4"], {}]
BYTES_VALUES = [b"\x7f\0\0\1", bytes(15) + b"\1", b"\1\2\3", b"", "1.2.3.4", "\udc00", 5, 2.5, True,
                None, [127, 0, 0, 1], {}]
NAME_VALUES = ["http", "domain", "nope", "", "\x00x", "ht\x00", "\udc00\udc01", "\ud800\x00",
               "tc\ud800p", "http\U0001f600", 80, 2.5, True, None, b"http", ["http"], {}]
PROTO_VALUES = [OMITTED, "tcp", "udp", "nope", "", "t\x00", "\x00", "tc\ud800p", "\udfff\ud800",
                "tcp\U0010ffff", 6, 2.5, True, None, b"tcp", ["tcp"], {}]
PORT_VALUES = [80, 53, 0, 65535, 65536, 70000, -1, True, False, 2**31 - 1, 2**31, -(2**31),
               -(2**31) - 1, 2**63, -(2**63), 2**70, 2.5, "80", None, b"P", [80], {}]
# Good arguments of each function, all it takes; and values to call it with any number of.
GOOD_ARGS = {
    "inet_aton": ["1.2.3.4"],
    "inet_ntoa": [b"\x7f\0\0\1"],
    "inet_pton": [10, "::1"],
    "inet_ntop": [2, b"\x7f\0\0\1"],
    "getservbyname": ["http", "tcp"],
    "getservbyport": [80, "tcp"],
    "address_facts": ["::1"],
    "subnet": ["10.0.0.0/8"],
}
COUNT_VALUES = [["x", None, 5], [None] * 4, ["\udc00\udc01", 2.5, {}, b"\0"],
                [2**70, "\x00", [], True]]


def js_value(v):
    """v as inet_js_cases.json writes it (format at the top); refuses what JS cannot hold."""
    if isinstance(v, bytes):
        return {"bytes": list(v)}
    if isinstance(v, dict):
        assert v == {}, v
        return {"dict": {}}
    if isinstance(v, list):
        return [js_value(x) for x in v]
    if isinstance(v, str):
        # A high surrogate followed by a low one would be read back as one non-BMP character.
        units = v.encode("utf-16-le", "surrogatepass")
        assert units.decode("utf-16-le", "surrogatepass") == v, f"not a JS string: {v!r}"
    elif isinstance(v, float):
        assert v != int(v), f"{v} reads back as an int"
    elif isinstance(v, int) and not isinstance(v, bool):
        assert float(v) == v, f"{v} is not exact as a double"
    return v


def build_js_cases():
    cases = []

    def add(fn, *args):
        cases.append((fn, [a for a in args if a is not OMITTED]))

    for text in SURROGATE_TEXTS:
        add("inet_aton", text)
        for fam in (2, 10, 7):
            add("inet_pton", fam, text)
        add("getservbyname", text)
        add("getservbyname", text, "tcp")
        add("getservbyname", "http", text)
        add("getservbyport", 80, text)
        add("getservbyport", 70000, text)
        add("address_facts", text)
        add("subnet", text)
        add("subnet", text + "/24")
    for v in STR_VALUES:
        add("inet_aton", v)
        add("address_facts", v)
        add("subnet", v)
    for v in BYTES_VALUES:
        add("inet_ntoa", v)
    for f in FAMILY_VALUES:
        for v in STR_VALUES:
            add("inet_pton", f, v)
        for v in BYTES_VALUES:
            add("inet_ntop", f, v)
    for n in NAME_VALUES:
        for p in PROTO_VALUES:
            add("getservbyname", n, p)
    for port in PORT_VALUES:
        for p in PROTO_VALUES:
            add("getservbyport", port, p)
    # Every count from none to two too many, of good values then others and of bad values only:
    # the count is checked before any argument is converted, so its TypeError comes first.
    for fn, good in GOOD_ARGS.items():
        for n in range(len(good) + 3):
            for values in [good + COUNT_VALUES[0]] + COUNT_VALUES[1:]:
                add(fn, *values[:n])
    return dedup(cases)


def dedup(cases):
    """The cases without repeats, keeping the first occurrence (and so the hand-picked order)."""
    seen = set()
    out = []
    for fn, args in cases:
        key = repr([fn, args])
        if key not in seen:
            seen.add(key)
            out.append((fn, args))
    return out


def write_cases(dst, cases, about, encode=lambda args: args, funcs=FUNCS):
    lines = []
    counts = {}
    for fn, args in cases:
        case = {"fn": fn, "args": encode(args)}
        case.update(run(fn, args, funcs))
        lines.append(json.dumps(case, ensure_ascii=True, separators=(",", ":")))
        counts[fn] = counts.get(fn, 0) + 1
    header = {"format": 1, "about": about, "python": sys.version.split()[0]}
    with open(dst, "w", encoding="ascii", newline="\n") as f:
        f.write(json.dumps(header, separators=(",", ":"))[:-1])
        f.write(',"cases":[\n')
        f.write(",\n".join(lines))
        f.write("\n]}\n")
    print(f"{dst}: {len(lines)} cases {counts}, {os.path.getsize(dst)} bytes", file=sys.stderr)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR
    write_cases(
        os.path.join(out, "inet_cases.json"),
        build_cases(),
        "CPython socket/ipaddress answers recorded by tools/gen_inet_cases.py; "
        "the format is documented at the top of that script",
    )
    write_cases(
        os.path.join(out, "inet_js_cases.json"),
        build_js_cases(),
        "CPython's answers to arguments of every type, recorded by tools/gen_inet_cases.py; "
        "the format is documented at the top of that script",
        lambda args: [js_value(a) for a in args],
        JS_FUNCS,
    )


if __name__ == "__main__":
    main()
