#!/usr/bin/env python3
"""A client of the relay that vanishes, as a closed laptop or a dropped network does, while its
target keeps sending: does the relay find it within the heartbeat's timeout?

Runs inside a network namespace of its own (`unshare --net python3 vanished_client.py RELAY
INTERVAL TIMEOUT`), whose loopback is the only interface: 127.0.0.1 for the relay and the
target, 127.0.0.2 for the client, each its own /32. Taking 127.0.0.2 away leaves the client's
socket open and silent and makes everything sent to it undeliverable, with no reset or ICMP
error to tell the relay: only the missing acknowledgements do.

Prints one JSON object: how long after the client vanished the relay logged the bridge's end
(and the line), and what the target saw then; `null` for what did not happen in the wait.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

WAIT = 20.0


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def main():
    relay_bin, interval, timeout = sys.argv[1], sys.argv[2], sys.argv[3]
    ip("link", "set", "lo", "up")
    ip("addr", "del", "127.0.0.1/8", "dev", "lo")
    ip("addr", "add", "127.0.0.1/32", "dev", "lo")
    ip("addr", "add", "127.0.0.2/32", "dev", "lo")

    # The target: a byte every 50 ms for as long as the connection lasts.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    tport = listener.getsockname()[1]
    target_end = {}

    def trickle():
        conn, _ = listener.accept()
        try:
            while True:
                conn.send(b"x")
                time.sleep(0.05)
        except OSError as e:
            target_end["at"] = time.monotonic()
            target_end["saw"] = type(e).__name__
        finally:
            conn.close()

    threading.Thread(target=trickle, daemon=True).start()

    relay = subprocess.Popen(
        [relay_bin, "--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--ack", "127.0.0.1:0",
         "--allow", f"127.0.0.1:{tport}", "--ping-interval", interval,
         "--ping-timeout", timeout, "--idle-timeout", "600"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "info"})
    http = None
    for line in relay.stderr:
        if 'service="http"' in line:
            http = line.split("addr=")[1].split()[0]
            break
    if http is None:
        sys.exit("the relay did not start")
    closed = {}

    def drain():
        for line in relay.stderr:
            if "bridge closed" in line and "at" not in closed:
                closed["at"] = time.monotonic()
                closed["line"] = line.strip()

    threading.Thread(target=drain, daemon=True).start()

    try:
        host, port = http.rsplit(":", 1)
        client = socket.socket()
        client.bind(("127.0.0.2", 0))
        client.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        client.sendall(
            f"GET /ws?target=127.0.0.1:{tport} HTTP/1.1\r\nHost: {http}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        # The 101, then the target's bytes flowing (a few frames' worth).
        got = b""
        client.settimeout(WAIT)
        while b"\r\n\r\n" not in got or got.split(b"\r\n\r\n", 1)[1].count(b"x") < 5:
            chunk = client.recv(4096)
            if not chunk:
                sys.exit(f"the relay closed the bridge: {got!r}")
            got += chunk
        if not got.startswith(b"HTTP/1.1 101"):
            sys.exit(f"no upgrade: {got!r}")

        ip("addr", "del", "127.0.0.2/32", "dev", "lo")
        vanished = time.monotonic()
        deadline = vanished + WAIT
        while time.monotonic() < deadline and not ("at" in closed and "at" in target_end):
            time.sleep(0.05)
        print(json.dumps({
            "closed_after": closed["at"] - vanished if "at" in closed else None,
            "line": closed.get("line"),
            "target_after": target_end["at"] - vanished if "at" in target_end else None,
            "target_saw": target_end.get("saw"),
        }))
    finally:
        relay.kill()
        relay.wait()


if __name__ == "__main__":
    main()
