// node wasm/js/compress.mjs DIR: writes NAME.br (brotli, quality 11) and NAME.gz (gzip -9) beside
// each module file in DIR (.js, .wasm, .d.ts, .json), for the relay to send to clients that
// accept them (native/src/http/assets.rs). Made here, once per build, so serving costs nothing.
// A copy that would not be smaller is not written (and an old one is removed): the relay then
// sends the file as it is. Prints one line per file: name, bytes, gzip bytes, brotli bytes.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const [dir] = process.argv.slice(2);
if (!dir) throw new Error("usage: compress.mjs DIR");

for (const name of readdirSync(dir).sort()) {
  if (!/\.(js|wasm|ts|json)$/.test(name)) continue;
  const data = readFileSync(join(dir, name));
  const copies = {
    // gzip's header holds no name and a zero time in node's gzipSync: the output is reproducible.
    gz: gzipSync(data, { level: 9 }),
    br: brotliCompressSync(data, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
        [constants.BROTLI_PARAM_MODE]: name.endsWith(".wasm")
          ? constants.BROTLI_MODE_GENERIC
          : constants.BROTLI_MODE_TEXT,
      },
    }),
  };
  for (const [suffix, bytes] of Object.entries(copies)) {
    const path = join(dir, `${name}.${suffix}`);
    if (bytes.length < data.length) writeFileSync(path, bytes);
    else rmSync(path, { force: true });
  }
  console.log(`${name}\t${data.length}\t${copies.gz.length}\t${copies.br.length}`);
}
