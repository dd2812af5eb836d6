// web/pkg as an npm package (issue 18): `npm pack` gives a tarball that a project installs, and
// node imports it as an ES module by its name. init() with no argument must work there: the
// "node" condition of `exports` picks inet.node.js, which reads inet_bg.wasm from beside itself
// (node 20's fetch, which the browser entry uses, cannot read file: URLs).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { installPacked, NAME } from "./pack.mjs";

let project;
before(() => {
  project = installPacked({
    "init.mjs": `import init, { inet_aton, inet_ntoa, subnet } from "${NAME}";
await init();
console.log(JSON.stringify([inet_ntoa(inet_aton("127.1")), subnet("10.0.0.0/8").hosts]));`,
    "sync.mjs": `import { initSync, inet_pton, inet_ntop, AF_INET6 } from "${NAME}";
initSync();
console.log(JSON.stringify(inet_ntop(AF_INET6, inet_pton(AF_INET6, "2001:DB8::1"))));`,
    "bytes.mjs": `import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import init, { getservbyname } from "${NAME}";
const wasm = createRequire(import.meta.url).resolve("${NAME}/inet_bg.wasm");
await init({ module_or_path: readFileSync(wasm) });
console.log(JSON.stringify(getservbyname("mysql", "tcp")));`,
  });
});
after(() => project?.remove());

/** Runs a script of the project with node, as its own process, and parses what it prints. */
function run(script) {
  return JSON.parse(execFileSync(process.execPath, [join(project.dir, script)], { encoding: "utf8" }));
}

test("the tarball holds the modules, their types, the node entry and the element", () => {
  for (const file of [
    "package.json", "inet.js", "inet.d.ts", "inet_bg.wasm", "inet.node.js", "inet.node.d.ts",
    "inet-converter.js", "inet-converter.d.ts",
  ]) {
    assert.ok(project.files.includes(file), `${file} missing from ${project.files}`);
  }
  // The relay's compressed copies and the build's stamp are not the package's.
  assert.deepEqual(project.files.filter((f) => /\.(br|gz)$|stamp/.test(f)), []);
});

test("every file that exports and types name is in the tarball", () => {
  const manifest = JSON.parse(readFileSync(join(project.dir, "node_modules", NAME, "package.json"), "utf8"));
  const targets = [manifest.main, manifest.types];
  (function walk(value) {
    if (typeof value === "string") targets.push(value);
    else for (const inner of Object.values(value)) walk(inner);
  })(manifest.exports);
  for (const target of targets) {
    assert.ok(project.installed.includes(target.replace(/^\.\//, "")), `${target} is not installed`);
  }
  assert.equal(manifest.type, "module");
});

test("node imports it by name and init() finds the wasm by itself", () => {
  assert.deepEqual(run("init.mjs"), ["127.0.0.1", "16777214"]);
});

test("initSync() with no argument too", () => {
  assert.equal(run("sync.mjs"), "2001:db8::1");
});

test("init() given the bytes, as the browser entry takes them", () => {
  assert.equal(run("bytes.mjs"), 3306);
});

test("the element costs at most 3 KB gzipped on top of the converter", () => {
  const element = readFileSync(join(project.dir, "node_modules", NAME, "inet-converter.js"));
  const size = gzipSync(element, { level: 9 }).length;
  assert.ok(size <= 3072, `inet-converter.js is ${size} B gzipped`);
  // It reaches the Rust core through inet.js, and nothing else.
  const imports = [...element.toString().matchAll(/\bfrom\s*"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(imports, ["./inet.js"]);
});
