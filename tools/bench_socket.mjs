#!/usr/bin/env node
// Echo throughput of the page socket library (web/pkg/socket.js) in headless Chromium against
// a bare WebSocket in the same page, through the same relay to its built-in echo: how much the
// library's streams (WebSocketStream, the TransformStreams, the wasm calls) cost over the
// plainest page code that does the same.
//
//   TCPSocket: a writer sends SIZE bytes in CHUNK-byte writes (each awaited: the streams'
//              backpressure paces it) while a reader reads the echo back.
//   WebSocket: /ws?target=echo with binaryType arraybuffer; CHUNK-byte messages sent while
//              bufferedAmount is under 1 MiB (then it waits for the echo to catch up), every
//              message event counted.
//
// Runs alternate between the two, ROUNDS each; the median and the best are reported.
//
// Usage: node tools/bench_socket.mjs [--quick] [--json]
//   SOCKRELAY_BIN picks the relay (default target/release/sockrelay, else target/debug);
//   web/pkg must hold the built library and the relay must have been built after it.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const QUICK = process.argv.includes("--quick");
const JSON_OUT = process.argv.includes("--json");
const ROUNDS = QUICK ? 3 : 7;
const SIZE = (QUICK ? 32 : 128) * 1024 * 1024;
const CHUNK = 64 * 1024;

const release = join(ROOT, "target", "release", "sockrelay");
const bin = process.env.SOCKRELAY_BIN ?? (existsSync(release) ? release : join(ROOT, "target", "debug", "sockrelay"));
const relay = spawn(bin, ["--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--ack", "127.0.0.1:0"],
  { stdio: ["ignore", "ignore", "pipe"] });
const url = await new Promise((resolve, reject) => {
  let log = "";
  relay.stderr.setEncoding("utf8").on("data", (chunk) => {
    log += chunk;
    const match = log.match(/(http:\/\/127\.0\.0\.1:\d+)\//);
    if (match) resolve(`${match[1]}/`);
  });
  relay.once("exit", (code) => reject(new Error(`relay exited (${code}):\n${log}`)));
});

const profile = mkdtempSync(join(tmpdir(), "sockrelay-bench-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}healthz`);
  await page.evaluate(async () => {
    window.lib = await import("/pkg/socket.js");
    const targets = await (await fetch("/api/targets")).json();
    window.echo = targets.find((t) => t.name === "echo").target.split(":");
  });
  const runs = { TCPSocket: [], WebSocket: [] };
  for (let round = 0; round < ROUNDS; round++) {
    runs.TCPSocket.push(await page.evaluate(async ({ size, chunk }) => {
      const data = new Uint8Array(chunk).fill(0x61);
      const tcp = new lib.TCPSocket(echo[0], Number(echo[1]));
      const { readable, writable } = await tcp.opened;
      const start = performance.now();
      const writer = writable.getWriter();
      const writing = (async () => { for (let at = 0; at < size; at += chunk) await writer.write(data); })();
      const reader = readable.getReader();
      let got = 0;
      while (got < size) got += (await reader.read()).value.length;
      await writing;
      const seconds = (performance.now() - start) / 1000;
      await tcp.close();
      return size / seconds / 1048576;
    }, { size: SIZE, chunk: CHUNK }));
    runs.WebSocket.push(await page.evaluate(async ({ size, chunk }) => {
      const data = new Uint8Array(chunk).fill(0x61);
      const ws = new WebSocket(`ws://${location.host}/ws?target=echo`);
      ws.binaryType = "arraybuffer";
      await new Promise((resolve) => { ws.onopen = resolve; });
      const start = performance.now();
      let got = 0;
      let sent = 0;
      await new Promise((resolve) => {
        const pump = () => {
          while (sent < size && ws.bufferedAmount < 1048576 && sent - got < 8 * 1048576) {
            ws.send(data);
            sent += chunk;
          }
        };
        ws.onmessage = (event) => {
          got += event.data.byteLength;
          if (got >= size) resolve(); else pump();
        };
        pump();
      });
      const seconds = (performance.now() - start) / 1000;
      ws.close();
      return size / seconds / 1048576;
    }, { size: SIZE, chunk: CHUNK }));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    relay: bin, size: SIZE, chunk: CHUNK, rounds: ROUNDS, cpu: cpus()[0]?.model, cores: cpus().length,
    chromium: context.browser()?.version() ?? "", mib_per_s: runs,
    median: { TCPSocket: median(runs.TCPSocket), WebSocket: median(runs.WebSocket) },
  };
  if (JSON_OUT) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    for (const name of ["TCPSocket", "WebSocket"]) {
      const xs = runs[name];
      console.log(`${name.padEnd(9)}  median ${median(xs).toFixed(0)} MiB/s, best ${Math.max(...xs).toFixed(0)} MiB/s  (${xs.map((x) => x.toFixed(0)).join(" ")})`);
    }
    console.log(`TCPSocket / WebSocket: ${(result.median.TCPSocket / result.median.WebSocket).toFixed(2)} ` +
      `(${SIZE / 1048576} MiB in ${CHUNK / 1024} KiB chunks, ${ROUNDS} rounds each, relay ${bin})`);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  relay.kill("SIGTERM");
}
