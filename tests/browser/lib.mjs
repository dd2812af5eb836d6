// Shared by the browser tests: start a real sockrelay on loopback port 0, drive Debian's
// Chromium with playwright-core, save screenshots under target/screenshots/.
import assert from "node:assert/strict";
import { afterEach } from "node:test";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SCREENSHOTS = join(ROOT, "target", "screenshots");
const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/**
 * Starts the relay binary (`SOCKRELAY_BIN`, default target/debug/sockrelay) with every service
 * on a port of the system's choosing (HTTP on `http` when given, e.g. to restart a relay where
 * a page expects it), and resolves once it logs the URL to open.
 * Returns `{ url, stop, kill }`: `stop()` ends it with SIGTERM and waits for the exit;
 * `kill()` ends it with SIGKILL (no goodbye to anyone) and waits too.
 */
export async function startRelay(extraArgs = [], { timeoutMs = 20_000, http = "127.0.0.1:0" } = {}) {
  const bin = process.env.SOCKRELAY_BIN ?? join(ROOT, "target", "debug", "sockrelay");
  if (!existsSync(bin)) throw new Error(`no relay binary at ${bin} (cargo build -p sockrelay)`);
  const args = ["--http", http, "--echo", "127.0.0.1:0", "--ack", "127.0.0.1:0", ...extraArgs];
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`relay printed no URL in ${timeoutMs} ms:\n${log}`)), timeoutMs);
    function fail(error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    }
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const match = log.match(/(https?:\/\/127\.0\.0\.1:\d+)\//);
      if (match) {
        clearTimeout(timer);
        resolve(`${match[1]}/`);
      }
    });
    child.once("error", fail);
    child.once("exit", (code, signal) => fail(new Error(`relay exited (${code ?? signal}) before it was ready:\n${log}`)));
  });
  return {
    url,
    /** The relay's process id (for /proc/PID/status). */
    pid: child.pid,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * A TCP port on loopback that refuses connections until `close()`: a helper process keeps it
 * bound and never listens, so no other socket gets the port meanwhile (one bound and then
 * released can be handed straight to another test's listener). Returns `{ port, close }`.
 */
export async function closedPort() {
  const held = "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\n" +
    "print(s.getsockname()[1], flush=True)\nsys.stdin.read()\n";
  const child = spawn("python3", ["-c", held], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.stdout.setEncoding("utf8");
  let out = "";
  const port = await new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the port holder exited (${code}) before binding`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
  });
  return {
    port,
    async close() {
      child.stdin.end();
      await exited;
    },
  };
}

/** A TCP port on loopback for a server to listen on (bound, then released). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A TCP server on a loopback port for a relay to `--allow`: `onConnection(socket)` is node's
 * connection handler. Returns `{ address: "127.0.0.1:PORT", close }`.
 */
export async function tcpServer(onConnection) {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onConnection(socket);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${server.address().port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The visible form controls of the page that have no accessible name (a `<label>`,
 * `aria-label`, `aria-labelledby`, or text for buttons), as short descriptions.
 */
export async function unlabelledControls(page) {
  return page.evaluate(() => {
    const missing = [];
    for (const el of document.querySelectorAll("input, select, textarea, button")) {
      if (el.type === "hidden" || el.closest("[hidden]")) continue;
      const named =
        (el.labels && el.labels.length > 0) ||
        el.getAttribute("aria-label") ||
        el.getAttribute("aria-labelledby") ||
        (el.tagName === "BUTTON" && el.textContent.trim());
      if (!named) missing.push(`${el.tagName.toLowerCase()}#${el.id || "?"}`);
    }
    return missing;
  });
}

/** What went wrong on the pages of this process's browsers since the last check. */
const problems = [];
/** Patterns of the problems the running test provokes on purpose (see `expectProblems`). */
const expected = [];

/**
 * Lets the running test's pages log errors or fail requests that match one of `patterns`
 * (RegExps tried on `URL: what happened`): for tests whose subject is a failure, such as a
 * refused target or a relay that went away. Reset after every test.
 */
export function expectProblems(...patterns) {
  expected.push(...patterns);
}

/**
 * Fails unless no page threw, logged a console error (a Content-Security-Policy violation
 * included), or had a request fail or answered with 400 or more since the last check, apart
 * from what the test expects. Runs after every test; call it to check earlier.
 */
export function assertNoPageProblems() {
  const unexpected = problems.splice(0).filter((p) => !expected.some((pattern) => pattern.test(p)));
  assert.deepEqual(unexpected, [], "a page threw, logged an error, or had a request fail");
}

// Every test of every browser test file (each imports this module) gets the check.
afterEach(() => {
  try {
    assertNoPageProblems();
  } finally {
    expected.length = 0;
  }
});

/** Records what goes wrong on `page`, and shows what it logs. */
function watch(page) {
  // Whatever the page logs or throws is part of a failing test's story.
  page.on("console", (message) => {
    console.log(`[page ${message.type()}] ${message.text()}`);
    if (message.type() === "error") problems.push(`${page.url()}: console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => {
    console.log(`[page error] ${error.message}`);
    problems.push(`${page.url()}: uncaught ${error}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.url()}: HTTP ${response.status()}`);
  });
  page.on("requestfailed", (request) => {
    const error = request.failure()?.errorText ?? "failed";
    // A request cut short because its page navigated or closed is no fault of the page.
    if (error !== "net::ERR_ABORTED") problems.push(`${request.url()}: request failed: ${error}`);
  });
}

/**
 * Headless Debian Chromium in a fresh profile directory; the flags keep it off the network
 * (this machine refuses everything but loopback) and quiet. `close()` removes the profile.
 * Every page of it is watched: see `assertNoPageProblems`, which runs after every test.
 */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "sockrelay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  context.pages().forEach(watch);
  context.on("page", watch);
  return {
    context,
    async newPage() {
      return context.pages()[0] ?? (await context.newPage());
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      // What arrived after the last test's check.
      assertNoPageProblems();
    },
  };
}

/** Saves a screenshot of one element (a panel) as target/screenshots/NAME.png; returns its path. */
export async function screenshotOf(locator, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await locator.screenshot({ path });
  return path;
}

/** Saves a full-page screenshot as target/screenshots/NAME.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
