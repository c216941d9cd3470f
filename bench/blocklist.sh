#!/bin/bash
# SPDX-License-Identifier: MIT
# Blocklists at scale: load time, memory per name, lookup cost, and reloads
# under load, for dotproxyd beside unbound (local-zone always_nxdomain) and
# dnsdist (SuffixMatchNode) loading the same 1,000,000-name list in the same
# run. Prints a table (and keeps the raw logs in $OUT).
#
#   bench/blocklist.sh [BUILD_DIR]      (default: build)
#
# Environment: N1 (default 1000000) and N10 (default 10000000) names;
# QPS (default 20000) for the reload run; SKIP_10M=1 skips the 10M list;
# RELOAD_ONLY=1 runs only the reload part; SKIP_PEERS=1 leaves out unbound
# and dnsdist; PAIRS (default 1) quiet/reload
# pairs of runs, one after the other (on a shared machine one pair says
# little); OUT (default a fresh mktemp directory).
#
# What is measured, and how:
#   start   launch to "listening" (dotproxyd's log line), or to the first
#           answer from a blocked name (unbound, dnsdist: polled with dig)
#   RSS/name (VmRSS with the list - VmRSS of the same server without) / N
#   lookup  bench/blocklist_lookup.c: dp_name_hashes_make + dp_nameset_match
#           over 25% hits (0 to 3 labels below a listed name) and 75% misses
#           (near a listed name, under its top-level domain, under none),
#           back to back and chained, wall time and CPU time of the thread
#           (the machine may be shared), best of 5, pinned to CPU 1; and a
#           dependent random read over a buffer of the set's size
#   reload  dnsperf at QPS for 12 s, twice against the same daemon with the
#           1M list: once quiet, once with SIGHUP every 2 s (each a full
#           rebuild of the list on the list thread and a swap); lost queries
#           and p50/p99 latency of each run from dnsperf -v.
# Only loopback is used; every server started is stopped by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${1:-$ROOT/build}
N1=${N1:-1000000}
N10=${N10:-10000000}
QPS=${QPS:-20000}
OUT=${OUT:-$(mktemp -d /tmp/blocklist-bench.XXXXXX)}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
die() { echo "blocklist.sh: $*" >&2; exit 1; }
for c in dnsperf dig cc awk; do command -v "$c" >/dev/null || die "$c not installed"; done
DOTPROXYD=$BUILD/cli/dotproxyd
[ -x "$DOTPROXYD" ] || die "no $DOTPROXYD (build first)"
mkdir -p "$OUT"

cc -O2 -g -Wall -Wextra -D_GNU_SOURCE -pthread -I"$ROOT/include" -I"$ROOT/lib" -I"$BUILD/include" \
    -o "$OUT/lookup" "$HERE/blocklist_lookup.c" "$ROOT/lib/blocklist.c" "$ROOT/lib/nameset.c" \
    "$ROOT/lib/siphash.c" "$ROOT/lib/error.c" || die "cannot build blocklist_lookup"

# gen N FILE: N distinct names shaped like feed entries, of 2 to 5 labels
# (30% name.tld, 40% three labels, 20% four, 10% five), so that no label
# count can be skipped wholesale by the matcher.
gen() {
    awk -v n="$1" 'BEGIN {
        split("ads track cdn img stat pixel metrics api static login mail shop news promo click beacon tag srv edge node", w, " ")
        split("com net org io info biz ru cn xyz top", t, " ")
        srand(1)
        for (i = 0; i < n; i++) {
            r = rand()
            s = sprintf("%s%d-%s", w[int(rand()*20)+1], i, w[int(rand()*20)+1])
            if (r >= 0.3)
                s = s sprintf(".%s%d", w[int(rand()*20)+1], int(rand()*100000))
            if (r >= 0.7)
                s = w[int(rand()*20)+1] "." s
            if (r >= 0.9)
                s = w[int(rand()*20)+1] int(rand()*100) "." s
            printf "%s.%s\n", s, t[int(rand()*10)+1]
        }
    }' >"$2"
}
[ -s "$OUT/list1m.txt" ] || gen "$N1" "$OUT/list1m.txt"
BLOCKED=$(sed -n '1p' "$OUT/list1m.txt")
if [ "${SKIP_10M:-0}" != 1 ] && [ ! -s "$OUT/list10m.txt" ]; then
    gen "$N10" "$OUT/list10m.txt"
fi

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU milliseconds (user + system) the process has used so far: on a shared
# machine the time to start counts other programs' turns, this does not.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The upstream dotproxyd needs (it answers everything; nothing leaves loopback).
mkdir -p "$OUT/pki" && "$BUILD/tests/support/ts-pki" "$OUT/pki" >/dev/null || die "ts-pki"
"$BUILD/tests/support/ts-dotserver" --cert "$OUT/pki/server.pem" --key "$OUT/pki/server-key.pem" \
    >"$OUT/dotserver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^port' "$OUT/dotserver.log" && break; sleep 0.05; done
UP=$(sed -n 's/^port //p' "$OUT/dotserver.log")
[ -n "$UP" ] || die "ts-dotserver did not start"

# dotproxyd_start NAME ARGS...: start, wait for "listening"; sets DP_PID,
# DP_PORT, DP_MS (launch to listening).
dotproxyd_start() {
    local name=$1 t0
    shift
    DP_PORT=$(free_port)
    t0=$(now_ms)
    "$DOTPROXYD" -l "127.0.0.1@$DP_PORT" -u "127.0.0.1@$UP#dns.test" --ca-file "$OUT/pki/ca.pem" \
        --blocklist-check 0 "$@" >"$OUT/$name.log" 2>&1 &
    DP_PID=$!
    PIDS+=("$DP_PID")
    while ! grep -q 'listening on' "$OUT/$name.log"; do
        kill -0 "$DP_PID" 2>/dev/null || die "$name exited: $(tail -n 3 "$OUT/$name.log")"
        sleep 0.01
    done
    DP_MS=$(($(now_ms) - t0))
}
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

declare -A R
if [ "${RELOAD_ONLY:-0}" != 1 ]; then
dotproxyd_start base
R[dp_base_rss]=$(rss_kb "$DP_PID")
stop_pid "$DP_PID"
for n in 1m 10m; do
    [ -s "$OUT/list$n.txt" ] || continue
    N=$(wc -l <"$OUT/list$n.txt")
    dotproxyd_start "dp$n" --blocklist "$OUT/list$n.txt"
    R[dp_${n}_ms]=$DP_MS
    R[dp_${n}_cpu]=$(cpu_ms "$DP_PID")
    R[dp_${n}_rss]=$(rss_kb "$DP_PID")
    R[dp_${n}_bpn]=$(awk -v a="${R[dp_${n}_rss]}" -v b="${R[dp_base_rss]}" -v n="$N" \
        'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
    R[dp_${n}_blocked]=$(dig -p "$DP_PORT" @127.0.0.1 +tries=1 +time=5 "www.$BLOCKED" A |
        grep -c 'status: NXDOMAIN')
    stop_pid "$DP_PID"
    taskset -c 1 "$OUT/lookup" "$OUT/list$n.txt" 10000000 5 >"$OUT/lookup$n.txt" ||
        die "lookup bench failed"
done
fi

# ---- reload under load (1M list) ----
# 400 unlisted names (answered, then from the cache) and 400 blocked ones.
awk 'NR % 997 == 0 && n < 400 {n++; printf "q%d.example A\nwww.%s A\n", n, $1}' \
    "$OUT/list1m.txt" >"$OUT/queries.txt"
dotproxyd_start reload --blocklist "$OUT/list1m.txt" -w 2
perf_run() { # perf_run NAME [reload]
    dnsperf -s 127.0.0.1 -p "$DP_PORT" -d "$OUT/queries.txt" -l 12 -Q "$QPS" -c 8 -t 5 -v \
        >"$OUT/dnsperf-$1.log" 2>&1 &
    local perf=$!
    PIDS+=("$perf")
    if [ "${2:-}" = reload ]; then
        for _ in 1 2 3 4 5; do sleep 2; kill -HUP "$DP_PID"; done
    fi
    wait "$perf"
}
PAIRS=${PAIRS:-1}
for p in $(seq "$PAIRS"); do
    perf_run "quiet$p"
    perf_run "reload$p" reload
done
RELOADS=$(grep -c 'blocklist .*list1m.txt: .* loaded in' "$OUT/reload.log")
stop_pid "$DP_PID"
# lat FILE [in|out]: the latencies (ms) of a dnsperf -v log; "in": only
# those of the queries answered in the second after each SIGHUP (at 2, 4,
# ... 10 s: a rebuild takes well under 1 s), "out": the others. dnsperf logs
# no times, but it sends at a steady QPS: the n-th answer is at about n/QPS s.
lat() {
    awk -v want="${2:-all}" -v q="$QPS" '/^> / {
        i++; t = i / q; w = (t >= 2 && int(t) % 2 == 0) ? "in" : "out"
        if (want == "all" || want == w) print $NF * 1000 }' "$1"
}
pctl() { # pctl P: the P-th percentile of the numbers on stdin
    sort -n | awk -v p="$1" '{a[NR] = $1} END {i = int(NR * p / 100); if (i < 1) i = 1; printf "%.2f", a[i]}'
}
pct() { lat "$1" | pctl "$2"; }
RUNS=()
for p in $(seq "$PAIRS"); do
    for r in "quiet$p" "reload$p"; do
        RUNS+=("$r")
        R[${r}_lost]=$(sed -nE 's/.*Queries lost:[[:space:]]+([0-9]+).*/\1/p' "$OUT/dnsperf-$r.log")
        R[${r}_done]=$(sed -nE 's/.*Queries completed:[[:space:]]+([0-9]+).*/\1/p' "$OUT/dnsperf-$r.log")
        R[${r}_qps]=$(sed -nE 's/.*Queries per second:[[:space:]]+([0-9.]+).*/\1/p' "$OUT/dnsperf-$r.log")
        R[${r}_p50]=$(pct "$OUT/dnsperf-$r.log" 50)
        R[${r}_p99]=$(pct "$OUT/dnsperf-$r.log" 99)
        R[${r}_p999]=$(pct "$OUT/dnsperf-$r.log" 99.9)
        R[${r}_in99]=$(lat "$OUT/dnsperf-$r.log" in | pctl 99)
        R[${r}_out99]=$(lat "$OUT/dnsperf-$r.log" out | pctl 99)
    done
done

if [ "${RELOAD_ONLY:-0}" != 1 ]; then
# ---- unbound: local-zone always_nxdomain, the same 1M list ----
unbound_start() { # unbound_start NAME ZONES_FILE: sets UB_PID UB_MS
    local port t0
    port=$(free_port)
    cat >"$OUT/$1.conf" <<EOF
server:
    interface: 127.0.0.1@$port
    port: $port
    do-daemonize: no
    use-syslog: no
    logfile: ""
    chroot: ""
    username: ""
    directory: "$OUT"
    pidfile: ""
    num-threads: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    include: "$2"
EOF
    t0=$(now_ms)
    unbound -d -c "$OUT/$1.conf" >"$OUT/$1.log" 2>&1 &
    UB_PID=$!
    PIDS+=("$UB_PID")
    until dig -p "$port" @127.0.0.1 +tries=1 +time=1 "www.$BLOCKED" A 2>/dev/null |
        grep -qE 'status: (NXDOMAIN|SERVFAIL|NOERROR|REFUSED)'; do
        kill -0 "$UB_PID" 2>/dev/null || die "unbound exited: $(tail -n 3 "$OUT/$1.log")"
        sleep 0.05
    done
    UB_MS=$(($(now_ms) - t0))
    UB_NX=$(dig -p "$port" @127.0.0.1 +tries=1 +time=2 "www.$BLOCKED" A | grep -c 'status: NXDOMAIN')
}
if [ "${SKIP_PEERS:-0}" != 1 ] && command -v unbound >/dev/null; then
    : >"$OUT/unbound-empty.zones"
    awk '{printf "local-zone: \"%s.\" always_nxdomain\n", $1}' "$OUT/list1m.txt" >"$OUT/unbound-1m.zones"
    unbound_start unbound-base "$OUT/unbound-empty.zones"
    R[ub_base_rss]=$(rss_kb "$UB_PID")
    stop_pid "$UB_PID"
    unbound_start unbound-1m "$OUT/unbound-1m.zones"
    R[ub_ms]=$UB_MS
    R[ub_cpu]=$(cpu_ms "$UB_PID")
    R[ub_rss]=$(rss_kb "$UB_PID")
    R[ub_blocked]=$UB_NX
    stop_pid "$UB_PID"
    R[ub_bpn]=$(awk -v a="${R[ub_rss]}" -v b="${R[ub_base_rss]}" -v n="$N1" \
        'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
fi

# ---- dnsdist: SuffixMatchNode, the same 1M list ----
dnsdist_start() { # dnsdist_start NAME LIST: sets DD_PID DD_MS
    local port t0
    port=$(free_port)
    cat >"$OUT/$1.lua" <<EOF
setLocal("127.0.0.1:$port")
newServer{address="127.0.0.1:9", healthCheckMode="down"}
local smn = newSuffixMatchNode()
for line in io.lines("$2") do smn:add(newDNSName(line)) end
addAction(SuffixMatchNodeRule(smn), RCodeAction(DNSRCode.NXDOMAIN))
addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))
EOF
    t0=$(now_ms)
    dnsdist --supervised --disable-syslog -C "$OUT/$1.lua" >"$OUT/$1.log" 2>&1 &
    DD_PID=$!
    PIDS+=("$DD_PID")
    until dig -p "$port" @127.0.0.1 +tries=1 +time=1 "www.$BLOCKED" A 2>/dev/null |
        grep -qE 'status: (NXDOMAIN|REFUSED)'; do
        kill -0 "$DD_PID" 2>/dev/null || die "dnsdist exited: $(tail -n 3 "$OUT/$1.log")"
        sleep 0.05
    done
    DD_MS=$(($(now_ms) - t0))
    DD_NX=$(dig -p "$port" @127.0.0.1 +tries=1 +time=2 "www.$BLOCKED" A | grep -c 'status: NXDOMAIN')
}
if [ "${SKIP_PEERS:-0}" != 1 ] && command -v dnsdist >/dev/null; then
    : >"$OUT/empty.txt"
    dnsdist_start dnsdist-base "$OUT/empty.txt"
    R[dd_base_rss]=$(rss_kb "$DD_PID")
    stop_pid "$DD_PID"
    dnsdist_start dnsdist-1m "$OUT/list1m.txt"
    R[dd_ms]=$DD_MS
    R[dd_cpu]=$(cpu_ms "$DD_PID")
    R[dd_rss]=$(rss_kb "$DD_PID")
    R[dd_blocked]=$DD_NX
    stop_pid "$DD_PID"
    R[dd_bpn]=$(awk -v a="${R[dd_rss]}" -v b="${R[dd_base_rss]}" -v n="$N1" \
        'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
fi

fi # RELOAD_ONLY

get() { sed -n "s/^$2 //p" "$OUT/lookup$1.txt"; }
echo
echo "blocklists, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw logs: $OUT"
echo
if [ "${RELOAD_ONLY:-0}" != 1 ]; then
printf '%-34s %12s %12s %12s\n' "" "dotproxyd" "unbound" "dnsdist"
printf '%-34s %12s %12s %12s\n' "1M names: start to answering (ms)" "${R[dp_1m_ms]}" "${R[ub_ms]:--}" "${R[dd_ms]:--}"
printf '%-34s %12s %12s %12s\n' "1M names: CPU ms used by then" "${R[dp_1m_cpu]}" "${R[ub_cpu]:--}" "${R[dd_cpu]:--}"
printf '%-34s %12s %12s %12s\n' "1M names: RSS octets per name" "${R[dp_1m_bpn]}" "${R[ub_bpn]:--}" "${R[dd_bpn]:--}"
printf '%-34s %12s %12s %12s\n' "1M names: blocked name NXDOMAIN" "${R[dp_1m_blocked]}" "${R[ub_blocked]:--}" "${R[dd_blocked]:--}"
if [ -n "${R[dp_10m_ms]:-}" ]; then
    printf '%-34s %12s\n' "10M names: start to listening (ms)" "${R[dp_10m_ms]}"
    printf '%-34s %12s\n' "10M names: CPU ms used by then" "${R[dp_10m_cpu]}"
    printf '%-34s %12s\n' "10M names: RSS octets per name" "${R[dp_10m_bpn]}"
fi
echo
for n in 1m 10m; do
    [ -s "$OUT/lookup$n.txt" ] || continue
    echo "matcher, $n list: load $(get $n load_ms) ms wall / $(get $n load_cpu_ms) ms CPU;" \
        "set $(get $n set_octets_per_name) octets/name; hit ratio $(get $n hit_ratio);" \
        "lookup, back to back: $(get $n lookup_ns) ns wall / $(get $n lookup_cpu_ns) ns CPU;" \
        "chained: $(get $n chained_ns) ns wall / $(get $n chained_cpu_ns) ns CPU (best of 5, CPU 1);" \
        "one dependent random read over a buffer of the set's size: $(get $n memory_chase_ns) ns"
done
echo
fi
echo "reload under load (1M list, -w 2, dnsperf -Q $QPS -c 8, 12 s a run; $RELOADS list rebuilds seen in the log):"
echo "  (p99 in/out: of the answers in the second after each SIGHUP / of the others;"
echo "   in a quiet run the same seconds, with no SIGHUP)"
printf '  %-8s %10s %6s %10s %7s %7s %8s %7s %7s\n' run completed lost qps p50_ms p99_ms \
    p99.9_ms p99_in p99_out
for r in "${RUNS[@]}"; do
    printf '  %-8s %10s %6s %10.0f %7s %7s %8s %7s %7s\n' "$r" "${R[${r}_done]}" "${R[${r}_lost]}" \
        "${R[${r}_qps]}" "${R[${r}_p50]}" "${R[${r}_p99]}" "${R[${r}_p999]}" "${R[${r}_in99]}" \
        "${R[${r}_out99]}"
done
