#!/bin/bash
# SPDX-License-Identifier: MIT
# RPZ by zone transfer against a real primary: Knot DNS (knotd), started here
# on loopback with a zone of its own, notifying dotproxyd's listener. The
# first AXFR is enforced; a change committed with knotc reaches dotproxyd by
# NOTIFY and IXFR (our metrics say which transfer carried it, and that it
# was smaller than the AXFR); NOTIFY from another address or for another
# zone is refused and counted; a restart with the primary down enforces the
# copy in --state-dir; with TSIG (hmac-sha256) required by the primary, a
# wrong secret fails and is counted, the right one transfers and verifies
# Knot's signed NOTIFY and IXFR, and an unsigned NOTIFY is NOTAUTH.
. "$(dirname "$0")/lib.sh"

command -v knotd >/dev/null && command -v knotc >/dev/null || { echo "SKIP: needs knotd and knotc (Debian knot)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }

make_pki
start_dotserver

KNOT_PORT=$(free_port)
PROXY_PORT=$(free_port)
K=$WORK/knot
mkdir -p "$K/db" "$WORK/state"

# 300 rules: enough that an IXFR of two changes is visibly smaller.
{
    echo '$ORIGIN rpz.test.'
    echo '$TTL 60'
    echo '@ SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60'
    echo '@ NS localhost.'
    echo 'bad.example CNAME .'
    echo '*.wild.example CNAME .'
    echo 'local.example A 192.0.2.55'
    echo 'multi.example A 192.0.2.1'
    echo 'multi.example A 192.0.2.2'
    echo 'txt.example TXT "hello world" "quote\"d"'
    for i in $(seq 1 300); do echo "filler$i.example CNAME ."; done
} >"$K/rpz.test.zone"

cat >"$K/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $K
log:
  - target: stderr
    any: info
database:
    storage: $K/db
remote:
  - id: dotproxyd
    address: 127.0.0.1@$PROXY_PORT
acl:
  - id: transfer
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: $K
    zonefile-sync: -1
    journal-content: all
zone:
  - domain: rpz.test
    file: rpz.test.zone
    notify: dotproxyd
    acl: transfer
CONF

start_knot() {
    start_bg knot 'server started' knotd -c "$K/knot.conf"
    KNOT_PID=$BG_PID
    KNOT_DRAIN=$BG_DRAIN
}

start_feed_proxy() {
    start_bg dotproxyd 'listening on 127\.0\.0\.1@([0-9]+)' "$DOTPROXYD" \
        --listen "127.0.0.1@$PROXY_PORT" -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" \
        --rpz-primary "127.0.0.1@$KNOT_PORT#rpz.test" --state-dir "$WORK/state" \
        --metrics 127.0.0.1@0 "$@"
    PROXY_PID=$BG_PID
    PROXY_DRAIN=$BG_DRAIN
    metrics_port_from_log
}

start_knot
start_feed_proxy

# ---- the first AXFR ----
wait_for "AXFR: bad.example blocked" is_status bad.example NXDOMAIN
check_eq "AXFR: local data answered" "192.0.2.55" "$(qdig +short local.example A)"
check_eq "AXFR: wildcard rule" "NXDOMAIN" "$(status_of a.b.wild.example)"
check_eq "AXFR: a name with no rule is forwarded" "$(expected_a fine.example)" \
    "$(qdig +short fine.example A)"
check_eq "metrics: one AXFR" "1" "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="axfr"')"
check_eq "metrics: serial 1" "1" "$(metric dotproxy_feed_serial)"
check_match "state file written with its serial" '^; zone transfer copy, serial 1,' \
    "$(head -n 1 "$WORK/state/rpz-rpz.test.zone")"
check_match "GET /api/v1/feeds" '"zone":"rpz.test.","serial":1,"entries":30[0-9]' \
    "$(api /api/v1/feeds)"

# ---- NOTIFY from others ----
out=$(qdig -b 127.0.0.2 +opcode=notify rpz.test SOA)
check_match "NOTIFY from another address: REFUSED" 'opcode: NOTIFY, status: REFUSED' "$out"
out=$(qdig +opcode=notify other.test SOA)
check_match "NOTIFY for another zone: REFUSED" 'opcode: NOTIFY, status: REFUSED' "$out"
check_eq "metrics: two NOTIFY refused" "2" "$(metric dotproxy_notify_refused_total)"

# ---- a change on the primary: NOTIFY, then IXFR ----
knotc -c "$K/knot.conf" zone-begin rpz.test >/dev/null || fail "knotc zone-begin"
knotc -c "$K/knot.conf" zone-set rpz.test new.example 60 CNAME . >/dev/null || fail "knotc zone-set"
knotc -c "$K/knot.conf" zone-unset rpz.test bad.example CNAME >/dev/null || fail "knotc zone-unset"
t0=$(date +%s%N)
knotc -c "$K/knot.conf" zone-commit rpz.test >/dev/null || fail "knotc zone-commit"
# The refresh timer is an hour: only the NOTIFY can bring this in time.
if wait_for "IXFR: new.example blocked after the commit" is_status new.example NXDOMAIN; then
    echo "change to enforcement: $((($(date +%s%N) - t0) / 1000000)) ms"
fi
check_eq "IXFR: the deleted rule no longer blocks" "$(expected_a bad.example)" \
    "$(qdig +short bad.example A)"
check_eq "metrics: the change came by IXFR" "1" \
    "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="ixfr"')"
check_eq "metrics: still one AXFR" "1" "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="axfr"')"
axfr_b=$(metric 'dotproxy_feed_last_transfer_bytes\{[^}]*type="axfr"')
ixfr_b=$(metric 'dotproxy_feed_last_transfer_bytes\{[^}]*type="ixfr"')
echo "AXFR $axfr_b octets, IXFR $ixfr_b octets"
[ "${ixfr_b:-0}" -gt 0 ] && [ "$ixfr_b" -lt $((axfr_b / 10)) ] &&
    pass "the IXFR is under a tenth of the AXFR" || fail "IXFR $ixfr_b vs AXFR $axfr_b octets"
check_match "metrics: NOTIFY accepted" '^[1-9]' "$(metric dotproxy_feed_notifies_total)"
grep -q 'IXFR, outgoing, remote 127.0.0.1@[0-9]*, finished' "$WORK/knot.log" &&
    pass "knot's log shows the outgoing IXFR" || fail "no outgoing IXFR in knot's log"
grep -q 'rpz feed rpz.test.: IXFR serial 1 -> 2, .*, applied as a layer' "$WORK/dotproxyd.log" &&
    pass "the IXFR was applied as a layer" || fail "no layered IXFR in dotproxyd's log"
grep -qE 'rpz .*rpz-rpz.test.zone: serial 2 applied: 2 owners changed' "$WORK/dotproxyd.log" &&
    pass "the layer holds the two changed owners" || fail "no layer of two owners in the log"

# ---- more changes as layers: one record of an RRset, a wildcard and its exception ----
knotc -c "$K/knot.conf" zone-begin rpz.test >/dev/null || fail "knotc zone-begin"
knotc -c "$K/knot.conf" zone-unset rpz.test multi.example A 192.0.2.1 >/dev/null || fail "knotc zone-unset"
knotc -c "$K/knot.conf" zone-set rpz.test '*.late.example' 60 CNAME . >/dev/null || fail "knotc zone-set"
knotc -c "$K/knot.conf" zone-set rpz.test ok.late.example 60 CNAME rpz-passthru. >/dev/null ||
    fail "knotc zone-set"
knotc -c "$K/knot.conf" zone-commit rpz.test >/dev/null || fail "knotc zone-commit"
wait_for "layer: a wildcard added by IXFR blocks" is_status x.late.example NXDOMAIN
check_eq "layer: one A of two deleted" "192.0.2.2" "$(qdig +short multi.example A)"
check_eq "layer: its exception passes" "$(expected_a ok.late.example)" \
    "$(qdig +short ok.late.example A)"
check_eq "layer: the first change stays" "NXDOMAIN" "$(status_of new.example)"
check_eq "layer: the rules count through the layer (305, +2)" "307" \
    "$(metric 'dotproxy_blocklist_entries\{list="[^"]*rpz-rpz.test.zone",kind="rpz"')"

# ---- restart with the primary down: the state directory ----
stop_bg "$KNOT_PID" "$KNOT_DRAIN"
stop_feed_proxy
check_match "the stop wrote the state file behind the layers" '^; zone transfer copy, serial 3,' \
    "$(head -n 1 "$WORK/state/rpz-rpz.test.zone")"
start_feed_proxy
check_eq "restart, primary down: new.example blocked from --state-dir" "NXDOMAIN" \
    "$(status_of new.example)"
check_eq "restart, primary down: local data from --state-dir" "192.0.2.55" \
    "$(qdig +short local.example A)"
check_eq "restart, primary down: the layered changes from --state-dir" "192.0.2.2 NXDOMAIN" \
    "$(qdig +short multi.example A) $(status_of y.late.example)"
wait_for "restart: the failed pull is counted" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"failures\":[1-9].*'"
check_match "restart: last error says why" '"last_error":"connect: Connection refused"' \
    "$(api /api/v1/feeds)"
stop_feed_proxy

# ---- TSIG: the primary wants a key for transfers and signs its NOTIFY ----
SECRET=$(head -c 32 /dev/urandom | base64)
WRONG=$(head -c 32 /dev/urandom | base64)
python3 - "$K/knot.conf" "$SECRET" <<'PY'
import sys
p, secret = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("remote:\n", "key:\n  - id: xfr.key\n    algorithm: hmac-sha256\n    secret: %s\nremote:\n" % secret, 1)
s = s.replace("    address: 127.0.0.1@", "    key: xfr.key\n    address: 127.0.0.1@", 1)
s = s.replace("    action: transfer\n", "    key: xfr.key\n    action: transfer\n", 1)
open(p, "w").write(s)
PY
start_knot
rm -rf "$WORK/state"
mkdir -p "$WORK/state"
printf 'xfr.key:hmac-sha256:%s\n' "$WRONG" >"$WORK/wrong.key"
chmod 644 "$WORK/wrong.key"
check_match "--rpz-tsig-file readable by all is refused" 'readable by every user' \
    "$("$DOTPROXYD" --check-config -u 127.0.0.1 --rpz-tsig-file "$WORK/wrong.key" 2>&1)"
chmod 600 "$WORK/wrong.key"
start_feed_proxy --rpz-tsig-file "$WORK/wrong.key"
wait_for "TSIG, wrong secret: the transfer fails and is counted" \
    bash -c "curl -s http://127.0.0.1:$METRICS/metrics | grep -Eq '^dotproxy_feed_tsig_failures_total.* [1-9]'"
check_match "TSIG, wrong secret: last error says why" '"last_error":"TSIG: ' "$(api /api/v1/feeds)"
check_eq "TSIG, wrong secret: nothing enforced" "$(expected_a new.example)" "$(qdig +short new.example A)"
grep -q 'rpz feed rpz.test.: .* failed: TSIG' "$WORK/dotproxyd.log" &&
    pass "TSIG, wrong secret: logged" || fail "no TSIG failure in the log"
stop_feed_proxy
start_feed_proxy --rpz-tsig "xfr.key:hmac-sha256:$SECRET"
wait_for "TSIG, right key: AXFR enforced" is_status new.example NXDOMAIN
knotc -c "$K/knot.conf" zone-begin rpz.test >/dev/null || fail "knotc zone-begin"
knotc -c "$K/knot.conf" zone-set rpz.test signed.example 60 CNAME . >/dev/null || fail "knotc zone-set"
knotc -c "$K/knot.conf" zone-commit rpz.test >/dev/null || fail "knotc zone-commit"
wait_for "TSIG, right key: a signed NOTIFY and a signed IXFR" is_status signed.example NXDOMAIN
check_eq "TSIG, right key: the change came by IXFR" "1" \
    "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="ixfr"')"
check_eq "TSIG, right key: no TSIG failure" "0" "$(metric dotproxy_feed_tsig_failures_total)"
out=$(qdig +opcode=notify rpz.test SOA)
check_match "TSIG: an unsigned NOTIFY from the primary's address is NOTAUTH" \
    'opcode: NOTIFY, status: NOTAUTH' "$out"
stop_feed_proxy

finish
