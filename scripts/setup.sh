#!/usr/bin/env bash
# Installs what building and testing sockrelay needs on a fresh Debian 12 machine that has
# root, rustup's stable toolchain, node 20 and python3; does nothing (in a second or two) for
# what is already there. Safe to run again and again: `make test` runs it first.
#
#   apt          chromium, chromium-driver (browser tests), nginx-light (scale-out test),
#                tigervnc-standalone-server and x11-xserver-utils (Xvnc and xsetroot: the noVNC test); Debian's rustc-web, cargo-web,
#                rust-web-src and lld only when rustup's wasm32 target cannot be had
#   rustup       the wasm32-unknown-unknown target and rust-src (std rebuilt for size)
#   cargo        wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock
#   npm          `npm ci`: wasm-opt (binaryen), terser, playwright-core, ipaddr.js, @novnc/novnc
#
# Environment: SOCKRELAY_WASM_ROUTE=rustup|debian forces the wasm toolchain route.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOCKRELAY_ROOT"

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
command -v node >/dev/null || die "node not found: node 20 is needed"
command -v python3 >/dev/null || die "python3 not found"

say "apt: chromium, chromium-driver, nginx-light (scale-out test), iproute2 (ss: sockets' TCP state)"
apt_ensure chromium chromium-driver nginx-light iproute2

say "apt: tigervnc-standalone-server, x11-xserver-utils (a real VNC server for the noVNC test)"
apt_ensure tigervnc-standalone-server x11-xserver-utils

say "apt: g++ (libFuzzer, which make lint compiles the fuzz targets against)"
apt_ensure g++

say "wasm32 toolchain"
wasm_route
wasm_size_mode
say "wasm32 route: $WASM_ROUTE, browser modules' std: $WASM_SIZE_MODE"

say "wasm-bindgen-cli $(wasm_bindgen_version)"
ensure_wasm_bindgen

say "node modules"
ensure_node_modules

say "ready: $(rustc --version), $(wasm-bindgen --version), node $(node --version), $(chromium --version 2>/dev/null || echo 'chromium ?')"
