// The converter's docs page (web/docs.html) and its smallest embedding (web/examples/embed.html)
// in headless Chromium: served by the real relay binary, and by a plain static server, since
// the page promises to work from either. Screenshots go to target/screenshots/ to be looked at.
//
// Needs target/debug/sockrelay built after the last change to web/ (assets are embedded at
// compile time): `wasm/build.sh && cargo build -p sockrelay`.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assertNoPageProblems, expectProblems, launchBrowser, ROOT, SCREENSHOTS, startRelay } from "./lib.mjs";

/** `python3 -m http.server` on a free loopback port, serving web/ as files. */
async function startStaticServer() {
  const child = spawn(
    "python3",
    ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", join(ROOT, "web")],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`http.server printed no port in 10 s:\n${log}`)), 10_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    }
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      log += chunk;
      const match = log.match(/Serving HTTP on 127\.0\.0\.1 port (\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk) => (log += chunk));
    child.once("error", fail);
    child.once("exit", (code) => fail(new Error(`http.server exited (${code}):\n${log}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

let relay, relayUrl, staticServer, staticUrl, browser, context;

before(async () => {
  relay = await startRelay();
  relayUrl = relay.url.replace(/\/$/, "");
  staticServer = await startStaticServer();
  staticUrl = staticServer.url;
  browser = await launchBrowser();
  context = browser.context;
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await staticServer?.stop();
});

/** Opens the docs page at `url` and waits for the module to load. */
async function openDocs(url, viewport = { width: 1280, height: 900 }) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  const response = await page.goto(url);
  assert.equal(response.status(), 200, url);
  await page.locator("#status[data-state=ready]").waitFor({ timeout: 10_000 });
  return page;
}

/** The text the live example of `fn` shows, once it shows something. */
async function result(page, fn) {
  const output = page.locator(`form[data-call=${fn}] output`);
  await output.locator("code.call").waitFor();
  return (await output.innerText()).replace(/\s+/g, " ").trim();
}

async function type(page, fn, field, value) {
  await page.locator(`form[data-call=${fn}] [name=${field}]`).fill(value);
}

async function choose(page, fn, field, value) {
  await page.locator(`form[data-call=${fn}] select[name=${field}]`).selectOption(value);
}

describe("docs page served by the relay", () => {
  test("the relay serves the docs files of this checkout", async () => {
    // A binary built before the last edit of web/ embeds the old files.
    for (const [path, file] of [
      ["/docs", "docs.html"],
      ["/css/docs.css", "css/docs.css"],
      ["/js/docs.js", "js/docs.js"],
      ["/examples/embed.html", "examples/embed.html"],
      ["/examples/embed.js", "examples/embed.js"],
      ["/favicon.svg", "favicon.svg"],
    ]) {
      const response = await fetch(relayUrl + path);
      assert.equal(response.status, 200, path);
      assert.equal(await response.text(), readFileSync(join(ROOT, "web", file), "utf8"),
        `target/debug/sockrelay embeds an older web/${file}: run cargo build -p sockrelay`);
    }
    for (const path of ["/pkg/inet.js", "/pkg/inet_bg.wasm"]) {
      const response = await fetch(relayUrl + path);
      assert.equal(response.status, 200, path);
    }
    assert.equal((await fetch(`${relayUrl}/pkg/inet_bg.wasm`)).headers.get("content-type"), "application/wasm");
  });

  test("the relay's pages run no inline code, and the browser enforces it", async () => {
    const page = await context.newPage();
    const response = await page.goto(`${relayUrl}/docs`);
    assert.match(response.headers()["content-security-policy"], /script-src 'self' 'wasm-unsafe-eval';/);
    assert.equal(response.headers()["x-content-type-options"], "nosniff");
    await page.locator("#status[data-state=ready]").waitFor();
    // An injected inline script is refused, and the console error it causes is caught.
    expectProblems(/Content Security Policy/);
    const refused = page.waitForEvent("console", (m) => /Content Security Policy/.test(m.text()));
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true;";
      document.body.append(script);
    });
    await refused;
    assert.equal(await page.evaluate(() => window.inlineRan), undefined);
    await page.close();
  });

  test("every live example answers as Python would", { timeout: 60_000 }, async () => {
    const page = await openDocs(`${relayUrl}/docs`);

    // The defaults render as soon as the module is in.
    assert.equal(await result(page, "inet_aton"),
      'inet_aton("127.1") → Uint8Array(4) [127, 0, 0, 1] Python b\'\\x7f\\x00\\x00\\x01\'');
    assert.match(await page.locator("#constants-out").innerText(), /AF_INET === 2, AF_INET6 === 10/);
    assert.match(await page.locator("#init-out").innerText(), /ready in \d+ ms/);

    // inet_aton: permissive forms, and Python's error with its class.
    await type(page, "inet_aton", "ip_string", "256.1.1.1.1");
    assert.equal(await result(page, "inet_aton"),
      'inet_aton("256.1.1.1.1") OSError: illegal IP address string passed to inet_aton');
    assert.equal(await page.locator("form[data-call=inet_aton] output").getAttribute("data-state"), "error");
    await page.getByRole("button", { name: "0x7f.1", exact: true }).click();
    assert.match(await result(page, "inet_aton"), /→ Uint8Array\(4\) \[127, 0, 0, 1\]/);
    await type(page, "inet_aton", "ip_string", "010.1");
    assert.match(await result(page, "inet_aton"), /\[8, 0, 0, 1\]/);

    // inet_ntoa: bytes typed in; a wrong length is the module's OSError, a non-byte the page's.
    assert.equal(await result(page, "inet_ntoa"),
      'inet_ntoa(new Uint8Array([192, 168, 1, 190])) → "192.168.1.190"');
    await type(page, "inet_ntoa", "packed_ip", "1, 2, 3");
    assert.match(await result(page, "inet_ntoa"), /OSError: packed IP wrong length for inet_ntoa$/);
    await type(page, "inet_ntoa", "packed_ip", "1 2 3 300");
    assert.match(await result(page, "inet_ntoa"), /Not called: "300" is not a byte/);

    // inet_pton: strict.
    await choose(page, "inet_pton", "address_family", "2");
    await type(page, "inet_pton", "ip_string", "127.1");
    assert.equal(await result(page, "inet_pton"),
      'inet_pton(AF_INET, "127.1") OSError: illegal IP address string passed to inet_pton');
    await page.getByRole("button", { name: "AF_INET6 ::ffff:1.2.3.4" }).click();
    assert.match(await result(page, "inet_pton"),
      /Uint8Array\(16\) \[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4\]/);
    await choose(page, "inet_pton", "address_family", "1");
    assert.match(await result(page, "inet_pton"),
      /OSError: \[Errno 97\] Address family not supported by protocol$/);

    // inet_ntop: canonical text.
    assert.match(await result(page, "inet_ntop"), /→ "2001:db8::1"$/);
    await page.getByRole("button", { name: "AF_INET6 1:0:0:2:0:0:3:4" }).click();
    assert.match(await result(page, "inet_ntop"), /→ "1::2:0:0:3:4"$/);
    await page.getByRole("button", { name: "AF_INET6, 4 bytes" }).click();
    assert.match(await result(page, "inet_ntop"), /ValueError: invalid length of packed IP address string$/);

    // Services.
    assert.match(await result(page, "getservbyname"), /getservbyname\("mysql", "tcp"\) → 3306$/);
    await type(page, "getservbyname", "service_name", "no-such-service");
    assert.match(await result(page, "getservbyname"), /OSError: service\/proto not found$/);
    assert.match(await result(page, "getservbyport"), /getservbyport\(80, "tcp"\) → "http"$/);
    await page.getByRole("button", { name: "70000", exact: true }).click();
    assert.match(await result(page, "getservbyport"), /OverflowError: getservbyport: port must be 0-65535\.$/);
    await page.getByRole("button", { name: '"http"', exact: true }).click();
    assert.match(await result(page, "getservbyport"),
      /TypeError: 'str' object cannot be interpreted as an integer$/);

    // Beyond Python's socket.
    await type(page, "address_facts", "address", "fe80::1");
    const facts = await result(page, "address_facts");
    assert.match(facts, /family 10 \(AF_INET6\)/);
    assert.match(facts, /kind link-local/);
    await type(page, "address_facts", "address", "nope");
    assert.match(await result(page, "address_facts"),
      /ValueError: 'nope' does not appear to be an IPv4 or IPv6 address$/);
    const net = await result(page, "subnet");
    assert.match(net, /network 192\.168\.1\.0 /);
    assert.match(net, /broadcast 192\.168\.1\.255 /);
    assert.match(net, /hosts 254$/);
    await page.getByRole("button", { name: "2001:db8::/32" }).click();
    assert.match(await result(page, "subnet"), /broadcast null/);

    // initSync on a second copy of the module.
    await page.getByRole("button", { name: "Load a second copy with initSync" }).click();
    await page.locator("#init-sync-out[data-state]").waitFor();
    assert.match(await page.locator("#init-sync-out").innerText(),
      /bytes instantiated in [\d.]+ ms; its inet_ntoa\(inet_aton\("127\.1"\)\) is "127\.0\.0\.1"/);

    assertNoPageProblems();
    await page.close();
  });

  test("examples and copy buttons work from the keyboard", { timeout: 30_000 }, async () => {
    const origin = new URL(relayUrl).origin;
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    const page = await openDocs(`${relayUrl}/docs`);

    // Labels name the fields.
    await page.getByLabel("ip_string", { exact: true }).first().fill("0x7f.1");
    assert.match(await result(page, "inet_aton"), /\[127, 0, 0, 1\]/);

    // An example button, reached with Tab and pressed with Enter.
    await page.getByLabel("ip_string", { exact: true }).first().focus();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "192.168.1.190");
    await page.keyboard.press("Enter");
    assert.match(await result(page, "inet_aton"), /\[192, 168, 1, 190\]/);

    // Copy puts the snippet itself on the clipboard.
    const copy = page.getByRole("button", { name: "Copy the browser snippet" });
    await copy.focus();
    await page.keyboard.press("Enter");
    await page.locator(".snippet-bar [role=status]", { hasText: "Copied" }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, await page.locator("#snippet-browser").innerText());
    // The snippet names the relay that serves the page, whose /pkg/ a page on any origin imports.
    assert.ok(copied.includes(`import init, { inet_aton, inet_ntoa } from "${origin}/pkg/inet.js";`), copied);

    assertNoPageProblems();
    await page.close();
  });

  test("the <inet-converter> element and the three ways of embedding it", async () => {
    const page = await openDocs(`${relayUrl}/docs`);
    const element = page.locator("#element-demo inet-converter");
    await element.locator("dd", { hasText: "private" }).first().waitFor({ timeout: 10_000 });
    // Its styles are a constructed sheet, which the relay's Content-Security-Policy (no inline
    // styles) lets through: the page's --inet-radius reaches the field.
    const radius = await element.getByLabel("Address or network", { exact: true })
      .evaluate((input) => getComputedStyle(input).borderTopLeftRadius);
    assert.equal(radius, "6px");
    const origin = new URL(relayUrl).origin;
    const snippets = {};
    for (const id of ["snippet-element", "snippet-browser", "snippet-npm", "snippet-node"]) {
      snippets[id] = await page.locator(`#${id}`).innerText();
      assert.equal(await page.locator(`button.copy[data-copy=${id}]`).count(), 1, id);
    }
    assert.ok(snippets["snippet-element"].includes(`<script type="module" src="${origin}/pkg/inet-converter.js"></script>`));
    assert.match(snippets["snippet-npm"], /import "sockrelay-inet\/inet-converter\.js";/);
    assert.match(snippets["snippet-node"], /from "sockrelay-inet";\nawait init\(\);/);
    await element.screenshot({ path: join(SCREENSHOTS, "docs-element.png") });
    await page.close();
  });

  test("screenshots, light and dark, 1280 and 360 px wide", { timeout: 30_000 }, async () => {
    for (const [name, viewport, colorScheme] of [
      ["docs-desktop", { width: 1280, height: 900 }, "light"],
      ["docs-360", { width: 360, height: 780 }, "light"],
      ["docs-360-dark", { width: 360, height: 780 }, "dark"],
    ]) {
      const page = await context.newPage();
      await page.emulateMedia({ colorScheme });
      await page.setViewportSize(viewport);
      await page.goto(`${relayUrl}/docs`);
      await page.locator("#status[data-state=ready]").waitFor();
      // An error case on show too.
      await page.locator("form[data-call=inet_aton] [name=ip_string]").fill("256.1.1.1.1");
      await result(page, "inet_aton");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(overflow <= viewport.width, `${name}: the page is ${overflow} px wide`);
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
      await page.locator("#inet_aton").screenshot({ path: join(SCREENSHOTS, `${name}-inet_aton.png`) });
      await page.close();
    }
    assertNoPageProblems();
  });

  test("the embedding example works", async () => {
    const page = await context.newPage();
    await page.goto(`${relayUrl}/examples/embed.html`);
    await page.locator("#out", { hasText: "127.0.0.1" }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(SCREENSHOTS, "embed.png") });
    assertNoPageProblems();
    await page.close();
  });
});

describe("docs page from a plain static server", () => {
  test("the page and the embedding example work without the relay", { timeout: 30_000 }, async () => {
    const page = await openDocs(`${staticUrl}/docs.html`);
    await type(page, "inet_aton", "ip_string", "256.1.1.1.1");
    assert.match(await result(page, "inet_aton"),
      /OSError: illegal IP address string passed to inet_aton$/);
    await type(page, "inet_pton", "ip_string", "::1");
    assert.match(await result(page, "inet_pton"), /\[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1\]/);
    await page.goto(`${staticUrl}/examples/embed.html`);
    await page.locator("#out", { hasText: "127.0.0.1" }).waitFor({ timeout: 10_000 });
    assertNoPageProblems();
    await page.close();
  });
});
