// The built converter module (web/pkg/inet.js, from wasm/build.sh) under node, checked against
// CPython's recorded answers (wasm/inet/tests/data/inet_cases.json for the core's inputs,
// inet_js_cases.json for arguments of any type and number: format in tools/gen_inet_cases.py)
// and against its contract in DESIGN.md: exports, error names, constants, size budget.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = new URL("../../", import.meta.url);
const pkg = new URL("web/pkg/", root);
const inet = await import(new URL("inet.js", pkg).href);
const wasmBytes = readFileSync(new URL("inet_bg.wasm", pkg));
inet.initSync({ module: wasmBytes });

const data = (name) => JSON.parse(readFileSync(new URL(`wasm/inet/tests/data/${name}`, root), "utf8"));
const { cases } = data("inet_cases.json");
const { cases: jsCases } = data("inet_js_cases.json");

/** A case's arguments as JS values: Python bytes (lists of ints) become Uint8Arrays. */
function jsArgs(fn, args) {
  const bytesAt = { inet_ntoa: 0, inet_ntop: 1 }[fn];
  return args.map((arg, i) => (i === bytesAt ? Uint8Array.from(arg) : arg));
}

/** An argument of inet_js_cases.json as the JS value it stands for (the format is there). */
function jsValue(arg) {
  if (Array.isArray(arg)) return arg.map(jsValue);
  if (arg !== null && typeof arg === "object") return "bytes" in arg ? Uint8Array.from(arg.bytes) : {};
  return arg;
}

/** A result in the case file's shape: Uint8Arrays become lists of ints. */
function plain(value) {
  if (value instanceof Uint8Array) return Array.from(value);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function run(fn, args) {
  try {
    return { ok: plain(inet[fn](...args)) };
  } catch (error) {
    return { error: { type: error.name, message: error.message } };
  }
}

for (const [what, all, toJs] of [
  ["", cases, jsArgs],
  [" to arguments of any type", jsCases, (fn, args) => args.map(jsValue)],
]) for (const fn of new Set(all.map((c) => c.fn))) {
  test(`${fn} answers as CPython does${what}`, () => {
    const mine = all.filter((c) => c.fn === fn);
    const wrong = [];
    for (const c of mine) {
      const got = run(fn, toJs(fn, c.args));
      const want = "ok" in c ? { ok: c.ok } : { error: c.error };
      try {
        assert.deepStrictEqual(got, want);
      } catch {
        wrong.push({ args: c.args, want, got });
      }
    }
    // Every mismatch at once, a few in full: one run shows the whole picture.
    assert.equal(wrong.length, 0, `${wrong.length} of ${mine.length} differ, e.g.\n` +
      wrong.slice(0, 5).map((w) => JSON.stringify(w)).join("\n"));
    assert.ok(mine.length > 0);
  });
}

test("the README's examples", () => {
  assert.deepEqual(inet.inet_aton("192.168.1.190"), new Uint8Array([192, 168, 1, 190]));
  assert.equal(inet.inet_ntoa(new Uint8Array([192, 168, 1, 190])), "192.168.1.190");
  const loopback6 = inet.inet_pton(inet.AF_INET6, "::1");
  assert.ok(loopback6 instanceof Uint8Array);
  assert.equal(loopback6.length, 16);
  assert.equal(inet.inet_ntop(inet.AF_INET, new Uint8Array([127, 0, 0, 1])), "127.0.0.1");
  assert.equal(inet.getservbyname("mysql", "tcp"), 3306);
  assert.equal(inet.getservbyname("mysql"), 3306);
  assert.equal(inet.getservbyport(80, "tcp"), "http");
});

test("constants are Linux's address families", () => {
  assert.equal(inet.AF_INET, 2);
  assert.equal(inet.AF_INET6, 10);
  const types = readFileSync(new URL("inet.d.ts", pkg), "utf8");
  assert.match(types, /export const AF_INET: 2;/);
  assert.match(types, /export const AF_INET6: 10;/);
  assert.match(types, /export function getservbyname\(service_name: string, protocol_name\?: string\): number;/);
  assert.match(types, /export function getservbyport\(port: number, protocol_name\?: string\): string;/);
});

test("errors are Errors named after the Python class", () => {
  assert.throws(() => inet.inet_aton("nope"), (e) =>
    e instanceof Error && e.name === "OSError" &&
    e.message === "illegal IP address string passed to inet_aton");
  assert.throws(() => inet.inet_ntop(inet.AF_INET, new Uint8Array(3)),
    { name: "ValueError", message: "invalid length of packed IP address string" });
  assert.throws(() => inet.getservbyport(70000),
    { name: "OverflowError", message: "getservbyport: port must be 0-65535." });
});

test("wrong JS types are TypeErrors with Python's messages", () => {
  assert.throws(() => inet.inet_ntoa("x"),
    { name: "TypeError", message: "a bytes-like object is required, not 'str'" });
  assert.throws(() => inet.inet_ntoa([1, 2, 3, 4]),
    { name: "TypeError", message: "a bytes-like object is required, not 'list'" });
  assert.throws(() => inet.inet_aton(5),
    { name: "TypeError", message: "inet_aton() argument 1 must be str, not int" });
  assert.throws(() => inet.inet_aton(undefined),
    { name: "TypeError", message: "inet_aton() argument 1 must be str, not None" });
  assert.throws(() => inet.inet_pton("2", "1.2.3.4"),
    { name: "TypeError", message: "'str' object cannot be interpreted as an integer" });
  assert.throws(() => inet.getservbyport(80.5),
    { name: "TypeError", message: "'float' object cannot be interpreted as an integer" });
  assert.throws(() => inet.getservbyname("http", 6),
    { name: "TypeError", message: "getservbyname() argument 2 must be str, not int" });
});

/** The doc comment of `fn` in inet.d.ts, its lines joined. */
function doc(fn) {
  const types = readFileSync(new URL("inet.d.ts", pkg), "utf8");
  const match = types.match(new RegExp(`/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export function ${fn}\\(`));
  assert.ok(match, `no doc comment on ${fn}`);
  return match[1].replace(/\s*\n\s*\*\s*/g, " ");
}

/** Every public function and how many arguments it takes, as CPython's would. */
const TAKES = {
  inet_aton: [1, 1], inet_ntoa: [1, 1], inet_pton: [2, 2], inet_ntop: [2, 2],
  getservbyname: [1, 2], getservbyport: [1, 2], address_facts: [1, 1], subnet: [1, 1],
};

test("the number of arguments is checked first, with CPython's TypeError", () => {
  // The replay above covers these; here, that the case file has them for every function.
  for (const [fn, [min, max]] of Object.entries(TAKES)) {
    const counts = new Set(jsCases.filter((c) => c.fn === fn &&
      (c.args.length < min || c.args.length > max)).map((c) => c.args.length));
    const want = [...Array(max + 3).keys()].filter((n) => n < min || n > max);
    assert.deepEqual([...counts].sort(), want, `${fn}: the counts recorded`);
  }
  assert.throws(() => inet.inet_pton(inet.AF_INET),
    { name: "TypeError", message: "inet_pton() takes exactly 2 arguments (1 given)" });
  assert.throws(() => inet.inet_aton("127.1", 0),
    { name: "TypeError", message: "inet_aton() takes exactly 1 argument (2 given)" });
  assert.throws(() => inet.getservbyname(),
    { name: "TypeError", message: "getservbyname() takes at least 1 argument (0 given)" });
  assert.throws(() => inet.getservbyport(80, "tcp", "x"),
    { name: "TypeError", message: "getservbyport() takes at most 2 arguments (3 given)" });
  assert.throws(() => inet.subnet(),
    { name: "TypeError", message: "subnet() takes exactly 1 argument (0 given)" });
  // Arguments the fast paths would take: the count still comes first.
  assert.throws(() => inet.inet_pton(inet.AF_INET, "1.2.3.4", 0),
    { name: "TypeError", message: "inet_pton() takes exactly 2 arguments (3 given)" });
  assert.throws(() => inet.inet_ntop(inet.AF_INET6, new Uint8Array(16), 0),
    { name: "TypeError", message: "inet_ntop() takes exactly 2 arguments (3 given)" });
  // map passes the index and the array too.
  assert.throws(() => ["127.1"].map(inet.inet_aton),
    { name: "TypeError", message: "inet_aton() takes exactly 1 argument (3 given)" });
});

test("an explicit undefined is an argument given: None, or the optional protocol left out", () => {
  assert.throws(() => inet.inet_pton(inet.AF_INET, undefined),
    { name: "TypeError", message: "inet_pton() argument 2 must be str, not None" });
  assert.throws(() => inet.inet_ntop(undefined, new Uint8Array(4)),
    { name: "TypeError", message: "'NoneType' object cannot be interpreted as an integer" });
  assert.throws(() => inet.address_facts(undefined),
    { name: "TypeError", message: "address_facts() argument 1 must be str, not None" });
  assert.throws(() => inet.getservbyname(undefined),
    { name: "TypeError", message: "getservbyname() argument 1 must be str, not None" });
  assert.equal(inet.getservbyname("http", undefined), 80);
  assert.equal(inet.getservbyport(80, undefined), "http");
  assert.throws(() => inet.getservbyname("http", undefined, undefined),
    { name: "TypeError", message: "getservbyname() takes at most 2 arguments (3 given)" });
  assert.throws(() => inet.inet_aton("127.1", undefined),
    { name: "TypeError", message: "inet_aton() takes exactly 1 argument (2 given)" });
});

test("the declarations and /docs say how arguments are counted", () => {
  for (const [fn, [min, max]] of Object.entries(TAKES)) {
    const text = doc(fn);
    const wording = min === max
      ? [`\`TypeError("${fn}() takes exactly ${min} argument${min === 1 ? "" : "s"} (N given)")\``]
      : [`\`TypeError("${fn}() takes at least 1 argument (0 given)")\``,
        `\`TypeError("${fn}() takes at most 2 arguments (N given)")\``];
    for (const w of wording) assert.ok(text.includes(w), `${fn}'s doc comment lacks ${w}: ${text}`);
  }
  const note = readFileSync(new URL("inet.d.ts", pkg), "utf8").replace(/\s*\n\s*\*\s*/g, " ");
  assert.ok(note.includes("An explicit `undefined` counts as an argument given"), "the .d.ts note");
  // The Errors section of /docs. (assert.ok: a failed assert.match would print the whole page.)
  const docs = readFileSync(new URL("web/docs.html", root), "utf8").replace(/\s+/g, " ");
  const errors = docs.slice(docs.indexOf('<section id="errors"'));
  for (const [call, error] of [
    ["inet_pton(AF_INET)", "inet_pton() takes exactly 2 arguments (1 given)"],
    ["getservbyname()", "getservbyname() takes at least 1 argument (0 given)"],
    ["inet_pton(AF_INET, undefined)", "inet_pton() argument 2 must be str, not None"],
  ]) {
    const text = `<code>${call}</code> throws <code>TypeError: ${error}</code>`;
    assert.ok(errors.includes(text), `web/docs.html's Errors section lacks ${text}`);
  }
});

test("getservbyport converts the port to a C int before it looks at the protocol", () => {
  // As python3 answers: the `i` converter's OverflowError first, then argument 2's TypeError,
  // then the 0-65535 range check.
  assert.throws(() => inet.getservbyport(2 ** 31, 5),
    { name: "OverflowError", message: "signed integer is greater than maximum" });
  assert.throws(() => inet.getservbyport(-(2 ** 31) - 1, 5),
    { name: "OverflowError", message: "signed integer is less than minimum" });
  assert.throws(() => inet.getservbyport(2n ** 64n, 5),
    { name: "OverflowError", message: "Python int too large to convert to C long" });
  for (const port of [80, 65536, 2 ** 31 - 1]) {
    assert.throws(() => inet.getservbyport(port, 5),
      { name: "TypeError", message: "getservbyport() argument 2 must be str, not int" });
  }
  assert.throws(() => inet.getservbyport(80, new Uint8Array([116, 99, 112])),
    { name: "TypeError", message: "getservbyport() argument 2 must be str, not bytes" });
});

test("the declarations' doc comments name the errors Python raises", () => {
  const ntop = doc("inet_ntop");
  assert.throws(() => inet.inet_ntop(5, new Uint8Array(4)),
    { name: "ValueError", message: "unknown address family 5" });
  assert.match(ntop, /`ValueError\("unknown address family N"\)` for other families/);
  assert.doesNotMatch(ntop, /OSError/);
  const pton = doc("inet_pton");
  assert.throws(() => inet.inet_pton(5, "1.2.3.4"),
    { name: "OSError", message: "[Errno 97] Address family not supported by protocol" });
  assert.match(pton, /`OSError\("\[Errno 97\] Address family not supported by protocol"\)` for other families/);
  assert.match(pton, /`OSError\("illegal IP address string passed to inet_pton"\)` for a malformed string/);
  assert.match(pton, /`ValueError\("embedded null character"\)`/);
  for (const fn of ["getservbyname", "getservbyport"]) {
    assert.throws(() => inet[fn](fn === "getservbyname" ? "http" : 80, null),
      { name: "TypeError", message: `${fn}() argument 2 must be str, not None` });
    assert.match(doc(fn), new RegExp("`null` is Python's `None` and throws " +
      `\`TypeError\\("${fn}\\(\\) argument 2 must be str, not None"\\)\``));
  }
});

test("a null protocol is Python's None; undefined is a protocol left out", () => {
  for (const [fn, first, answer] of [["getservbyname", "http", 80], ["getservbyport", 80, "http"]]) {
    assert.throws(() => inet[fn](first, null),
      { name: "TypeError", message: `${fn}() argument 2 must be str, not None` });
    assert.equal(inet[fn](first), answer);
    assert.equal(inet[fn](first, undefined), answer);
  }
  // (assert.ok: a failed assert.match would print the whole page.)
  const docs = readFileSync(new URL("web/docs.html", root), "utf8").replace(/\s+/g, " ");
  assert.ok(/<code>getservbyname\("http", null\)<\/code> throws <code>TypeError: getservbyname\(\) argument 2 must be str, not None<\/code>/.test(docs),
    "web/docs.html does not say that a null protocol throws Python's TypeError");
  assert.ok(!/<code>null<\/code> or <code>undefined<\/code>/.test(docs),
    "web/docs.html still says that null leaves the protocol out");
});

test("a run of lone surrogates is named whole, in code points, as Python names it", () => {
  const encode = (what) => `'utf-8' codec can't encode ${what}: surrogates not allowed`;
  assert.throws(() => inet.inet_aton("\uDC00\uDC01"),
    { name: "UnicodeEncodeError", message: encode("characters in position 0-1") });
  assert.throws(() => inet.inet_aton("1.2\uDC80"),
    { name: "UnicodeEncodeError", message: encode("character '\\udc80' in position 3") });
  // The emoji is one character to Python; the pair after the run ends it.
  assert.throws(() => inet.getservbyname("http", "\u{1F600}\uDFFF\uD800\uD800\u{10FFFF}\uDC00"),
    { name: "UnicodeEncodeError", message: encode("characters in position 1-3") });
});

test("arguments are checked in Python's order, each completely", () => {
  // The name's NUL is refused while argument 1 is read, before argument 2 is looked at.
  assert.throws(() => inet.getservbyname("\0x", "tc\uD800p"),
    { name: "ValueError", message: "embedded null character" });
  assert.throws(() => inet.getservbyname("\0x", null),
    { name: "ValueError", message: "embedded null character" });
  // Within one argument, UTF-8 comes before NUL.
  assert.throws(() => inet.getservbyname("\0\uDC00", 5),
    { name: "UnicodeEncodeError", message: "'utf-8' codec can't encode character '\\udc00' in position 1: surrogates not allowed" });
});

test("JS-only conveniences: other byte views, BigInt", () => {
  assert.equal(inet.inet_ntoa(new Uint8Array([10, 0, 0, 1]).buffer), "10.0.0.1");
  assert.equal(inet.inet_ntoa(new DataView(new Uint8Array([9, 10, 0, 0, 1]).buffer, 1)), "10.0.0.1");
  assert.equal(inet.getservbyport(443n), "https");
});

test("async init() accepts the module bytes", async () => {
  const fresh = await import(new URL("inet.js?fresh", pkg).href);
  await fresh.default({ module_or_path: wasmBytes });
  assert.equal(fresh.inet_ntop(fresh.AF_INET6, fresh.inet_pton(fresh.AF_INET6, "0::0:1")), "::1");
});

test("the folder is an ES module package", () => {
  const manifest = JSON.parse(readFileSync(new URL("package.json", pkg), "utf8"));
  assert.equal(manifest.type, "module");
  assert.equal(manifest.exports["."].default, "./inet.js");
  assert.equal(manifest.types, "./inet.d.ts");
});

test("inet.js + inet_bg.wasm fit the 16 KB gzipped budget", () => {
  const size = (name) => gzipSync(readFileSync(new URL(name, pkg)), { level: 9 }).length;
  const total = size("inet.js") + size("inet_bg.wasm");
  console.log(`${fileURLToPath(pkg)}: inet.js + inet_bg.wasm = ${total} B gzipped`);
  assert.ok(total <= 16 * 1024, `${total} B gzipped is over the 16384 B budget`);
});
