// Appended by wasm/build.sh to the generated entry, after constants.js and before fast.js: the
// public functions other than inet_pton and inet_ntop (those are fast.js), and the check of the
// number of arguments that every public function makes first.
//
// CPython's socket functions (PyArg_ParseTuple) refuse a call with too few or too many
// arguments before they convert any, and a wasm-bindgen export cannot see how many were passed
// (one left out arrives as `undefined`, extra ones are dropped). So each function here counts
// `arguments.length` and then calls the checked export `_NAME` of the glue (wasm/converter/src/js.rs),
// which build.sh takes out of the module's exports. An explicit `undefined` is an argument
// given, as in Web IDL: the checked exports read it as `None`, or as the optional protocol
// left out.

/**
 * Throws Python's `TypeError` for a call of `name` with `given` arguments, which is outside
 * `min..max`, in the words of CPython's getargs.c.
 */
function arity(name, given, min, max) {
  const n = given < min ? min : max;
  const bound = min === max ? "exactly" : given < min ? "at least" : "at most";
  const plural = n === 1 ? "" : "s";
  const error = new Error(`${name}() takes ${bound} ${n} argument${plural} (${given} given)`);
  error.name = "TypeError";
  throw error;
}

export function inet_aton(ip_string) {
  if (arguments.length !== 1) arity("inet_aton", arguments.length, 1, 1);
  return _inet_aton(ip_string);
}

export function inet_ntoa(packed_ip) {
  if (arguments.length !== 1) arity("inet_ntoa", arguments.length, 1, 1);
  return _inet_ntoa(packed_ip);
}

export function getservbyname(service_name, protocol_name) {
  const n = arguments.length;
  if (n < 1 || n > 2) arity("getservbyname", n, 1, 2);
  return _getservbyname(service_name, protocol_name);
}

export function getservbyport(port, protocol_name) {
  const n = arguments.length;
  if (n < 1 || n > 2) arity("getservbyport", n, 1, 2);
  return _getservbyport(port, protocol_name);
}

// The checked exports of address_facts and subnet answer with the fields as lines of one
// string, in the order of the object made here: objects made in wasm took 5.4 KB of the module.
export function address_facts(address) {
  if (arguments.length !== 1) arity("address_facts", arguments.length, 1, 1);
  const [family, canonical, integer, hex, binary, python_bytes, kind] =
    _address_facts(address).split("\n");
  // `hex` is "0x" and two digits per byte.
  const bytes = Uint8Array.from(hex.slice(2).match(/../g), (h) => parseInt(h, 16));
  return { family: +family, bytes, canonical, integer, hex, binary, python_bytes, kind };
}

export function subnet(cidr) {
  if (arguments.length !== 1) arity("subnet", arguments.length, 1, 1);
  const [family, prefix, network, netmask, first_host, last_host, broadcast, size, hosts] =
    _subnet(cidr).split("\n");
  return {
    family: +family, prefix: +prefix, network, netmask, first_host, last_host,
    broadcast: broadcast || null, size, hosts,
  };
}
