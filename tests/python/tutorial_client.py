#!/usr/bin/env python3
"""The classic tutorial's echo client, unchanged but for the port taken from argv.

usage: tutorial_client.py PORT [MESSAGE]
"""
import socket
import sys

HOST = "127.0.0.1"  # The server's hostname or IP address
PORT = int(sys.argv[1])  # The port used by the server
MESSAGE = sys.argv[2].encode() if len(sys.argv) > 2 else b"Hello, world"

with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.settimeout(10)
    s.connect((HOST, PORT))
    s.sendall(MESSAGE)
    data = s.recv(1024)

print(f"Received {data!r}")
