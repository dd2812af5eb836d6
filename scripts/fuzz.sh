#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz + libFuzzer) for a while, one after the other.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, all targets)
#
# Installs cargo-fuzz when missing, builds the targets with AddressSanitizer on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets stable take cargo-fuzz's -Z flags; stable ships the ASan
# runtime), falls back to plain libFuzzer (`-s none`, still coverage-guided) when the ASan
# build fails, and runs each target single-process (-jobs=1) from its seeds (fuzz/seeds/<t>,
# committed) and its growing corpus (fuzz/corpus/<t>, ignored). Prints executions, time and
# corpus size per target; exits 1 if any target crashed (the input is saved in
# fuzz/artifacts/<t>/; replay it with the command printed).
#
# Environment: FUZZ_SANITIZER=address|none forces a sanitizer; FUZZ_TIMEOUT is the seconds
# one input may take before it counts as a hang (default 10); FUZZ_NICE the niceness of build
# and run (default 10: the machine is shared).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
TARGETS_ALL=(inet_parsers target_parser http_handshake)
CARGO_FUZZ_VERSION=0.13.2

say() { printf '[fuzz] %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 2
}

SECONDS_PER_TARGET="${1:-60}"
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] || die "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${TARGETS_ALL[@]}")
for t in "${TARGETS[@]}"; do
	[ -f "$FUZZ_DIR/fuzz_targets/$t.rs" ] || die "no fuzz target '$t' (have: ${TARGETS_ALL[*]})"
done
TIMEOUT="${FUZZ_TIMEOUT:-10}"
NICE=(nice -n "${FUZZ_NICE:-10}")

export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
# libfuzzer-sys compiles libFuzzer (C++) with the cc crate.
if ! command -v c++ >/dev/null; then
	command -v apt-get >/dev/null || die "no C++ compiler: install g++"
	say "apt-get install g++"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null ||
		die "could not install g++"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	say "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
	cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >&2 || die "could not install cargo-fuzz"
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module ...); no nightly
# can be downloaded here, and stable takes them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
# Build output stays in fuzz/target (ignored), apart from the workspace's target/.
export CARGO_TARGET_DIR="$FUZZ_DIR/target"
cd "$FUZZ_DIR"

# -O -a: optimised, with debug assertions and overflow checks.
build() { "${NICE[@]}" cargo fuzz build --fuzz-dir "$FUZZ_DIR" -O -a -s "$1" >&2; }
SANITIZER="${FUZZ_SANITIZER:-}"
case "$SANITIZER" in
"")
	say "building with AddressSanitizer"
	if build address; then
		SANITIZER=address
	else
		say "the ASan build failed: building plain libFuzzer (-s none)"
		build none || die "cargo fuzz build failed"
		SANITIZER=none
	fi
	;;
address | none)
	say "building with -s $SANITIZER"
	build "$SANITIZER" || die "cargo fuzz build failed"
	;;
*) die "FUZZ_SANITIZER must be address or none" ;;
esac

LOGS="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.txt"
failed=()
{
	printf '# scripts/fuzz.sh %s  (sanitizer: %s, %s)\n' "$SECONDS_PER_TARGET" "$SANITIZER" "$(rustc -V)"
	printf '%-16s %10s %12s %9s %12s %s\n' target seconds executions exec/s corpus result
} >"$SUMMARY"

for t in "${TARGETS[@]}"; do
	corpus="$FUZZ_DIR/corpus/$t"
	seeds="$FUZZ_DIR/seeds/$t"
	artifacts="$FUZZ_DIR/artifacts/$t"
	dict="$FUZZ_DIR/dicts/$t.dict"
	log="$LOGS/$t"
	mkdir -p "$corpus" "$artifacts" "$log"
	rm -f "$log"/fuzz-*.log "$log/run.log"
	touch "$log/.start"
	extra=()
	[ -f "$dict" ] && extra+=("-dict=$dict")
	say "$t: ${SECONDS_PER_TARGET}s"
	started=$(date +%s)
	rc=0
	# -jobs=1: one worker process, its output in fuzz-0.log in the current directory.
	(cd "$log" && "${NICE[@]}" cargo fuzz run --fuzz-dir "$FUZZ_DIR" -O -a -s "$SANITIZER" "$t" "$corpus" "$seeds" -- \
		-max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 -timeout="$TIMEOUT" \
		-rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}") >"$log/run.log" 2>&1 || rc=$?
	wall=$(($(date +%s) - started))
	out="$log/fuzz-0.log"
	[ -f "$out" ] || out="$log/run.log"
	execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)"
	rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -1)"
	secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -1)"
	corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' "$out" | tail -1)"
	files="$(find "$corpus" -type f | wc -l)"
	new_artifacts="$(find "$artifacts" -type f -newer "$log/.start" | sort)"
	result=ok
	if [ "$rc" -ne 0 ] || [ -n "$new_artifacts" ]; then
		result="CRASH (exit $rc)"
		failed+=("$t")
		say "$t crashed; from its log ($out):"
		# The panic message or sanitizer report, and libFuzzer's verdict.
		grep -A3 -E "panicked at|^==[0-9]+==ERROR|^SUMMARY|Test unit written|Job 0 exited" "$out" >&2 || true
		for a in $new_artifacts; do
			say "reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a -s $SANITIZER $t $a)"
		done
	fi
	printf '%-16s %10s %12s %9s %12s %s\n' "$t" "${secs:-$wall}" "${execs:-?}" "${rate:-?}" \
		"${files} files (${corp:-?})" "$result" >>"$SUMMARY"
	say "$t: $result, ${execs:-?} executions in ${secs:-$wall}s, corpus $files files; log: $out"
done

cat "$SUMMARY"
if [ ${#failed[@]} -gt 0 ]; then
	say "crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)"
	exit 1
fi
