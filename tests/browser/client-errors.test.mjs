// The client page when things go wrong, against a real sockrelay: a refused target (the
// relay's 403 reason), a relay without the check endpoint, an unreachable target, a target
// that closes, idle and size limits, and the relay killed mid-session, with and without
// auto-reconnect. Each time the page must say why, keep the log, and stay usable.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startRelay, launchBrowser, screenshot, screenshotOf, closedPort, tcpServer, expectProblems } from "./lib.mjs";

let browser;
let page;

before(async () => {
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
});

after(async () => {
  await browser?.close();
});

async function openClient(relay) {
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
}

async function connectTo(target) {
  await page.locator("#target").selectOption("");
  await page.locator("#custom-target").fill(target);
  await page.getByRole("button", { name: "Connect", exact: true }).click();
}

async function send(text) {
  await page.locator("#message").fill(text);
  await page.locator("#message").press("Enter");
}

const status = () => page.locator("#status").textContent();

/** What the browser logs when the relay process is gone: the page's check finds no relay. */
const RELAY_GONE = [
  /\/api\/check\?target=echo: request failed: net::ERR_CONNECTION_REFUSED$/,
  /: console error: Failed to load resource: net::ERR_CONNECTION_REFUSED$/,
];

/** The page still works: the converter answers, the log tools respond. */
async function assertResponsive() {
  await page.locator("#conv-address").fill("127.1");
  await page.locator("#conv-address-out dd", { hasText: "b'\\x7f\\x00\\x00\\x01'" }).first().waitFor({ timeout: 2_000 });
  await page.getByRole("radio", { name: "Hex dump" }).check();
  await page.locator("#view-text").check();
}

test("a target the relay refuses: the page shows the relay's reason", async () => {
  expectProblems(
    /\/api\/check\?target=127\.0\.0\.1%3A9: HTTP 403$/,
    /: console error: Failed to load resource: the server responded with a status of 403 \(Forbidden\)$/,
  );
  const relay = await startRelay();
  try {
    await openClient(relay);
    await send("before");
    await page.locator("#log li.received .data", { hasText: "before" }).waitFor();
    await connectTo("127.0.0.1:9");
    await page.locator("#status[data-state=closed]").waitFor();
    assert.equal(
      await status(),
      'Refused by the relay: target "127.0.0.1:9" is not allowed by this relay (see GET /api/targets)',
    );
    await page.locator("#log li.error .data", { hasText: "Refused by the relay" }).waitFor();
    assert.equal(await page.locator("#log li.received .data", { hasText: "before" }).count(), 1, "the log is kept");
    assert.equal(await page.locator("#send").isDisabled(), true);
    await send("nobody listens");
    assert.equal(await page.locator("#message-error").textContent(), "Not connected: the message was not sent. Connect first.");
    assert.equal(await page.locator("#message").inputValue(), "nobody listens", "the message is kept");
    await assertResponsive();
    await screenshot(page, "client-error-refused");
  } finally {
    await relay.stop();
  }
});

test("a relay without api/check (404): allowed targets still connect, refusals are explained", async () => {
  expectProblems(
    /\/api\/check\?target=[^ ]+: HTTP 404$/,
    /: console error: Failed to load resource: the server responded with a status of 404 \(Not Found\)$/,
    /: console error: WebSocket connection to 'ws:\/\/[^']+\/ws\?target=127\.0\.0\.1%3A9' failed: .* 403$/,
  );
  const relay = await startRelay();
  await page.route("**/api/check*", (route) => route.fulfill({ status: 404, body: "not found" }));
  try {
    await openClient(relay);
    await connectTo("127.0.0.1:9");
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.match(await status(), /^The relay refused the connection to 127\.0\.0\.1:9\. The browser does not say why/);
    await page.locator("#log li.info .data", { hasText: "127.0.0.1:9 is not in the relay's list of targets" }).waitFor();
    await page.locator("#target").selectOption("ack");
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.locator("#status[data-state=open]").waitFor();
    await screenshot(page, "client-error-no-check-endpoint");
  } finally {
    await page.unroute("**/api/check*");
    await relay.stop();
  }
});

test("an allowed target that is not listening: close 1011 with the relay's reason", async () => {
  const closed = await closedPort();
  const port = closed.port;
  let relay;
  try {
    relay = await startRelay(["--allow", `127.0.0.1:${port}`]);
    await openClient(relay);
    await page.locator("#target").selectOption(`127.0.0.1:${port}`);
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.match(await status(), /^The target failed \(code 1011: target unreachable: connection refused\)$/);
    await page.locator("#log li.error .data", { hasText: "code 1011" }).waitFor();
  } finally {
    await relay?.stop();
    await closed.close();
  }
});

test("a target that closes: close 1000, shown as information, everything it sent delivered", async () => {
  const bye = await tcpServer((socket) => socket.once("data", () => socket.end("goodbye\n")));
  const relay = await startRelay(["--allow", bye.address]);
  try {
    await openClient(relay);
    await connectTo(bye.address);
    await page.locator("#status[data-state=open]").waitFor();
    await send("hello");
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.equal(await status(), "The target closed the connection (code 1000: target closed)");
    await page.locator("#log li.received .data", { hasText: "goodbye" }).waitFor();
    await page.locator("#log li.info .data", { hasText: "The target closed the connection" }).waitFor();
    assert.equal(await page.locator("#log li.error").count(), 0, "a normal close is not an error");
  } finally {
    await relay.stop();
    await bye.close();
  }
});

test("idle timeout (1001) and a message too big (1009) are explained", async () => {
  const relay = await startRelay(["--idle-timeout", "1", "--max-message", "1024"]);
  try {
    await openClient(relay);
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.equal(await status(), "The relay ended the connection (code 1001: idle timeout)");

    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.locator("#status[data-state=open]").waitFor();
    await send("x".repeat(2000));
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.match(await status(), /^A message was too big for the relay \(code 1009/);
    await screenshot(page, "client-error-too-big");
  } finally {
    await relay.stop();
  }
});

test("the relay killed mid-session: the page says so, keeps the log and stays usable", async () => {
  expectProblems(...RELAY_GONE);
  const relay = await startRelay();
  try {
    await openClient(relay);
    for (const text of ["one", "two", "three"]) await send(text);
    await page.locator("#log li.received .data", { hasText: "three" }).waitFor();
    const entries = await page.locator("#log li").count();
    await relay.kill();
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    assert.equal(await status(), "The connection to the relay was lost (code 1006)");
    assert.equal(await page.locator("#log li").count(), entries + 1, "every entry kept, one error added");
    assert.equal(await page.locator("#send").isDisabled(), true);
    assert.equal(await page.locator("#measure-run").isDisabled(), true);
    await assertResponsive();

    // Connecting again with the relay gone: the page tells why, quickly.
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.locator("#status[data-state=closed]", { hasText: "Cannot reach the relay" }).waitFor({ timeout: 10_000 });
    assert.match(await status(), /^Cannot reach the relay at http:\/\/127\.0\.0\.1:\d+ \(.+\)$/);

    // Copy and export still work from a page whose relay is gone.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export JSON" }).click(),
    ]);
    assert.ok(download.suggestedFilename().endsWith(".json"));
    await screenshot(page, "client-error-relay-killed");
    await screenshotOf(page.locator("#traffic"), "client-error-relay-killed-log");
  } finally {
    await relay.kill();
  }
});

test("auto-reconnect: backs off while the relay is gone, reconnects when it is back", async () => {
  expectProblems(...RELAY_GONE);
  let relay = await startRelay();
  const http = new URL(relay.url).host;
  try {
    await openClient(relay);
    await page.getByLabel("Reconnect automatically").check();
    await send("before the crash");
    await page.locator("#log li.received .data", { hasText: "before the crash" }).waitFor();
    await relay.kill();
    await page.locator("#status[data-state=waiting]").waitFor({ timeout: 10_000 });
    assert.match(await status(), /^The connection to the relay was lost \(code 1006\)\. Reconnecting in 1 s \(attempt 1\)…$/);
    // The relay stays away: the next attempts fail, further apart.
    await page.locator("#status", { hasText: "Reconnecting in 2 s (attempt 2)" }).waitFor({ timeout: 10_000 });
    assert.match(await status(), /^Cannot reach the relay at /);
    await screenshot(page, "client-reconnecting");
    relay = await startRelay([], { http });
    await page.locator("#status[data-state=open]").waitFor({ timeout: 20_000 });
    assert.equal(await page.locator("#log li.info .data", { hasText: /^Connected to echo/ }).count(), 2);
    assert.equal(await page.locator("#log li.received .data", { hasText: "before the crash" }).count(), 1);
    await send("after the crash");
    await page.locator("#log li.received .data", { hasText: "after the crash" }).waitFor();

    // Disconnect cancels auto-reconnect: nothing comes back by itself.
    await page.getByRole("button", { name: "Disconnect" }).click();
    await page.locator("#status[data-state=closed]").waitFor();
    await page.waitForTimeout(1_500);
    assert.equal(await page.locator("#status").getAttribute("data-state"), "closed");
  } finally {
    await page.getByLabel("Reconnect automatically").uncheck();
    await relay.kill();
  }
});
