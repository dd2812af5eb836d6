// The connection panel's states against a real sockrelay: what the page shows, and which of
// Connect and Disconnect it offers, when the target closes, when the relay refuses the
// handshake (while the page asks it why), and when Disconnect cancels an attempt that is
// still checking the target or opening the socket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startRelay, launchBrowser, screenshot, tcpServer, expectProblems } from "./lib.mjs";

let browser;
let relay;
let bye; // a target that answers the first bytes, then closes

before(async () => {
  bye = await tcpServer((socket) => socket.once("data", () => socket.end("goodbye\n")));
  relay = await startRelay(["--allow", bye.address]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await bye?.close();
});

/** A promise and the function that settles it, for holding a request until the test says. */
function gate() {
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  return { opened, open };
}

const connectButton = (page) => page.getByRole("button", { name: "Connect", exact: true });
const disconnectButton = (page) => page.locator("#disconnect");

/** The page shows no connection, offers Connect and not Disconnect. */
async function assertIdle(page, text) {
  await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
  if (text instanceof RegExp) assert.match(await page.locator("#status").textContent(), text);
  else assert.equal(await page.locator("#status").textContent(), text);
  assert.equal(await disconnectButton(page).isHidden(), true, "Disconnect is not offered");
  assert.equal(await connectButton(page).isEnabled(), true, "Connect is offered");
  assert.equal(await page.locator("#send").isDisabled(), true, "nothing to send to");
}

async function openClient() {
  const page = await browser.newPage();
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  return page;
}

async function connectTo(page, target) {
  await page.locator("#target").selectOption("");
  await page.locator("#custom-target").fill(target);
  await connectButton(page).click();
}

test("the target closes: the page shows it closed and offers Connect", async () => {
  const page = await openClient();
  await connectTo(page, bye.address);
  await page.locator("#status[data-state=open]").waitFor();
  assert.equal(await disconnectButton(page).isVisible(), true);
  await page.locator("#message").fill("hello");
  await page.locator("#message").press("Enter");
  await assertIdle(page, "The target closed the connection (code 1000: target closed)");
  await connectButton(page).click();
  await page.locator("#status[data-state=open]").waitFor();
  assert.equal(await disconnectButton(page).isVisible(), true);
});

test("a refused handshake: while the relay is asked why, no 'connecting' and no Disconnect", async () => {
  expectProblems(
    /: console error: WebSocket connection to 'ws:\/\/[^']+\/ws\?target=127\.0\.0\.1%3A9' failed: .* 403$/,
    /\/api\/check\?target=127\.0\.0\.1%3A9: HTTP 403$/,
    /: console error: Failed to load resource: the server responded with a status of 403 \(Forbidden\)$/,
  );
  const page = await openClient();
  // The first check lets the target through (as if the relay changed its mind before the
  // handshake); the second, which asks why the handshake failed, waits for the test.
  const why = gate();
  let checks = 0;
  await page.route("**/api/check*", async (route) => {
    checks += 1;
    if (checks === 1) {
      await route.fulfill({ status: 200, json: { target: "127.0.0.1:9" } });
      return;
    }
    await why.opened;
    // Settled after the test when it failed early: the page may be gone by then.
    await route.fulfill({ status: 403, json: { error: "the relay changed its mind" } }).catch(() => {});
  });
  try {
    await connectTo(page, "127.0.0.1:9");
    const asking = page.locator("#status", { hasText: "failed; asking the relay why…" });
    await asking.waitFor({ timeout: 10_000 });
    assert.notEqual(await page.locator("#status").getAttribute("data-state"), "connecting");
    assert.equal(await disconnectButton(page).isHidden(), true, "the socket is gone: nothing to disconnect");
    assert.equal(await connectButton(page).isEnabled(), true);
    await screenshot(page, "client-connection-asking-why");

    why.open();
    await assertIdle(page, "Refused by the relay: the relay changed its mind");
    await page.locator("#log li.error .data", { hasText: "the relay changed its mind" }).waitFor();
  } finally {
    why.open();
    await page.unroute("**/api/check*");
  }
  await page.locator("#target").selectOption("echo");
  await connectButton(page).click();
  await page.locator("#status[data-state=open]").waitFor();
});

test("Disconnect while the target is being checked cancels the attempt", async () => {
  const page = await openClient();
  const answer = gate();
  await page.route("**/api/check*", async (route) => {
    await answer.opened;
    await route.continue().catch(() => {});
  });
  try {
    await page.locator("#target").selectOption("ack");
    await connectButton(page).click();
    await page.locator("#status[data-state=connecting]", { hasText: /^Checking ack/ }).waitFor();
    await disconnectButton(page).click();
    await assertIdle(page, "Not connected");
    await page.locator("#log li.info .data", { hasText: "Connection attempt cancelled" }).waitFor();
    // The check's late answer changes nothing.
    answer.open();
    await page.waitForTimeout(500);
    await assertIdle(page, "Not connected");
  } finally {
    answer.open();
    await page.unroute("**/api/check*");
  }
});

test("Disconnect while the socket is opening cancels the attempt", async () => {
  // A page of its own: the socket route replaces the page's WebSocket until the page closes.
  const page = await browser.context.newPage();
  const handshake = gate();
  // The socket stays in CONNECTING until the handler returns.
  await page.routeWebSocket(/\/ws\?target=echo/, async () => {
    await handshake.opened;
  });
  try {
    await page.goto(relay.url);
    await page.locator("#status[data-state=connecting]", { hasText: /^Connecting to echo/ }).waitFor({ timeout: 15_000 });
    assert.equal(await disconnectButton(page).isVisible(), true);
    await disconnectButton(page).click();
    await assertIdle(page, "Not connected");
    await page.locator("#log li.info .data", { hasText: "Connection attempt cancelled" }).waitFor();
    // Had the handshake completed, the cancelled socket would have opened: it must not count.
    handshake.open();
    await page.waitForTimeout(500);
    await assertIdle(page, "Not connected");
    await screenshot(page, "client-connection-cancelled");
  } finally {
    handshake.open();
    await page.close();
  }
});
