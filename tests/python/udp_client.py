#!/usr/bin/env python3
"""Sends datagrams to a UDP echo server and checks each comes back unchanged.

usage: udp_client.py PORT
"""
import socket
import sys

PORT = int(sys.argv[1])
payloads = [b"Hello, world", b"\x00\xff" * 700, b"x"]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(5)
    for p in payloads:
        s.sendto(p, ("127.0.0.1", PORT))
        data, addr = s.recvfrom(65535)
        assert data == p, (data[:40], p[:40])
        assert addr == ("127.0.0.1", PORT), addr
print(f"echoed {len(payloads)} datagrams")
