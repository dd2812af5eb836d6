#!/usr/bin/env python3
"""Slowloris against a sockrelay process: how long a normal client's WebSocket upgrade takes
while N connections each send one byte of their request head per second (reopened when the
relay cuts them), and what those connections cost the relay in memory. RELIABILITY.md cites it.

    scripts/slowloris.py                          10,000 connections, plain HTTP
    scripts/slowloris.py --tls hello              ... over TLS, never finishing the ClientHello
    scripts/slowloris.py --tls head --ramp 120 -- --handshake-timeout 300
                                                  ... TLS finished, then the HTTP head dripped
                                                  (this script opens ~300 TLS connections a
                                                  second: a longer timeout lets 10,000 open)
    scripts/slowloris.py --relay OLD_BIN --conns 1100 --probes 10

Arguments after `--` go to the relay. Everything runs on 127.0.0.1: the script starts the relay
(target/debug/sockrelay unless --relay) on ephemeral ports and stops it at the end. The
slowloris connections come from a process of their own, which raises its open-file limit to the
hard limit (--conns is lowered to what that allows); the prompt upgrades are timed from this one,
one every 0.5 s. Needs python3 and, for --tls, the openssl command.
"""

import argparse
import asyncio
import functools
import os
import random
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(host):
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    ).encode()


@functools.lru_cache(maxsize=None)
def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello():
    """The bytes of a real ClientHello, to drip: the relay cannot tell it from a slow client."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Relay:
    def __init__(self, binary, tls_files, extra):
        args = [binary, "--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--ack", "127.0.0.1:0"]
        if tls_files:
            args += ["--tls-cert", tls_files[0], "--tls-key", tls_files[1]]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen(args + extra, stderr=subprocess.PIPE, env=env, text=True)
        self.log = []
        self.addr = None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
            m = re.search(r'service="http".*addr=(\S+)', line)
            if m:
                self.addr = m.group(1)
                break
        if self.addr is None:
            sys.exit("the relay exited during startup:\n" + "\n".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Stats:
    def __init__(self):
        self.open = 0
        self.opened = 0
        self.cut = 0
        self.failed = 0


def drip(mode, head, hello):
    """What a slowloris sends, a byte a second: a head that never ends (more and more header
    lines), or all of a ClientHello but its last byte and then nothing (None: a silent second)."""
    if mode == "hello":
        for i in range(len(hello) - 1):
            yield hello[i : i + 1]
        while True:
            yield None
    for i in range(len(head)):
        yield head[i : i + 1]
    while True:
        for b in b"X-Drip: 1\r\n":
            yield bytes([b])


async def slowloris(host, port, mode, hello, stats, stop, connecting):
    """One attacker: drips a byte a second, and reopens as soon as the relay cuts it."""
    head = upgrade_request(f"{host}:{port}")[:-2]
    while not stop.is_set():
        try:
            # A few at a time: thousands of TLS handshakes at once starve this event loop.
            async with connecting:
                if mode == "head":
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=client_context(), server_hostname="localhost"
                    )
                else:
                    reader, writer = await asyncio.open_connection(host, port)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            stats.failed += 1
            await asyncio.sleep(1)
            continue
        stats.open += 1
        stats.opened += 1
        try:
            # Spread the drips over the second.
            await asyncio.sleep(random.random())
            for byte in drip(mode, head, hello):
                if stop.is_set():
                    break
                if byte is not None:
                    writer.write(byte)
                try:
                    await asyncio.wait_for(reader.read(1), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                # An answer or the end of the connection: the relay cut it.
                break
        except (OSError, ssl.SSLError):
            pass
        finally:
            stats.open -= 1
            if not stop.is_set():
                stats.cut += 1
            writer.transport.abort()


async def probe(host, port, tls):
    """A normal client: connect, (TLS), upgrade; returns the seconds to the 101, or None."""
    started = time.monotonic()
    try:
        if tls:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=client_context(), server_hostname="localhost"
            )
        else:
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(upgrade_request(f"{host}:{port}"))
        head = await reader.readuntil(b"\r\n\r\n")
        elapsed = time.monotonic() - started
        writer.transport.abort()
        return elapsed if head.startswith(b"HTTP/1.1 101") else None
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


async def probes(host, port, tls, count, timeout):
    out = []
    for _ in range(count):
        try:
            out.append(await asyncio.wait_for(probe(host, port, tls), timeout))
        except asyncio.TimeoutError:
            out.append(None)
        await asyncio.sleep(0.5)
    return out


def summary(latencies, timeout):
    ok = sorted(x for x in latencies if x is not None)
    failed = len(latencies) - len(ok)
    if not ok:
        return f"all {failed} failed (>{timeout:.0f} s)"
    text = (
        f"median {statistics.median(ok) * 1000:.1f} ms, max {ok[-1] * 1000:.1f} ms "
        f"({len(ok)} upgrades"
    )
    return text + (f", {failed} failed or over {timeout:.0f} s)" if failed else ")")


async def attack(args):
    """The attackers, in a process of their own so that their event loop does not slow the
    normal client down; prints `open cut failed` once a second."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    host, port = args.attack.rsplit(":", 1)
    stats, stop = Stats(), asyncio.Event()
    hello = client_hello() if args.tls == "hello" else b""
    connecting = asyncio.Semaphore(100)
    tasks = [
        asyncio.create_task(slowloris(host, int(port), args.tls, hello, stats, stop, connecting))
        for _ in range(args.conns)
    ]
    while True:
        print(stats.open, stats.cut, stats.failed, flush=True)
        await asyncio.sleep(1)


class Attack:
    def __init__(self, addr, conns, tls):
        cmd = [sys.executable, os.path.abspath(__file__), "--attack", addr, "--conns", str(conns),
               "--tls", tls]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.open = self.cut = self.failed = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.open, self.cut, self.failed = map(int, line.split())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def main(args, relay_args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    conns = min(args.conns, hard - 200)
    if conns < args.conns:
        print(f"open-file limit {hard}: {conns} connections instead of {args.conns}")

    tls_files, tmp = None, None
    if args.tls != "none":
        tmp = tempfile.mkdtemp(prefix="sockrelay-slowloris-")
        tls_files = (os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem"))
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", tls_files[1],
             "-out", tls_files[0]],
            check=True, capture_output=True,
        )
    relay = Relay(args.relay, tls_files, relay_args)
    host, port = relay.addr.rsplit(":", 1)
    port = int(port)
    tls = args.tls != "none"
    attack = None
    try:
        base = await probes(host, port, tls, 3, args.timeout)
        rss_before = relay.rss_kib()
        attack = Attack(relay.addr, conns, args.tls)
        deadline = time.monotonic() + args.ramp
        while attack.open < conns * 0.98 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        open_start, cut_start = attack.open, attack.cut
        rss_loaded = relay.rss_kib()
        ticks, started = cpu_ticks(relay.proc.pid), time.monotonic()
        loaded = await probes(host, port, tls, args.probes, args.timeout)
        window = time.monotonic() - started
        relay_cpu = (cpu_ticks(relay.proc.pid) - ticks) / os.sysconf("SC_CLK_TCK") / window
        open_end, cut_rate = attack.open, (attack.cut - cut_start) / window
    finally:
        if attack:
            attack.stop()
        relay.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    per_conn = (rss_loaded - rss_before) / max(open_start, 1)
    print(f"relay: {args.relay} {' '.join(relay_args)}".rstrip())
    print(f"mode: {'plain' if not tls else 'tls-' + args.tls}, slowloris connections: {conns}")
    print(f"upgrades before the load: {summary(base, args.timeout)}")
    print(f"upgrades with the load:   {summary(loaded, args.timeout)}")
    print(
        f"slowloris open (client side) while measured: {open_start} then {open_end}, "
        f"cut {cut_rate:.0f}/s, failed connects {attack.failed}"
    )
    print(
        f"relay: RSS {rss_before / 1024:.1f} MiB before, {rss_loaded / 1024:.1f} MiB loaded "
        f"({per_conn:.1f} KiB per open slowloris connection); CPU {relay_cpu * 100:.0f}% "
        f"while measured"
    )
    shed = [l for l in relay.log if "--max-heads" in l]
    if shed:
        print("relay log:", shed[-1])


if __name__ == "__main__":
    argv = sys.argv[1:]
    relay_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, relay_args = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--relay", default=os.path.join(ROOT, "target/debug/sockrelay"))
    p.add_argument("--conns", type=int, default=10000, help="slowloris connections (10000)")
    p.add_argument("--tls", choices=["none", "hello", "head"], default="none")
    p.add_argument("--probes", type=int, default=20, help="normal upgrades measured (20)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a probe may take (30)")
    p.add_argument("--attack", metavar="HOST:PORT", help=argparse.SUPPRESS)
    p.add_argument("--ramp", type=float, default=60.0, help="seconds to open the connections (60)")
    parsed = p.parse_args(argv)
    asyncio.run(attack(parsed) if parsed.attack else main(parsed, relay_args))
