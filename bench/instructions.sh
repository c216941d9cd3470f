#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# instructions.sh - CPU instructions dotproxyd executes per query, counted by
# valgrind --tool=callgrind: a figure that other jobs on a busy machine cannot
# disturb (unlike qps or CPU time).
#
#   bench/instructions.sh [--out DIR] [--clients N] [--outstanding N] [--no-netns]
#
# Against the rig's DoT upstream ($SHARED_BENCH/upstream.sh: 10,000 names
# hN.bench.test), the release daemon runs under callgrind several times:
#
#   uncached    --cache-size 0; dnsperf -n 1 over the 10,000 names (each once)
#   cached      cache on; dnsperf over the first 1,000 names: one pass (-n 1) fills
#               the cache, then 5 more passes (-n 5, 5,000 queries) are all hits
#
# and each measured run has a baseline run that does everything except the
# measured queries: start, one probe query (dig h1.bench.test, which makes the
# upstream TLS handshake happen in both), the cache-filling pass for "cached",
# the same idle wall time as the measured pass (timers tick in both), SIGTERM.
#
#   instructions per query = (Ir measured - Ir baseline) / queries answered
#
# "uncached" is the forwarding path (parse, upstream TLS write and read, answer);
# "cached" is the cost of a cache hit.  Then the 10 functions with the most self
# cost in the uncached queries (measured minus baseline, per function).
#
# Needs valgrind, callgrind_annotate, dnsperf, dig, unbound, certtool; run as root
# so that it can re-execute itself in a private network namespace (unshare -n),
# or --no-netns to use 127.0.0.1 ports 21100-21201 of the host.
# Environment: SHARED_BENCH (default: the rig in the repository,
# SRC/bench/rig), BUILD_DIR (default build-bench in the source tree),
# DOTPROXYD_CACHE_SIZE (default 10000), DOTPROXYD_EXTRA_ARGS (more daemon
# options, split on white space: bench/dynblock-cost.sh passes --dynblock rules).
# Everything started here is stopped by its PID on exit.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
SRC=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$SRC/bench/rig}
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
UPSTREAM_SH=$SHARED_BENCH/upstream.sh
CACHE_SIZE=${DOTPROXYD_CACHE_SIZE:-10000}
read -r -a EXTRA_ARGS <<<"${DOTPROXYD_EXTRA_ARGS:-}"
ORIG_ARGS=("$@")

OUT=""
CLIENTS=4
OUTSTANDING=50
USE_NETNS=1
UP_BASE=21100
LISTEN_PORT=21200
CACHED_NAMES=1000
HIT_PASSES=5

die() { echo "instructions.sh: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --clients) [[ $# -ge 2 ]] || die "--clients needs a value"; CLIENTS=$2; shift 2 ;;
    --outstanding) [[ $# -ge 2 ]] || die "--outstanding needs a value"; OUTSTANDING=$2; shift 2 ;;
    --no-netns) USE_NETNS=0; shift ;;
    -h | --help) sed -n '3,/^set -uo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $CLIENTS =~ ^[0-9]+$ && $OUTSTANDING =~ ^[0-9]+$ ]] || die "--clients and --outstanding take numbers"

# ---- a private network namespace, and the release daemon
# shellcheck source=bench/rig.sh
source "$HERE/rig.sh"
NETNS=no
((USE_NETNS)) && rig_netns INSTR_IN_NETNS
for c in valgrind callgrind_annotate dnsperf dig ss awk; do command -v "$c" >/dev/null || die "$c not installed"; done
rig_ports_free "$UP_BASE" $((UP_BASE + 1)) "$LISTEN_PORT"
rig_build_daemon

[[ -n $OUT ]] || OUT=/tmp/dotbench/instr-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }

# ---- processes: the daemon (valgrind runs the tool in the daemon's own PID)
# and the upstream; both stopped by PID on any exit
DAEMON_PID=""
stop_daemon() {   # SIGTERM: dotproxyd stops cleanly and callgrind writes its file
    rig_stop_pid "$DAEMON_PID" 30
    DAEMON_PID=""
}
cleanup() {
    trap - EXIT INT TERM
    stop_daemon
    rig_upstream_stop "$OUT"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

rig_upstream_start "$OUT" "$UP_BASE" "$CACHED_NAMES"
log "run dir $OUT (netns: $NETNS); upstream pid $UP_PID DoT 127.0.0.1:$UP_DOT_PORT; daemon $DOTPROXYD ($("$DOTPROXYD" --version | head -1))"

# start_daemon NAME CACHE_SIZE : under callgrind, waits for the UDP socket and
# one answered probe (which also makes the upstream handshake happen)
start_daemon() {
    local name=$1 cache=$2
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind" \
        "$DOTPROXYD" -l "127.0.0.1@$LISTEN_PORT" -u "127.0.0.1@$UP_DOT_PORT#$TLS_NAME" --ca-file "$CA" \
        --cache-size "$cache" "${EXTRA_ARGS[@]}" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null &
    DAEMON_PID=$!
    for _ in $(seq 300); do
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -5 "$OUT/$name.err" >&2; die "$name: daemon exited"; }
        [[ -n $(ss -Hlun "( sport = :$LISTEN_PORT )" 2>/dev/null) ]] && break
        sleep 0.1
    done
    dig @127.0.0.1 -p "$LISTEN_PORT" h1.bench.test A +time=20 +tries=1 +short 2>/dev/null | grep -q '^198\.' ||
        die "$name: no answer to the probe query"
}

# pass NAME QFILE [PASSES] : dnsperf over QFILE (-n PASSES, default 1);
# sets PASS_DONE PASS_LOST PASS_SECS
pass() {
    local name=$1 qf=$2 n=${3:-1} t0 t1
    t0=$(date +%s.%N)
    timeout -k 2 600 dnsperf -m udp -s 127.0.0.1 -p "$LISTEN_PORT" -d "$qf" -n "$n" \
        -c "$CLIENTS" -q "$OUTSTANDING" -t 10 >"$OUT/$name.dnsperf" 2>&1 || die "$name: dnsperf failed: $(tail -2 "$OUT/$name.dnsperf")"
    t1=$(date +%s.%N)
    PASS_DONE=$(awk '/Queries completed:/{print $3; exit}' "$OUT/$name.dnsperf")
    PASS_LOST=$(awk '/Queries lost:/{print $3; exit}' "$OUT/$name.dnsperf")
    PASS_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')
    [[ -n $PASS_DONE ]] || die "$name: cannot read dnsperf's output"
    log "  $name: $PASS_DONE answered, $PASS_LOST lost in $PASS_SECS s"
}

total_ir() { awk '/^(summary|totals):/{print $2; exit}' "$1"; }

# run_pair LABEL CACHE FILL_QFILE MEASURE_QFILE PASSES : measured run, then its baseline
# (the measured run comes first so that the baseline can idle as long as it took)
declare -A RES
run_pair() {
    local label=$1 cache=$2 fill=$3 qf=$4 passes=$5
    log "$label: measured run (cache-size $cache)"
    start_daemon "$label-measured" "$cache"
    [[ -n $fill ]] && pass "$label-measured-fill" "$fill"
    pass "$label-measured" "$qf" "$passes"
    local done=$PASS_DONE lost=$PASS_LOST secs=$PASS_SECS
    stop_daemon
    log "$label: baseline run (same start, probe$([[ -n $fill ]] && echo ', fill pass'), $secs s idle instead of the measured pass)"
    start_daemon "$label-baseline" "$cache"
    [[ -n $fill ]] && pass "$label-baseline-fill" "$fill"
    sleep "$secs"   # not synchronisation: the same idle time as the measured pass
    stop_daemon
    local m b
    m=$(total_ir "$OUT/$label-measured.callgrind")
    b=$(total_ir "$OUT/$label-baseline.callgrind")
    [[ -n $m && -n $b ]] || die "$label: no callgrind totals"
    RES[$label]="$done $lost $m $b"
}

run_pair uncached 0 "" "$OUT/q-uncached.txt" 1
CACHED_OK=1
if ! "$DOTPROXYD" --cache-size "$CACHE_SIZE" --version >/dev/null 2>&1; then
    CACHED_OK=0
    log "cached: skipped: this dotproxyd rejects --cache-size $CACHE_SIZE"
else
    run_pair cached "$CACHE_SIZE" "$OUT/q-cached.txt" "$OUT/q-cached.txt" "$HIT_PASSES"
fi

# per-function self cost of the measured queries: measured minus baseline
fn_costs() {   # fn_costs FILE -> "Ir<TAB>function" per function (self cost)
    callgrind_annotate --inclusive=no --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9][0-9,]* +\(/ && !/PROGRAM TOTALS/ {
            ir = $1; gsub(",", "", ir)
            line = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", line)
            print ir "\t" line }'
}
fn_costs "$OUT/uncached-measured.callgrind" >"$OUT/uncached-measured.fn"
fn_costs "$OUT/uncached-baseline.callgrind" >"$OUT/uncached-baseline.fn"

{
    echo
    echo "== instructions per query (valgrind $(valgrind --version | sed 's/valgrind-//'), callgrind Ir; $(date '+%F %T'); run dir $OUT)"
    echo "   daemon: $DOTPROXYD ($("$DOTPROXYD" --version | head -1)), source $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet HEAD -- lib cli include 2>/dev/null || echo '+uncommitted')"
    echo "   load: dnsperf UDP -c $CLIENTS -q $OUTSTANDING, -n 1 (uncached; cached: fill) and -n $HIT_PASSES (cached hits); upstream: $SHARED_BENCH/upstream.sh (unbound over DoT, private netns: $NETNS)"
    printf '%-10s %-34s %8s %6s %15s %15s %10s\n' case what queries lost Ir_measured Ir_baseline Ir/query
    for label in uncached cached; do
        [[ -n ${RES[$label]:-} ]] || { [[ $label == cached && $CACHED_OK == 0 ]] && printf '%-10s %s\n' cached "skipped: this dotproxyd has no answer cache (--cache-size $CACHE_SIZE rejected)"; continue; }
        read -r d l m b <<<"${RES[$label]}"
        what="cache off, 10,000 names once"
        [[ $label == cached ]] && what="cache on, 1,000 names x$HIT_PASSES, all hits"
        printf '%-10s %-34s %8s %6s %15s %15s %10s\n' "$label" "$what" "$d" "$l" "$m" "$b" \
            "$(awk -v m="$m" -v b="$b" -v n="$d" 'BEGIN{ if (n > 0) printf "%.0f", (m - b) / n; else print "n/a" }')"
    done
    echo "   Ir/query = (Ir_measured - Ir_baseline) / queries; the baseline run does the same start, probe query,"
    echo "   cache-filling pass (cached) and idle time, without the measured queries.  Whole process (all threads;"
    echo "   GnuTLS, libc and the kernel-call wrappers included; time in the kernel is not counted)."
    echo
    read -r d _ _ _ <<<"${RES[uncached]}"
    echo "== uncached: top 10 functions by self cost of the measured queries (measured - baseline, per function)"
    printf '%10s %7s  %s\n' Ir/query share function
    awk -F'\t' -v n="$d" '
        FNR == NR { base[$2] = $1; next }
        { diff[$2] = $1 - base[$2]; tot += $1 - base[$2] }
        END { for (f in diff) if (diff[f] > 0) printf "%d\t%s\n", diff[f], f }' \
        "$OUT/uncached-baseline.fn" "$OUT/uncached-measured.fn" | sort -t$'\t' -k1,1nr >"$OUT/uncached-diff.fn"
    tot=$(awk -F'\t' '{t += $1} END{print t + 0}' "$OUT/uncached-diff.fn")
    head -n 10 "$OUT/uncached-diff.fn" | awk -F'\t' -v n="$d" -v t="$tot" '{ printf "%10.0f %6.1f%%  %s\n", $1 / n, 100 * $1 / t, $2 }'
    echo "   (callgrind_annotate --inclusive=no on $OUT/uncached-{measured,baseline}.callgrind)"
} | tee "$OUT/summary.txt"
