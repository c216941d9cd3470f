#!/bin/bash
# SPDX-License-Identifier: MIT
# Lists over HTTPS at scale: a list of N names (default 1,000,000) served by
# tests/integration/listserver.py (python3 https, a certificate of the test
# PKI) and fetched by dotproxyd --blocklist-url; then, while dnsperf asks at
# QPS (default 5000), the list is changed CHANGES times (default 3) and each
# change fetched at once (POST /api/v1/feeds/refresh).
#
#   bench/feeds-url.sh [BUILD_DIR]      (default: build)
#
# Prints: the list's octets and the time from start to the last name
# enforced (dig polled every 50 ms); dotproxyd's RSS and peak RSS (VmHWM)
# after the first load and after the changes; for each change the time from
# the refresh call to a new name enforced; dnsperf's lost queries across
# the changes; then, with the server stopped, the time from a restart to the
# list enforced from --state-dir. Only loopback is used; everything started
# is stopped by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${1:-$ROOT/build}
N=${N:-1000000}
QPS=${QPS:-5000}
CHANGES=${CHANGES:-3}
OUT=${OUT:-$(mktemp -d /tmp/feeds-url-bench.XXXXXX)}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
die() { echo "feeds-url.sh: $*" >&2; exit 1; }
for c in dnsperf dig curl python3; do command -v "$c" >/dev/null || die "$c not installed"; done
DOTPROXYD=$BUILD/cli/dotproxyd
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
PP=$(free_port)
MP=$(free_port)
W=$OUT/www
mkdir -p "$W" "$OUT/state" "$OUT/pki"
printf 'bench-token\n' >"$OUT/token"
chmod 600 "$OUT/token"

"$BUILD/tests/support/ts-pki" "$OUT/pki" >/dev/null || die "ts-pki"
"$BUILD/tests/support/ts-dotserver" --cert "$OUT/pki/server.pem" --key "$OUT/pki/server-key.pem" \
    >"$OUT/dotserver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do SP=$(sed -n 's/^port //p' "$OUT/dotserver.log"); [ -n "$SP" ] && break; sleep 0.1; done

# version V of the list: names r0..r(N-1) in the first, and vV.example in each later one.
make_list() { awk -v n="$N" -v v="$1" 'BEGIN { print "# bench list version " v; if (v > 0) printf "v%d.example\n", v
    for (i = 0; i < n; i++) printf "r%d.example\n", i }' >"$W/list.tmp" && mv "$W/list.tmp" "$W/list.txt"; }
make_list 0
python3 "$ROOT/tests/integration/listserver.py" --cert "$OUT/pki/server.pem" \
    --key "$OUT/pki/server-key.pem" --dir "$W" >"$OUT/listserver.log" 2>&1 &
LS=$!
PIDS+=($LS)
for _ in $(seq 100); do LP=$(sed -n 's/^port //p' "$OUT/listserver.log"); [ -n "$LP" ] && break; sleep 0.1; done
[ -n "$LP" ] || die "listserver did not start"
URL="https://127.0.0.1:$LP/list.txt"

t0=$(now_ms)
"$DOTPROXYD" --listen "127.0.0.1@$PP" -u "127.0.0.1@$SP#dns.test" --ca-file "$OUT/pki/ca.pem" \
    --blocklist-url "$URL" --state-dir "$OUT/state" --metrics "127.0.0.1@$MP" \
    --api-token-file "$OUT/token" --cache-size 0 >"$OUT/dotproxyd.log" 2>&1 &
DP=$!
PIDS+=($DP)
status_of() { dig -p "$PP" @127.0.0.1 +tries=1 +time=2 "$1" A | sed -nE 's/.*status: ([A-Z]+),.*/\1/p'; }
last=r$((N - 1)).example
for _ in $(seq 3000); do [ "$(status_of "$last")" = NXDOMAIN ] && break; sleep 0.05; done
t1=$(now_ms)
[ "$(status_of "$last")" = NXDOMAIN ] || die "the list was not enforced"
rss() { echo "RSS $(sed -n 's/VmRSS:\s*//p' /proc/$DP/status), peak $(sed -n 's/VmHWM:\s*//p' /proc/$DP/status)"; }
echo "names: $N, list $(stat -c %s "$W/list.txt") octets"
echo "start to enforced over HTTPS: $((t1 - t0)) ms"
echo "dotproxyd after the first load: $(rss)"

awk -v n="$N" 'BEGIN { for (i = 0; i < 10000; i++) { printf "r%d.example A\n", (i * 7919) % n; printf "pass%d.example A\n", i } }' >"$OUT/queries"
dur=$((CHANGES * 10 + 6))
dnsperf -s 127.0.0.1 -p "$PP" -d "$OUT/queries" -Q "$QPS" -l "$dur" -t 2 >"$OUT/dnsperf.log" 2>&1 &
PERF=$!
PIDS+=($PERF)
sleep 3
for c in $(seq 1 "$CHANGES"); do
    make_list "$c"
    t0=$(now_ms)
    curl -s -X POST -H 'Authorization: Bearer bench-token' "http://127.0.0.1:$MP/api/v1/feeds/refresh" >/dev/null
    for _ in $(seq 1500); do [ "$(status_of "v$c.example")" = NXDOMAIN ] && break; sleep 0.02; done
    t1=$(now_ms)
    echo "change $c: refresh call to enforced: $((t1 - t0)) ms"
    sleep 7
done
wait "$PERF"
echo "dotproxyd after the changes: $(rss)"
curl -s "http://127.0.0.1:$MP/metrics" | grep -E '^dotproxy_feed_fetches_total'
grep -E 'Queries (sent|completed|lost)' "$OUT/dnsperf.log"
grep -E 'blocklist-url|blocklist .*loaded in' "$OUT/dotproxyd.log" | tail -n 4

# A restart while the server is down: the copy in --state-dir.
kill "$LS" "$DP"
wait "$LS" "$DP" 2>/dev/null
t0=$(now_ms)
"$DOTPROXYD" --listen "127.0.0.1@$PP" -u "127.0.0.1@$SP#dns.test" --ca-file "$OUT/pki/ca.pem" \
    --blocklist-url "$URL" --state-dir "$OUT/state" --metrics "127.0.0.1@$MP" \
    --api-token-file "$OUT/token" --cache-size 0 >"$OUT/dotproxyd-restart.log" 2>&1 &
DP=$!
PIDS+=($DP)
for _ in $(seq 3000); do [ "$(status_of "v$CHANGES.example")" = NXDOMAIN ] && break; sleep 0.05; done
t1=$(now_ms)
[ "$(status_of "v$CHANGES.example")" = NXDOMAIN ] || die "the state copy was not enforced"
echo "restart with the server down to enforced from --state-dir: $((t1 - t0)) ms; $(rss)"
grep -E 'fetch failed' "$OUT/dotproxyd-restart.log" | head -n 1
echo "logs: $OUT"
