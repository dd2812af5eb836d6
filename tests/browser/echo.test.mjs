// The client page end to end: a real sockrelay, its built-in echo server behind /ws, and
// headless Chromium typing into the page as a person would.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startRelay, launchBrowser, screenshot } from "./lib.mjs";

let relay;
let browser;

before(async () => {
  relay = await startRelay();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

test("a message typed and sent comes back from the echo server", async () => {
  const page = await browser.newPage();
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  assert.match(await page.locator("#status").textContent(), /^Connected to echo \(127\.0\.0\.1:\d+\)$/);

  await page.getByLabel("Message", { exact: true }).fill("Hello, world");
  await page.getByRole("button", { name: "Send" }).click();

  await page.locator("#log li.sent .data", { hasText: "Hello, world" }).waitFor();
  await page.locator("#log li.received .data", { hasText: "Hello, world" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#message").inputValue(), "", "the field is cleared for the next message");
  assert.equal(await page.locator("#log li.error").count(), 0, "no errors shown");
  const path = await screenshot(page, "echo");
  console.log(`screenshot: ${path}`);
});

test("Enter sends, and text with non-ASCII characters comes back whole", async () => {
  const page = await browser.newPage();
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  const message = "grüße, 世界 🌍";
  await page.locator("#message").fill(message);
  await page.locator("#message").press("Enter");
  await page.locator("#log li.received .data", { hasText: message }).waitFor({ timeout: 10_000 });
});

test("when the relay goes away the page says so and offers to reconnect", async () => {
  const doomed = await startRelay();
  const page = await browser.newPage();
  try {
    await page.goto(doomed.url);
    await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
    assert.equal(await page.locator("#disconnect").isVisible(), true, "Disconnect offered while open");
    await doomed.stop();
    await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
    // 1001 (shutting down) or, when the echo service stops first, 1000 after its EOF: the
    // latter is a normal close and logged as info, not as an error.
    assert.match(await page.locator("#status").textContent(), /\(code 100[01]: (relay shutting down|target closed)\)$/);
    await page.locator("#log li .data", { hasText: /The (relay ended|target closed) the connection/ }).waitFor();
    assert.equal(await page.locator("#connect").isVisible(), true, "Connect offered");
    assert.equal(await page.locator("#disconnect").isHidden(), true, "nothing to disconnect");
    assert.equal(await page.locator("#send").isDisabled(), true, "Send disabled while closed");
    await screenshot(page, "echo-disconnected");
  } finally {
    await doomed.stop();
  }
});

test("readable on a 360 px wide screen in dark mode", async () => {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 360, height: 640 });
  await page.emulateMedia({ colorScheme: "dark" });
  try {
    await page.goto(relay.url);
    await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
    await page.locator("#message").fill("a long message that has to wrap on a narrow phone screen");
    await page.locator("#message").press("Enter");
    await page.locator("#log li.received").waitFor({ timeout: 10_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    const send = await page.locator("#send").boundingBox();
    assert.ok(send && send.x + send.width <= 360, "Send stays on screen");
    await screenshot(page, "echo-360-dark");
  } finally {
    await page.emulateMedia({ colorScheme: "light" });
    await page.setViewportSize({ width: 1280, height: 720 });
  }
});
