// node wasm/js/short-imports.mjs DIR NAME
//
// Renames the imports wasm-bindgen generated for DIR/NAME_bg.wasm, in the wasm and in the glue
// DIR/NAME.js, from names such as `__wbg_instanceof_Uint8Array_d7aeb0dcb3108fea` to `_0`, `_1`,
// ...: run by wasm/build.sh on each module right after wasm-bindgen. The hashes keep the
// names of different crates apart until wasm-bindgen has linked them; after that the two files
// only need to agree, and the long names cost about 1.1 KB of the converter's 16 KB gzipped
// budget and 4.6 KB of the client's (hex does not compress, and each name is in both files).
//
// Only the import section's names change; every other byte of the wasm is copied as it is.
// Each name must be one key of the glue's imports object, or nothing is written.

import { readFileSync, writeFileSync } from "node:fs";
import { encodeName, rewriteSection } from "./wasm-names.mjs";

const [dir, name] = process.argv.slice(2);
if (!name) throw new Error("usage: short-imports.mjs DIR NAME");
const wasmPath = `${dir}/${name}_bg.wasm`;
const jsPath = `${dir}/${name}.js`;
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, "utf8");

const renames = new Map();
const renamed = rewriteSection(wasm, 2, (r) => {
  const moduleStart = r.at;
  r.name();
  const module = r.since(moduleStart); // with its length
  const field = r.name();
  const descriptorStart = r.at;
  const skipLimits = () => {
    const flags = r.byte();
    r.uleb();
    if (flags & 1) r.uleb();
  };
  const kind = r.byte();
  if (kind === 0) r.uleb(); // function: type index
  else if (kind === 1) { r.at++; skipLimits(); } // table: element type, limits
  else if (kind === 2) skipLimits(); // memory
  else if (kind === 3) r.at += 2; // global: value type, mutability
  else throw new Error(`import ${field}: unknown kind ${kind}`);
  let short = field;
  if (/^__wbg_|^__wbindgen_/.test(field)) {
    short = renames.get(field) ?? `_${renames.size.toString(36)}`;
    renames.set(field, short);
  }
  return [...module, ...encodeName(short), ...r.since(descriptorStart)];
}, "import");

for (const [long, short] of renames) {
  // The glue declares each import once, as a key of its imports object: `name: function(`.
  const key = new RegExp(`(?<=\\n\\s*)${long}(?=: )`, "g");
  const found = js.match(key)?.length ?? 0;
  if (found !== 1) throw new Error(`${jsPath}: ${long} is a key ${found} times, not once`);
  js = js.replace(key, short);
  if (js.includes(long)) throw new Error(`${jsPath}: ${long} is used other than as a key`);
}
writeFileSync(wasmPath, renamed);
writeFileSync(jsPath, js);
console.error(`${name}: ${renames.size} imports renamed`);
