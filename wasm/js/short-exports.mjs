// node wasm/js/short-exports.mjs DIR NAME
//
// Renames the closure adapters wasm-bindgen exports from DIR/NAME_bg.wasm, in the wasm and in
// the glue DIR/NAME.js, from names such as
// `wasm_bindgen_75dce6053228d2f3___convert__closures_____invoke___wasm_bindgen_..._true_`
// (100 to 330 characters each, hashes included) to `_c0`, `_c1`, ...: run by wasm/build.sh on
// the socket library and the client right after wasm-bindgen, like short-imports.mjs for
// imports. The page never sees these names, and in both files they cost the library about
// half a kilobyte of its 25 KB gzipped budget (the client 0.3 KB).
//
// Only the export section's names change; every other byte of the wasm is copied as it is.
// Each name must be used in the glue as `wasm.NAME` (the glue's own JS function of the same
// name is local: terser shortens it), or nothing is written.

import { readFileSync, writeFileSync } from "node:fs";
import { encodeName, rewriteSection } from "./wasm-names.mjs";

const [dir, name] = process.argv.slice(2);
if (!name) throw new Error("usage: short-exports.mjs DIR NAME");
const wasmPath = `${dir}/${name}_bg.wasm`;
const jsPath = `${dir}/${name}.js`;
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");

const renames = new Map();
const renamed = rewriteSection(wasm, 7, (r) => {
  const field = r.name();
  const descriptorStart = r.at;
  r.byte(); // kind
  r.uleb(); // index
  let short = field;
  if (/___convert__closures_____invoke___/.test(field)) {
    short = `_c${renames.size.toString(36)}`;
    renames.set(field, short);
  }
  return [...encodeName(short), ...r.since(descriptorStart)];
}, "export");

for (const [long, short] of renames) {
  const use = new RegExp(`(?<=\\bwasm\\.)${long}\\b`, "g");
  if (!use.test(js)) throw new Error(`${jsPath}: wasm.${long} is not used`);
  // The glue's JS function of the same name stays: it is local, and terser shortens it.
  js = js.replace(use, short);
}
writeFileSync(wasmPath, renamed);
writeFileSync(jsPath, js);
console.error(`${name}: ${renames.size} closure adapters renamed`);
