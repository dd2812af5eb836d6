// The fast paths of inet_pton/inet_ntop in the built converter (wasm/js/fast.js over the typed
// exports of wasm/converter/src/js.rs) against the checked paths they fall back to: the same results and
// the same errors. A BigInt family is the same family to Python's argument conversion but never
// takes a fast path, so `inet_pton(2n, s)` is the checked `inet_pton(2, s)`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const pkg = new URL("../../web/pkg/", import.meta.url);
const inet = await import(new URL("inet.js", pkg).href);
inet.initSync({ module: readFileSync(new URL("inet_bg.wasm", pkg)) });
const { AF_INET, AF_INET6, inet_pton, inet_ntop } = inet;

function outcome(call) {
  try {
    return { ok: call() };
  } catch (error) {
    return { error: { name: error.name, message: error.message } };
  }
}

/** xorshift32: the same bytes on every run. */
function bytes(seed, length) {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    out[i] = seed;
  }
  return out;
}

const TEXTS = [
  "0.0.0.0", "255.255.255.255", "192.168.1.190", "127.1", "01.2.3.4", "1.2.3.4.", "1.2.3.256",
  "1.2.3.4\0", "\0", "", " 1.2.3.4", "1.2.3.4 ", "::", "::1", "::ffff:1.2.3.4", "2001:DB8::1",
  "1:2:3:4:5:6:7::", "1::2::3", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "::ffff:1.2.3",
  "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "1.2.3.\u0664", "١.2.3.4", "1.2.3.4\u00a0",
  "1.2\uDC80", "\uD83D\uDE00", "1".repeat(63), "1".repeat(64), "1".repeat(65),
  "0:0:0:0:0:0:0:0000000000000000000000000000000000000000000000000001",
];

test("inet_pton: the fast path answers as the checked path does", () => {
  for (const text of TEXTS) {
    for (const [family, big] of [[AF_INET, 2n], [AF_INET6, 10n]]) {
      assert.deepEqual(outcome(() => inet_pton(family, text)), outcome(() => inet_pton(big, text)),
        `inet_pton(${family}, ${JSON.stringify(text)})`);
    }
  }
  for (let i = 0; i < 500; i++) {
    for (const [family, length] of [[AF_INET, 4], [AF_INET6, 16]]) {
      const text = inet_ntop(family, bytes(i + 1, length));
      const packed = inet_pton(family, text);
      assert.ok(packed instanceof Uint8Array);
      assert.deepEqual(packed, bytes(i + 1, length));
      assert.deepEqual(packed, inet_pton(BigInt(family), text));
    }
  }
});

test("inet_ntop: the fast path answers as the checked path does", () => {
  for (let i = 0; i < 500; i++) {
    const v4 = bytes(i + 1, 4);
    assert.equal(inet_ntop(AF_INET, v4), inet_ntop(2n, v4));
    // Zero runs of many lengths and places, IPv4-mapped and -compatible addresses.
    const v6 = bytes(i + 1, 16);
    v6.fill(0, i % 16, (i % 16) + (i % 7) * 2);
    if (i % 5 === 0) v6.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    if (i % 5 === 1) v6.fill(0, 0, 12);
    assert.equal(inet_ntop(AF_INET6, v6), inet_ntop(10n, v6), `${v6}`);
  }
  // Not the fast path's types or lengths: the checked path's answers.
  for (const [family, packed] of [
    [AF_INET, new Uint8Array(3)], [AF_INET, new Uint8Array(16)], [AF_INET6, new Uint8Array(4)],
    [7, new Uint8Array(4)], [AF_INET, [1, 2, 3, 4]], [AF_INET, "1234"], [2.5, new Uint8Array(4)],
    [AF_INET, new Uint16Array(2)], [AF_INET, new DataView(new ArrayBuffer(4))],
    [AF_INET, Buffer.from([10, 0, 0, 1])], [AF_INET, new Uint8Array([9, 10, 0, 0, 1]).subarray(1)],
  ]) {
    const big = typeof family === "number" && Number.isInteger(family) ? BigInt(family) : family;
    assert.deepEqual(outcome(() => inet_ntop(family, packed)), outcome(() => inet_ntop(big, packed)));
  }
  assert.equal(inet_ntop(AF_INET, Buffer.from([10, 0, 0, 1])), "10.0.0.1");
});

test("inet_ntop of IPv4, joined in JS: every byte value in every position as the checked path", () => {
  for (let value = 0; value < 256; value++) {
    for (let at = 0; at < 4; at++) {
      const packed = new Uint8Array([1, 22, 133, 4]);
      packed[at] = value;
      assert.equal(inet_ntop(AF_INET, packed), inet_ntop(2n, packed), `${packed}`);
    }
  }
  assert.equal(inet_ntop(AF_INET, new Uint8Array([0, 9, 10, 255])), "0.9.10.255");
});

test("the fast paths still work after wasm memory grew", () => {
  const before = inet_ntop(AF_INET6, inet_pton(AF_INET6, "2001:db8::1"));
  // A text this long is copied into wasm memory, which grows to hold it.
  assert.throws(() => inet.inet_aton("1".repeat(1 << 22)), { name: "OSError" });
  assert.equal(inet_ntop(AF_INET6, inet_pton(AF_INET6, "2001:db8::1")), before);
  assert.equal(inet_ntop(AF_INET, inet_pton(AF_INET, "192.168.1.190")), "192.168.1.190");
});

test("the entry exports the public API only", () => {
  assert.deepEqual(Object.keys(inet).sort(), [
    "AF_INET", "AF_INET6", "address_facts", "default", "getservbyname", "getservbyport",
    "inet_aton", "inet_ntoa", "inet_ntop", "inet_pton", "initSync", "subnet",
  ]);
});
