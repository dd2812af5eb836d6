#!/usr/bin/env bash
# User-space instructions per message (`make instructions`): each server runs under
# `valgrind --tool=callgrind`, which counts the instructions it executes, the load generator
# sends 64 B messages through it, and the count over the measured window is divided by the
# messages echoed. Unlike msgs/s, this does not depend on what else the machine is doing: the
# same binary and workload give nearly the same number on every run (the kernel's share of the
# work, the larger one for small messages, is not counted; syscalls per message are compared
# with `strace -c` instead, see BENCHMARKS.md).
#
#   scripts/instructions.sh                 bare echo, sockrelay echo, bare proxy, sockrelay /ws
#   scripts/instructions.sh --seconds 20    a longer window (default 10)
#   scripts/instructions.sh --keep DIR      keeps callgrind's dumps in DIR (the last one of each
#                                           system is its long window), for callgrind_annotate
#
# websocat is measured too when it is on PATH (scripts/bench.sh installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOCKRELAY_ROOT"
ROOT=$PWD

SECONDS_=10
CONNS=50
KEEP=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) SECONDS_=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --keep) KEEP=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v callgrind_control >/dev/null || apt_ensure valgrind

cargo build --release -q -p sockrelay -p sockrelay-bench
BIN="$ROOT/target/release"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done
    if [[ -n $KEEP ]]; then mkdir -p "$KEEP" && cp "$WORK"/*.cg.* "$KEEP"/ 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The bridges' target, outside valgrind.
P_TARGET=$(free_port)
"$BIN/bare-echo" "127.0.0.1:$P_TARGET" >/dev/null &
PIDS+=($!)
wait_port "$P_TARGET"

# window NAME MODE TARGET VG SECONDS: zeroes VG's counts, loads TARGET for SECONDS, dumps;
# prints "MESSAGES INSTRUCTIONS".
window() {
    local name=$1 mode=$2 target=$3 vg=$4 secs=$5
    local before
    before=$(ls "$WORK/$name.cg".* 2>/dev/null | wc -l)
    callgrind_control -z "$vg" >/dev/null 2>&1
    rm -f "$WORK/$name.json"
    "$BIN/loadgen" --threads 1 "$mode" "$target" -c "$CONNS" -d "$secs" -w 0 \
        --json "$WORK/$name.json" >/dev/null
    callgrind_control -d "$vg" >/dev/null 2>&1
    local dump="$WORK/$name.cg.$((before + 1))"
    for _ in $(seq 1 100); do [[ -s $dump ]] && break; sleep 0.1; done
    printf '%s %s\n' \
        "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["msgs"])' "$WORK/$name.json")" \
        "$(awk '/^totals:/ { print $2 }' "$dump")"
}

# measure NAME MODE TARGET PORT -- COMMAND...: runs COMMAND under callgrind and, once it
# listens on PORT, loads it for 1 s and for SECONDS; the difference between the two windows
# (connections, handshakes and start-up cancel out) divided by the difference in messages is
# the cost of one message.
measure() {
    local name=$1 mode=$2 target=$3 port=$4
    shift 5
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" "$@" >"$WORK/$name.log" 2>&1 &
    local vg=$!
    PIDS+=("$vg")
    wait_port "$port" "log: $WORK/$name.log"
    local short long
    short=$(window "$name" "$mode" "$target" "$vg" 1)
    long=$(window "$name" "$mode" "$target" "$vg" "$SECONDS_")
    { kill -9 "$vg"; wait "$vg"; } 2>/dev/null || true
    # shellcheck disable=SC2086
    set -- $short $long
    printf '| %s | %s | %s | %.0f |\n' "$name" "$(($3 - $1))" "$(($4 - $2))" \
        "$(echo "($4 - $2) / ($3 - $1)" | bc -l)"
}

echo "64 B x $CONNS connections, 1 in flight, ${SECONDS_} s under callgrind; $(valgrind --version)"
echo
echo "| system | messages (long - short window) | instructions (long - short) | per message |"
echo "|---|--:|--:|--:|"
P=$(free_port)
measure bare-echo tcp "127.0.0.1:$P" "$P" -- "$BIN/bare-echo" "127.0.0.1:$P"
P=$(free_port)
RELAY=("$BIN/sockrelay" --http "127.0.0.1:$(free_port)" --ack "127.0.0.1:$(free_port)"
    --allow "127.0.0.1:$P_TARGET")
measure sockrelay-echo tcp "127.0.0.1:$P" "$P" -- "${RELAY[@]}" --echo "127.0.0.1:$P"
P=$(free_port)
measure bare-proxy tcp "127.0.0.1:$P" "$P" -- "$BIN/bare-proxy" "127.0.0.1:$P" "127.0.0.1:$P_TARGET"
P=$(free_port)
RELAY=("$BIN/sockrelay" --http "127.0.0.1:$P" --echo "127.0.0.1:$(free_port)"
    --ack "127.0.0.1:$(free_port)" --allow "127.0.0.1:$P_TARGET")
measure sockrelay-ws ws "ws://127.0.0.1:$P/ws?target=127.0.0.1:$P_TARGET" "$P" -- "${RELAY[@]}"
if WEBSOCAT=$(command -v websocat); then
    P=$(free_port)
    measure websocat ws "ws://127.0.0.1:$P/" "$P" -- \
        "$WEBSOCAT" --binary -q "ws-l:127.0.0.1:$P" "tcp:127.0.0.1:$P_TARGET"
fi
