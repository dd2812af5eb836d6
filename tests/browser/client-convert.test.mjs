// The client page's converter panel: every converter function and the address and subnet
// facts, with Python's exact answers and errors, as the user types. It needs no connection,
// so it is also checked with the relay gone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startRelay, launchBrowser, screenshotOf } from "./lib.mjs";

let relay;
let browser;
let page;

before(async () => {
  relay = await startRelay();
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(relay.url);
  await page.locator("html[data-client=ready]").waitFor({ timeout: 15_000 });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

/** The rows of a results list as `{ label: value }`; errors prefixed with `!`. */
async function rows(list) {
  return page.locator(`#${list} > div`).evaluateAll((divs) =>
    Object.fromEntries(
      divs.map((div) => [
        div.querySelector("dt").textContent,
        (div.classList.contains("error") ? "!" : "") + div.querySelector("dd").textContent,
      ]),
    ),
  );
}

async function typeInto(field, text) {
  await page.locator(`#${field}`).fill("");
  // Typed key by key, as a person would: the answers follow every keystroke.
  await page.locator(`#${field}`).pressSequentially(text);
}

test("an address in every representation, as inet_aton and inet_pton read it", async () => {
  await typeInto("conv-address", "192.168.1.190");
  assert.deepEqual(await rows("conv-address-out"), {
    "inet_aton('192.168.1.190')": "b'\\xc0\\xa8\\x01\\xbe'",
    "inet_pton(AF_INET, '192.168.1.190')": "b'\\xc0\\xa8\\x01\\xbe'",
    "inet_pton(AF_INET6, '192.168.1.190')": "!OSError: illegal IP address string passed to inet_pton",
    family: "AF_INET (2)",
    dotted: "192.168.1.190",
    integer: "3232235966",
    hex: "0xc0a801be",
    binary: "11000000.10101000.00000001.10111110",
    "Python bytes": "b'\\xc0\\xa8\\x01\\xbe'",
    kind: "private",
  });
});

test("what only glibc's permissive inet_aton reads, and IPv6", async () => {
  await typeInto("conv-address", "0x7f.1");
  const permissive = await rows("conv-address-out");
  assert.equal(permissive["inet_aton('0x7f.1')"], "b'\\x7f\\x00\\x00\\x01'");
  assert.equal(permissive["inet_pton(AF_INET, '0x7f.1')"], "!OSError: illegal IP address string passed to inet_pton");
  assert.equal(permissive["inet_aton reads it as"], "127.0.0.1");
  assert.equal(permissive.kind, "loopback");

  await typeInto("conv-address", "2001:DB8:0:0:0:0:0:1");
  const v6 = await rows("conv-address-out");
  assert.equal(v6["inet_aton('2001:DB8:0:0:0:0:0:1')"], "!OSError: illegal IP address string passed to inet_aton");
  assert.equal(v6.family, "AF_INET6 (10)");
  assert.equal(v6["text (inet_ntop)"], "2001:db8::1");
  assert.equal(v6.integer, "42540766411282592856903984951653826561");
  assert.equal(v6.kind, "documentation");

  await typeInto("conv-address", "not an address");
  assert.equal(Object.keys(await rows("conv-address-out")).length, 3, "three errors, no facts");
});

test("a network: the subnet's facts and its address's", async () => {
  await typeInto("conv-address", "192.168.1.77/255.255.255.0");
  const net = await rows("conv-address-out");
  assert.equal(net.network, "192.168.1.0/24");
  assert.equal(net.netmask, "255.255.255.0");
  assert.equal(net["first host"], "192.168.1.1");
  assert.equal(net["last host"], "192.168.1.254");
  assert.equal(net.broadcast, "192.168.1.255");
  assert.equal(net.addresses, "256");
  assert.equal(net["usable hosts"], "254");
  assert.equal(net.dotted, "192.168.1.77");
  // A bad prefix: Python's error, and still the facts of the address before it.
  await typeInto("conv-address", "10.0.0.0/33");
  const bad = await rows("conv-address-out");
  assert.equal(
    bad["ip_network('10.0.0.0/33', strict=False)"],
    "!ValueError: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network",
  );
  assert.equal(bad.network, undefined);
  assert.equal(bad.dotted, "10.0.0.0");
});

test("packed bytes back to text: inet_ntoa and inet_ntop", async () => {
  await typeInto("conv-bytes", "c0 a8 01 be");
  const packed = await rows("conv-bytes-out");
  assert.equal(packed["inet_ntoa(b'\\xc0\\xa8\\x01\\xbe')"], "'192.168.1.190'");
  assert.equal(packed["inet_ntop(AF_INET, b'\\xc0\\xa8\\x01\\xbe')"], "'192.168.1.190'");
  assert.equal(packed["inet_ntop(AF_INET6, b'\\xc0\\xa8\\x01\\xbe')"], "!ValueError: invalid length of packed IP address string");
  assert.equal(packed.integer, "3232235966");

  await typeInto("conv-bytes", "b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\xff\\xff\\x7f\\x00\\x00\\x01'");
  const mapped = await rows("conv-bytes-out");
  assert.equal(Object.entries(mapped).find(([k]) => k.startsWith("inet_ntop(AF_INET6"))[1], "'::ffff:127.0.0.1'");
  assert.equal(mapped.kind, "loopback");

  await typeInto("conv-bytes", "7f 0g");
  assert.deepEqual(await rows("conv-bytes-out"), { bytes: "!'g' at position 5 is not a hex digit (0-9, a-f)" });
});

test("services by name and by port, with and without a protocol", async () => {
  await typeInto("conv-service", "mysql");
  assert.deepEqual(await rows("conv-service-out"), { "getservbyname('mysql', 'tcp')": "3306" });
  await page.getByLabel("Protocol").selectOption("");
  await typeInto("conv-service", "443");
  assert.deepEqual(await rows("conv-service-out"), { "getservbyport(443)": "'https'" });
  await typeInto("conv-service", "99999");
  assert.deepEqual(await rows("conv-service-out"), { "getservbyport(99999)": "!OverflowError: getservbyport: port must be 0-65535." });
  await page.getByLabel("Protocol").selectOption("udp");
  await typeInto("conv-service", "no-such-service");
  assert.deepEqual(await rows("conv-service-out"), { "getservbyname('no-such-service', 'udp')": "!OSError: service/proto not found" });
  await screenshotOf(page.locator("#convert"), "client-convert");
});

test("the converter keeps working with the relay gone, at 360 px in dark mode", async () => {
  await relay.kill();
  await page.locator("#status[data-state=closed]").waitFor({ timeout: 10_000 });
  await page.setViewportSize({ width: 360, height: 740 });
  await page.emulateMedia({ colorScheme: "dark" });
  await typeInto("conv-address", "fe80::1/64");
  const net = await rows("conv-address-out");
  assert.equal(net.network, "fe80::/64");
  assert.equal(net.kind, "link-local");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
  await screenshotOf(page.locator("#convert"), "client-convert-360-dark");
});
