// noVNC through sockrelay, the real thing end to end: noVNC's RFB client (npm @novnc/novnc)
// served by the relay with --web, in headless Chromium, bridged by a token file to a real VNC
// server (TigerVNC's Xvnc on 127.0.0.1) whose root window is painted a known colour. The test
// reads noVNC's canvas and finds that colour. First with `sockrelay serve`, then with
// `sockrelay websockify`, typed as a websockify user would.
//
// Needs Xvnc and xsetroot (scripts/setup.sh installs tigervnc-standalone-server and
// x11-xserver-utils): skipped with a message without them, failing under CI (CI=true).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { connect } from "node:net";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startRelay, launchBrowser, screenshot, freePort } from "./lib.mjs";

/** The colour the root window is painted, and how it reads back from noVNC's canvas. */
const COLOUR = "#ff8000";
const RGB = [0xff, 0x80, 0x00];
const WIDTH = 640;
const HEIGHT = 480;

function which(name) {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

const missing = ["Xvnc", "xsetroot"].filter((tool) => !which(tool));
const NOVNC = join(ROOT, "node_modules", "@novnc", "novnc");
if (!existsSync(join(NOVNC, "core", "rfb.js"))) missing.push("npm @novnc/novnc (npm ci)");
const why = `${missing.join(", ")} missing: run scripts/setup.sh`;
if (missing.length > 0 && process.env.CI === "true") {
  test("the noVNC test's tools are installed (CI)", () => assert.fail(why));
}
const skip = missing.length > 0 ? why : false;
if (skip) console.log(`# skipping the noVNC tests: ${why}`);

let vnc;
let web;
let tokens;
let browser;

/** A display number whose lock file and socket are free. */
function freeDisplay() {
  for (let n = 40 + (process.pid % 40); n < 200; n++) {
    if (!existsSync(`/tmp/.X${n}-lock`) && !existsSync(`/tmp/.X11-unix/X${n}`)) return n;
  }
  throw new Error("no free X display number");
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (20 s at most). */
async function waitForPort(port, what) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port}`);
}

/** Xvnc on a free display and RFB port of loopback, without a password, painted COLOUR. */
async function startVnc() {
  const display = freeDisplay();
  const port = await freePort();
  let log = "";
  const child = spawn(
    "Xvnc",
    [`:${display}`, "-localhost", "-rfbport", String(port), "-geometry", `${WIDTH}x${HEIGHT}`,
      "-depth", "24", "-SecurityTypes", "None", "-nolisten", "tcp", "-desktop", "sockrelay-test"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await waitForPort(port, `Xvnc (log: ${log})`);
    execFileSync("xsetroot", ["-display", `:${display}`, "-solid", COLOUR]);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    address: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

before(async () => {
  if (skip) return;
  vnc = await startVnc();
  // noVNC's files as a deployment has them (core/ and vendor/), and the test page beside them.
  web = mkdtempSync(join(tmpdir(), "sockrelay-novnc-"));
  cpSync(join(NOVNC, "core"), join(web, "core"), { recursive: true });
  cpSync(join(NOVNC, "vendor"), join(web, "vendor"), { recursive: true });
  cpSync(join(ROOT, "tests", "browser", "novnc", "vnc-test.html"), join(web, "vnc-test.html"));
  tokens = join(web, "..", `${web.split("/").pop()}.tokens`);
  writeFileSync(tokens, `# websockify's TokenFile format\ndesktop: ${vnc.address}\n`);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await vnc?.stop();
  if (web) rmSync(web, { recursive: true, force: true });
  if (tokens) rmSync(tokens, { force: true });
});

/**
 * Opens the noVNC page at `url` (the relay's origin), waits for the session, and polls noVNC's
 * canvas until its pixels are the root window's colour. Returns what it read.
 */
async function sessionShowsTheDesktop(url, name) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 800, height: 600 });
  await page.goto(url);
  await page.locator("body[data-state=connected]").waitFor({ timeout: 20_000 });
  const canvas = page.locator("#screen canvas");
  await canvas.waitFor();
  let pixels;
  const deadline = Date.now() + 20_000;
  do {
    pixels = await page.evaluate(([w, h]) => {
      const canvas = document.querySelector("#screen canvas");
      const context = canvas.getContext("2d");
      const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
      return { size: [canvas.width, canvas.height], points: [at(5, 5), at(w / 2, h / 2), at(w - 5, h - 5)] };
    }, [WIDTH, HEIGHT]);
    if (pixels.points.every((p) => p.join() === RGB.join())) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  } while (Date.now() < deadline);
  const path = await screenshot(page, name);
  console.log(`screenshot: ${path}`);
  assert.deepEqual(pixels.size, [WIDTH, HEIGHT], "noVNC's canvas has the desktop's size");
  for (const point of pixels.points) assert.deepEqual(point, RGB, `the desktop's colour ${COLOUR}`);
  assert.match(await page.locator("#status").textContent(), /connected to sockrelay-test/);
  await page.close();
}

test("noVNC renders a real VNC desktop through sockrelay serve --web with a token file", { skip }, async () => {
  const relay = await startRelay(["--web", web, "--target-tokens", tokens]);
  try {
    await sessionShowsTheDesktop(`${relay.url}vnc-test.html?path=${encodeURIComponent("websockify?token=desktop")}`, "novnc-serve");
  } finally {
    await relay.stop();
  }
});

test("the same with `sockrelay websockify --web DIR --token-plugin TokenFile --token-source FILE`", { skip }, async () => {
  const port = await freePort();
  const bin = process.env.SOCKRELAY_BIN ?? join(ROOT, "target", "debug", "sockrelay");
  const args = ["websockify", "--web", web, "--token-plugin", "TokenFile", "--token-source", tokens, `127.0.0.1:${port}`];
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await waitForPort(port, `sockrelay websockify (log: ${log})`);
    await sessionShowsTheDesktop(`http://127.0.0.1:${port}/vnc-test.html?path=${encodeURIComponent("websockify?token=desktop")}`, "novnc-websockify");
    assert.doesNotMatch(log, /service="echo"/, "websockify mode opens no echo server");
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
});
