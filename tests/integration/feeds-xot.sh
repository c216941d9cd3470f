#!/bin/bash
# SPDX-License-Identifier: MIT
# RPZ by zone transfer over TLS (XoT, RFC 9103) against a real primary: BIND
# 9 (named), started here on loopback with a certificate from the test PKI,
# serving the zone by AXFR/IXFR over TLS only (allow-transfer transport
# tls). dotproxyd names the primary with a TLS name ("ADDR@PORT/NAME#ZONE")
# and trusts the test CA with --ca-file, as for its upstreams: the first
# AXFR is enforced; a dynamic update on the primary reaches dotproxyd by
# NOTIFY and an IXFR over TLS; a TLS name the certificate does not carry,
# and a CA that did not issue it, fail the transfer (counted, the reason in
# the API) and nothing is enforced.
. "$(dirname "$0")/lib.sh"

command -v named >/dev/null || { echo "SKIP: needs named (Debian bind9)"; exit 77; }
command -v nsupdate >/dev/null || { echo "SKIP: needs nsupdate (Debian bind9-dnsutils)"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }

make_pki
start_dotserver

DNS_PORT=$(free_port)
TLS_PORT=$(free_port)
PROXY_PORT=$(free_port)
N=$WORK/named
mkdir -p "$N" "$WORK/state"
cp "$PKI/server.pem" "$PKI/server-key.pem" "$N/"

{
    echo '$ORIGIN rpz.test.'
    echo '$TTL 60'
    echo '@ SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60'
    echo '@ NS localhost.'
    echo 'bad.example CNAME .'
    echo '*.wild.example CNAME .'
    echo 'local.example A 192.0.2.55'
} >"$N/rpz.test.zone"

cat >"$N/named.conf" <<CONF
tls local-tls {
    cert-file "$N/server.pem";
    key-file "$N/server-key.pem";
};
options {
    directory "$N";
    pid-file "$N/named.pid";
    managed-keys-directory "$N";
    listen-on port $DNS_PORT { 127.0.0.1; };
    listen-on port $TLS_PORT tls local-tls { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify explicit;
};
controls { };
zone "rpz.test" {
    type primary;
    file "$N/rpz.test.zone";
    allow-transfer port $TLS_PORT transport tls { 127.0.0.1; };
    allow-update { 127.0.0.1; };
    max-ixfr-ratio unlimited; /* a small zone's change is still an IXFR */
    also-notify { 127.0.0.1 port $PROXY_PORT; };
};
CONF

start_bg named 'running$' named -g -n 1 -c "$N/named.conf"
NAMED_PID=$BG_PID
NAMED_DRAIN=$BG_DRAIN

start_feed_proxy() {
    start_bg dotproxyd 'listening on 127\.0\.0\.1@([0-9]+)' "$DOTPROXYD" \
        --listen "127.0.0.1@$PROXY_PORT" -u "127.0.0.1@$SRV_PORT#dns.test" \
        --state-dir "$WORK/state" --metrics 127.0.0.1@0 "$@"
    PROXY_PID=$BG_PID
    PROXY_DRAIN=$BG_DRAIN
    metrics_port_from_log
}

# The primary refuses a plain transfer: only TLS can carry the zone.
out=$(dig -p "$DNS_PORT" @127.0.0.1 +tries=1 +time=3 rpz.test AXFR 2>&1)
check_match "the primary refuses AXFR over plain TCP" 'Transfer failed' "$out"

# ---- a TLS name the certificate does not carry ----
start_feed_proxy --ca-file "$PKI/ca.pem" --rpz-primary "127.0.0.1@$TLS_PORT/wrong.test#rpz.test"
wait_for "XoT, wrong TLS name: the transfer fails and is counted" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"failures\":[1-9]'"
check_match "XoT, wrong TLS name: last error says why" '"last_error":"TLS: certificate of wrong.test' \
    "$(api /api/v1/feeds)"
check_eq "XoT, wrong TLS name: nothing enforced" "$(expected_a bad.example)" \
    "$(qdig +short bad.example A)"
stop_feed_proxy

# ---- a CA that did not issue the primary's certificate ----
start_feed_proxy --ca-file "$PKI/ca2.pem" --rpz-primary "127.0.0.1@$TLS_PORT/dns.test#rpz.test"
wait_for "XoT, another CA: the transfer fails and is counted" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"failures\":[1-9]'"
check_match "XoT, another CA: last error says why" '"last_error":"TLS: certificate of dns.test' \
    "$(api /api/v1/feeds)"
stop_feed_proxy

# ---- the right name and CA: AXFR, then NOTIFY and IXFR, over TLS ----
start_feed_proxy --ca-file "$PKI/ca.pem" --rpz-primary "127.0.0.1@$TLS_PORT/dns.test#rpz.test"
wait_for "XoT: AXFR enforced" is_status bad.example NXDOMAIN
check_eq "XoT: local data answered" "192.0.2.55" "$(qdig +short local.example A)"
check_eq "XoT: wildcard rule" "NXDOMAIN" "$(status_of a.b.wild.example)"
check_eq "metrics: one AXFR" "1" "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="axfr"')"
check_match "named's log shows the AXFR" "transfer of 'rpz.test/IN': AXFR ended" \
    "$(cat "$WORK/named.log")"

nsupdate -p "$DNS_PORT" <<UPD || fail "nsupdate"
server 127.0.0.1 $DNS_PORT
zone rpz.test
update add new.example.rpz.test. 60 CNAME .
update delete bad.example.rpz.test. CNAME
send
UPD
wait_for "XoT: an update on the primary is enforced (NOTIFY, IXFR over TLS)" \
    is_status new.example NXDOMAIN
check_eq "XoT: the deleted rule no longer blocks" "$(expected_a bad.example)" \
    "$(qdig +short bad.example A)"
check_eq "metrics: the change came by IXFR" "1" \
    "$(metric 'dotproxy_feed_transfers_total\{[^}]*type="ixfr"')"
check_match "named's log shows the IXFR" "transfer of 'rpz.test/IN': IXFR ended" \
    "$(cat "$WORK/named.log")"
grep -q 'rpz feed rpz.test.: IXFR serial 1 -> 2, .*, applied as a layer' "$WORK/dotproxyd.log" &&
    pass "XoT: the IXFR was applied as a layer" || fail "no layered IXFR in dotproxyd's log"

# An address trigger spelled two ways is one rule, which a layer cannot
# hold: the engine asks the feed for a whole copy, and the change is
# enforced all the same.
nsupdate -p "$DNS_PORT" <<UPD || fail "nsupdate"
server 127.0.0.1 $DNS_PORT
zone rpz.test
update add 32.55.2.0.192.rpz-ip.rpz.test. 60 CNAME rpz-passthru.
update add 32.055.2.0.192.rpz-ip.rpz.test. 60 CNAME rpz-passthru.
update add late.example.rpz.test. 60 CNAME .
send
UPD
wait_for "XoT: a change a layer cannot hold is enforced by a whole copy" \
    is_status late.example NXDOMAIN
grep -q 'cannot be applied as a layer .*asking for a whole copy' "$WORK/dotproxyd.log" &&
    pass "XoT: the engine asked for a whole copy" || fail "no whole-copy request in the log"

# An IXFR that changes more owners than a layer may hold (1024 for a small
# zone) is applied as a whole copy, at once.
{
    echo "server 127.0.0.1 $DNS_PORT"
    echo "zone rpz.test"
    for i in $(seq 1 1100); do echo "update add bulk$i.example.rpz.test. 60 CNAME ."; done
    echo "send"
} | nsupdate -v -p "$DNS_PORT" || fail "nsupdate of 1100 records"
wait_for "XoT: an IXFR of 1100 owners is enforced" is_status bulk1100.example NXDOMAIN
check_eq "XoT: ... and its first owner" "NXDOMAIN" "$(status_of bulk1.example)"
grep -qE 'rpz feed rpz.test.: IXFR serial [0-9]+ -> [0-9]+, 11[0-9][0-9] records, .*, applied whole' \
    "$WORK/dotproxyd.log" && pass "XoT: past the layer's bound, a whole copy" ||
    fail "the IXFR of 1100 owners was not applied whole"
stop_feed_proxy
stop_bg "$NAMED_PID" "$NAMED_DRAIN"

finish
