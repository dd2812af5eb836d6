#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/ (committed).

Run it again after changing it: `python3 fuzz/seeds/make_seeds.py`. The fuzzers' own corpora
grow in fuzz/corpus/<target>/ (ignored); these seeds only give them a valid starting point.
"""
import hashlib
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, seeds):
    out = os.path.join(HERE, target)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for seed in seeds:
        if isinstance(seed, str):
            seed = seed.encode()
        name = hashlib.sha1(seed).hexdigest()[:16]
        with open(os.path.join(out, name), "wb") as f:
            f.write(seed)


# --- inet_parsers: address text, service names, packed bytes -------------------------------
inet = [
    "192.168.1.190", "127.0.0.1", "0.0.0.0", "255.255.255.255", "127.1", "0x7f.1", "017.0.0.1",
    "0x7f000001", "2130706433", "1.2.3.4 junk", "1.2.3", "256.0.0.1", "01.2.3.4", "1.2.3.4\0",
    "::1", "::", "0:0:0:0:0:ffff:c0a8:1be", "::ffff:192.168.1.190", "::192.168.1.190",
    "1::2::3", "fe80::1%eth0", "2001:db8::1", "1:2:3:4:5:6:7:8", "1:0:0:2:0:0:0:3", "ff02::1",
    "192.168.1.77/24", "10.0.0.1/255.0.0.0", "10.0.0.1/0.0.0.255", "10.0.0.0/31", "1.2.3.4/32",
    "2001:db8::/32", "::/0", "::1/127", "1.2.3.4/0024", "100.64.0.1", "169.254.1.1", "3fff::1",
    "mysql/tcp", "www", "http/udp", "domain", "ssh/sctp", "nosuchservice",
    bytes([192, 168, 1, 190]), bytes(16), bytes([0] * 10 + [255, 255, 127, 0, 0, 1]),
    struct.pack("<iq", 2, 80) + b"\x01" + b"tcp",
    struct.pack("<iq", 10, 3306) + b"\x00" + bytes(16),
    struct.pack("<iq", -7, -1),
]
write("inet_parsers", inet)

# --- target_parser: TARGET \n ORIGIN-SETTING \n ORIGIN \n HOST ------------------------------
targets = [
    "127.0.0.1:65432", "[::1]:80", "[0:0:0:0:0:0:0:1]:7", "LocalHost:22", "echo", "ack",
    "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:080", "127.0.0.1",
    "127.1:80", "0x7f.0.0.1:80", "0177.0.0.1:80", "2130706433:80", "localhost.:80",
    "[fe80::1%eth0]:80", "::1:80", "1.2.3.4.5:80", "local host:80", "[::ffff:127.0.0.1]:65432",
    "a-b.example.org:443", "127.0.0.1 x:80", "0x7f:80", "xn--bcher-kva.example:8080",
    "127.0.0.1:65432\nhttps://docs.example\nhttps://docs.example:443\nrelay.example",
    "echo\n*\nhttp://evil.example\nrelay.example:8080",
    "x\n\nhttp://localhost:3000\nrelay.example:8080",
    "x\n\nHTTP://Relay.Example:8080\nrelay.example:8080",
    "x\n\nhttp://[::1]:5000\n127.0.0.1:8080",
    "x\nhttp://a.example:80\nhttp://a.example\n[::1]:8080",
    "x\nftp://a.example\nnull\nh",
    "x\nhttps://a.example/path\nfile://\n",
]
write("target_parser", targets)


# --- http_handshake: FLAGS BYTES ----------------------------------------------------------
def frame(opcode, payload=b"", fin=True, mask=b"\0\0\0\0", rsv=0):
    """A client frame (masked, as RFC 6455 requires of clients)."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


CLOSE = frame(8, struct.pack(">H", 1000) + b"bye")
frames = [
    frame(2, b"hello") + CLOSE,
    frame(1, b"hi there") + frame(9, b"ping") + CLOSE,
    frame(2, b"masked!", mask=b"\x12\x34\x56\x78") + CLOSE,
    frame(1, b"abc", fin=False) + frame(0, b"def") + CLOSE,
    frame(2, b"x" * 200) + frame(10, b"pong"),
    frame(2, b"y" * 1100) + CLOSE,  # over the fuzz relay's 1024-byte max message: 1009
    frame(2, b"unmasked", mask=None),  # clients must mask: protocol error
    frame(2, b"rsv", rsv=0x40),  # reserved bit without an extension
    frame(1, b"\xff\xfe"),  # invalid UTF-8 text
    frame(8, b"\x03"),  # one-byte close payload
    frame(8, struct.pack(">H", 999)),  # invalid close code
    b"\x82\xff" + struct.pack(">Q", 1 << 62) + b"\0\0\0\0",  # huge length
    frame(2, b"no close"),
    b"",
]
plain = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n",
    b"GET /api/targets HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 8\r\n\r\n",
    b"GET /ws?target=127.1:65432&token=a HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
    b"GET /ws?%zz HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
    b"POST /healthz HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /index.html HTTP/1.0\r\n\r\n",
    b"\r\n\r\nGET",
]
seeds = []
for flags in (1, 2, 3, 7):
    for i, f in enumerate(frames):
        chunking = (0x00, 0x40, 0x80, 0xC0)[i % 4]
        seeds.append(bytes([flags | chunking | ((i * 8) & 0x38)]) + f)
for flags in (4, 5, 6):
    for p in plain[:3]:
        seeds.append(bytes([flags]) + p)
for i, p in enumerate(plain):
    seeds.append(bytes([(i * 8) & 0x38]) + p)
write("http_handshake", seeds)
