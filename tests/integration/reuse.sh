#!/bin/bash
# SPDX-License-Identifier: MIT
# The point of a DoT proxy: one TLS connection carries a long run of queries.
# 200 sequential queries (UDP and TCP clients) must reach the upstream over a
# single connection with a single handshake.
. "$(dirname "$0")/lib.sh"

make_pki
start_dotserver
start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem"

# One dig run asks its names one after another (each waits for its answer),
# so the proxy never has more than one query in flight.
udp=()
tcp=()
for i in $(seq 1 100); do
    udp+=("u$i.reuse.example")
    tcp+=("t$i.reuse.example")
done
want_udp=$(for n in "${udp[@]}"; do expected_a "$n"; done)
want_tcp=$(for n in "${tcp[@]}"; do expected_a "$n"; done)
check_eq "100 sequential UDP queries answered" "$want_udp" "$(qdig +short "${udp[@]}")"
check_eq "100 sequential TCP queries answered" "$want_tcp" "$(qdig +tcp +short "${tcp[@]}")"

stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"
stop_dotserver
check_eq "upstream saw 200 queries" 200 "$(server_counter queries)"
check_eq "upstream saw one TCP connection" 1 "$(server_counter connections)"
check_eq "upstream saw one TLS handshake" 1 "$(server_counter handshakes)"
finish
