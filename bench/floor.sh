#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# floor.sh - how far dotproxyd's CPU per query is above the kernel's floor.
#
#   bench/floor.sh [--reps N] [--duration S] [--rows LIST] [--out DIR] [--no-netns]
#
# On loopback, a UDP answer costs its sender the whole delivery: route, skb,
# the receiver's softirq work and its wake-up. No DNS front end can cost less
# per query than a server that does nothing else. bench/udp_floor.c is that
# server (recvmmsg/sendmmsg in batches of 32, one canned A record per query).
# This script measures, under the same dnsperf load as peers.sh (-c 16 -q 200,
# UDP), in interleaved rounds so that machine noise hits all rows alike:
#
#   floor        udp_floor, one thread
#   floor-2t     udp_floor, two threads with SO_REUSEPORT (as -w 2)
#   cached       dotproxyd, cache on, 1,000 names, filled before the round
#   cached-w2    the same with -w 2
#   uncached     dotproxyd --cache-size 0, 10,000 names, every query over DoT
#                to the rig's local upstream (bench/rig/upstream.sh)
#   uncached-w2  the same with -w 2
#
# (--rows picks some, comma list; default all) and prints per row the medians
# of qps and CPU µs per query (utime+stime of all the server's threads /
# answers) over --reps rounds (default 3) of --duration seconds (default 8), and
# each row's CPU and qps against the floor with as many threads (floor for
# one, floor-2t for the -w2 rows): what dotproxyd adds to the kernel's cost.
#
# Needs dnsperf, dig, cc, unbound, certtool; run as root to re-execute itself in
# a private network namespace (unshare -n), or --no-netns to use 127.0.0.1 ports
# 21300-21303 of the host. Environment: SHARED_BENCH (default: the rig
# in the repository, SRC/bench/rig), BUILD_DIR (default build-bench in the
# source tree). Everything started here is stopped by its PID on exit.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
SRC=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$SRC/bench/rig}
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
UPSTREAM_SH=$SHARED_BENCH/upstream.sh
ORIG_ARGS=("$@")

REPS=3
DURATION=8
ROWS=floor,floor-2t,cached,cached-w2,uncached,uncached-w2
OUT=""
USE_NETNS=1
UP_BASE=21300
LISTEN_PORT=21302
FLOOR_PORT=21303

die() { echo "floor.sh: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
    --reps) [[ $# -ge 2 ]] || die "--reps needs a value"; REPS=$2; shift 2 ;;
    --duration) [[ $# -ge 2 ]] || die "--duration needs a value"; DURATION=$2; shift 2 ;;
    --rows) [[ $# -ge 2 ]] || die "--rows needs a value"; ROWS=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --no-netns) USE_NETNS=0; shift ;;
    -h | --help) sed -n '3,/^set -uo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] || die "--reps and --duration take positive numbers"
IFS=, read -r -a ROW_LIST <<<"$ROWS"
for r in "${ROW_LIST[@]}"; do
    case $r in floor | floor-2t | cached | cached-w2 | uncached | uncached-w2) ;; *) die "unknown row '$r' (see --help)" ;; esac
done

# shellcheck source=bench/rig.sh
source "$HERE/rig.sh"
NETNS=no
((USE_NETNS)) && rig_netns FLOOR_IN_NETNS
for c in dnsperf dig cc ss awk; do command -v "$c" >/dev/null || die "$c not installed"; done
rig_ports_free "$UP_BASE" $((UP_BASE + 1)) "$LISTEN_PORT" "$FLOOR_PORT"
rig_build_daemon

[[ -n $OUT ]] || OUT=/tmp/dotbench/floor-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }
cc -O2 -Wall -Wextra -Werror -pthread -o "$OUT/udp_floor" "$HERE/udp_floor.c" || die "cannot build udp_floor"

SERVER_PID=""
stop_server() {
    rig_stop_pid "$SERVER_PID" 5
    SERVER_PID=""
}
cleanup() {
    trap - EXIT INT TERM
    stop_server
    rig_upstream_stop "$OUT"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

rig_upstream_start "$OUT" "$UP_BASE" 1000
log "run dir $OUT (netns: $NETNS); $REPS rounds of $DURATION s; daemon $("$DOTPROXYD" --version | head -1)"

# start ROW : the row's server, answering on its port
start() {
    local row=$1 port=$LISTEN_PORT workers=1
    [[ $row == *-w2 ]] && workers=2
    case $row in
    floor) "$OUT/udp_floor" "$FLOOR_PORT" 1 2>>"$OUT/floor.err" & port=$FLOOR_PORT ;;
    floor-2t) "$OUT/udp_floor" "$FLOOR_PORT" 2 2>>"$OUT/floor.err" & port=$FLOOR_PORT ;;
    cached*) "$DOTPROXYD" -l "127.0.0.1@$LISTEN_PORT" -u "127.0.0.1@$UP_DOT_PORT#$TLS_NAME" \
        --ca-file "$CA" --cache-size 10000 -w "$workers" 2>>"$OUT/dotproxyd.err" & ;;
    uncached*) "$DOTPROXYD" -l "127.0.0.1@$LISTEN_PORT" -u "127.0.0.1@$UP_DOT_PORT#$TLS_NAME" \
        --ca-file "$CA" --cache-size 0 -w "$workers" 2>>"$OUT/dotproxyd.err" & ;;
    esac
    SERVER_PID=$!
    PORT=$port
    for _ in $(seq 100); do
        dig @127.0.0.1 -p "$PORT" h1.bench.test A +time=1 +tries=1 +short 2>/dev/null | grep -q . && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "$row: server exited"
        sleep 0.1
    done
    die "$row: no answer on port $PORT"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure ROW ROUND : one row of one round; appends "row qps cpu_us_q lost" to rows.tsv
measure() {
    local row=$1 round=$2 qf="$OUT/q-uncached.txt"
    [[ $row == uncached* ]] || qf="$OUT/q-cached.txt"
    start "$row"
    # fill (cached) and warm up: every row gets the same 2 s of unmeasured load
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$qf" -c 16 -q 200 -l 2 >/dev/null 2>&1
    local t0 t1 hz
    hz=$(getconf CLK_TCK)
    t0=$(ticks "$SERVER_PID")
    dnsperf -s 127.0.0.1 -p "$PORT" -d "$qf" -c 16 -q 200 -t 2 -l "$DURATION" >"$OUT/$row-$round.dnsperf" 2>&1
    t1=$(ticks "$SERVER_PID")
    stop_server
    awk -v row="$row" -v d=$((t1 - t0)) -v hz="$hz" '
        /Queries completed:/ {n = $3} /Queries lost:/ {lost = $3} /Queries per second:/ {qps = $4}
        END { if (n > 0) printf "%s\t%.0f\t%.2f\t%d\n", row, qps, d / hz * 1e6 / n, lost }' \
        "$OUT/$row-$round.dnsperf" | tee -a "$OUT/rows.tsv" | awk -v r="$round" '{printf "round %s: %s %s qps, %s us/q, %s lost\n", r, $1, $2, $3, $4}' >&2
}

: >"$OUT/rows.tsv"
for round in $(seq "$REPS"); do
    for row in "${ROW_LIST[@]}"; do measure "$row" "$round"; done
done

median() { sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v r="$1" -v c="$2" '$1 == r {print $c}' "$OUT/rows.tsv" | median; }
printf '%-12s %9s %9s %-9s %11s %11s %6s\n' row qps cpu_us/q floor vs_floor_us qps/floor lost
for row in "${ROW_LIST[@]}"; do
    base=floor
    [[ $row == *-w2 || $row == floor-2t ]] && base=floor-2t
    q=$(col "$row" 2) c=$(col "$row" 3) fq=$(col "$base" 2) fc=$(col "$base" 3)
    l=$(awk -F'\t' -v r="$row" '$1 == r {s += $4} END {print s + 0}' "$OUT/rows.tsv")
    awk -v r="$row" -v b="$base" -v q="$q" -v c="$c" -v fq="$fq" -v fc="$fc" -v l="$l" 'BEGIN {
        if (fq == "") { printf "%-12s %9.0f %9.2f %-9s %11s %11s %6d\n", r, q, c, "-", "-", "-", l; exit }
        printf "%-12s %9.0f %9.2f %-9s %+11.2f %11.2f %6d\n", r, q, c, b, c - fc, q / fq, l }'
done | tee "$OUT/summary.txt"
echo "(medians of $REPS rounds of $DURATION s; dnsperf -c 16 -q 200 over UDP; results in $OUT)"
