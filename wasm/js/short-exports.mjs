// node wasm/js/short-exports.mjs DIR NAME
//
// Renames the closure adapters wasm-bindgen exports from DIR/NAME_bg.wasm, in the wasm and in
// the glue DIR/NAME.js, from names such as
// `wasm_bindgen_75dce6053228d2f3___convert__closures_____invoke___wasm_bindgen_..._true_`
// (100 to 330 characters each, hashes included) to `_c0`, `_c1`, ...: run by wasm/build.sh on
// the socket library right after wasm-bindgen, like short-imports.mjs for imports. The page
// never sees these names, and in both files they cost the library about half a kilobyte of
// its 25 KB gzipped budget.
//
// Only the export section's names change; every other byte of the wasm is copied as it is.
// Each name must be used in the glue as `wasm.NAME` (the glue's own JS function of the same
// name is local: terser shortens it), or nothing is written.

import { readFileSync, writeFileSync } from "node:fs";

const [dir, name] = process.argv.slice(2);
if (!name) throw new Error("usage: short-exports.mjs DIR NAME");
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

const renames = new Map();
const parts = [wasm.subarray(0, 8)];
at = 8;
while (at < wasm.length) {
  const sectionStart = at;
  const id = wasm[at++];
  const size = uleb();
  const end = at + size;
  if (id !== 7) {
    parts.push(wasm.subarray(sectionStart, end));
    at = end;
    continue;
  }
  const count = uleb();
  const body = [...encodeUleb(count)];
  for (let i = 0; i < count; i++) {
    const fieldLength = uleb();
    const field = wasm.subarray(at, at + fieldLength).toString();
    at += fieldLength;
    const descriptorStart = at;
    at++; // kind
    uleb(); // index
    let short = field;
    if (/___convert__closures_____invoke___/.test(field)) {
      short = `_c${renames.size.toString(36)}`;
      renames.set(field, short);
    }
    body.push(...encodeUleb(short.length), ...Buffer.from(short), ...wasm.subarray(descriptorStart, at));
  }
  if (at !== end) throw new Error("the export section does not parse");
  parts.push(Buffer.from([7, ...encodeUleb(body.length), ...body]));
}

for (const [long, short] of renames) {
  const use = new RegExp(`(?<=\\bwasm\\.)${long}\\b`, "g");
  if (!use.test(js)) throw new Error(`${jsPath}: wasm.${long} is not used`);
  // The glue's JS function of the same name stays: it is local, and terser shortens it.
  js = js.replace(use, short);
}
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(jsPath, js);
console.error(`${name}: ${renames.size} closure adapters renamed`);
