// Appended by wasm/build.sh to the generated entry, after arity.js: the public inet_pton and
// inet_ntop, which first check the number of arguments as every public function does (`arity`,
// in arity.js; one comparison on the fast path). It shares the glue's scope: `wasm` (the
// instance's exports) and `getUint8ArrayMemory0` (a view of wasm memory, renewed when memory
// grows), which build.sh checks are there, and the checked exports `_inet_pton`/`_inet_ntop`,
// which build.sh takes out of the module's exports (as every generated function whose name
// starts with `_`).
//
// The checked exports take `JsValue`s: each argument check is a call from wasm back into JS,
// text goes through TextEncoder/TextDecoder and every result through the allocator. For the
// argument types that need no conversion (a family of exactly 2 or 10, a string of ASCII
// shorter than the scratch buffer, a Uint8Array of the family's length) these wrappers only
// marshal: text into and out of a scratch buffer in wasm memory, bytes as big-endian 32-bit
// words. The address work stays in Rust (`_pton`, `_ntop6` in wasm/converter/src/js.rs, over the same
// core), but for IPv4 `inet_ntop`, which is joined here. Anything else, and any text `_pton` refuses, goes to the checked export, so
// results and errors (Python's class and message) are exactly what it gives.

/** Address of the scratch buffer in wasm memory (`IO_LEN` bytes, fixed once instantiated). */
let io = 0;
const IO_LEN = 64;

/**
 * Each byte value's decimal text (`DECIMAL`), and the same followed by "." (`DOTTED`): joining
 * these takes a quarter less time than converting the numbers on every call.
 */
const DECIMAL = Array.from({ length: 256 }, (_, i) => `${i}`);
const DOTTED = DECIMAL.map((text) => `${text}.`);

/** The ASCII text of `n` bytes at `p` in `m`: fixed-arity fromCharCode, no TextDecoder. */
function ascii(m, p, n) {
  let text = "";
  for (; n > 16; n -= 16, p += 16) text += chars16(m, p);
  return text + chars16(m, p).slice(0, n);
}

/** 16 bytes as characters; reading past a short text stays inside the scratch buffer. */
function chars16(m, p) {
  return String.fromCharCode(m[p], m[p + 1], m[p + 2], m[p + 3], m[p + 4], m[p + 5], m[p + 6],
    m[p + 7], m[p + 8], m[p + 9], m[p + 10], m[p + 11], m[p + 12], m[p + 13], m[p + 14], m[p + 15]);
}

/** Bytes `b[i..i + 4]` as a big-endian 32-bit word. */
function word(b, i) {
  return b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3];
}

export function inet_pton(address_family, ip_string) {
  if (arguments.length !== 2) arity("inet_pton", arguments.length, 2, 2);
  if ((address_family === 2 || address_family === 10) && typeof ip_string === "string" &&
    ip_string.length < IO_LEN) {
    const n = ip_string.length;
    const p = io || (io = wasm._io());
    let m = getUint8ArrayMemory0();
    let i = 0;
    for (; i < n; i++) {
      const c = ip_string.charCodeAt(i);
      if (c > 127) break;
      m[p + i] = c;
    }
    const length = i === n ? wasm._pton(address_family, n) : 0;
    if (length) {
      m = getUint8ArrayMemory0();
      const packed = new Uint8Array(length);
      for (i = 0; i < length; i++) packed[i] = m[p + i];
      return packed;
    }
  }
  return _inet_pton(address_family, ip_string);
}

export function inet_ntop(address_family, packed_ip) {
  if (arguments.length !== 2) arity("inet_ntop", arguments.length, 2, 2);
  if (packed_ip instanceof Uint8Array) {
    const b = packed_ip;
    // IPv4 is four decimal numbers without leading zeros, as glibc writes them: a crossing
    // into wasm and the text back cost more than the whole answer here (and ipaddr.js's).
    if (address_family === 2 && b.length === 4) {
      return DOTTED[b[0]] + DOTTED[b[1]] + DOTTED[b[2]] + DECIMAL[b[3]];
    }
    if (address_family === 10 && b.length === 16) {
      const n = wasm._ntop6(word(b, 0), word(b, 4), word(b, 8), word(b, 12));
      if (n) return ascii(getUint8ArrayMemory0(), io || (io = wasm._io()), n);
    }
  }
  return _inet_ntop(address_family, packed_ip);
}
