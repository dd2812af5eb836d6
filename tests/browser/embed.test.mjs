// Embedding the converter as docs sites do (issue 18), in headless Chromium:
// - a plain page on one origin (a small node server here) that imports the module and the
//   <inet-converter> element from a running relay on another: CORS, compression, the element;
// - a page built by Vite from the packed web/pkg installed into a fresh project, the wasm
//   bundled as one of its assets.
// Every page must raise no console error (lib.mjs checks after each test).
//
// Needs target/debug/sockrelay built after the last wasm/build.sh (assets are embedded at
// compile time), and Vite in node_modules (package.json; scripts/setup.sh installs it).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { launchBrowser, ROOT, screenshotOf, startRelay } from "./lib.mjs";
import { installPacked, NAME } from "../node/pack.mjs";

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

/**
 * A static server on a loopback port of its own: `pages` maps a path to HTML, and `/vite/...`
 * serves the files under `viteDist` once it is set. No CORS headers, no compression: the other
 * origin of the tests.
 */
async function startPageServer(pages) {
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    let body = pages[path];
    let type = TYPES[extname(path)] ?? TYPES[".html"];
    if (body === undefined && server.viteDist && path.startsWith("/vite/")) {
      const file = normalize(join(server.viteDist, path.slice("/vite/".length) || "index.html"));
      if (file.startsWith(server.viteDist) && existsSync(file) && statSync(file).isFile()) {
        body = readFileSync(file);
        type = TYPES[extname(file)] ?? "application/octet-stream";
      }
    }
    if (body === undefined) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    response.writeHead(200, { "content-type": type }).end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    server,
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The rows an <inet-converter>'s panel shows, as [term, value, isError]. */
async function rows(element, panel) {
  return element.evaluate(
    (el, panel) =>
      [...el.shadowRoot.querySelectorAll(`dl[data-panel=${panel}] > div`)].map((row) => [
        row.querySelector("dt").textContent,
        row.querySelector("dd").textContent,
        row.getAttribute("part").includes("error"),
      ]),
    panel,
  );
}

/** Waits until the panel shows a row named `term` with `value` (a string or RegExp). */
async function waitRow(element, panel, term, value) {
  const deadline = Date.now() + 10_000;
  let got;
  while (Date.now() < deadline) {
    got = await rows(element, panel);
    const row = got.find(([t]) => t === term);
    if (row && (value instanceof RegExp ? value.test(row[1]) : row[1] === value)) return row;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no row ${term} = ${value} in ${panel}: ${JSON.stringify(got)}`);
}

let relay, relayUrl, pages, browser;

before(async () => {
  relay = await startRelay();
  relayUrl = relay.url.replace(/\/$/, "");
  pages = await startPageServer({
    // What README tells a docs author to write, with the relay's address.
    "/plain.html": `<!doctype html><html lang="en"><meta charset="utf-8"><title>docs</title><link rel="icon" href="data:,">
<style>
  inet-converter.themed { --inet-error: rgb(10, 20, 30); }
  inet-converter.themed::part(term) { color: rgb(200, 0, 100); }
</style>
<script type="module" src="${relayUrl}/pkg/inet-converter.js"></script>
<inet-converter id="full" value="192.168.1.190"></inet-converter>
<inet-converter id="services" class="themed" show="services" service="nosuchservice"></inet-converter>
<p>Module: <output id="module">…</output></p>
<script type="module">
  import init, { inet_aton, inet_ntoa } from "${relayUrl}/pkg/inet.js";
  await init();
  document.getElementById("module").textContent = inet_ntoa(inet_aton("127.1"));
</script>
</html>`,
    // The element beside a damaged inet_bg.wasm: it must say so instead of failing silently.
    "/broken/page.html": `<!doctype html><html lang="en"><meta charset="utf-8"><title>broken</title><link rel="icon" href="data:,">
<script type="module" src="./inet-converter.js"></script>
<inet-converter></inet-converter>
</html>`,
    "/broken/inet-converter.js": readFileSync(join(ROOT, "web", "pkg", "inet-converter.js")),
    "/broken/inet.js": readFileSync(join(ROOT, "web", "pkg", "inet.js")),
    "/broken/inet_bg.wasm": Buffer.from("\0asm not really"),
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await pages?.stop();
});

describe("a page on another origin, importing from the relay", () => {
  test("the element answers from the relay's module, with CORS and compression", async () => {
    const page = await browser.newPage();
    const fromRelay = [];
    page.on("response", async (response) => {
      if (response.url().startsWith(`${relayUrl}/pkg/`)) fromRelay.push([response.url(), await response.allHeaders()]);
    });
    await page.goto(`${pages.url}/plain.html`);
    await page.locator("#module", { hasText: "127.0.0.1" }).waitFor({ timeout: 10_000 });
    const full = page.locator("#full");
    await waitRow(full, "address", "kind", "private");
    const address = Object.fromEntries((await rows(full, "address")).map(([t, v]) => [t, v]));
    assert.equal(address.inet_aton, "b'\\xc0\\xa8\\x01\\xbe'");
    assert.equal(address.integer, "3232235966");
    assert.equal(address["inet_pton(AF_INET6)"], "OSError: illegal IP address string passed to inet_pton");
    await waitRow(full, "bytes", "dotted", "192.168.1.190");
    await waitRow(full, "services", "getservbyname", "80");
    await screenshotOf(full, "embed-element-cross-origin");

    const wasm = fromRelay.find(([url]) => url.endsWith("/inet_bg.wasm"));
    assert.ok(wasm, `no wasm from the relay: ${fromRelay.map(([u]) => u)}`);
    for (const [url, headers] of fromRelay) {
      assert.equal(headers["access-control-allow-origin"], "*", url);
      assert.match(headers["content-encoding"] ?? "", /^(br|gzip)$/, url);
    }
  });

  test("typing updates the answers; subnets and packed bytes too", async () => {
    const page = await browser.newPage();
    await page.goto(`${pages.url}/plain.html`);
    const full = page.locator("#full");
    await waitRow(full, "address", "kind", "private");
    const input = full.getByLabel("Address or network", { exact: true });
    await input.fill("10.0.0.0/8");
    await waitRow(full, "address", "usable hosts", "16777214");
    await waitRow(full, "address", "broadcast", "10.255.255.255");
    // Keyboard alone: the field is reached with Tab and typed into.
    await input.fill("");
    await input.focus();
    await page.keyboard.type("127.1");
    await waitRow(full, "address", "inet_aton reads it as", "127.0.0.1");
    await waitRow(full, "address", "kind", "loopback");
    await full.getByLabel("Packed bytes", { exact: true }).fill("b'\\x7f\\x00\\x00\\x01'");
    await waitRow(full, "bytes", "inet_ntoa", "127.0.0.1");
    await full.getByLabel("Packed bytes", { exact: true }).fill("zz");
    const [bad] = await rows(full, "bytes");
    assert.equal(bad[0], "bytes");
    assert.ok(bad[2], "a parse error is marked as one");
    await full.getByLabel("Service name or port", { exact: true }).fill("443");
    await waitRow(full, "services", "getservbyport", "https");
    // Attributes set later are taken up.
    await full.evaluate((el) => el.setAttribute("value", "::1"));
    await waitRow(full, "address", "kind", "loopback");
    await waitRow(full, "address", "text (inet_ntop)", "::1");
  });

  test("labelled, announced, and styleable from outside", async () => {
    const page = await browser.newPage();
    await page.goto(`${pages.url}/plain.html`);
    const services = page.locator("#services");
    const [term, value, isError] = await waitRow(services, "services", "getservbyname", /^OSError/);
    assert.equal(term, "getservbyname");
    assert.equal(value, "OSError: service/proto not found");
    assert.ok(isError);
    const facts = await services.evaluate((el) => {
      const root = el.shadowRoot;
      const dd = root.querySelector("dd");
      return {
        panels: [...root.querySelectorAll("[part~=panel]")].map((p) => p.getAttribute("part")),
        unlabelled: [...root.querySelectorAll("input, select")].filter(
          (c) => c.labels.length === 0 && !c.getAttribute("aria-label"),
        ).length,
        live: [...root.querySelectorAll("dl")].map((dl) => dl.getAttribute("aria-live")),
        errorColor: getComputedStyle(dd).color,
        termColor: getComputedStyle(root.querySelector("dt")).color,
      };
    });
    assert.deepEqual(facts.panels, ["panel services"], "show= picks the panels");
    assert.equal(facts.unlabelled, 0);
    assert.deepEqual(facts.live, ["polite"]);
    assert.equal(facts.errorColor, "rgb(10, 20, 30)", "--inet-error");
    assert.equal(facts.termColor, "rgb(200, 0, 100)", "::part(term)");
    await screenshotOf(services, "embed-element-services-themed");
  });
});

test("an element whose module cannot load says so", async () => {
  const page = await browser.newPage();
  await page.goto(`${pages.url}/broken/page.html`);
  const alert = page.locator("inet-converter [role=alert]");
  await alert.waitFor({ timeout: 10_000 });
  assert.match(await alert.innerText(), /^The converter module did not load: CompileError/);
});

describe("a docs site built by Vite from the packed package", () => {
  let project;
  after(() => project?.remove());

  test("the element and the module work from the bundle, the wasm an asset of it", async (t) => {
    // Without Vite, or with an npm that cannot install the tarball offline, this machine cannot
    // run the test: CI must (it fails), a developer is told why it skipped.
    const cannot = (message) => {
      if (process.env.CI) assert.fail(message);
      t.skip(message);
    };
    let vite;
    try {
      vite = await import("vite");
    } catch (error) {
      return cannot(`Vite is not installed (npm ci installs it from package.json): ${error.message}`);
    }
    const files = {
      "index.html": `<!doctype html><html lang="en"><meta charset="utf-8"><title>built</title><link rel="icon" href="data:,">
<inet-converter value="2001:db8::1"></inet-converter>
<p>Module: <output id="module">…</output></p>
<script type="module" src="./main.js"></script>
</html>`,
      "main.js": `import "${NAME}/inet-converter.js";
import init, { inet_pton, inet_ntop, AF_INET6 } from "${NAME}";
await init();
document.getElementById("module").textContent = inet_ntop(AF_INET6, inet_pton(AF_INET6, "2001:DB8:0::2"));
`,
    };
    try {
      project = installPacked(files);
    } catch (error) {
      return cannot(`npm could not pack web/pkg or install the tarball offline: ${error.message}`);
    }
    await vite.build({
      root: project.dir,
      configFile: false,
      logLevel: "warn",
      base: "./",
      build: { outDir: "dist", emptyOutDir: true },
    });
    const dist = join(project.dir, "dist");
    const assets = readdirSync(join(dist, "assets"));
    assert.ok(assets.some((f) => /^inet_bg-.*\.wasm$/.test(f)), `no wasm asset in ${assets}`);
    pages.server.viteDist = dist;

    const page = await browser.newPage();
    const requested = [];
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(`${pages.url}/vite/index.html`);
    await page.locator("#module", { hasText: "2001:db8::2" }).waitFor({ timeout: 10_000 });
    const element = page.locator("inet-converter");
    await waitRow(element, "address", "kind", "documentation");
    await screenshotOf(element, "embed-element-vite");
    assert.deepEqual(requested.filter((url) => !url.startsWith(`${pages.url}/vite/`)), [], "all from the bundle");
  });
});
