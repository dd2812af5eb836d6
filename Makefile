# The two commands of README.md: `make run` and `make test`. Each installs what the machine
# lacks first (scripts/setup.sh is idempotent and quick when everything is there).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Extra flags for `make run`, e.g. make run ARGS="--allow 127.0.0.1:22"
ARGS ?=

.PHONY: run test ci setup wasm build release lint bench instructions fuzz clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: release ## build what is missing, then start sockrelay on http://127.0.0.1:8080
	./target/release/sockrelay $(ARGS)

release: wasm
	cargo build --release -p sockrelay

wasm: ## build the browser modules into web/pkg (skipped when up to date)
	wasm/build.sh

build: wasm
	cargo build -p sockrelay

setup: ## install everything the tests need (apt, wasm toolchain, wasm-bindgen-cli, npm)
	scripts/setup.sh

test: setup build ## every test: Rust unit+integration, wasm under node, node, browser
	@echo "== Rust: unit, integration and oracle tests"
	cargo test --workspace
	@echo "== wasm-bindgen tests of the converter module under node"
	wasm/test-node.sh
	@echo "== node: the built modules against the python oracle"
	node --test tests/node/
	@echo "== browser: headless Chromium against a real sockrelay"
	node --test --test-concurrency=1 tests/browser/

# Lint before the tests, so that a formatting slip or a clippy warning fails CI in a minute
# instead of after the browser tests; setup first, for the wasm32 toolchain wasm/clippy.sh uses.
ci: setup ## what CI runs (.ci/run): make lint, then make test
	$(MAKE) lint
	$(MAKE) test

lint: ## rustfmt and clippy (native, and the browser crates for wasm32), and that the fuzz targets still compile
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	wasm/clippy.sh
	cargo fmt --manifest-path fuzz/Cargo.toml --check
	cargo check --manifest-path fuzz/Cargo.toml --bins

bench: ## benchmarks (see BENCHMARKS.md)
	scripts/bench.sh

instructions: ## user-space instructions per message, counted by callgrind (see BENCHMARKS.md)
	scripts/instructions.sh

fuzz: ## run every fuzz target for FUZZ_SECONDS (default 60) each
	scripts/fuzz.sh $${FUZZ_SECONDS:-60}

clean:
	cargo clean
	rm -rf web/pkg
