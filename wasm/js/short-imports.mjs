// node wasm/js/short-imports.mjs DIR NAME
//
// Renames the imports wasm-bindgen generated for DIR/NAME_bg.wasm, in the wasm and in the glue
// DIR/NAME.js, from names such as `__wbg_instanceof_Uint8Array_d7aeb0dcb3108fea` to `_0`, `_1`,
// ...: run by wasm/build.sh on the converter right after wasm-bindgen. The hashes keep the
// names of different crates apart until wasm-bindgen has linked them; after that the two files
// only need to agree, and the long names cost about 1.1 KB of the converter's 20 KB gzipped
// budget (hex does not compress, and each name is in both files).
//
// Only the import section's names change; every other byte of the wasm is copied as it is.
// Each name must be one key of the glue's imports object, or nothing is written.

import { readFileSync, writeFileSync } from "node:fs";

const [dir, name] = process.argv.slice(2);
if (!name) throw new Error("usage: short-imports.mjs DIR NAME");
const wasmPath = `${dir}/${name}_bg.wasm`;
const jsPath = `${dir}/${name}.js`;
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");

let at = 0;
/** An unsigned LEB128 at `at`, moving past it. */
function uleb() {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return value;
}
function encodeUleb(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}
function skipLimits() {
  const flags = wasm[at++];
  uleb();
  if (flags & 1) uleb();
}

const renames = new Map();
const parts = [wasm.subarray(0, 8)];
at = 8;
while (at < wasm.length) {
  const sectionStart = at;
  const id = wasm[at++];
  const size = uleb();
  const end = at + size;
  if (id !== 2) {
    parts.push(wasm.subarray(sectionStart, end));
    at = end;
    continue;
  }
  const count = uleb();
  const body = [...encodeUleb(count)];
  for (let i = 0; i < count; i++) {
    const moduleStart = at;
    const moduleLength = uleb();
    at += moduleLength;
    const module = wasm.subarray(moduleStart, at); // with its length
    const fieldLength = uleb();
    const field = wasm.subarray(at, at + fieldLength).toString();
    at += fieldLength;
    const descriptorStart = at;
    const kind = wasm[at++];
    if (kind === 0) uleb(); // function: type index
    else if (kind === 1) { at++; skipLimits(); } // table: element type, limits
    else if (kind === 2) skipLimits(); // memory
    else if (kind === 3) at += 2; // global: value type, mutability
    else throw new Error(`import ${field}: unknown kind ${kind}`);
    let short = field;
    if (/^__wbg_|^__wbindgen_/.test(field)) {
      short = renames.get(field) ?? `_${renames.size.toString(36)}`;
      renames.set(field, short);
    }
    body.push(...module, ...encodeUleb(short.length), ...Buffer.from(short),
      ...wasm.subarray(descriptorStart, at));
  }
  if (at !== end) throw new Error("the import section does not parse");
  parts.push(Buffer.from([2, ...encodeUleb(body.length), ...body]));
}

for (const [long, short] of renames) {
  // The glue declares each import once, as a key of its imports object: `name: function(`.
  const key = new RegExp(`(?<=\\n\\s*)${long}(?=: )`, "g");
  const found = js.match(key)?.length ?? 0;
  if (found !== 1) throw new Error(`${jsPath}: ${long} is a key ${found} times, not once`);
  js = js.replace(key, short);
  if (js.includes(long)) throw new Error(`${jsPath}: ${long} is used other than as a key`);
}
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(jsPath, js);
console.error(`${name}: ${renames.size} imports renamed`);
