#!/usr/bin/env bash
# The benchmark harness (`make bench`): sockrelay's echo against a bare tokio echo, and sockrelay's
# /ws bridge against websocat and websockify bridging to the same bare echo, and against a bare
# tokio TCP forwarder (the floor: the practical limit for a bridge); bulk again with each bridge
# sharing its CPU with a copying echo (a one-box install); sockrelay's UDP bridge against
# websocat's `udp:` to the same bare UDP echo; then sockrelay's memory with many idle bridges
# and with 50 busy ones. Prints a table with ratios and writes a report and an SVG plot. See
# BENCHMARKS.md.
#
#   scripts/bench.sh                 full run (about 6-10 minutes)
#   scripts/bench.sh --quick         smoke run (about 1-2 minutes)
#   scripts/bench.sh --help          every option
#
# Everything runs on 127.0.0.1. Servers get their own process group and are stopped at exit.
set -euo pipefail
CALLER_PWD=$PWD
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOCKRELAY_ROOT"
ROOT=$PWD

ROUNDS=5
DURATION=2
WARMUP=0.5
IDLE=10000
PER_SOURCE=20000
OUT=target/bench
PUBLISH=0
ATTEMPTS=2
PEERS=1
PIN=1
ONLY=all
SOCKRELAY_BIN=
BASELINE_BIN=
LABEL=
CC=
WORKLOADS="64B_x_50:64:50:1 64B_x_1:64:1:1 64KiB_x_8:64K:8:4 64B_x_50_pipelined:64:50:16"
SHARED_WORKLOADS="64KiB_x_8_shared_CPU:64K:8:4"
UDP_WORKLOADS="udp_64B_x_50:64:50:8 udp_1400B_x_50:1400:50:8"

usage() {
    cat <<EOF
usage: scripts/bench.sh [options]
  --quick            1 round of 1.5 s per cell, 1,000 idle bridges (a smoke run)
  --rounds N         rounds per cell, alternating the systems' order (default $ROUNDS)
  --duration S       measured seconds per cell (default $DURATION)
  --warmup S         warm-up seconds before each measurement (default $WARMUP)
  --attempts N       measure a cell up to N times while other processes take more than 15% of
                     the pinned server CPU, keeping the least disturbed (default $ATTEMPTS)
  --idle N           idle bridges for the memory run (default $IDLE; the open-file limits are
                     raised where the user may, and N is capped by what they allow)
  --per-source N     idle bridges per client source address and per target (default $PER_SOURCE):
                     past it, clients connect from 127.0.0.2, 127.0.0.3, ... and the relay to
                     one more echo, since one address pair has one range of ephemeral ports
  --only WHAT        all | echo | ws | shared | udp | memory (default all)
  --workloads LIST   NAME:SIZE:CONNS:INFLIGHT ... (default "$WORKLOADS")
  --shared-workloads LIST
                     the same for the bridges sharing their CPU with a copying echo target
                     (default "$SHARED_WORKLOADS")
  --udp-workloads LIST
                     the same for the bridges to a UDP echo, one message per datagram
                     (default "$UDP_WORKLOADS")
  --sockrelay BIN    measure this sockrelay binary instead of building target/release/sockrelay
  --baseline BIN     also measure this (older) sockrelay binary, as "before", in the same run
  --label TEXT       a note for the report title (e.g. "before")
  --cc ALGO          run with this TCP congestion control as the system default (e.g. cubic,
                     bbr), for every system and the load generator alike; needs root, and the
                     default is put back at exit. Without it the machine's default is used
                     (the report names it: with bbr, TCP paces on loopback too, see BENCHMARKS.md)
  --no-peers         skip websocat and websockify (and do not install them)
  --no-pin           do not pin servers and load generator to separate CPUs
  --out DIR          where runs are written (default $OUT; each run in DIR/run-TIMESTAMP)
  --publish          copy the report and plot to bench/results.md and bench/results.svg
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) ROUNDS=1; DURATION=1.5; WARMUP=0.5; IDLE=1000; ATTEMPTS=1 ;;
        --attempts) ATTEMPTS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --per-source) PER_SOURCE=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --workloads) WORKLOADS=$2; shift ;;
        --shared-workloads) SHARED_WORKLOADS=$2; shift ;;
        --udp-workloads) UDP_WORKLOADS=$2; shift ;;
        --sockrelay) SOCKRELAY_BIN=$(cd "$CALLER_PWD" && realpath "$2"); shift ;;
        --baseline) BASELINE_BIN=$(cd "$CALLER_PWD" && realpath "$2"); shift ;;
        --label) LABEL=$2; shift ;;
        --cc) CC=$2; shift ;;
        --no-peers) PEERS=0 ;;
        --no-pin) PIN=0 ;;
        --out) OUT=$(cd "$CALLER_PWD" && realpath -m "$2"); shift ;;
        --publish) PUBLISH=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $ONLY in
    all|echo|ws|shared|udp|memory) ;;
    *) echo "bench.sh: --only takes all, echo, ws, shared, udp or memory, not $ONLY" >&2; exit 2 ;;
esac

# want PART: whether this run measures PART (echo, ws, shared, udp, memory).
want() { [[ $ONLY == all || $ONLY == "$1" ]]; }

log() { printf '== %s\n' "$*" >&2; }

RUN="$OUT/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
ln -sfn "$RUN" "$OUT/latest"
RESULTS="$RUN/results.jsonl"
: >"$RESULTS"
log "results in $RUN"

# ---------------------------------------------------------------- build
log "building (release)"
if [[ -z $SOCKRELAY_BIN ]]; then
    cargo build --release -q -p sockrelay -p sockrelay-bench
    SOCKRELAY_BIN="$ROOT/target/release/sockrelay"
else
    cargo build --release -q -p sockrelay-bench
fi
LOADGEN="$ROOT/target/release/loadgen"
BARE="$ROOT/target/release/bare-echo"
PROXY="$ROOT/target/release/bare-proxy"
REPORT="$ROOT/target/release/bench-report"

# ---------------------------------------------------------------- peers
WEBSOCAT=
WEBSOCKIFY=
if [[ $PEERS == 1 && $ONLY != echo && $ONLY != memory ]]; then
    WEBSOCAT=$(command -v websocat || true)
    if [[ -z $WEBSOCAT ]]; then
        log "installing websocat from crates.io (several minutes on 2 cores; log: /tmp/websocat-install.log)"
        if cargo install --locked websocat >/tmp/websocat-install.log 2>&1; then
            WEBSOCAT="$HOME/.cargo/bin/websocat"
        else
            log "websocat did not install (see /tmp/websocat-install.log): measuring without it"
        fi
    fi
    WEBSOCKIFY=$(command -v websockify || true)
    VENV="$ROOT/target/bench-venv"
    if [[ -z $WEBSOCKIFY && -x $VENV/bin/websockify ]]; then
        WEBSOCKIFY="$VENV/bin/websockify"
    fi
    if [[ -z $WEBSOCKIFY ]]; then
        log "installing websockify from PyPI into $VENV (log: /tmp/websockify-install.log)"
        if python3 -m venv "$VENV" >/tmp/websockify-install.log 2>&1 &&
            "$VENV/bin/pip" install -q websockify >>/tmp/websockify-install.log 2>&1; then
            WEBSOCKIFY="$VENV/bin/websockify"
        else
            log "websockify did not install (see /tmp/websockify-install.log): measuring without it"
        fi
    fi
fi

# ---------------------------------------------------------------- limits and pinning
# Each bridge costs the relay two descriptors (client and target) and the load generator one.
# Past the hard limit, raising it (and the kernel's fs.nr_open ceiling over it) needs root or
# CAP_SYS_RESOURCE: tried, and the run goes on with what is allowed.
WANT_FDS=$((2 * IDLE + 100))
if want memory && (($(ulimit -Hn) < WANT_FDS)); then
    if (($(cat /proc/sys/fs/nr_open 2>/dev/null || echo 0) < WANT_FDS)); then
        sysctl -qw "fs.nr_open=$WANT_FDS" 2>/dev/null ||
            log "fs.nr_open is $(cat /proc/sys/fs/nr_open 2>/dev/null) and cannot be raised here"
    fi
    ulimit -Hn "$WANT_FDS" 2>/dev/null ||
        log "the open-file hard limit is $(ulimit -Hn) and cannot be raised here (no CAP_SYS_RESOURCE)"
fi
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MAX_IDLE=$(((NOFILE - 100) / 2))
if ((IDLE > MAX_IDLE)); then
    log "the open-file hard limit is $NOFILE: $IDLE idle bridges need $((2 * IDLE + 100)); measuring $MAX_IDLE"
    IDLE=$MAX_IDLE
fi

CPUS=$(nproc)
# CPU 1 runs the system under test alone; every other CPU runs the load generator and the bare
# echo that the bridges connect to (the environment, the same for every bridge). The loadgen
# reports how busy those CPUs were: near 100%, that side, not the system measured, set the
# throughput (on 2 CPUs it shares one CPU, and a fast system measures its limit).
if [[ $PIN == 1 && $CPUS -ge 2 ]]; then
    LOAD_CPUS=$(seq -s, 0 $((CPUS - 1)) | sed -E 's/(^|,)1(,|$)/\1\2/; s/,,/,/; s/^,|,$//g')
    SUT=(taskset -c 1)
    ENV=(taskset -c "$LOAD_CPUS")
    WATCH=(--sut-cpu 1 --load-cpu "$LOAD_CPUS" --attempts "$ATTEMPTS")
    PINNING="system under test on CPU 1; load generator and bare echo target (bulk spliced) on CPU $LOAD_CPUS"
else
    SUT=()
    ENV=()
    WATCH=()
    PINNING="not pinned"
fi

# ---------------------------------------------------------------- servers
PIDS=()
CC_RESTORE=
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ -n $CC_RESTORE ]]; then
        echo "$CC_RESTORE" >"$CC_FILE" || log "could not put back TCP congestion control $CC_RESTORE"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The TCP congestion control every socket of the run gets (the system's default). With one that
# paces (bbr), TCP holds back each socket's bursts on loopback too and sends them from timers.
CC_FILE=/proc/sys/net/ipv4/tcp_congestion_control
CC_BEFORE=$(cat "$CC_FILE" 2>/dev/null || echo unknown)
if [[ -n $CC && $CC != "$CC_BEFORE" ]]; then
    if ! grep -qw -- "$CC" /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null; then
        modprobe "tcp_$CC" 2>/dev/null || true
    fi
    if ! echo "$CC" 2>/dev/null >"$CC_FILE"; then
        echo "bench.sh: cannot make $CC the TCP congestion control (it needs root and the algorithm; available: $(cat /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null))" >&2
        exit 2
    fi
    CC_RESTORE=$CC_BEFORE
    log "TCP congestion control: $CC for this run ($CC_BEFORE is put back at exit)"
fi
CONGESTION=$(cat "$CC_FILE" 2>/dev/null || echo unknown)

# start NAME CMD...: in its own process group (websockify forks a process per connection).
start() {
    local name=$1
    shift
    setsid "$@" >"$RUN/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

stop() {
    kill -- "-$1" 2>/dev/null || kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}


read -r P_BARE P_BARE2 P_HTTP P_ECHO P_ACK P_WSC P_WSF P_HTTP2 P_ECHO2 P_ACK2 P_HTTP3 P_ECHO3 P_ACK3 P_PROXY \
    P_SHARED P_WSS P_PROXYS P_WSU P_UDP < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(18)] + [socket.socket(type=socket.SOCK_DGRAM)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

# The bridges' target shares CPU 0 with the load generator: it splices bulk data (no copies
# through user space) so that this CPU runs out as late as possible (BENCHMARKS.md, "Method").
SPLICE=()
[[ $(uname -s) == Linux ]] && SPLICE=(--splice)
start bare-echo "${ENV[@]}" "$BARE" "${SPLICE[@]}" "127.0.0.1:$P_BARE"
BARE_PID=$LAST_PID
wait_port "$P_BARE" "logs in $RUN"

# Idle bridges past PER_SOURCE go to more echoes, PER_SOURCE each: the relay's connections to
# one target address share one range of ephemeral ports.
IDLE_TARGETS=("127.0.0.1:$P_BARE")
if want memory; then
    for ((k = 1; k * PER_SOURCE < IDLE; k++)); do
        P_MORE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        start "bare-echo-$k" "${ENV[@]}" "$BARE" "127.0.0.1:$P_MORE"
        wait_port "$P_MORE" "logs in $RUN"
        IDLE_TARGETS+=("127.0.0.1:$P_MORE")
    done
fi
ALLOW_IDLE=()
for t in "${IDLE_TARGETS[@]:1}"; do ALLOW_IDLE+=(--allow "$t"); done

# start_relay HTTP ECHO ACK [BIN]: a sockrelay that may bridge to the bare echoes, the copying
# echo that shares its CPU, and the bare UDP echo.
start_relay() {
    local bin=${4:-$SOCKRELAY_BIN}
    start "sockrelay-$1" "${SUT[@]}" "$bin" --http "127.0.0.1:$1" --echo "127.0.0.1:$2" \
        --ack "127.0.0.1:$3" --allow "127.0.0.1:$P_BARE" --allow "127.0.0.1:$P_SHARED" \
        "${ALLOW_IDLE[@]}" --allow "udp:127.0.0.1:$P_UDP" --max-conns $((IDLE + 100)) \
        --idle-timeout 3600
    wait_port "$1" "logs in $RUN"
}

SYSTEMS=()
declare -A TARGET_OF MODE_OF PID_OF
if [[ $ONLY != memory ]]; then
    start_relay "$P_HTTP" "$P_ECHO" "$P_ACK"
    RELAY_PID=$LAST_PID
    if [[ -n $BASELINE_BIN ]] && { want echo || want ws; }; then
        start_relay "$P_HTTP3" "$P_ECHO3" "$P_ACK3" "$BASELINE_BIN"
        BASE_PID=$LAST_PID
    fi
    if want echo; then
        # The bare echo runs where the system under test runs when it is the one measured.
        start bare-echo-sut "${SUT[@]}" "$BARE" "127.0.0.1:$P_BARE2"
        SYSTEMS+=(bare-echo sockrelay-echo)
        TARGET_OF[bare-echo]="127.0.0.1:$P_BARE2" MODE_OF[bare-echo]=tcp PID_OF[bare-echo]=$LAST_PID
        TARGET_OF[sockrelay-echo]="127.0.0.1:$P_ECHO" MODE_OF[sockrelay-echo]=tcp PID_OF[sockrelay-echo]=$RELAY_PID
        wait_port "$P_BARE2" "logs in $RUN"
        if [[ -n $BASELINE_BIN ]]; then
            SYSTEMS+=(sockrelay-echo-before)
            TARGET_OF[sockrelay-echo-before]="127.0.0.1:$P_ECHO3"
            MODE_OF[sockrelay-echo-before]=tcp PID_OF[sockrelay-echo-before]=$BASE_PID
        fi
    fi
    if want ws; then
        # The floor: the same two sockets and the same reads and writes as a bridge, no framing.
        start bare-proxy "${SUT[@]}" "$PROXY" "127.0.0.1:$P_PROXY" "127.0.0.1:$P_BARE"
        SYSTEMS+=(bare-proxy)
        TARGET_OF[bare-proxy]="127.0.0.1:$P_PROXY" MODE_OF[bare-proxy]=tcp PID_OF[bare-proxy]=$LAST_PID
        wait_port "$P_PROXY" "logs in $RUN"
        SYSTEMS+=(sockrelay-ws)
        TARGET_OF[sockrelay-ws]="ws://127.0.0.1:$P_HTTP/ws?target=127.0.0.1:$P_BARE"
        MODE_OF[sockrelay-ws]=ws PID_OF[sockrelay-ws]=$RELAY_PID
        if [[ -n $BASELINE_BIN ]]; then
            SYSTEMS+=(sockrelay-ws-before)
            TARGET_OF[sockrelay-ws-before]="ws://127.0.0.1:$P_HTTP3/ws?target=127.0.0.1:$P_BARE"
            MODE_OF[sockrelay-ws-before]=ws PID_OF[sockrelay-ws-before]=$BASE_PID
        fi
        if [[ -n $WEBSOCAT ]]; then
            start websocat "${SUT[@]}" "$WEBSOCAT" --binary -q "ws-l:127.0.0.1:$P_WSC" "tcp:127.0.0.1:$P_BARE"
            SYSTEMS+=(websocat)
            TARGET_OF[websocat]="ws://127.0.0.1:$P_WSC/" MODE_OF[websocat]=ws PID_OF[websocat]=$LAST_PID
            wait_port "$P_WSC" "logs in $RUN"
        fi
        if [[ -n $WEBSOCKIFY ]]; then
            start websockify "${SUT[@]}" "$WEBSOCKIFY" "127.0.0.1:$P_WSF" "127.0.0.1:$P_BARE"
            SYSTEMS+=(websockify)
            TARGET_OF[websockify]="ws://127.0.0.1:$P_WSF/" MODE_OF[websockify]=ws PID_OF[websockify]=$LAST_PID
            wait_port "$P_WSF" "logs in $RUN"
        fi
    fi
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0

# measure WORKLOADS SYSTEM...: each workload of the list for ROUNDS rounds, each system's target,
# mode and server process from TARGET_OF, MODE_OF and PID_OF, and the array LOAD_EXTRA passed
# to every run of the load generator.
LOAD_EXTRA=()
measure() {
    local list=$1 w name size conns inflight r k sys
    shift
    local systems=("$@") wl
    local n=${#systems[@]}
    read -ra wl <<<"$list"
    log "systems: ${systems[*]}; $ROUNDS round(s) x ${#wl[@]} workloads x ${DURATION}s; $PINNING"
    for w in "${wl[@]}"; do
        IFS=: read -r name size conns inflight <<<"$w"
        name=${name//_/ }
        for ((r = 1; r <= ROUNDS; r++)); do
            for ((k = 0; k < n; k++)); do
                # Rotate the order each round so no system always runs first or last.
                sys=${systems[$(((k + r - 1) % n))]}
                if ! "${ENV[@]}" "$LOADGEN" "${MODE_OF[$sys]}" "${TARGET_OF[$sys]}" \
                    --conns "$conns" --size "$size" --inflight "$inflight" \
                    --duration "$DURATION" --warmup "$WARMUP" --pid "${PID_OF[$sys]}" "${WATCH[@]}" \
                    "${LOAD_EXTRA[@]}" --system "$sys" --workload "$name" --round "$r" \
                    --json "$RESULTS" 2>>"$RUN/loadgen-errors.log" | sed "s/^/[$name r$r] /"; then
                    log "$sys failed on $name (see $RUN/loadgen-errors.log)"
                    FAILED=1
                fi
            done
        done
    done
}

# ---------------------------------------------------------------- throughput and latency
if ((${#SYSTEMS[@]} > 0)); then
    measure "$WORKLOADS" "${SYSTEMS[@]}"
fi

# start_websocat LOG PORT TARGET MODE: websocat on the system under test's CPU, bridging
# ws://127.0.0.1:PORT/ to TARGET (tcp:/udp:), measured as "websocat" in MODE; LAST_PID is its.
start_websocat() {
    local log=$1 port=$2 target=$3 mode=$4
    start "$log" "${SUT[@]}" "$WEBSOCAT" --binary -q "ws-l:127.0.0.1:$port" "$target"
    TARGET_OF[websocat]="ws://127.0.0.1:$port/" MODE_OF[websocat]=$mode PID_OF[websocat]=$LAST_PID
    wait_port "$port" "logs in $RUN"
}

# ---------------------------------------------------------------- bulk on a shared CPU
# As on a one-box install: the bridge and its target (a plain copying echo, no splicing) take
# turns on one CPU (the system under test's), the load generator runs on the other. The target's
# CPU is reported apart (`--target-pid`) and is not counted as other processes' load.
if want shared; then
    start bare-echo-shared "${SUT[@]}" "$BARE" "127.0.0.1:$P_SHARED"
    SHARED_PID=$LAST_PID
    wait_port "$P_SHARED" "logs in $RUN"
    # The floor again, beside the same target.
    start bare-proxy-shared "${SUT[@]}" "$PROXY" "127.0.0.1:$P_PROXYS" "127.0.0.1:$P_SHARED"
    PROXYS_PID=$LAST_PID
    wait_port "$P_PROXYS" "logs in $RUN"
    SHARED_SYSTEMS=(bare-proxy sockrelay-ws)
    TARGET_OF[bare-proxy]="127.0.0.1:$P_PROXYS" MODE_OF[bare-proxy]=tcp PID_OF[bare-proxy]=$PROXYS_PID
    TARGET_OF[sockrelay-ws]="ws://127.0.0.1:$P_HTTP/ws?target=127.0.0.1:$P_SHARED"
    MODE_OF[sockrelay-ws]=ws PID_OF[sockrelay-ws]=$RELAY_PID
    if [[ -n $WEBSOCAT ]]; then
        start_websocat websocat-shared "$P_WSS" "tcp:127.0.0.1:$P_SHARED" ws
        WSS_PID=$LAST_PID
        SHARED_SYSTEMS+=(websocat)
    fi
    LOAD_EXTRA=(--target-pid "$SHARED_PID")
    measure "$SHARED_WORKLOADS" "${SHARED_SYSTEMS[@]}"
    LOAD_EXTRA=()
    [[ -n ${WSS_PID:-} ]] && stop "$WSS_PID"
    stop "$PROXYS_PID"
    stop "$SHARED_PID"
fi

# ---------------------------------------------------------------- UDP
# The bridges to one bare UDP echo (beside the load generator, as the TCP bridges' echo is):
# one message one datagram each way. Lost datagrams are counted, not waited for (loadgen udp).
if want udp; then
    start bare-udp-echo "${ENV[@]}" "$BARE" --udp "127.0.0.1:$P_UDP"
    UDP_PID=$LAST_PID
    for _ in $(seq 100); do
        grep -q listening "$RUN/bare-udp-echo.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q listening "$RUN/bare-udp-echo.log" || die "the UDP echo did not start (see $RUN/bare-udp-echo.log)"
    UDP_SYSTEMS=(sockrelay-ws)
    TARGET_OF[sockrelay-ws]="ws://127.0.0.1:$P_HTTP/ws?target=udp:127.0.0.1:$P_UDP"
    MODE_OF[sockrelay-ws]=udp PID_OF[sockrelay-ws]=$RELAY_PID
    if [[ -n $WEBSOCAT ]]; then
        start_websocat websocat-udp "$P_WSU" "udp:127.0.0.1:$P_UDP" udp
        WSU_PID=$LAST_PID
        UDP_SYSTEMS+=(websocat)
    fi
    measure "$UDP_WORKLOADS" "${UDP_SYSTEMS[@]}"
    [[ -n ${WSU_PID:-} ]] && stop "$WSU_PID"
    stop "$UDP_PID"
fi

# ---------------------------------------------------------------- memory
# memory SYSTEM BIN: idle and busy bridges, each on a fresh relay (memory freed by earlier runs
# would be reused and hide the cost).
memory() {
    local sys=$1 bin=$2
    start_relay "$P_HTTP2" "$P_ECHO2" "$P_ACK2" "$bin"
    MEM_PID=$LAST_PID
    sleep 0.5
    log "memory ($sys): $IDLE idle bridges"
    local urls=()
    for t in "${IDLE_TARGETS[@]}"; do urls+=("ws://127.0.0.1:$P_HTTP2/ws?target=$t"); done
    "${ENV[@]}" "$LOADGEN" idle "${urls[@]}" --per-source "$PER_SOURCE" \
        --conns "$IDLE" --pid "$MEM_PID" --system "$sys" --workload "$IDLE idle" \
        --json "$RESULTS" 2>>"$RUN/loadgen-errors.log" || { log "idle run failed"; FAILED=1; }
    stop "$MEM_PID"
    start_relay "$P_HTTP2" "$P_ECHO2" "$P_ACK2" "$bin"
    MEM_PID=$LAST_PID
    sleep 0.5
    log "memory ($sys): 50 busy bridges"
    "${ENV[@]}" "$LOADGEN" ws "ws://127.0.0.1:$P_HTTP2/ws?target=127.0.0.1:$P_BARE" \
        --conns 50 --size 64 --duration "$DURATION" --warmup "$WARMUP" --pid "$MEM_PID" \
        --system "$sys" --workload "busy RSS" --json "$RESULTS" \
        2>>"$RUN/loadgen-errors.log" || { log "busy run failed"; FAILED=1; }
    stop "$MEM_PID"
}

if want memory; then
    [[ -n ${RELAY_PID:-} ]] && stop "$RELAY_PID"
    [[ -n ${BASE_PID:-} ]] && stop "$BASE_PID"
    [[ -n $BASELINE_BIN ]] && memory sockrelay-ws-before "$BASELINE_BIN"
    memory sockrelay-ws "$SOCKRELAY_BIN"
fi

# ---------------------------------------------------------------- report
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
TITLE="$(date -u +%Y-%m-%dT%H:%MZ), ${MODEL:-unknown CPU}, $CPUS CPUs, Linux $(uname -r), TCP congestion control $CONGESTION; $PINNING;"
TITLE+=" $ROUNDS round(s) of ${DURATION}s (+${WARMUP}s warm-up), medians; load average $LOAD_START at start, $LOAD_END at end"
[[ -n $LABEL ]] && TITLE="$LABEL: $TITLE"
echo
"$REPORT" "$RESULTS" --md "$RUN/report.md" --svg "$RUN/plot.svg" --title "$TITLE"
if [[ $PUBLISH == 1 ]]; then
    cp "$RUN/report.md" bench/results.md
    cp "$RUN/plot.svg" bench/results.svg
    log "published to bench/results.md and bench/results.svg"
fi
exit "$FAILED"
