#!/usr/bin/env bash
# Builds the three browser modules into web/pkg/, each from its own crate:
#   inet.js   + inet_bg.wasm   the converter (sockrelay-converter), entry for the docs pages
#   client.js + client_bg.wasm the client UI (sockrelay-client), loaded by web/index.html
#   socket.js + socket_bg.wasm the page socket library (sockrelay-socket), served at /pkg/
# then shrinks each with wasm-opt -Oz and prints gzipped sizes against the budgets.
# Each module must export its own API and nothing else: checked after the build.
# The converter's entry is the generated glue with wasm/js/ appended (assemble_inet_entry).
#
# Skips all of it when nothing that goes into the modules changed since the last build.
# Installs what it lacks (see scripts/lib.sh), so it does not depend on scripts/setup.sh.
# The converter, the client and the element over their budgets fail the build (after every size
# is printed); the socket library's is reported here and held by tests/browser/socket.test.mjs.
# tests/node/inet.test.mjs holds the converter's budget too, tests/browser/client.test.mjs the
# client's.
#
# Environment: SOCKRELAY_WASM_ROUTE=rustup|debian forces a toolchain route;
# SOCKRELAY_WASM_BUILD_STD=0 skips rebuilding std for size (see wasm_size_mode in scripts/lib.sh);
# SOCKRELAY_WASM_FORCE=1 rebuilds even when the inputs are unchanged.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$SOCKRELAY_ROOT"

PKG=web/pkg
STAMP="$PKG/.build-stamp"
# Entry JS + wasm of the converter, gzipped (DESIGN.md; 16 KB since issue 17).
BUDGET=16384
# client.js + client_bg.wasm, the client UI, gzipped (issue 17: 60 KB with every feature).
CLIENT_BUDGET=60000
# socket.js + socket_bg.wasm, the page socket library, gzipped: 25 KB in issue 15, 26 KB since
# `opened` waits for the relay's word that the target is connected (DESIGN.md: a refused target
# rejects it) and writes of any size are cut to the relay's messages (about 550 B together,
# after 370 B of savings elsewhere in the module).
SOCKET_BUDGET=26624
# <inet-converter>, gzipped, on top of the converter (issue 18).
ELEMENT_BUDGET=3072
# What rustc's default wasm32 CPU emits and wasm-bindgen keeps; wasm-opt must neither reject
# these nor emit anything newer (engines without it would refuse the module).
WASM_OPT_FEATURES=(--enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int
	--enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)

# Gzipped size of each file on its own, summed: they are served, and compressed, one by one.
gz() {
	local file total=0
	for file in "$@"; do total=$((total + $(gzip -9 -n -c "$file" | wc -c))); done
	echo "$total"
}

report_sizes() {
	local inet client element verdict=OK client_verdict=OK
	inet=$(gz "$PKG/inet.js" "$PKG/inet_bg.wasm")
	element=$(gz "$PKG/inet-converter.js")
	client=$(gz "$PKG/client.js" "$PKG/client_bg.wasm")
	[ "$inet" -le "$BUDGET" ] || verdict=OVER
	say "inet.js + inet_bg.wasm: $(wc -c <"$PKG/inet.js") + $(wc -c <"$PKG/inet_bg.wasm") B, $inet B gzipped (budget $BUDGET B): $verdict"
	[ "$client" -le "$CLIENT_BUDGET" ] || client_verdict=OVER
	say "client.js + client_bg.wasm: $(wc -c <"$PKG/client.js") + $(wc -c <"$PKG/client_bg.wasm") B, $client B gzipped (budget $CLIENT_BUDGET B): $client_verdict"
	local socket
	socket=$(gz "$PKG/socket.js" "$PKG/socket_bg.wasm")
	local over=OK
	[ "$socket" -le "$SOCKET_BUDGET" ] || over=OVER
	say "socket.js + socket_bg.wasm: $(wc -c <"$PKG/socket.js") + $(wc -c <"$PKG/socket_bg.wasm") B, $socket B gzipped (budget $SOCKET_BUDGET B): $over"
	say "inet-converter.js: $(wc -c <"$PKG/inet-converter.js") B, $element B gzipped (budget $ELEMENT_BUDGET B on top of inet.js)"
	[ "$element" -le "$ELEMENT_BUDGET" ] || die "inet-converter.js is over its budget"
	[ "$inet" -le "$BUDGET" ] || die "inet.js + inet_bg.wasm are over their budget"
	[ "$client" -le "$CLIENT_BUDGET" ] || die "client.js + client_bg.wasm are over their budget"
}

# Everything that can change the output: sources, manifests, lock file, this script, the
# appended JS, the tool versions and the route.
inputs_hash() {
	{
		find wasm/inet/src wasm/inet/Cargo.toml wasm/converter/src wasm/converter/Cargo.toml \
			wasm/client/src wasm/client/Cargo.toml wasm/session wasm/socket wasm/js wasm/build.sh scripts/lib.sh Cargo.toml Cargo.lock \
			package-lock.json -type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum
		echo "route=$WASM_ROUTE size=$WASM_SIZE_MODE"
		wasm-bindgen --version
		node_modules/.bin/wasm-opt --version 2>/dev/null || true
	} | sha256sum | cut -d' ' -f1
}

wasm_route
wasm_size_mode
ensure_wasm_bindgen
ensure_node_modules
WASM_OPT=node_modules/.bin/wasm-opt
TERSER=node_modules/.bin/terser

hash="$(inputs_hash)"
if [ -z "${SOCKRELAY_WASM_FORCE:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash" ] &&
	[ -f "$PKG/inet_bg.wasm" ] && [ -f "$PKG/client_bg.wasm" ] && [ -f "$PKG/socket_bg.wasm" ]; then
	say "web/pkg is up to date (route: $WASM_ROUTE, std: $WASM_SIZE_MODE)"
	report_sizes
	exit 0
fi

say "building web/pkg (route: $WASM_ROUTE, std: $WASM_SIZE_MODE)"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/sockrelay-pkg.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# assemble_inet_entry FILE: the converter's entry from wasm-bindgen's glue. wasm-bindgen cannot
# export constants: AF_INET/AF_INET6 are appended (constants.js). The public functions are
# appended too, as JS that checks the number of arguments (which an export of the glue cannot
# see) and calls the glue's checked `_NAME` (wasm/converter/src/js.rs): arity.js, and fast.js for
# inet_pton and inet_ntop, which also calls the fast paths' `_io`/`_pton`/`_ntop6` and
# uses the glue's `wasm` and `getUint8ArrayMemory0`. Every generated function named `_...` stops
# being an export here. (The `_` functions are skip_typescript; the types of the appended
# exports are in the module's typescript_custom_section.)
assemble_inet_entry() {
	local entry="$1" fn
	for fn in _inet_aton _inet_ntoa _inet_pton _inet_ntop _getservbyname _getservbyport \
		_address_facts _subnet _io _pton _ntop6; do
		grep -q "^export function $fn(" "$entry" || die "$entry: no 'export function $fn(' from wasm-bindgen"
	done
	grep -q '^function getUint8ArrayMemory0() {$' "$entry" && grep -q '^ *wasm = instance\.exports;$' "$entry" ||
		die "$entry: the glue no longer has the 'wasm' and 'getUint8ArrayMemory0' fast.js uses"
	sed -i -E 's/^export function (_[A-Za-z0-9_]*)\(/function \1(/' "$entry"
	cat wasm/js/constants.js wasm/js/arity.js wasm/js/fast.js >>"$entry"
}

# assemble_socket_entry FILE: the socket library starts itself and exports its API only: the
# loader stops being an export, the Python layer's class is reached through `socket.socket`
# (wasm/js/socket.js, appended), and the types are wasm/js/socket.d.ts.
assemble_socket_entry() {
	local entry="$1"
	grep -q '^export { initSync, __wbg_init as default };$' "$entry" && grep -q '^export class PySocket {$' "$entry" ||
		die "$entry: no loader export line or 'export class PySocket {' from wasm-bindgen"
	sed -i -e '/^export { initSync, __wbg_init as default };$/d' -e 's/^export class PySocket {$/class PySocket {/' "$entry"
	cat wasm/js/socket.js >>"$entry"
	cp wasm/js/socket.d.ts "$STAGE/socket.d.ts"
}

# build_module NAME PROFILE CRATE CARGO_FEATURE_ARGS...: cargo build, wasm-bindgen, wasm-opt,
# terser into $STAGE.
build_module() {
	local name="$1" profile="$2" crate="$3" artifact
	shift 3
	artifact="$WASM_SIZE_TARGET_DIR/$WASM_TARGET/$profile/${crate//-/_}.wasm"
	say "cargo build -p $crate --profile $profile $* ($name)"
	"${WASM_SIZE_CARGO[@]}" build --quiet --target "$WASM_TARGET" --profile "$profile" \
		--target-dir "$WASM_SIZE_TARGET_DIR" -p "$crate" "${WASM_SIZE_FLAGS[@]}" "$@"
	wasm-bindgen --target web --out-dir "$STAGE" --out-name "$name" "$artifact"
	# Import names without their hashes: about 1.1 KB of the converter's gzipped budget, 4.6 KB
	# of the client's (141 web-sys imports).
	node wasm/js/short-imports.mjs "$STAGE" "$name"
	if [ "$name" = socket ] || [ "$name" = client ]; then
		# And the closure adapters' export names: about half a kilobyte of the socket library's
		# budget, 0.3 KB of the client's.
		node wasm/js/short-exports.mjs "$STAGE" "$name"
	fi
	say "wasm-opt -Oz ${name}_bg.wasm"
	# target_features may go once wasm-bindgen has read it.
	"$WASM_OPT" -Oz --converge "${WASM_OPT_FEATURES[@]}" --strip-debug --strip-producers \
		--strip-target-features -o "$STAGE/${name}_bg.opt.wasm" "$STAGE/${name}_bg.wasm"
	mv "$STAGE/${name}_bg.opt.wasm" "$STAGE/${name}_bg.wasm"
	if [ "$name" = inet ]; then
		assemble_inet_entry "$STAGE/inet.js"
	elif [ "$name" = socket ]; then
		assemble_socket_entry "$STAGE/socket.js"
	else
		# wasm-bindgen exports the start function as well as running it: the page would attach
		# a second controller if anything called it again.
		grep -q '^export function start() {$' "$STAGE/$name.js" ||
			die "$name.js: no 'export function start() {' from wasm-bindgen"
		sed -i 's/^export function start() {$/function start() {/' "$STAGE/$name.js"
	fi
	# The glue's doc comments are in the .d.ts, which stays as generated; minified glue is
	# about 2 KB less gzipped, a tenth of the converter's budget.
	say "terser $name.js"
	{
		printf '/* @ts-self-types="./%s.d.ts" */\n' "$name"
		"$TERSER" "$STAGE/$name.js" --module --compress --mangle
	} >"$STAGE/$name.min.js"
	mv "$STAGE/$name.min.js" "$STAGE/$name.js"
}

# The converter's fast paths are fast enough at "z" (BENCHMARKS.md): "s" cost it 490 gzipped bytes.
build_module inet wasm-release sockrelay-converter
# The client's std is built with its optimize_for_size feature where std is built at all
# (wasm_size_mode): smaller sorts, number formatting, escapes and float parsing (the same
# results by slower ways), 2.5 KB gzipped. The converter and the socket library keep the std
# they were measured with.
client_std=()
[ "$WASM_SIZE_MODE" = std-from-source ] && client_std=(-Zbuild-std-features=optimize_for_size)
build_module client wasm-release sockrelay-client "${client_std[@]}"
build_module socket wasm-release sockrelay-socket

# The converter's node entry and the <inet-converter> element (wasm/js/), beside inet.js.
cp wasm/js/inet.node.js wasm/js/inet.node.d.ts wasm/js/inet-converter.d.ts "$STAGE"/
{
	printf '/* @ts-self-types="./inet-converter.d.ts" */\n'
	"$TERSER" wasm/js/inet-converter.js --module --compress --mangle
} >"$STAGE/inet-converter.js"

version="$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)"
cat >"$STAGE/package.json" <<EOF
{
  "name": "sockrelay-inet",
  "version": "$version",
  "description": "Python's socket address helpers (inet_aton, inet_pton, getservbyname, ...) for the browser, in WebAssembly",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./inet.js",
  "module": "./inet.js",
  "types": "./inet.d.ts",
  "exports": {
    ".": {
      "node": {
        "types": "./inet.node.d.ts",
        "default": "./inet.node.js"
      },
      "types": "./inet.d.ts",
      "default": "./inet.js"
    },
    "./inet-converter.js": {
      "types": "./inet-converter.d.ts",
      "default": "./inet-converter.js"
    },
    "./inet_bg.wasm": "./inet_bg.wasm",
    "./client.js": {
      "types": "./client.d.ts",
      "default": "./client.js"
    },
    "./client_bg.wasm": "./client_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": [
    "inet.js",
    "inet.d.ts",
    "inet_bg.wasm",
    "inet_bg.wasm.d.ts",
    "inet.node.js",
    "inet.node.d.ts",
    "inet-converter.js",
    "inet-converter.d.ts",
    "client.js",
    "client.d.ts",
    "client_bg.wasm",
    "client_bg.wasm.d.ts"
  ],
  "sideEffects": [
    "./client.js",
    "./inet-converter.js"
  ]
}
EOF

# Load the optimised converter once: a wasm-opt feature mismatch fails here, not in a browser.
node --input-type=module -e '
	const [dir] = process.argv.slice(1);
	const { readFileSync } = await import("node:fs");
	const m = await import(`${dir}/inet.js`);
	m.initSync({ module: readFileSync(`${dir}/inet_bg.wasm`) });
	const got = m.inet_ntop(m.AF_INET, m.inet_aton("127.1"));
	if (got !== "127.0.0.1") throw new Error(`smoke test: got ${got}`);
	// The entry exports the public API only, and both paths of inet_pton/inet_ntop work.
	const api = "AF_INET AF_INET6 address_facts default getservbyname getservbyport inet_aton " +
		"inet_ntoa inet_ntop inet_pton initSync subnet";
	if (Object.keys(m).sort().join(" ") !== api) throw new Error(`exports: ${Object.keys(m)}`);
	const v6 = m.inet_pton(m.AF_INET6, "2001:db8::ffff:1.2.3.4");
	for (const text of [m.inet_ntop(m.AF_INET6, v6), m.inet_ntop(10n, v6.buffer)]) {
		if (text !== "2001:db8::ffff:102:304") throw new Error(`smoke test: got ${text}`);
	}
	try { m.inet_pton(m.AF_INET, "1.2.3"); throw new Error("smoke test: inet_pton accepted 1.2.3"); }
	catch (e) { if (e.name !== "OSError") throw e; }
	new WebAssembly.Module(readFileSync(`${dir}/client_bg.wasm`));
	// The client exports its loader only (it starts itself): none of the converter.
	const client = Object.keys(await import(`${dir}/client.js`)).sort().join(" ");
	if (client !== "default initSync") throw new Error(`client.js exports: ${client}`);
	// The socket library starts itself on import (its wasm fetched, here from the stage) and
	// exports its API only.
	const { fileURLToPath } = await import("node:url");
	globalThis.fetch = async (url) => new Response(readFileSync(fileURLToPath(url)),
		{ headers: { "content-type": "application/wasm" } });
	const socket = Object.keys(await import(`${dir}/socket.js`)).sort().join(" ");
	if (socket !== "AF_INET AF_INET6 SOCK_DGRAM SOCK_STREAM TCPSocket UDPSocket socket")
		throw new Error(`socket.js exports: ${socket}`);
	// The node entry (the "node" condition of package.json) exports the same API.
	const fresh = await import(`${dir}/inet.node.js`);
	if (Object.keys(fresh).sort().join(" ") !== api) throw new Error(`node exports: ${Object.keys(fresh)}`);
' "$STAGE" || die "the optimised modules do not load, or export more than their API"

# Brotli and gzip copies for the relay to send (native/src/http/assets.rs).
say "compressing: name, bytes, gzip, brotli"
node wasm/js/compress.mjs "$STAGE" | column -t >&2

mkdir -p "$PKG"
rm -f "$PKG"/inet* "$PKG"/client* "$PKG"/socket* "$PKG"/package.json* "$PKG"/.gitignore
cp "$STAGE"/* "$PKG"/
echo "$hash" >"$STAMP"
say "wrote $PKG: $(cd "$PKG" && echo *)"
report_sizes
