#!/usr/bin/env node
// Micro-benchmark of the converter module (web/pkg/inet.js) against the npm package ipaddr.js,
// in one node process, on the same inputs:
//
//   inet_pton(family, text)       vs  ipaddr.IPv4/IPv6.parse(text).toByteArray()
//   inet_ntop(family, bytes)      vs  ipaddr.fromByteArray(bytes).toString()
//
// for IPv4 and IPv6. ipaddr.js writes IPv6 in RFC 5952 form, which differs from glibc's only for
// IPv4-mapped and -compatible addresses (`::ffff:102:304` for `::ffff:1.2.3.4`); the outputs are
// checked to mean the same address, not to be the same string.
//
// Then it breaks one call of ours down (the wasm share, text coding, JS <-> wasm crossings), to
// show where the time goes.
//
// Usage: node tools/bench_inet.mjs [--quick] [--json] [--pkg DIR]
//   Build the module first (wasm/build.sh); `npm ci` installs ipaddr.js (a devDependency).
//   --pkg DIR measures another build of the module (inet.js and inet_bg.wasm in DIR, with a
//   package.json saying "type": "module"), to try a change to wasm/converter/src/js.rs.

import { readFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";
import { pathToFileURL } from "node:url";

const QUICK = process.argv.includes("--quick");
const JSON_OUT = process.argv.includes("--json");
/**
 * Timed rounds per case and the target length of one round. The best round is reported (other
 * processes only ever add time to a round), with the median beside it as a check.
 */
const ROUNDS = QUICK ? 7 : 31;
const ROUND_MS = QUICK ? 10 : 20;
const INPUTS = 1024; // a power of two: inputs[i & MASK]
const MASK = INPUTS - 1;

const ipaddr = await import("ipaddr.js").then(
  (module) => module.default,
  () => {
    console.error("ipaddr.js is not installed: run `npm ci` in the repository root");
    process.exit(2);
  },
);
const pkgFlag = process.argv.indexOf("--pkg");
const PKG = pkgFlag > 0
  ? pathToFileURL(`${process.argv[pkgFlag + 1].replace(/\/?$/, "/")}`)
  : new URL("../web/pkg/", import.meta.url);
let wasmBytes;
try {
  wasmBytes = readFileSync(new URL("inet_bg.wasm", PKG));
} catch (error) {
  console.error(`${error.message}: build the module first (wasm/build.sh)`);
  process.exit(2);
}
const inet = await import(new URL("inet.js", PKG));
const exports = inet.initSync({ module: wasmBytes });
const { AF_INET, AF_INET6, inet_pton, inet_ntop } = inet;

// ---- inputs ---------------------------------------------------------------------------------

/** mulberry32: the same inputs on every run. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(0x5eed);
const byte = () => Math.floor(rand() * 256);

/** IPv4: uniform, so one to three digits per part. */
const v4Bytes = Array.from({ length: INPUTS }, () => Uint8Array.from({ length: 4 }, byte));
/** IPv6 as addresses are: mostly a /32 or /64 prefix with zero runs, some full, some mapped. */
const v6Bytes = Array.from({ length: INPUTS }, (_, i) => {
  const b = new Uint8Array(16);
  switch (i % 4) {
    case 0: // 2001:db8::x:y
      b.set([0x20, 0x01, 0x0d, 0xb8]);
      b[14] = byte();
      b[15] = byte();
      break;
    case 1: // a /64 with a random interface id
      b.set([0x20, 0x01, 0x0d, 0xb8, byte(), byte(), 0, byte()]);
      for (let j = 8; j < 16; j++) b[j] = byte();
      break;
    case 2: // eight random groups
      for (let j = 0; j < 16; j++) b[j] = byte();
      break;
    default: // fe80::/64 or ::ffff:a.b.c.d
      if (i % 8 === 3) {
        b.set([0xfe, 0x80]);
        for (let j = 8; j < 16; j++) b[j] = byte();
      } else {
        b[10] = b[11] = 0xff;
        for (let j = 12; j < 16; j++) b[j] = byte();
      }
  }
  return b;
});
/** Text inputs are the canonical forms: what a program usually parses. */
const v4Text = v4Bytes.map((b) => inet_ntop(AF_INET, b));
const v6Text = v6Bytes.map((b) => inet_ntop(AF_INET6, b));

// ---- both sides agree -----------------------------------------------------------------------

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
let sameText = { v4: 0, v6: 0 };
for (const [key, family, texts, bytes, Class] of [
  ["v4", AF_INET, v4Text, v4Bytes, ipaddr.IPv4],
  ["v6", AF_INET6, v6Text, v6Bytes, ipaddr.IPv6],
]) {
  for (let i = 0; i < INPUTS; i++) {
    const ours = inet_pton(family, texts[i]);
    const theirs = Class.parse(texts[i]).toByteArray();
    if (!equalBytes(ours, bytes[i]) || !equalBytes(theirs, bytes[i])) {
      throw new Error(`pton disagrees on ${texts[i]}: ${ours} vs ${theirs}`);
    }
    const text = ipaddr.fromByteArray(bytes[i]).toString();
    if (!equalBytes(inet_pton(family, text), bytes[i])) {
      throw new Error(`ipaddr.js wrote ${text} for ${texts[i]}`);
    }
    if (text === inet_ntop(family, bytes[i])) sameText[key]++;
  }
}

// ---- timing ---------------------------------------------------------------------------------

// One loop per case, each its own function, so no loop's inline caches see another's callee.
// Every result feeds `sink`, so no call can be optimised away.
const CASES = [
  {
    name: "pton v4",
    ours: (n) => { let s = 0; for (let i = 0; i < n; i++) s += inet_pton(AF_INET, v4Text[i & MASK])[3]; return s; },
    theirs: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ipaddr.IPv4.parse(v4Text[i & MASK]).toByteArray()[3]; return s; },
  },
  {
    name: "pton v6",
    ours: (n) => { let s = 0; for (let i = 0; i < n; i++) s += inet_pton(AF_INET6, v6Text[i & MASK])[15]; return s; },
    theirs: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ipaddr.IPv6.parse(v6Text[i & MASK]).toByteArray()[15]; return s; },
  },
  {
    name: "ntop v4",
    ours: (n) => { let s = 0; for (let i = 0; i < n; i++) s += inet_ntop(AF_INET, v4Bytes[i & MASK]).length; return s; },
    theirs: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ipaddr.fromByteArray(v4Bytes[i & MASK]).toString().length; return s; },
  },
  {
    name: "ntop v6",
    ours: (n) => { let s = 0; for (let i = 0; i < n; i++) s += inet_ntop(AF_INET6, v6Bytes[i & MASK]).length; return s; },
    theirs: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ipaddr.fromByteArray(v6Bytes[i & MASK]).toString().length; return s; },
  },
];

let sink = 0;

/** ns per call of `loop`, timing `n` calls. */
function time(loop, n) {
  const start = process.hrtime.bigint();
  sink += loop(n);
  return Number(process.hrtime.bigint() - start) / n;
}

/** Enough calls for one round to last about ROUND_MS, after warming the loop up. */
function calibrate(loop) {
  let n = 1024;
  for (;;) {
    const ns = time(loop, n);
    if (ns * n >= 10e6) return Math.max(INPUTS, Math.round((ROUND_MS * 1e6) / ns));
    n *= 2;
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

function summary(values) {
  return { best: Math.min(...values), median: median(values) };
}

function measure(a, b) {
  const na = calibrate(a);
  const nb = calibrate(b);
  const ta = [];
  const tb = [];
  // Interleaved, alternating which goes first, so drift (GC, frequency) hits both alike.
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2) {
      tb.push(time(b, nb));
      ta.push(time(a, na));
    } else {
      ta.push(time(a, na));
      tb.push(time(b, nb));
    }
  }
  return [summary(ta), summary(tb)];
}

const results = CASES.map(({ name, ours, theirs }) => {
  const [oursNs, theirsNs] = measure(ours, theirs);
  return { name, oursNs, theirsNs, ratio: oursNs.best / theirsNs.best };
});

// ---- where one call of ours spends its time -------------------------------------------------

// Pieces of a call, each timed alone. inet_pton/inet_ntop take a fast path for exact argument
// types (wasm/js/fast.js): the JS side passes numbers and ASCII bytes in a scratch buffer to
// the typed exports `_pton`, `_ntop6` (wasm/converter/src/js.rs), and joins IPv4 texts itself
// (builds before that had `_ntop4`). Timing those exports alone gives the wasm share of a call;
// the rest is marshalling in JS. A build without them (one from before the fast paths, through
// --pkg) gets the text-coding pieces only.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
let view = new Uint8Array(exports.memory.buffer);
/** The wasm memory as bytes, as the glue caches it (a grown memory detaches the old view). */
const memory = () => (view.byteLength ? view : (view = new Uint8Array(exports.memory.buffer)));
const scratch = exports._io ? exports._io() : exports.__wbindgen_malloc(64, 1);
memory().fill(0x31, scratch, scratch + 64); // ASCII, as the texts are
const v6Lengths = v6Text.map((t) => t.length);
const word = (b, i) => b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3];
const v6Words = v6Bytes.map((b) => [0, 4, 8, 12].map((i) => word(b, i)));
/** Writes `text` to the scratch buffer, as fast.js does. */
function put(text) {
  const m = memory();
  for (let j = 0; j < text.length; j++) m[scratch + j] = text.charCodeAt(j);
  return text.length;
}
const PARTS = [
  {
    name: "TextDecoder.decode of an IPv6 text from wasm memory (how the glue returns a String)",
    loop: (n) => { let s = 0; for (let i = 0; i < n; i++) s += decoder.decode(memory().subarray(scratch, scratch + v6Lengths[i & MASK])).length; return s; },
  },
  {
    name: "String.fromCharCode of 16 bytes of wasm memory, then slice (how fast.js does)",
    loop: (n) => { let s = 0; for (let i = 0; i < n; i++) { const m = memory(), p = scratch; s += String.fromCharCode(m[p], m[p + 1], m[p + 2], m[p + 3], m[p + 4], m[p + 5], m[p + 6], m[p + 7], m[p + 8], m[p + 9], m[p + 10], m[p + 11], m[p + 12], m[p + 13], m[p + 14], m[p + 15]).slice(0, 7 + (i & 7)).length; } return s; },
  },
  {
    name: "ASCII loop writing an IPv6 text into wasm memory (how fast.js passes text)",
    loop: (n) => { let s = 0; for (let i = 0; i < n; i++) s += put(v6Text[i & MASK]); return s; },
  },
];
if (exports._pton) {
  PARTS.push(
    {
      name: "inet_pton v4 without its JS checks and result: the text written, then _pton(AF_INET, length)",
      loop: (n) => { let s = 0; for (let i = 0; i < n; i++) s += exports._pton(AF_INET, put(v4Text[i & MASK])); return s; },
    },
    {
      name: "inet_pton v6 without its JS checks and result: the text written, then _pton(AF_INET6, length)",
      loop: (n) => { let s = 0; for (let i = 0; i < n; i++) s += exports._pton(AF_INET6, put(v6Text[i & MASK])); return s; },
    },
    {
      name: "inet_ntop v6 in wasm alone: _ntop6(w0, w1, w2, w3)",
      loop: (n) => { let s = 0; for (let i = 0; i < n; i++) { const w = v6Words[i & MASK]; s += exports._ntop6(w[0], w[1], w[2], w[3]); } return s; },
    },
  );
}
const parts = PARTS.map(({ name, loop }) => {
  calibrate(loop);
  const n = calibrate(loop);
  return { name, ns: Math.min(...Array.from({ length: ROUNDS }, () => time(loop, n))) };
});

// Imports (wasm -> JS calls) made by one call of each function: instantiate a second copy
// with counting wrappers around its imports. The fast paths make none; the checked paths'
// imports have the short names wasm/js/short-imports.mjs gives them.
const imports = await countImports();

async function countImports() {
  const counts = new Map();
  const RealInstance = WebAssembly.Instance;
  WebAssembly.Instance = function (module, importObject) {
    const wrapped = {};
    for (const [space, fns] of Object.entries(importObject)) {
      wrapped[space] = {};
      for (const [name, fn] of Object.entries(fns)) {
        const short = name.replace(/^__wbg_|_[0-9a-f]{16}$/g, "").replace(/^__wbindgen_/, "");
        wrapped[space][name] = typeof fn === "function"
          ? (...args) => { counts.set(short, (counts.get(short) ?? 0) + 1); return fn(...args); }
          : fn;
      }
    }
    return new RealInstance(module, wrapped);
  };
  try {
    const copy = await import(new URL("inet.js?count-imports", PKG));
    copy.initSync({ module: wasmBytes });
    const calls = {
      "inet_pton(AF_INET6, text)": () => copy.inet_pton(AF_INET6, v6Text[0]),
      "inet_ntop(AF_INET6, bytes)": () => copy.inet_ntop(AF_INET6, v6Bytes[0]),
      "inet_pton(AF_INET, text)": () => copy.inet_pton(AF_INET, v4Text[0]),
      "inet_ntop(AF_INET, bytes)": () => copy.inet_ntop(AF_INET, v4Bytes[0]),
    };
    const out = {};
    for (const [label, call] of Object.entries(calls)) {
      call();
      counts.clear();
      call();
      out[label] = Object.fromEntries(counts);
    }
    return out;
  } finally {
    WebAssembly.Instance = RealInstance;
  }
}

// ---- report ---------------------------------------------------------------------------------

const environment = {
  node: process.version,
  v8: process.versions.v8,
  cpu: cpus()[0]?.model ?? "unknown",
  platform: `${platform()} ${arch()}`,
  ipaddr: JSON.parse(readFileSync(new URL("../node_modules/ipaddr.js/package.json", import.meta.url), "utf8")).version,
  wasmBytes: wasmBytes.length,
  rounds: ROUNDS,
};

if (JSON_OUT) {
  console.log(JSON.stringify({ environment, results, parts, imports, sameText, sink }, null, 2));
} else {
  const f = (ns) => ns.toFixed(0).padStart(6);
  console.log(`node ${environment.node}, ${environment.cpu}, ipaddr.js ${environment.ipaddr}, ` +
    `inet_bg.wasm ${environment.wasmBytes} B; best (median) of ${ROUNDS} rounds over ${INPUTS} inputs`);
  console.log("");
  console.log("case       inet.js ns/op    ipaddr.js ns/op   inet.js / ipaddr.js");
  const g = ({ best, median }) => `${f(best)} (${f(median)})`.padEnd(16);
  for (const r of results) {
    console.log(`${r.name.padEnd(10)} ${g(r.oursNs)} ${g(r.theirsNs)}  ${r.ratio.toFixed(2)}x`);
  }
  console.log("");
  console.log(`Same output text: v4 ${sameText.v4}/${INPUTS}, v6 ${sameText.v6}/${INPUTS} ` +
    "(ipaddr.js writes mapped IPv6 in hex; every output means the same address).");
  console.log("");
  console.log("Pieces of a call (ns each, best round):");
  for (const p of parts) console.log(`  ${f(p.ns)}  ${p.name}`);
  console.log("");
  console.log("Imports (wasm -> JS calls) made by one call:");
  for (const [label, counts] of Object.entries(imports)) {
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const list = Object.entries(counts).map(([k, v]) => `${k}${v > 1 ? ` x${v}` : ""}`).join(", ");
    console.log(`  ${label}: ${total} (${list})`);
  }
}
