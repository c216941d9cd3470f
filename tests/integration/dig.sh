#!/bin/bash
# SPDX-License-Identifier: MIT
# dig and kdig through dotproxyd to ts-dotserver, over UDP and TCP: answers
# arrive intact, NXDOMAIN passes through, a big answer is truncated (TC) over
# UDP and whole over TCP, and --workers 2 serves both protocols.
. "$(dirname "$0")/lib.sh"

make_pki
start_dotserver
start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" --timeout 3000

name=www.example.com
want=$(expected_a "$name")

check_eq "dig UDP A" "$want" "$(qdig +short "$name" A)"
check_eq "dig TCP A" "$want" "$(qdig +tcp +short "$name" A)"
check_eq "kdig UDP A" "$want" "$(qkdig +short "$name" A)"
check_eq "kdig TCP A" "$want" "$(qkdig +tcp +short "$name" A)"
# Letter case survives the round trip (the ID and question are matched, not
# rewritten), and the address depends on the name.
check_eq "dig UDP A, mixed case" "$(expected_a Mixed.Example.ORG)" \
    "$(qdig +short Mixed.Example.ORG A)"

out=$(qdig nx-host.example A)
check_match "dig UDP NXDOMAIN" 'status: NXDOMAIN' "$out"
out=$(qkdig +tcp nxdomain.example A)
check_match "kdig TCP NXDOMAIN" 'status: NXDOMAIN' "$out"

# 11 TXT records, ~3000 octets: over UDP without EDNS the limit is 512, so
# the proxy must set TC (+ignore keeps dig from retrying over TCP itself).
out=$(qdig +ignore +noedns big.example TXT)
check_match "big TXT over UDP: TC set" 'flags:[a-z ]* tc[ ;]' "$out"
check_match "big TXT over UDP: still NOERROR" 'status: NOERROR' "$out"
# EDNS 1232 is still too small for 3000 octets.
out=$(qdig +ignore +bufsize=1232 big.example TXT)
check_match "big TXT over UDP with EDNS 1232: TC set" 'flags:[a-z ]* tc[ ;]' "$out"
count=$(qdig +tcp +short big.example TXT | wc -l)
check_eq "big TXT over TCP: all records" 11 "$count"
out=$(qdig +tcp big.example TXT)
check_match "big TXT over TCP: no TC" 'flags: qr rd ra;' "$out"
count=$(qkdig +tcp +short big.example TXT | wc -l)
check_eq "big TXT over TCP (kdig): all records" 11 "$count"

stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"

# Two workers share one kernel-chosen port (SO_REUSEPORT). A run of queries
# from fresh sockets lands on both; every one is answered either way.
PROXY_NAME=dotproxyd-w2 start_proxy -w 2 -v -u "127.0.0.1@$SRV_PORT#dns.test" \
    --ca-file "$PKI/ca.pem" --timeout 3000
check_match "-w 2: startup line" '; 2 workers$' "$BG_LINE"
names=()
for i in $(seq 1 20); do names+=("w$i.example"); done
expected=$(for n in "${names[@]}"; do expected_a "$n"; done)
check_eq "-w 2: 20 UDP queries" "$expected" "$(for n in "${names[@]}"; do qdig +short "$n" A; done)"
check_eq "-w 2: 20 TCP queries" "$expected" \
    "$(for n in "${names[@]}"; do qdig +tcp +short "$n" A; done)"
stop_proxy
check_eq "dotproxyd -w 2 exit status" 0 "$STOP_STATUS"
# Each worker has its own pool, so each one that served a query connected
# upstream and said so under its own tag. 40 clients on fresh source ports
# all hashed to one worker would be a 1 in 2^39 event.
for w in 0 1; do
    check_match "-w 2: worker $w served queries" \
        "^dotproxyd\[$w\]: debug: upstream .*connected" "$(cat "$WORK/dotproxyd-w2.log")"
done

# A listener on the wildcard address answers from the address the client
# asked (IP_PKTINFO): without that, a question sent to 127.0.0.2 would be
# answered from 127.0.0.1, which dig rejects as a reply from a stranger.
start_bg dotproxyd-any 'listening on 0\.0\.0\.0@([0-9]+)' "$DOTPROXYD" --listen 0.0.0.0@0 \
    -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" --timeout 3000
any_pid=$BG_PID any_drain=$BG_DRAIN any_port=$BG_MATCH
for dst in 127.0.0.1 127.0.0.2 127.0.0.3; do
    check_eq "0.0.0.0 listener: UDP answer from $dst" "$(expected_a any.example)" \
        "$(dig -p "$any_port" @"$dst" +tries=1 +time=5 +nosearch +short any.example A)"
done
stop_bg "$any_pid" "$any_drain"
check_eq "dotproxyd 0.0.0.0 exit status" 0 "$STOP_STATUS"

stop_dotserver
finish
