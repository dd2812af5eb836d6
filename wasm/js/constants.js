
// Appended by wasm/build.sh: wasm-bindgen cannot export constants. Kept equal to
// sockrelay_inet::AF_INET/AF_INET6 by a unit test in wasm/converter/src/js.rs.
/** Address family of IPv4: 2, Linux's value, as Python on Linux shows it. */
export const AF_INET = 2;
/** Address family of IPv6: 10, Linux's value, as Python on Linux shows it. */
export const AF_INET6 = 10;
