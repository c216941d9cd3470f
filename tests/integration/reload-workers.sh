#!/bin/bash
# SPDX-License-Identifier: MIT
# Reloading cache settings with several workers (issue 11): the workers share
# one cache, made with the settings of its day; a reload that changes them
# must move every worker to a new, empty shared cache (it used to keep the
# old one silently), and turning the cache on or off says it needs a restart.
# The reload goes through POST /api/v1/reload, which answers once it is done.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }
make_pki
start_dotserver
conf=$WORK/dotproxyd.conf
write_conf() {
    printf 'upstream = 127.0.0.1@%s#dns.test\nca-file = %s\ncache-size = %s\n' \
        "$SRV_PORT" "$PKI/ca.pem" "$1" >"$conf"
}
write_conf 1000
printf 'reload-token\n' >"$WORK/token"
chmod 600 "$WORK/token"
start_proxy -c "$conf" -w 2 --metrics 127.0.0.1@0 --api-token-file "$WORK/token"
METRICS_PORT=$(sed -n 's/.*metrics and API on port \([0-9]*\).*/\1/p' "$WORK/dotproxyd.log" | head -n 1)
[ -n "$METRICS_PORT" ] || die "no metrics port in the log"

reload() {
    curl -s -o "$WORK/reload.json" -w '%{http_code}' --max-time 15 -X POST \
        -H 'Authorization: Bearer reload-token' "http://127.0.0.1:$METRICS_PORT/api/v1/reload"
}

name=shared.reload.example
want=$(expected_a "$name")
# Several dig runs: new source ports, so SO_REUSEPORT spreads them over both
# workers; one upstream query for all (the cache is shared).
for i in 1 2 3 4; do
    check_eq "before reload: answer $i" "$want" "$(qdig +short "$name")"
done

write_conf 2000
check_eq "reload with a new cache size: 200" 200 "$(reload)"
for i in 1 2 3 4; do
    check_eq "after reload: answer $i" "$want" "$(qdig +short "$name")"
done

write_conf 0
check_eq "reload turning the cache off: 200" 200 "$(reload)"

stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"
check_match "the reload said the workers moved to a new cache" \
    "cache settings changed: the 2 workers move to a new, empty shared cache" \
    "$(cat "$WORK/dotproxyd.log")"
check_match "turning the cache off said it takes a restart" \
    "turning the cache off with 2 workers takes a restart" "$(cat "$WORK/dotproxyd.log")"
stop_dotserver
# One upstream query before the reload, one after it (the new cache is empty).
check_eq "upstream saw 2 queries" 2 "$(server_counter queries)"
finish
