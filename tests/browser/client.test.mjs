// The client page's everyday use against a real sockrelay: connecting, sending text and hex,
// reading the traffic log (times, sizes, round trips, hex dumps), its tools (copy, export,
// clear), the history, the keyboard alone, screen-reader labels, and the layouts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { startRelay, launchBrowser, screenshot, screenshotOf, tcpServer, unlabelledControls, ROOT } from "./lib.mjs";

let relay;
let browser;
let upper; // a line server that answers in upper case: not an echo

before(async () => {
  upper = await tcpServer((socket) => socket.on("data", (data) => socket.write(data.toString().toUpperCase())));
  relay = await startRelay(["--allow", upper.address]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await upper?.close();
});

/** A fresh page on the client, connected to the default target (echo). */
async function openClient({ width = 1280, height = 900, dark = false } = {}) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: dark ? "dark" : "light" });
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  return page;
}

async function send(page, text) {
  await page.locator("#message").fill(text);
  await page.locator("#message").press("Enter");
}

const entries = (page, kind) => page.locator(`#log li.entry.${kind}`);

test("on load it connects to echo; the targets come from the relay; disconnect and connect", async () => {
  const page = await openClient();
  assert.match(await page.locator("#status").textContent(), /^Connected to echo \(127\.0\.0\.1:\d+\)$/);
  const options = await page.locator("#target option").allTextContents();
  assert.deepEqual(options.map((o) => o.split(" — ")[0]), ["echo", "ack", "udp-echo", upper.address, "Other (HOST:PORT)…"]);
  await page.locator("#log li.info .data", { hasText: /^Connected to echo .* via ws:\/\/127\.0\.0\.1:\d+\/ws\?target=echo$/ }).waitFor();

  await page.getByRole("button", { name: "Disconnect" }).click();
  await page.locator("#status[data-state=closed]").waitFor();
  assert.match(await page.locator("#status").textContent(), /^Disconnected from echo \(127\.0\.0\.1:\d+\)$/);
  assert.equal(await page.locator("#disconnect").isHidden(), true);
  assert.equal(await page.locator("#send").isDisabled(), true, "nothing to send to");
  assert.equal(await entries(page, "error").count(), 0, "a disconnect asked for is not an error");

  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await page.locator("#status[data-state=open]").waitFor();
  assert.equal(await page.locator("#log li.info .data", { hasText: /^Connected to echo/ }).count(), 2);
});

test("client.js + client_bg.wasm fit the 60,000 B gzipped budget", () => {
  // wasm/build.sh fails over it too; each file is served, and compressed, on its own.
  const size = (name) => gzipSync(readFileSync(join(ROOT, "web", "pkg", name)), { level: 9 }).length;
  const total = size("client.js") + size("client_bg.wasm");
  console.log(`client.js + client_bg.wasm: ${total} B gzipped`);
  assert.ok(total <= 60_000, `${total} B gzipped is over the 60,000 B budget`);
});

test("a page opened with ?token= passes it to /ws and to the relay's API", async () => {
  const token = "s3cret-Token_42";
  const guarded = await startRelay(["--token", token, "--allow", upper.address]);
  try {
    const page = await browser.newPage();
    await page.goto(`${guarded.url}?token=${token}`);
    await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
    // The target list came from /api/targets, and a typed target passes /api/check.
    const options = await page.locator("#target option").allTextContents();
    assert.deepEqual(options.map((o) => o.split(" — ")[0]), ["echo", "ack", "udp-echo", upper.address, "Other (HOST:PORT)…"]);
    await page.locator("#target").selectOption("");
    await page.locator("#custom-target").fill(upper.address);
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    await page.locator("#status[data-state=open]", { hasText: upper.address }).waitFor();
    assert.equal(await entries(page, "error").count(), 0);
    assert.equal(await page.locator("#log li.info", { hasText: "not in the relay's list" }).count(), 0);
  } finally {
    await guarded.stop();
  }
});

test("text: the log shows time, direction, size, text and the echo's round-trip time", async () => {
  const page = await openClient();
  await send(page, "Hello, world");
  const received = entries(page, "received").last();
  await received.locator(".rtt", { hasText: /RTT/ }).waitFor({ timeout: 10_000 });
  const sent = entries(page, "sent").last();
  for (const [entry, dir] of [[sent, "sent"], [received, "received"]]) {
    assert.match(await entry.locator("time").textContent(), /^\d\d:\d\d:\d\d\.\d{3}$/);
    assert.match(await entry.locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.equal(await entry.locator(".dir").textContent(), dir);
    assert.equal(await entry.locator(".size").textContent(), "12 B");
    assert.equal(await entry.locator(".data").textContent(), "Hello, world");
    assert.match(await entry.locator(".rtt").textContent(), /^RTT \d+(\.\d+)? ms$/);
  }
  assert.equal(await sent.locator(".frame").textContent(), "text");
  assert.equal(await page.locator("#counters").textContent(), "1 sent (12 B) · 1 received (12 B)");
  assert.equal(await page.locator("#message").inputValue(), "");
  assert.equal(await page.evaluate(() => document.activeElement.id), "message", "the keyboard stays in the field");
  await screenshot(page, "client-desktop");
});

test("hex: sent as a binary frame, shown as text with visible controls or as a hex dump", async () => {
  const page = await openClient();
  await page.getByRole("radio", { name: "Hex bytes" }).check();
  assert.equal(await page.locator("#message").getAttribute("placeholder"), "48 65 6c 6c 6f");
  await send(page, "48 65 6c 6c 6f 00 0d 0a ff");
  const received = entries(page, "received").last();
  await received.locator(".rtt", { hasText: /RTT/ }).waitFor({ timeout: 10_000 });
  const sent = entries(page, "sent").last();
  assert.equal(await sent.locator(".frame").textContent(), "binary");
  assert.equal(await sent.locator(".size").textContent(), "9 B");
  // NUL and CR become control pictures; the invalid UTF-8 byte a replacement character.
  assert.equal(await received.locator(".data").textContent(), "Hello\u2400\u240d\n\ufffd");

  await page.getByRole("radio", { name: "Hex dump" }).check();
  assert.equal(await page.locator("#log").getAttribute("data-view"), "hex");
  assert.equal(
    await received.locator(".data").textContent(),
    "0000  48 65 6c 6c 6f 00 0d 0a  ff                       |Hello....|",
  );
  await page.locator("#view-text").check();
  assert.equal(await received.locator(".data").textContent(), "Hello\u2400\u240d\n\ufffd");
});

test("bad hex is refused with a clear error and nothing is sent", async () => {
  const page = await openClient();
  await page.locator("#mode-hex").check();
  const before = await entries(page, "sent").count();
  await send(page, "48 6g");
  const error = page.locator("#message-error");
  await error.waitFor();
  assert.equal(await error.textContent(), "Bad hex: 'g' at position 5 is not a hex digit (0-9, a-f).");
  assert.equal(await error.getAttribute("role"), "alert");
  assert.equal(await page.locator("#message").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#message").inputValue(), "48 6g", "what was typed is kept for fixing");
  await screenshot(page, "client-bad-hex");

  // The error follows the typing, and goes once the input is good.
  await page.locator("#message").fill("48 656");
  assert.match(await error.textContent(), /^Bad hex: "656" at position 4 has an odd number of hex digits/);
  await page.locator("#message").fill("48 65");
  assert.equal(await error.isHidden(), true);
  assert.equal(await page.locator("#message").getAttribute("aria-invalid"), null);
  await send(page, "   ");
  assert.match(await error.textContent(), /^Bad hex: no bytes/);
  assert.equal(await entries(page, "sent").count(), before, "nothing was sent");
});

test("history: up and down recall earlier messages, with their mode", async () => {
  const page = await openClient();
  const field = page.locator("#message");
  await send(page, "one");
  await send(page, "two");
  await page.locator("#mode-hex").check();
  await send(page, "41 42");
  await entries(page, "sent").nth(2).waitFor();
  await page.locator("#mode-text").check();
  await field.fill("draft");
  await field.press("ArrowUp");
  assert.equal(await field.inputValue(), "41 42");
  assert.equal(await page.locator("#mode-hex").isChecked(), true);
  await field.press("ArrowUp");
  assert.equal(await field.inputValue(), "two");
  assert.equal(await page.locator("#mode-text").isChecked(), true);
  await field.press("ArrowUp");
  await field.press("ArrowUp");
  assert.equal(await field.inputValue(), "one", "stops at the oldest");
  await field.press("ArrowDown");
  await field.press("ArrowDown");
  await field.press("ArrowDown");
  assert.equal(await field.inputValue(), "draft", "past the newest: what was being typed");
  await field.press("Enter");
  await page.locator("#log li.received .data", { hasText: "draft" }).waitFor();
});

test("a typed HOST:PORT the relay allows; a target that does not echo gets no RTT", async () => {
  const page = await openClient();
  await page.locator("#target").selectOption("");
  assert.equal(await page.locator("#custom-target").isVisible(), true);
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  assert.match(await page.locator("#target-error").textContent(), /^Type the target as HOST:PORT/);
  await page.getByLabel("Host and port").fill(upper.address);
  await page.getByLabel("Host and port").press("Enter");
  await page.locator("#status[data-state=open]").waitFor();
  assert.equal(await page.locator("#status").textContent(), `Connected to ${upper.address}`);
  assert.equal(await page.locator("#target-error").isHidden(), true);
  await send(page, "make me loud");
  const received = page.locator("#log li.received").last();
  await received.locator(".data", { hasText: "MAKE ME LOUD" }).waitFor({ timeout: 10_000 });
  assert.equal(await received.locator(".rtt").textContent(), "", "not an echo: no round-trip time");
});

test("the acknowledge server answers each read", async () => {
  const page = await openClient();
  await page.locator("#target").selectOption("ack");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await page.locator("#status", { hasText: /^Connected to ack/ }).waitFor();
  await send(page, "Hello");
  await page.locator("#log li.received .data", { hasText: "server received you message." }).waitFor({ timeout: 10_000 });
});

test("the log's tools: copy, export as JSON, clear", async () => {
  const page = await openClient();
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(relay.url).origin });
  await send(page, "first");
  await page.locator("#mode-hex").check();
  await send(page, "ff fe 41 42");
  await entries(page, "received").nth(1).locator(".rtt", { hasText: "RTT" }).waitFor({ timeout: 10_000 });
  const total = await page.locator("#log li").count();

  await page.getByRole("button", { name: "Copy" }).click();
  await page.locator("#log-status", { hasText: `Copied ${total} entries to the clipboard.` }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(copied, /^\d\d:\d\d:\d\d\.\d{3} info: Connected to echo/m);
  assert.match(copied, /^\d\d:\d\d:\d\d\.\d{3} sent 5 B RTT [\d.]+ ms: first$/m);
  assert.match(copied, /^\d\d:\d\d:\d\d\.\d{3} received 4 B RTT [\d.]+ ms: \ufffd\ufffdAB$/m);

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Export JSON" }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^sockrelay-log-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.json$/);
  const exported = JSON.parse(await readFile(await download.path(), "utf8"));
  assert.match(exported.relay, /^ws:\/\/127\.0\.0\.1:\d+\/ws\?target=echo$/);
  assert.equal(exported.entries.length, total);
  const sentHex = exported.entries.find((e) => e.direction === "sent" && e.frame === "binary");
  assert.equal(sentHex.hex, "fffe4142");
  assert.equal(sentHex.size, 4);
  assert.equal(typeof sentHex.rtt_ms, "number");
  const sentText = exported.entries.find((e) => e.direction === "sent" && e.frame === "text");
  assert.deepEqual([sentText.text, sentText.hex], ["first", "6669727374"]);
  assert.ok(exported.entries.every((e) => !Number.isNaN(Date.parse(e.time))));
  await page.locator("#log-status", { hasText: /^Exported \d+ entries as sockrelay-log-/ }).waitFor();

  await page.getByRole("button", { name: "Clear" }).click();
  assert.equal(await page.locator("#log li").count(), 0);
  assert.equal(await page.locator("#counters").textContent(), "0 sent (0 B) · 0 received (0 B)");
  assert.equal(await page.locator("#log-status").textContent(), `Cleared ${total} entries.`);
  // Still connected and working after a clear.
  await page.locator("#mode-text").check();
  await send(page, "after");
  await page.locator("#log li.received .data", { hasText: "after" }).waitFor();
});

test("usable by keyboard alone", async () => {
  const page = await openClient();
  // The skip link is the first stop and lands in the message field.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "message");
  await page.keyboard.type("typed, not clicked");
  await page.keyboard.press("Enter");
  await page.locator("#log li.received .data", { hasText: "typed, not clicked" }).waitFor();

  // Every control is reachable with Tab, in reading order (from a fresh load: Tab starts at
  // the top of the page).
  await page.goto(relay.url);
  await page.locator("#status[data-state=open]").waitFor();
  const seen = [];
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    const id = await page.evaluate(() => document.activeElement.id);
    if (id) seen.push(id);
  }
  const order = ["target", "connect", "disconnect", "auto-reconnect", "view-text", "log-copy", "log-export",
    "log-clear", "log", "mode-text", "message", "send", "newline", "measure-count", "measure-size",
    "measure-pipelined", "measure-run", "conv-address", "conv-bytes", "conv-service", "conv-proto"];
  const positions = order.map((id) => seen.indexOf(id));
  assert.ok(positions.every((p) => p >= 0), `not reachable: ${order.filter((id, i) => positions[i] < 0)} (seen ${seen})`);
  assert.deepEqual([...positions].sort((a, b) => a - b), positions, `tab order: ${seen}`);

  // Choose another target and connect, with keys only.
  await page.locator("#target").focus();
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.locator("#target").inputValue(), "ack");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "connect");
  await page.keyboard.press("Enter");
  await page.locator("#status", { hasText: /^Connected to ack/ }).waitFor();
  // Disconnect by keyboard: the focus moves to Connect when Disconnect disappears.
  await page.locator("#disconnect").focus();
  await page.keyboard.press("Space");
  await page.locator("#status[data-state=closed]").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), "connect");
});

test("labelled for screen readers", async () => {
  const page = await openClient();
  assert.deepEqual(await unlabelledControls(page), []);
  assert.equal(await page.locator("#status").getAttribute("role"), "status");
  assert.equal(await page.locator("#measure-status").getAttribute("role"), "status");
  assert.equal(await page.getByRole("list", { name: "Traffic log" }).count(), 1);
  assert.equal(await page.getByRole("img", { name: /^Round-trip time/ }).count(), 1);
  for (const name of ["Connection", "Traffic", "Measure", "Convert"]) {
    assert.equal(await page.getByRole("region", { name }).count(), 1, `region ${name}`);
  }
  assert.equal(await page.getByRole("group", { name: "Send as" }).count(), 1);
  assert.equal(await page.getByRole("group", { name: "Show data as" }).count(), 1);
  assert.equal(await page.getByLabel("Reconnect automatically").count(), 1);
});

/** "rgb(r, g, b)" or "rgba(r, g, b, a)" as [r, g, b, a]. */
function parseRgb(css) {
  const match = css.match(/^rgba?\((\d+(?:\.\d+)?), (\d+(?:\.\d+)?), (\d+(?:\.\d+)?)(?:, (\d+(?:\.\d+)?))?\)$/);
  assert.ok(match, `not an rgb() colour: ${css}`);
  return [Number(match[1]), Number(match[2]), Number(match[3]), match[4] === undefined ? 1 : Number(match[4])];
}

/** WCAG 2 relative luminance of an sRGB colour, 0 (black) to 1 (white). */
function luminance([r, g, b]) {
  const linear = (c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

/** WCAG 2 contrast ratio of two colours, 1 to 21. */
function contrast(a, b) {
  const [high, low] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (high + 0.05) / (low + 0.05);
}

/**
 * The computed text colour of the first element matching each selector and the background it
 * is drawn on (its own, or the nearest ancestor's that is not transparent), as rgb() strings.
 */
async function colours(page, selectors) {
  return page.evaluate((selectors) => {
    const result = {};
    for (const selector of selectors) {
      const el = document.querySelector(selector);
      if (!el) throw new Error(`no ${selector}`);
      let bg = "rgba(0, 0, 0, 0)";
      for (let at = el; at; at = at.parentElement) {
        const colour = getComputedStyle(at).backgroundColor;
        if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") {
          bg = colour;
          break;
        }
      }
      result[selector] = { fg: getComputedStyle(el).color, bg };
    }
    return result;
  }, selectors);
}

test("light and dark themes follow prefers-color-scheme, both readable", async () => {
  const page = await openClient();
  // Body text on the page; text, a hint, the status line and buttons on a panel.
  const selectors = ["body", "#traffic", "#message-hint", "#status", "#connect", "#log-clear", "#counters"];
  const seen = {};
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    assert.equal(await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches), scheme === "dark");
    seen[scheme] = await colours(page, selectors);
    for (const selector of selectors) {
      const { fg, bg } = seen[scheme][selector];
      const [text, ground] = [parseRgb(fg), parseRgb(bg)];
      assert.equal(ground[3], 1, `${scheme} ${selector}: an opaque background, not ${bg}`);
      const ratio = contrast(text, ground);
      assert.ok(ratio >= 4.5, `${scheme} ${selector}: contrast ${ratio.toFixed(2)}:1 of ${fg} on ${bg} is under 4.5:1`);
    }
  }
  const { light, dark } = seen;
  assert.notEqual(light.body.bg, dark.body.bg, "the body's background changes with the scheme");
  assert.notEqual(light.body.fg, dark.body.fg, "the body's text colour changes with the scheme");
  const [lightBg, darkBg] = [luminance(parseRgb(light.body.bg)), luminance(parseRgb(dark.body.bg))];
  const [lightFg, darkFg] = [luminance(parseRgb(light.body.fg)), luminance(parseRgb(dark.body.fg))];
  assert.ok(lightBg > 0.7, `light: a light background (luminance ${lightBg.toFixed(3)}, ${light.body.bg})`);
  assert.ok(darkBg < 0.05, `dark: a dark background (luminance ${darkBg.toFixed(3)}, ${dark.body.bg})`);
  assert.ok(lightFg < lightBg && darkFg > darkBg, "dark text on light, light text on dark");
  // The panels follow too, not only the page around them.
  assert.notEqual(light["#traffic"].bg, dark["#traffic"].bg);
  assert.ok(luminance(parseRgb(dark["#traffic"].bg)) < 0.05, `dark panel: ${dark["#traffic"].bg}`);
});

test("layouts: two columns on a desktop, one at 360 px, light and dark", async () => {
  const desktop = await openClient({ width: 1280, height: 900 });
  const traffic = await desktop.locator("#traffic").boundingBox();
  const measure = await desktop.locator("#measure").boundingBox();
  assert.ok(measure.x > traffic.x + traffic.width - 1, "Measure beside Traffic");
  await screenshot(desktop, "client-desktop-light");
  await desktop.emulateMedia({ colorScheme: "dark" });
  await screenshot(desktop, "client-desktop-dark");

  for (const dark of [false, true]) {
    const page = await openClient({ width: 360, height: 740, dark });
    await send(page, "a long line of text that has to wrap on a narrow phone screen without scrolling sideways");
    await page.locator("#mode-hex").check();
    await send(page, "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13");
    await entries(page, "received").nth(1).waitFor();
    await page.locator("#view-hex").check();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    for (const id of ["#send", "#connect", "#measure-run", "#log-clear"]) {
      const box = await page.locator(id).boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 360, `${id} on screen`);
    }
    const name = dark ? "dark" : "light";
    await screenshot(page, `client-360-${name}`);
    await screenshotOf(page.locator("#traffic"), `client-360-${name}-traffic`);
    await screenshotOf(page.locator("#connection"), `client-360-${name}-connection`);
  }
});
