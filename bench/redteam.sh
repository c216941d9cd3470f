#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# redteam.sh - replay issue 11's red-team scenarios against the built dotproxyd
# on loopback and print one line per scenario with its figure (the "after"
# figures of the issue's closing note).
#
#   bench/redteam.sh [BUILD_DIR]        (default: build)
#
# Uses the integration tests' helpers (tests/integration/lib.sh) and clients
# (tests/integration/faults/dnsq.py) and ts-dotserver as the upstream; every
# process it starts is stopped by PID when it exits. Loopback only. About a
# minute. Scenarios:
#   black-holed first upstream  TCP accepted, TLS never answered, a good one
#                               second: how long the very first query takes
#   closing / garbage upstream  one that closes after every query (or answers
#                               garbage) first, a good one second; 50 queries
#                               over 10 s, with latency and ordered selection
#   large query on failure      a 512-octet query while the upstream is down
#   blocked stderr              stderr on a pipe nobody reads, thousands of
#                               failures logged, then cached names asked
#   metrics port lock           34 keep-alive HTTP clients (from 127.0.0.2, a
#                               pod), then 10 /health probes (from 127.0.0.1,
#                               the kubelet)
# Not replayed here (Check tests cover them: test_upstream_health "slots",
# test_limits "budget"): dead wire slots and TCP budget fairness, which need
# an upstream that answers some queries and not others, and a budget filled
# exactly.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$SRC/build}
[ -x "$B/cli/dotproxyd" ] || { echo "redteam.sh: build first (no $B/cli/dotproxyd)" >&2; exit 1; }
HARD_TIMEOUT=${HARD_TIMEOUT:-300}
set -- "$B/cli/dotproxyd" "$B/tests/support/ts-dotserver" "$B/tests/support/ts-pki"
# shellcheck source=../tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
DNSQ=$SRC/tests/integration/faults/dnsq.py
make_pki
CA=(--ca-file "$PKI/ca.pem")
up() { echo "127.0.0.1@$1#dns.test"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# A TCP port that accepts (kernel backlog) and never answers: sets MUTE_PORT.
start_mute() {
    start_bg mute '^port ([0-9]+)$' python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128)
print("port", s.getsockname()[1], flush=True)
time.sleep(3600)'
    MUTE_PORT=$BG_MATCH
    MUTE_PID=$BG_PID
    MUTE_DRAIN=$BG_DRAIN
}

# ---- black-holed first upstream ----------------------------------------------------
start_mute
start_dotserver
start_proxy --upstream "$(up "$MUTE_PORT")" --upstream "$(up "$SRV_PORT")" "${CA[@]}" --cache-size 0
t0=$(ms)
rc=$(qdig first.redteam.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
t1=$(ms)
echo "black-holed first upstream at connect: first query ${rc:-no answer} after $((t1 - t0)) ms"
stop_proxy
stop_dotserver
stop_bg "$MUTE_PID" "$MUTE_DRAIN"

# ---- closing / garbage upstream ----------------------------------------------------
for mode in close-after garbage; do
    for sel in latency ordered; do
        if [ $mode = close-after ]; then start_dotserver server --close-after 1; else start_dotserver server --garbage; fi
        BAD_PID=$SRV_PID BAD_DRAIN=$SRV_DRAIN BAD_PORT=$SRV_PORT
        start_dotserver
        start_proxy --upstream "$(up "$BAD_PORT")" --upstream "$(up "$SRV_PORT")" "${CA[@]}" \
            --selection $sel --cache-size 0
        r=$(python3 "$DNSQ" seq --port "$PROXY_PORT" --count 50 --interval 0.2 --timeout 5 \
            --tag "$mode-$sel" | tail -n 1)
        stop_proxy
        stop_dotserver
        stop_bg "$BAD_PID" "$BAD_DRAIN"
        hs=$(sed -n 's/^handshakes=//p' "$WORK/dotserver.log" | head -n 1)
        what=$([ $mode = close-after ] && echo "closing" || echo "garbage")
        echo "$what upstream ($sel): $(field answered "$r")/50 answered," \
            "$(field servfail "$r") SERVFAIL, $(field lost "$r") lost"
    done
done

# ---- large query on failure --------------------------------------------------------
exec {hold}< <(python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(600)')
read -r DEAD_PORT <&"$hold"
start_proxy --upstream "$(up "$DEAD_PORT")" "${CA[@]}" --timeout 1000
out=$(qdig +padding=512 +bufsize=1232 big-query.redteam.test A)
rc=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out" | head -n 1)
sz=$(sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p' <<<"$out")
echo "large query (512 octets, EDNS padding) with the upstream down: ${rc:-no answer}${sz:+ ($sz octets)}"
stop_proxy
exec {hold}<&-

# ---- blocked stderr ----------------------------------------------------------------
start_dotserver
PP=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$WORK/stderr.fifo"
# A reader that never reads keeps the pipe open: writes block once it is full.
sleep 600 <"$WORK/stderr.fifo" &
READER=$!
PIDS+=("$READER")
"$DOTPROXYD" --listen "127.0.0.1@$PP" --upstream "$(up "$SRV_PORT")" "${CA[@]}" --verbose \
    --timeout 300 2>"$WORK/stderr.fifo" >/dev/null &
BLOCKED=$!
PIDS+=("$BLOCKED")
PROXY_PORT=$PP
for _ in $(seq 100); do qdig +short warm.redteam.test A >/dev/null 2>&1 && break; sleep 0.1; done
qdig +short cached.redteam.test A >/dev/null
stop_dotserver # from now on every query fails, and says so on stderr
python3 "$DNSQ" flood --port "$PROXY_PORT" --duration 5 --window 50 --timeout 1 --tag fail >/dev/null
ok=0
for i in $(seq 50); do
    [ "$(qdig +short +time=1 cached.redteam.test A)" = "$(expected_a cached.redteam.test)" ] && ok=$((ok + 1))
done
echo "blocked stderr (verbose, upstream down, 5 s of failures): $ok/50 cached queries answered"
kill "$BLOCKED" "$READER" 2>/dev/null
wait "$BLOCKED" "$READER" 2>/dev/null
forget_pid "$BLOCKED"
forget_pid "$READER"

# ---- metrics port lock -------------------------------------------------------------
start_dotserver
MP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_proxy --upstream "$(up "$SRV_PORT")" "${CA[@]}" --metrics "127.0.0.1@$MP"
start_bg keepalive '^ready$' python3 -c '
import socket, sys, time
port = int(sys.argv[1]); socks = []
for i in range(34):
    s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in socks:
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); s.recv(65536)
        except OSError:
            pass
    time.sleep(8)' "$MP"
KA_PID=$BG_PID KA_DRAIN=$BG_DRAIN
ok=0
for i in $(seq 10); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$MP/health")
    [ "$code" = 200 ] && ok=$((ok + 1))
done
echo "metrics port with 34 keep-alive clients (one request each 8 s): $ok/10 /health probes answered 200"
stop_bg "$KA_PID" "$KA_DRAIN"
stop_proxy
stop_dotserver
exit 0
