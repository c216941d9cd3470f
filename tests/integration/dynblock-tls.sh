#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dynamic blocks for clients of the DNS-over-TLS listener (--listen-tls),
# with kdig +tls: the answer-side rules (nxdomain) and the cache-miss rule
# (subdomains) count TLS clients as they count UDP and TCP ones, so a TLS
# client asking names that do not exist is blocked, and a water torture
# over TLS blocks its domain. Polls with deadlines, never sleeps as
# synchronisation.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

make_pki
start_dotserver
start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" --timeout 3000 \
    --listen-tls 127.0.0.1@0 --tls-cert "$PKI/server.pem" --tls-key "$PKI/server-key.pem" \
    --dynblock 'nxdomain>2,window=2,for=30,action=refuse' \
    --dynblock 'subdomains>5,window=2,for=30,action=refuse'
TLS_PORT=$(sed -n 's/.*TLS on 127\.0\.0\.1@\([0-9]*\).*/\1/p' <<<"$BG_LINE")
[ -n "$TLS_PORT" ] || die "no TLS port in: $BG_LINE"

tkdig() {
    kdig -p "$TLS_PORT" @127.0.0.1 +retry=0 +time=5 +tls-ca="$PKI/ca.pem" \
        +tls-hostname=dns.test "$@"
}
tstatus() { tkdig "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }

# kdig -b: TLS clients on several loopback source addresses.
check_eq "before: a TLS client is served" NOERROR "$(tstatus -b 127.0.0.2 www.example.com A)"

# ---- subdomains (the cache-miss hook): one kdig from .2, many distinct
# names under one domain over TLS, well over 5/s averaged over 2 s; then the
# domain's names that miss the cache are refused to any client ----
args=()
for i in $(seq 1 30); do args+=("r$i-$RANDOM.torture.com" A); done
tkdig -b 127.0.0.2 +short "${args[@]}" >/dev/null 2>&1
st=""
end=$((SECONDS + 15))
while [ $SECONDS -lt $end ]; do
    st=$(tstatus -b 127.0.0.3 "x$RANDOM-$SECONDS.torture.com" A)
    [ "$st" = REFUSED ] && break
    sleep 0.2
done
check_eq "subdomains over TLS: the domain's misses are refused" REFUSED "$st"
check_eq "subdomains over TLS: one start line, key torture.com" 1 \
    "$(grep -c "dynblock start: block rule .subdomains>5.* key torture.com," "$WORK/dotproxyd.log")"
check_eq "subdomains over TLS: another domain is served" NOERROR \
    "$(tstatus -b 127.0.0.3 www.example.com A)"

# ---- nxdomain (the answer hook): one kdig from .4, many names that do
# not exist (the upstream answers NXDOMAIN), well over 2/s averaged over
# 2 s; then that client is refused, others are served ----
args=()
for i in $(seq 1 20); do args+=("nx-$i-$RANDOM.example" A); done
tkdig -b 127.0.0.4 +short "${args[@]}" >/dev/null 2>&1
st=""
end=$((SECONDS + 15))
while [ $SECONDS -lt $end ]; do
    st=$(tstatus -b 127.0.0.4 www.example.com A)
    [ "$st" = REFUSED ] && break
    sleep 0.2
done
check_eq "nxdomain over TLS: the client is refused" REFUSED "$st"
check_eq "nxdomain over TLS: one start line, key 127.0.0.4" 1 \
    "$(grep -c "dynblock start: block rule .nxdomain>2.* key 127.0.0.4," "$WORK/dotproxyd.log")"
check_eq "nxdomain over TLS: another TLS client is served" NOERROR \
    "$(tstatus -b 127.0.0.5 www.example.com A)"

stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"
stop_dotserver
finish
