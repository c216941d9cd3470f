#!/bin/bash
# SPDX-License-Identifier: MIT
# The examples are documentation; this keeps them true. embed_poll serves dig
# from its own poll() loop, answers a line on stdin with its counters and
# stops on "quit"; query_once prints what the upstream answered.
. "$(dirname "$0")/lib.sh"

[ -n "$EMBED_POLL" ] && [ -n "$QUERY_ONCE" ] || die "usage: $0 ... EMBED_POLL QUERY_ONCE"

make_pki
start_dotserver
upstream="127.0.0.1@$SRV_PORT#dns.test"

# ---- embed_poll -------------------------------------------------------------------

BG_STDIN=1 start_bg embed_poll '^listening on port ([0-9]+)$' \
    "$EMBED_POLL" --listen 127.0.0.1@0 --upstream "$upstream" --ca-file "$PKI/ca.pem"
EMBED_PID=$BG_PID
EMBED_IN=$BG_IN
EMBED_DRAIN=$BG_DRAIN
PROXY_PORT=$BG_MATCH

check_eq "embed_poll answers over UDP" "$(expected_a embed.example)" \
    "$(qdig +short embed.example A)"
check_eq "embed_poll answers over TCP" "$(expected_a embed-tcp.example)" \
    "$(qdig +tcp +short embed-tcp.example A)"

# A line on stdin: the program's own fd, served by the same poll() call.
# Its reply goes to the log (the drain); wait for the program to exit
# after "quit" before reading it.
send_line "$EMBED_IN" stats || fail "embed_poll is gone before 'stats'"
send_line "$EMBED_IN" quit || fail "embed_poll is gone before 'quit'"
t0=$(date +%s%N)
wait "$EMBED_PID"
status=$?
t1=$(date +%s%N)
wait "$EMBED_DRAIN"
forget_pid "$EMBED_PID"
forget_pid "$EMBED_DRAIN"
exec {EMBED_IN}>&-
check_eq "embed_poll exits 0 on quit" 0 "$status"
log=$(cat "$WORK/embed_poll.log")
check_match "embed_poll: stdin line answered with counters" \
    'queries udp=1 tcp=1 answers=2 servfail=0 tls_handshakes=1' "$log"
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -le 3000 ]; then pass "embed_poll: quit took $ms ms"; else
    fail "embed_poll: quit took $ms ms"; fi

# EOF on stdin stops it as well.
BG_STDIN=1 start_bg embed_poll_eof '^listening on port ([0-9]+)$' \
    "$EMBED_POLL" --listen 127.0.0.1@0 --upstream "$upstream" --ca-file "$PKI/ca.pem"
pid=$BG_PID
exec {BG_IN}>&-
wait "$pid"
check_eq "embed_poll exits 0 on end of input" 0 "$?"
forget_pid "$pid"

# ---- query_once ---------------------------------------------------------------------

out=$(timeout 20 "$QUERY_ONCE" --upstream "$upstream" --ca-file "$PKI/ca.pem" once.example)
status=$?
check_eq "query_once A: exit status" 0 "$status"
check_eq "query_once A: output" "rcode NOERROR
A $(expected_a once.example)" "$out"

out=$(timeout 20 "$QUERY_ONCE" --upstream "$upstream" --ca-file "$PKI/ca.pem" once.example AAAA)
check_eq "query_once AAAA: exit status" 0 "$?"
n=$(expected_a once.example)
check_eq "query_once AAAA: output" "rcode NOERROR
AAAA 2001:db8::$(printf %x "${n##*.}")" "$out"

out=$(timeout 20 "$QUERY_ONCE" --upstream "$upstream" --ca-file "$PKI/ca.pem" nxname.example)
check_eq "query_once NXDOMAIN: exit status" 0 "$?"
check_eq "query_once NXDOMAIN: output" "rcode NXDOMAIN" "$out"

# Trusting the wrong CA: no answer, exit 1.
out=$(timeout 20 "$QUERY_ONCE" --upstream "$upstream" --ca-file "$PKI/rogue-ca.pem" once.example)
check_eq "query_once with an untrusted upstream: exit status" 1 "$?"

stop_dotserver
check_eq "query_once: upstream saw exactly the 3 trusted queries (+2 from embed_poll)" 5 \
    "$(server_counter queries)"
finish
