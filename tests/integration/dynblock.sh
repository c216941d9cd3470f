#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dynamic blocks end to end, with real clients on several loopback source
# addresses (dig -b, dnsperf -a, bench/anomaly_gen.py) against dotproxyd -w 2
# (one detector shared by both workers): every metric's rule and every
# action, a block's end after `for`, an exempt network, the defaults' log
# mode (tunnel), the block log lines (once per block), GET /api/v1/dynblocks,
# POST /api/v1/dynblocks/clear (token) and the /metrics families.
# Polls with deadlines, never sleeps as synchronisation.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
GEN=$HERE/../../bench/anomaly_gen.py

command -v dnsperf >/dev/null || { echo "SKIP: needs dnsperf"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }

make_pki
start_dotserver
printf 'sekrit-token\n' >"$WORK/token"
chmod 600 "$WORK/token"
start_proxy -w 2 -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" \
    --metrics 127.0.0.1@0 --api-token-file "$WORK/token" --udp-size 4096 \
    --dynblock 'qps>100,window=2,for=2,action=refuse' \
    --dynblock 'nxdomain>4,window=2,for=30,action=drop' \
    --dynblock 'qtype:MX>4,window=2,for=2,action=truncate' \
    --dynblock 'bytes>8000,window=2,for=2,action=refuse' \
    --dynblock 'subdomains>20,window=2,for=2,action=refuse' \
    --dynblock 'tunnel>0.7,action=drop' \
    --dynblock-exempt 127.0.0.11
MPORT=$(sed -n 's/.*metrics and API on port \([0-9]*\).*/\1/p' "$WORK/dotproxyd.log" | head -n 1)
[ -n "$MPORT" ] || die "no metrics port in the log"

api() { curl -s --max-time 5 "http://127.0.0.1:$MPORT$1"; }
status_of() { dig -p "$PROXY_PORT" @127.0.0.1 -b "$1" +tries=1 +time=5 +nosearch "${@:2}" |
    sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
# wait_api REGEX [SECONDS]: poll GET /api/v1/dynblocks until it matches.
wait_api() {
    local end=$((SECONDS + ${2:-15}))
    while [ $SECONDS -lt $end ]; do
        api /api/v1/dynblocks | grep -Eq -- "$1" && return 0
        sleep 0.2
    done
    return 1
}

# ---- qps: a flood from .2 is refused, .3 is served meanwhile ----
# One name per registrable domain: the flood is no water torture.
for i in $(seq 100); do echo "www.d$i.com A"; done >"$WORK/flood.txt"
out=$(dnsperf -s 127.0.0.1 -p "$PROXY_PORT" -a 127.0.0.2 -l 3 -Q 400 -d "$WORK/flood.txt" 2>&1)
check_match "qps: the flooding client gets REFUSED" 'Response codes:.*REFUSED [1-9]' "$out"
check_eq "qps: another client is served" NOERROR "$(status_of 127.0.0.3 www.example.com A)"
check_match "qps: the API lists the block" '"key":"127.0.0.2","rule":"qps[^"]*","detector":"qps","action":"refuse"' \
    "$(api /api/v1/dynblocks)"
check_eq "qps: one start line for the block" 1 \
    "$(grep -c 'dynblock start: block rule .qps>100.* key 127.0.0.2,' "$WORK/dotproxyd.log")"

# ---- exempt: the same flood from .11 is never refused ----
out=$(dnsperf -s 127.0.0.1 -p "$PROXY_PORT" -a 127.0.0.11 -l 2 -Q 400 -d "$WORK/flood.txt" 2>&1)
check_match "exempt: all answered NOERROR" 'Response codes: +NOERROR [0-9]+ \(100' "$out"

# ---- nxdomain: .4 asks names that do not exist, at 20 qps: dropped ----
out=$(python3 "$GEN" nxdomain --port "$PROXY_PORT" --sources 127.0.0.4 --qps 30 --seconds 3)
check_match "nxdomain: most of them dropped" '"timeouts": [1-9][0-9]' "$out"
check_match "nxdomain: listed" '"detector":"nxdomain","action":"drop"' "$(api /api/v1/dynblocks)"
check_eq "nxdomain: the client's queries are dropped" "" "$(status_of 127.0.0.4 www.example.com A)"

# ---- qtype:MX, truncate: UDP gets TC=1, TCP is served ----
out=$(python3 "$GEN" flood --qtype MX --port "$PROXY_PORT" --sources 127.0.0.5 --qps 20 \
    --seconds 3)
check_match "truncate: TC over UDP" '"truncated": [1-9]' "$out"
check_eq "truncate: TCP is served" NOERROR "$(status_of 127.0.0.5 +tcp www.example.com A)"

# ---- bytes: large UDP answers to .6 ----
out=$(python3 "$GEN" amplify --port "$PROXY_PORT" --sources 127.0.0.6 --qps 20 --seconds 3 \
    --domain b.info)
check_match "bytes: large answers, then REFUSED" '"REFUSED": [1-9]' "$out"
check_match "bytes: an event" '"bytes":[1-9]' "$(api /api/v1/dynblocks)"
check_match "bytes: logged with the client" 'dynblock start: block rule .bytes>8000.* key 127.0.0.6,' \
    "$(cat "$WORK/dotproxyd.log")"

# ---- subdomains: random names under one domain from two sources ----
python3 "$GEN" subdomains --port "$PROXY_PORT" --sources 127.0.0.7,127.0.0.8 --qps 40 \
    --seconds 3 --domain victim.co.uk >/dev/null
check_match "subdomains: the domain is listed" '"key":"victim.co.uk"' "$(api /api/v1/dynblocks)"
check_eq "subdomains: a new name under it is refused, for anyone" REFUSED \
    "$(status_of 127.0.0.9 fresh1.victim.co.uk A)"
check_eq "subdomains: other domains are served" NOERROR "$(status_of 127.0.0.9 www.other.co.uk A)"
check_eq "subdomains: an exempt client is served" NOERROR \
    "$(status_of 127.0.0.11 fresh2.victim.co.uk A)"

# ---- tunnel: base32 TXT at 30 qps from .10: dropped, only for that domain ----
out=$(python3 "$GEN" tunnel --port "$PROXY_PORT" --sources 127.0.0.10 --qps 30 --seconds 4 \
    --domain t.tunnel.example)
check_match "tunnel: most queries dropped" '"timeouts": [1-9][0-9]' "$out"
check_match "tunnel: listed with its score" '"key":"127.0.0.10 tunnel.example"[^}]*"reason":"tunnel score' \
    "$(api /api/v1/dynblocks)"
check_eq "tunnel: the client's other domains are served" NOERROR \
    "$(status_of 127.0.0.10 www.example.com A)"
check_eq "tunnel: other clients of that domain are served" NOERROR \
    "$(status_of 127.0.0.3 www.tunnel.example A)"

# ---- metrics ----
m=$(api /metrics)
check_match "metrics: active blocks" '^dotproxy_dynblock_active [1-9]' "$m"
check_match "metrics: hits by rule" '^dotproxy_dynblock_hits_total\{rule="qps>100,window=2,for=2,action=refuse"\} [1-9]' "$m"
check_match "metrics: events by detector" '^dotproxy_anomaly_events_total\{detector="tunnel"\} [1-9]' "$m"
check_match "metrics: top offenders" '^dotproxy_anomaly_top_client_qps\{client="127.0.0.2"\}' "$m"
check_eq "metrics: at most 10 offenders" 1 "$(printf '%s\n' "$m" | grep -c '^dotproxy_anomaly_top_client_qps{' | awk '{print ($1 <= 10)}')"

# ---- expiry: the qps block ends (for=2 after the rate falls) ----
end=$((SECONDS + 20))
while [ $SECONDS -lt $end ] && api /api/v1/dynblocks | grep -q '"key":"127.0.0.2"'; do sleep 0.3; done
check_eq "expiry: .2 is served again" NOERROR "$(status_of 127.0.0.2 www.example.com A)"
check_eq "expiry: the end is logged once" 1 \
    "$(grep -c 'dynblock end: rule .qps>100.* key 127.0.0.2 ' "$WORK/dotproxyd.log")"

# ---- clear: needs the token, then ends every block ----
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "http://127.0.0.1:$MPORT/api/v1/dynblocks/clear")
check_eq "clear: refused without the token" 401 "$code"
out=$(curl -s --max-time 5 -X POST -H 'Authorization: Bearer sekrit-token' \
    "http://127.0.0.1:$MPORT/api/v1/dynblocks/clear")
check_match "clear: reports what it ended" '"cleared":[1-9]' "$out"
check_match "clear: nothing left" '"blocks":\[\]' "$(api /api/v1/dynblocks)"
check_eq "clear: the tunnel client is served again" NOERROR \
    "$(status_of 127.0.0.10 www.tunnel.example A)"

stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"
stop_dotserver
finish
