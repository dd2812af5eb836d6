
// Appended to wasm-bindgen's glue for socket.js (wasm/build.sh, assemble_socket_entry). The
// library starts itself, so that a page imports TCPSocket and uses it with no init call; and
// wasm-bindgen exports neither constants nor a namespace object, which Python's
// `socket.socket(AF_INET, SOCK_STREAM)` spelling needs. Everything else is in Rust
// (wasm/socket).
await __wbg_init();

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;

const python = Object.freeze({
  AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM,
  /** `socket.socket(family = AF_INET, type = SOCK_STREAM, options = {relay, token})` */
  socket: function socket(family, type, options) {
    return new PySocket(family, type, options);
  },
});
export { python as socket };

// `using s = ...` ends the connection, as Python's `with` does: wasm-bindgen's own dispose only
// frees the object, which leaves the bridge open (its streams may still be in use, so the
// object's collection must not close it, and does not).
if (Symbol.dispose) {
  for (const Class of [TCPSocket, UDPSocket, PySocket]) {
    Class.prototype[Symbol.dispose] = function dispose() {
      this.close();
      this.free();
    };
  }
}
