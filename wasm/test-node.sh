#!/usr/bin/env bash
# Runs the wasm-bindgen tests of the converter's JS surface (wasm/converter/src/js.rs)
# compiled for wasm32 and run under node by wasm-bindgen-test-runner, on whichever toolchain
# route wasm/build.sh would use (SOCKRELAY_WASM_ROUTE=rustup|debian forces one).
#
# Only the converter's library tests: the core's tests (wasm/inet/tests) are native (their
# proptest dependency does not build for wasm32). Extra arguments go to the test binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$SOCKRELAY_ROOT"

wasm_route
ensure_wasm_bindgen
runner="$(command -v wasm-bindgen-test-runner)" || die "wasm-bindgen-test-runner not found"
command -v node >/dev/null || die "node not found"

flags=("${WASM_CARGO_FLAGS[@]}")
# libtest's harness crate is part of what a rebuilt std has to include.
[ "$WASM_ROUTE" = debian ] && flags=(-Zbuild-std=std,panic_abort,test)

say "wasm-bindgen tests under node (route: $WASM_ROUTE)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner" \
	"${WASM_CARGO[@]}" test --target "$WASM_TARGET" --target-dir "$WASM_TARGET_DIR" \
	-p sockrelay-converter --lib "${flags[@]}" -- "$@"
