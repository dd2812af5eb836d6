// Shared by short-imports.mjs and short-exports.mjs: reading a wasm module's bytes and
// rebuilding it with one section's entries rewritten, every other byte copied as it is.

/** A cursor over a wasm module's bytes. */
export class Reader {
  constructor(bytes, at = 0) {
    this.bytes = bytes;
    this.at = at;
  }
  byte() {
    return this.bytes[this.at++];
  }
  /** An unsigned LEB128, moving past it. */
  uleb() {
    let value = 0;
    let shift = 0;
    let byte;
    do {
      byte = this.byte();
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  }
  /** A length-prefixed name, as text. */
  name() {
    const length = this.uleb();
    const text = this.bytes.subarray(this.at, this.at + length).toString();
    this.at += length;
    return text;
  }
  /** The bytes from `start` to where the cursor is. */
  since(start) {
    return this.bytes.subarray(start, this.at);
  }
}

export function encodeUleb(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

/** `name` as the module writes it: its length, then its bytes. */
export function encodeName(name) {
  return [...encodeUleb(name.length), ...Buffer.from(name)];
}

/**
 * `wasm` with section `id` rebuilt: `entry(reader)` reads one of its entries and returns the
 * bytes to write in its place. Throws if the section does not parse to its end.
 */
export function rewriteSection(wasm, id, entry, what) {
  const r = new Reader(wasm, 8);
  const parts = [wasm.subarray(0, 8)];
  while (r.at < wasm.length) {
    const sectionStart = r.at;
    const sectionId = r.byte();
    const size = r.uleb();
    const end = r.at + size;
    if (sectionId !== id) {
      parts.push(wasm.subarray(sectionStart, end));
      r.at = end;
      continue;
    }
    const count = r.uleb();
    const body = [...encodeUleb(count)];
    for (let i = 0; i < count; i++) body.push(...entry(r));
    if (r.at !== end) throw new Error(`the ${what} section does not parse`);
    parts.push(Buffer.from([id, ...encodeUleb(body.length), ...body]));
  }
  return Buffer.concat(parts);
}
