#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dynblock-cost.sh - what the anomaly detectors (--dynblock) cost per query,
# beside the cost of a whole query.
#
#   bench/dynblock-cost.sh [--cpu N] [--rounds N] [--daemon] [--out DIR]
#
# 1. bench/dynblock_cost.c, built against BUILD_DIR's internal library,
#    drives the three hooks as lib/proxy.c does (10,000 clients, the
#    evaluation's benign mix plus 2% tunnel-like queries, 30% through the
#    miss hook, every answer with its query's slot) for three modes:
#      none      the harness alone (its cost is subtracted below)
#      defaults  no --dynblock: subdomains and tunnel in log mode
#      all       every metric: qps, nxdomain, servfail, bytes, qtype:ANY,
#                subdomains, tunnel
#    ns per query: pinned to one CPU (taskset -c N, default the last one),
#    each run of the binary takes the minimum over 100 timed passes of
#    50,000 queries after one warming pass; the binary runs --rounds times
#    (default 3) per mode, interleaved, and the least is kept: on a shared
#    machine other jobs only ever add time. Instructions per query: callgrind
#    at 50,000 and 150,000 queries in the timed pass (after the same warming
#    pass of 200,000), the difference over the 100,000 queries between them,
#    so start-up (the public suffix list, the tables, warming) cancels out.
# 2. --daemon: the whole query, for comparison: bench/instructions.sh (the
#    release dotproxyd under callgrind, dnsperf, the rig's DoT upstream) once
#    as is (defaults) and once with every rule (thresholds far above the
#    bench's load, so nothing is blocked and every hook runs in full):
#    instructions per cache hit and per forwarded query. About 3 minutes.
#
# Environment: BUILD_DIR (default build in the source tree, any optimised
# meson build of it), and for --daemon what bench/instructions.sh reads.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build}
CPU=$(($(nproc) - 1))
ROUNDS=3
DAEMON=0
OUT=""

die() { echo "dynblock-cost.sh: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
    --cpu) [[ $# -ge 2 ]] || die "--cpu needs a value"; CPU=$2; shift 2 ;;
    --rounds) [[ $# -ge 2 ]] || die "--rounds needs a value"; ROUNDS=$2; shift 2 ;;
    --daemon) DAEMON=1; shift ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    -h | --help) sed -n '3,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $CPU =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "--cpu and --rounds take numbers"
for c in cc taskset valgrind ninja; do command -v "$c" >/dev/null || die "$c not installed"; done
[[ -f $BUILD_DIR/build.ninja ]] || die "no meson build in $BUILD_DIR (BUILD_DIR)"
[[ -n $OUT ]] || OUT=/tmp/dotbench/dynblock-cost-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"

ninja -C "$BUILD_DIR" lib/libdotproxy_internal.a >/dev/null || die "build failed"
# The internal library holds the HTTPS fetcher too (lib/fetch.c) when the
# build found libcurl: link it (unused here, so the linker may drop it).
BIN=$OUT/dynblock_cost
cc -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -I"$SRC/lib" -I"$SRC/include" \
    -I"$BUILD_DIR/include" "$SRC/bench/dynblock_cost.c" "$BUILD_DIR/lib/libdotproxy_internal.a" \
    -lgnutls $(pkg-config --libs libcurl 2>/dev/null) -lm -o "$BIN" || die "cannot build $BIN"

MODES=(none defaults all)
declare -A NS IR
for mode in "${MODES[@]}"; do NS[$mode]=""; done
for ((r = 1; r <= ROUNDS; r++)); do
    for mode in "${MODES[@]}"; do
        line=$(taskset -c "$CPU" "$BIN" 50000 10000 30 1 "$mode" 100) || die "$mode: bench failed"
        echo "$line" >>"$OUT/ns.log"
        v=$(sed -n 's/.*: \([0-9.]*\) CPU ns per query.*/\1/p' <<<"$line")
        [[ -n $v ]] || die "$mode: cannot read: $line"
        if [[ -z ${NS[$mode]} ]] || awk -v a="$v" -v b="${NS[$mode]}" 'BEGIN{exit !(a < b)}'; then
            NS[$mode]=$v
        fi
    done
done

ir_of() {   # ir_of MODE QUERIES : total Ir of one warming and one timed pass
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$1-$2.callgrind" \
        "$BIN" "$2" 10000 30 1 "$1" 1 >/dev/null 2>"$OUT/$1-$2.err" || die "$1: callgrind failed"
    awk '/^(summary|totals):/{print $2; exit}' "$OUT/$1-$2.callgrind"
}
for mode in "${MODES[@]}"; do
    a=$(ir_of "$mode" 50000)
    b=$(ir_of "$mode" 150000)
    IR[$mode]=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.0f", (b - a) / 100000}')
done

echo "== dynblock hooks per query ($(date '+%F %T'); $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null); CPU $CPU; load $(cut -d' ' -f1-3 /proc/loadavg); run dir $OUT)"
printf '%-9s %14s %14s %16s %16s\n' mode "ns (min)" "ns - harness" "instructions" "instr - harness"
for mode in "${MODES[@]}"; do
    printf '%-9s %14s %14s %16s %16s\n' "$mode" "${NS[$mode]}" \
        "$(awk -v a="${NS[$mode]}" -v b="${NS[none]}" 'BEGIN{printf "%.1f", a - b}')" \
        "${IR[$mode]}" "$((IR[$mode] - IR[none]))"
done

if ((DAEMON)); then
    EVERY="--dynblock qps>1000000 --dynblock nxdomain>1000000 --dynblock servfail>1000000"
    EVERY+=" --dynblock bytes>1000000000 --dynblock qtype:ANY>1000000"
    EVERY+=" --dynblock subdomains>1000000 --dynblock tunnel>0.99"
    for cfg in defaults all; do
        extra=""
        [[ $cfg == all ]] && extra=$EVERY
        DOTPROXYD_EXTRA_ARGS=$extra "$HERE/instructions.sh" --out "$OUT/daemon-$cfg" \
            >"$OUT/daemon-$cfg.txt" 2>"$OUT/daemon-$cfg.err" || die "instructions.sh ($cfg) failed: $(tail -3 "$OUT/daemon-$cfg.err")"
    done
    echo "== dotproxyd, instructions per whole query (bench/instructions.sh, callgrind)"
    printf '%-9s %12s %12s\n' rules cached uncached
    for cfg in defaults all; do
        printf '%-9s %12s %12s\n' "$cfg" \
            "$(awk '$1 == "cached" {print $NF; exit}' "$OUT/daemon-$cfg.txt")" \
            "$(awk '$1 == "uncached" {print $NF; exit}' "$OUT/daemon-$cfg.txt")"
    done
fi
