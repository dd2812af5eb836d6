// The converter's entry under node (package.json's "node" condition). wasm-bindgen's init()
// fetches inet_bg.wasm from beside inet.js, and node 20's fetch cannot read file: URLs: here
// init() and initSync() with no argument read the file instead. With one, they are inet.js's.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import initWeb, { initSync as initSyncWeb } from "./inet.js";

export * from "./inet.js";

const wasm = new URL("inet_bg.wasm", import.meta.url);

export default async function init(input) {
  return initWeb(input ?? { module_or_path: await readFile(wasm) });
}

export function initSync(input) {
  return initSyncWeb(input ?? { module: readFileSync(wasm) });
}
