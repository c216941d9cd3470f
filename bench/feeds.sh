#!/bin/bash
# SPDX-License-Identifier: MIT
# RPZ by zone transfer at scale, against Knot DNS on loopback: a zone of N
# rules (default 1,000,000) pulled by AXFR, then changed with knotc while
# dnsperf asks dotproxyd at QPS (default 5000).
#
#   bench/feeds.sh [BUILD_DIR]      (default: build)
#
# Prints: AXFR octets and time from start to the zone enforced; dotproxyd's
# peak RSS (VmHWM) across the AXFR and the rebuild; for each of CHANGES
# (default 3) changes, INTERVAL seconds apart (default 6): IXFR octets, the
# time from knotc zone-commit (which sends the NOTIFY) to the new rule and
# the deletion both enforced (dig polled every 10 ms), and the CPU time the
# feed and blocker threads (the ones at nice 10) spent from the commit to
# INTERVAL later; at the end the CPU of those threads over all the changes
# (that includes any state-file rewrite), dnsperf's lost queries during the
# changes, and the peak RSS. Only loopback is used; everything started is
# stopped by PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BUILD=${1:-$ROOT/build}
N=${N:-1000000}
QPS=${QPS:-5000}
CHANGES=${CHANGES:-3}
INTERVAL=${INTERVAL:-6}
OUT=${OUT:-$(mktemp -d /tmp/feeds-bench.XXXXXX)}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
die() { echo "feeds.sh: $*" >&2; exit 1; }
for c in knotd knotc dnsperf dig curl python3; do command -v "$c" >/dev/null || die "$c not installed"; done
DOTPROXYD=$BUILD/cli/dotproxyd
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
KP=$(free_port)
PP=$(free_port)
MP=$(free_port)
K=$OUT/knot
mkdir -p "$K/db" "$OUT/state" "$OUT/pki"

"$BUILD/tests/support/ts-pki" "$OUT/pki" >/dev/null || die "ts-pki"
"$BUILD/tests/support/ts-dotserver" --cert "$OUT/pki/server.pem" --key "$OUT/pki/server-key.pem" \
    >"$OUT/dotserver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do SP=$(sed -n 's/^port //p' "$OUT/dotserver.log"); [ -n "$SP" ] && break; sleep 0.1; done

awk -v n="$N" 'BEGIN {
    print "$ORIGIN rpz.test."; print "$TTL 60"
    print "@ SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60"; print "@ NS localhost."
    for (i = 0; i < n; i++) printf "r%d.example CNAME .\n", i }' >"$K/rpz.test.zone"
cat >"$K/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$KP
    rundir: $K
log:
  - target: stderr
    any: info
database:
    storage: $K/db
remote:
  - id: dotproxyd
    address: 127.0.0.1@$PP
acl:
  - id: transfer
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: $K
    zonefile-sync: -1
    journal-content: all
    journal-max-usage: 2G
zone:
  - domain: rpz.test
    file: rpz.test.zone
    notify: dotproxyd
    acl: transfer
CONF
knotd -c "$K/knot.conf" >"$OUT/knot.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do grep -q 'server started' "$OUT/knot.log" && break; sleep 0.1; done
grep -q 'server started' "$OUT/knot.log" || die "knotd did not start"

t0=$(now_ms)
"$DOTPROXYD" --listen "127.0.0.1@$PP" -u "127.0.0.1@$SP#dns.test" --ca-file "$OUT/pki/ca.pem" \
    --rpz-primary "127.0.0.1@$KP#rpz.test" --state-dir "$OUT/state" --metrics "127.0.0.1@$MP" \
    --cache-size 0 >"$OUT/dotproxyd.log" 2>&1 &
DP=$!
PIDS+=($DP)
status_of() { dig -p "$PP" @127.0.0.1 +tries=1 +time=2 "$1" A | sed -nE 's/.*status: ([A-Z]+),.*/\1/p'; }
last=r$((N - 1)).example
for _ in $(seq 3000); do [ "$(status_of "$last")" = NXDOMAIN ] && break; sleep 0.05; done
t1=$(now_ms)
[ "$(status_of "$last")" = NXDOMAIN ] || die "the zone was not enforced"
metric() { curl -s "http://127.0.0.1:$MP/metrics" | grep -E "^$1" | head -n 1 | awk '{print $NF}'; }
echo "rules: $N"
echo "AXFR: $(metric 'dotproxy_feed_last_transfer_bytes\{[^}]*type="axfr"') octets; start to enforced: $((t1 - t0)) ms"
echo "dotproxyd peak RSS after the AXFR: $(sed -n 's/VmHWM:\s*//p' /proc/$DP/status)"

# Queries for names with and without rules, under load, across the changes.
awk -v n="$N" 'BEGIN { for (i = 0; i < 10000; i++) { printf "r%d.example A\n", (i * 7919) % n; printf "pass%d.example A\n", i } }' >"$OUT/queries"
# CPU ticks of dotproxyd's threads at nice 10 (the feed and blocker
# threads): fields after the ") " of /proc/PID/task/TID/stat.
bg_ticks() {
    local t sum=0 f
    for t in /proc/"$DP"/task/*/stat; do
        f=$(sed 's/^.*) //' "$t" 2>/dev/null) || continue
        set -- $f
        [ "${17}" = 10 ] && sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
TCK=$(getconf CLK_TCK)
# knotc zone-commit (Knot then sends its NOTIFY), then ask for ADDED and
# DELETED every 5 ms over UDP until the first is NXDOMAIN and the second is
# not: prints the milliseconds from the commit.
commit_and_wait() {
    python3 - "$PP" "$K/knot.conf" "$1" "$2" <<'PY'
import socket, struct, subprocess, sys, time
port, conf, added, deleted = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
def rcode(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s.sendto(q, ("127.0.0.1", port))
    while True:
        try:
            r = s.recv(4096)
        except socket.timeout:
            return -1
        if struct.unpack(">H", r[:2])[0] == qid:
            return r[3] & 15
t0 = time.monotonic()
subprocess.run(["knotc", "-c", conf, "zone-commit", "rpz.test"], stdout=subprocess.DEVNULL, check=True)
qid = 0
while time.monotonic() - t0 < 60:
    qid = (qid + 2) & 0xffff
    if rcode(added, qid) == 3 and rcode(deleted, qid + 1) not in (3, -1):
        break
    time.sleep(0.005)
print(int((time.monotonic() - t0) * 1000))
PY
}
dur=$((CHANGES * INTERVAL + 8))
dnsperf -s 127.0.0.1 -p "$PP" -d "$OUT/queries" -Q "$QPS" -l "$dur" -t 2 >"$OUT/dnsperf.log" 2>&1 &
PERF=$!
PIDS+=($PERF)
sleep 3
cpu_all0=$(bg_ticks)
for c in $(seq 1 "$CHANGES"); do
    knotc -c "$K/knot.conf" zone-begin rpz.test >/dev/null
    knotc -c "$K/knot.conf" zone-set rpz.test "new$c.example" 60 CNAME . >/dev/null
    knotc -c "$K/knot.conf" zone-unset rpz.test "r$c.example" CNAME >/dev/null
    cpu0=$(bg_ticks)
    t0=$(now_ms)
    took=$(commit_and_wait "new$c.example" "r$c.example")
    left=$((t0 + INTERVAL * 1000 - $(now_ms)))
    [ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
    cpu1=$(bg_ticks)
    echo "change $c: IXFR $(metric 'dotproxy_feed_last_transfer_bytes\{[^}]*type="ixfr"') octets; commit to enforced: $took ms; feed+blocker CPU in the next ${INTERVAL} s: $(((cpu1 - cpu0) * 1000 / TCK)) ms"
done
cpu_all1=$(bg_ticks)
echo "feed+blocker CPU over the $CHANGES changes: $(((cpu_all1 - cpu_all0) * 1000 / TCK)) ms ($(((cpu_all1 - cpu_all0) * 1000 / TCK / CHANGES)) ms a change)"
wait "$PERF"
echo "dotproxyd peak RSS after the changes: $(sed -n 's/VmHWM:\s*//p' /proc/$DP/status)"
echo "transfers: axfr $(metric 'dotproxy_feed_transfers_total\{[^}]*type="axfr"') ixfr $(metric 'dotproxy_feed_transfers_total\{[^}]*type="ixfr"')"
grep -E 'Queries (sent|completed|lost)' "$OUT/dnsperf.log"
grep -E 'rpz feed|rpz .*(loaded in|applied)' "$OUT/dotproxyd.log" | tail -n 6
# The stop writes a state file left behind by layers: it must not hang.
t0=$(now_ms)
kill "$DP"
for _ in $(seq 300); do kill -0 "$DP" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DP" 2>/dev/null; then
    echo "dotproxyd did not stop within 30 s"
    kill -9 "$DP"
else
    echo "dotproxyd stopped in $(($(now_ms) - t0)) ms; state file: $(head -n 1 "$OUT/state/rpz-rpz.test.zone")"
fi
echo "logs: $OUT"
