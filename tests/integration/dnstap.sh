#!/bin/bash
# SPDX-License-Identifier: MIT
# --dnstap against real dnstap tools: fstrm_capture (fstrm-bin) receives the
# Frame Streams on a unix socket, then on TCP, and writes them to a file;
# three dnstap readers read the file back: golang-dnstap's `dnstap`, BIND's
# dnstap-read and dnstap-ldns (as far as it can). A query that goes upstream
# must show as CLIENT_QUERY, FORWARDER_QUERY, FORWARDER_RESPONSE and
# CLIENT_RESPONSE with its name, the client's address and the upstream's;
# a cache hit as CLIENT_QUERY and CLIENT_RESPONSE alone.
. "$(dirname "$0")/lib.sh"

command -v fstrm_capture >/dev/null || { echo "SKIP: needs fstrm_capture (fstrm-bin)"; exit 77; }
command -v dnstap-ldns >/dev/null || { echo "SKIP: needs dnstap-ldns"; exit 77; }
command -v dnstap >/dev/null || { echo "SKIP: needs dnstap (golang-github-dnstap-golang-dnstap-cli)"; exit 77; }
command -v dnstap-read >/dev/null || { echo "SKIP: needs dnstap-read (bind9-dnsutils)"; exit 77; }
# Only a build without the libraries is a reason to skip; any other refusal
# of the option fails below.
if "$DOTPROXYD" --check-config --dnstap unix:/x -u 127.0.0.1#dns.test 2>&1 |
    grep -q 'built without dnstap'; then
    echo "SKIP: dotproxyd built without dnstap (libfstrm-dev, libprotobuf-c-dev, protobuf-c-compiler)"
    exit 77
fi

make_pki
start_dotserver

# start_capture NAME ARGS...: fstrm_capture writing $WORK/NAME.fstrm; waits
# until it has its socket and its file open.
start_capture() {
    local name=$1
    shift
    start_bg "$name" 'opened output file' fstrm_capture -d -d -d -t protobuf:dnstap.Dnstap \
        -w "$WORK/$name.fstrm" "$@"
    CAP_PID=$BG_PID
    CAP_DRAIN=$BG_DRAIN
}

# wait_connected NAME: the receiver says it accepted dotproxyd's connection
# (the messages before that would be dropped, by design).
wait_connected() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q 'accepted' "$WORK/$1.log" && return 0
        sleep 0.05
    done
    fail "$1: dotproxyd never connected"
    return 1
}

# run_case NAME DNSTAP-SPEC: two identical queries (upstream, then cache) and
# a TCP one, then the file read back.
run_case() {
    local name=$1 spec=$2 out
    PROXY_NAME=dotproxyd-$name start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" \
        --ca-file "$PKI/ca.pem" --timeout 3000 --dnstap "$spec"
    wait_connected "$name"
    check_eq "$name: UDP answer" "$(expected_a tap.example)" "$(qdig +short tap.example A)"
    check_eq "$name: UDP answer, again (cache)" "$(expected_a tap.example)" \
        "$(qdig +short tap.example A)"
    check_eq "$name: TCP answer" "$(expected_a tcp.tap.example)" \
        "$(qdig +tcp +short tcp.tap.example A)"
    stop_proxy
    check_eq "$name: dotproxyd exit status" 0 "$STOP_STATUS"
    stop_bg "$CAP_PID" "$CAP_DRAIN"
    # golang-dnstap's reader knows the whole current schema, DOT included.
    out=$(dnstap -y -r "$WORK/$name.fstrm" 2>&1)
    printf '%s\n' "$out" >"$WORK/$name-read.log"
    count() { grep -c -- "$1" <<<"$out"; }
    check_eq "$name: CLIENT_QUERY messages (2 UDP, 1 TCP)" 3 "$(count 'type: CLIENT_QUERY')"
    check_eq "$name: CLIENT_RESPONSE messages" 3 "$(count 'type: CLIENT_RESPONSE')"
    check_eq "$name: FORWARDER_QUERY messages (the cache hit has none)" 2 \
        "$(count 'type: FORWARDER_QUERY')"
    check_eq "$name: FORWARDER_RESPONSE messages" 2 "$(count 'type: FORWARDER_RESPONSE')"
    check_match "$name: the version" 'version: "dotproxyd [0-9]' "$out"
    check_match "$name: the identity (host name)" "identity: \"$(hostname)\"" "$out"
    check_match "$name: the question name" 'tap\.example\.[[:space:]]+IN[[:space:]]+A' "$out"
    check_match "$name: the client's address" 'query_address: 127\.0\.0\.1' "$out"
    check_match "$name: the upstream's port" "response_port: $SRV_PORT" "$out"
    check_match "$name: UDP clients" 'socket_protocol: UDP' "$out"
    check_match "$name: a TCP client" 'socket_protocol: TCP' "$out"
    check_match "$name: the upstream over TLS (dnstap's DOT)" 'socket_protocol: DOT' "$out"
    check_match "$name: the answer" "$(expected_a tap.example)" "$out"
    check_eq "$name: query and response times" 10 "$(count 'query_time: !!timestamp 20')"
    check_eq "$name: response times on responses" 5 "$(count 'response_time: !!timestamp 20')"
    # BIND's reader, one line a message: kind, the two ends, the name.
    out=$(dnstap-read "$WORK/$name.fstrm" 2>&1)
    printf '%s\n' "$out" >>"$WORK/$name-read.log"
    check_match "$name: dnstap-read: client query" \
        "CQ 127\.0\.0\.1:[0-9]+ -> \? UDP [0-9]+b tap\.example/IN/A" "$out"
    check_match "$name: dnstap-read: forwarder query" \
        "FQ \? -> 127\.0\.0\.1:$SRV_PORT .* tap\.example/IN/A" "$out"
    check_match "$name: dnstap-read: forwarder response" \
        "FR \? <- 127\.0\.0\.1:$SRV_PORT .* tap\.example/IN/A" "$out"
    check_match "$name: dnstap-read: client response" \
        "CR 127\.0\.0\.1:[0-9]+ <- \? TCP [0-9]+b tcp\.tap\.example/IN/A" "$out"
    # Debian 12's dnstap-ldns (0.2.1) predates DOT in the schema and stops at
    # the first upstream message; what comes before it must read.
    out=$(dnstap-ldns -y -r "$WORK/$name.fstrm" 2>&1)
    printf '%s\n' "$out" >>"$WORK/$name-read.log"
    check_match "$name: dnstap-ldns: the first client query" \
        'type: CLIENT_QUERY.*query_address: "127\.0\.0\.1".*tap\.example\.[[:space:]]+IN[[:space:]]+A' \
        "$(tr '\n' ' ' <<<"$out")"
}

start_capture unix -u "$WORK/tap.sock"
run_case unix "unix:$WORK/tap.sock"

start_capture tcp -a 127.0.0.1 -p 0
cap_port=$(ss -ltnpH | sed -n "s/.*127\.0\.0\.1:\([0-9]*\) .*pid=$CAP_PID,.*/\1/p" | head -n 1)
[ -n "$cap_port" ] || die "cannot find fstrm_capture's TCP port"
run_case tcp "tcp:127.0.0.1@$cap_port"

# A receiver that accepts the connection and never answers the Frame Streams
# handshake: libfstrm's I/O thread is stuck, the queue fills. Queries must
# still be answered at once, the records that find the queue full dropped
# and counted on /metrics, and the daemon must still stop promptly.
start_bg stall '^listening$' python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
print("listening", flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
' "$WORK/stall.sock"
PROXY_NAME=dotproxyd-stall start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" \
    --ca-file "$PKI/ca.pem" --timeout 3000 --dnstap "unix:$WORK/stall.sock" --metrics 127.0.0.1@0
mport=""
for ((i = 0; i < 200; i++)); do
    mport=$(sed -n 's/.*metrics and API on port \([0-9]*\).*/\1/p' "$WORK/dotproxyd-stall.log")
    [ -n "$mport" ] && break
    sleep 0.05
done
[ -n "$mport" ] || die "no metrics port in the log"
# 3000 queries for one name, one at a time (the first goes upstream, the
# rest are cache hits): 6002 records (a client query and response each, and
# the first's upstream query and response) for a queue of 4096.
answered=$(python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
n = 0
for i in range(3000):
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x05stall\x07example\x00\x00\x01\x00\x01"
    s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
    try:
        a = s.recv(4096)
        n += a[:2] == q[:2] and (a[3] & 15) == 0
    except socket.timeout:
        pass
print(n)
' "$PROXY_PORT")
check_eq "stalled receiver: every query answered" 3000 "$answered"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
queued=$(sed -n 's/^dotproxyd_dnstap_messages_total \([0-9]*\)$/\1/p' <<<"$metrics")
dropped=$(sed -n 's/^dotproxyd_dnstap_dropped_total \([0-9]*\)$/\1/p' <<<"$metrics")
check_eq "stalled receiver: every record queued or counted as dropped" 6002 \
    "$((${queued:-0} + ${dropped:-0}))"
check_match "stalled receiver: drops counted" '^[1-9][0-9]*$' "${dropped:-}"
stop_proxy
check_eq "stalled receiver: dotproxyd exit status" 0 "$STOP_STATUS"
check_match "stalled receiver: stopped within 10 s ($STOP_MS ms)" '^[0-9]{1,4}$' "$STOP_MS"

finish
