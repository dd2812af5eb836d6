// Shared by the browser tests: start a real sockrelay on loopback port 0, drive Debian's
// Chromium with playwright-core, save screenshots under target/screenshots/.
import { spawn } from "node:child_process";
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
 * on a port of the system's choosing, and resolves once it logs the URL to open.
 * Returns `{ url, stop }`; `stop()` ends it and waits for the exit.
 */
export async function startRelay(extraArgs = [], { timeoutMs = 20_000 } = {}) {
  const bin = process.env.SOCKRELAY_BIN ?? join(ROOT, "target", "debug", "sockrelay");
  if (!existsSync(bin)) throw new Error(`no relay binary at ${bin} (cargo build -p sockrelay)`);
  const args = ["--http", "127.0.0.1:0", "--echo", "127.0.0.1:0", "--ack", "127.0.0.1:0", ...extraArgs];
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
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Headless Debian Chromium in a fresh profile directory; the flags keep it off the network
 * (this machine refuses everything but loopback) and quiet. `close()` removes the profile.
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
  return {
    context,
    async newPage() {
      const page = context.pages()[0] ?? (await context.newPage());
      // Whatever the page logs or throws is part of a failing test's story.
      page.on("console", (message) => console.log(`[page ${message.type()}] ${message.text()}`));
      page.on("pageerror", (error) => console.log(`[page error] ${error.message}`));
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as target/screenshots/NAME.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
