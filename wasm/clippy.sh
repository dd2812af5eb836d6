#!/usr/bin/env bash
# clippy on the browser crates as they are built, for wasm32: the client's page code and the
# converter's bindings exist only there, so the workspace's native clippy never sees them.
# Same toolchain route as wasm/build.sh (SOCKRELAY_WASM_ROUTE=rustup|debian forces one); part
# of `make lint`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$SOCKRELAY_ROOT"

wasm_route
flags=("${WASM_CARGO_FLAGS[@]}")
if [ "$WASM_ROUTE" = debian ]; then
	# Debian's clippy for its rustc-web; tests need libtest in the rebuilt std.
	apt_ensure rust-web-clippy
	flags=(-Zbuild-std=std,panic_abort,test)
fi

say "clippy for $WASM_TARGET: the converter, the client and the socket library (route: $WASM_ROUTE)"
"${WASM_CARGO[@]}" clippy --target "$WASM_TARGET" --target-dir "$WASM_TARGET_DIR" --all-targets \
	-p sockrelay-converter -p sockrelay-client -p sockrelay-session -p sockrelay-socket "${flags[@]}" \
	-- -D warnings
