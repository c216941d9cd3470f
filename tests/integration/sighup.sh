#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGHUP re-reads the configuration file: with the file switched from
# upstream A to upstream B, queries reach B and no longer A; the process stays
# up; a broken file is reported and the running configuration kept; SIGTERM
# still exits 0. The daemon's output is read line by line through a FIFO, so
# every "the reload has been applied" is a blocking read, not a sleep.
. "$(dirname "$0")/lib.sh"

make_pki

# Two DoT servers, A and B, each with its own log (and final counters).
start_bg dotA '^port ([0-9]+)$' "$TS_DOTSERVER" --cert "$PKI/server.pem" \
    --key "$PKI/server-key.pem"
A_PID=$BG_PID A_PORT=$BG_MATCH A_DRAIN=$BG_DRAIN
start_bg dotB '^port ([0-9]+)$' "$TS_DOTSERVER" --cert "$PKI/server.pem" \
    --key "$PKI/server-key.pem"
B_PID=$BG_PID B_PORT=$BG_MATCH B_DRAIN=$BG_DRAIN

conf=$WORK/dotproxyd.conf
write_conf() {
    cat >"$conf.new" <<EOF
listen = $2
upstream = 127.0.0.1@$1#dns.test
ca-file = $PKI/ca.pem
# Every query goes upstream, so the servers' counters count them all.
cache-size = 0
EOF
    mv "$conf.new" "$conf" # a reload never sees half a file
}
write_conf "$A_PORT" 127.0.0.1@0

# The daemon, its output on a FIFO this script keeps reading.
out=$WORK/proxy.out.fifo
mkfifo "$out" || die "mkfifo"
# With the metrics server built in (and curl at hand), POST /api/v1/reload
# takes the same path as SIGHUP.
metrics_args=()
if command -v curl >/dev/null &&
    "$DOTPROXYD" --check-config -u 127.0.0.1 --metrics 0 >/dev/null 2>&1; then
    printf 'test-token\n' >"$WORK/token"
    chmod 600 "$WORK/token"
    metrics_args=(--metrics 127.0.0.1@0 --api-token-file "$WORK/token"
        --metrics-host Status.Example.)
fi
"$DOTPROXYD" -c "$conf" --timeout 3000 "${metrics_args[@]}" >"$out" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
exec {PFD}<"$out"
: >"$WORK/dotproxyd.log"

# wait_line REGEX: read the daemon's output until a line matches (20 s at
# most between lines); sets LINE.
wait_line() {
    local line
    while IFS= read -r -t 20 -u "$PFD" line; do
        printf '%s\n' "$line" >>"$WORK/dotproxyd.log"
        if [[ $line =~ $1 ]]; then
            LINE=$line
            return 0
        fi
    done
    die "dotproxyd did not print /$1/"
}

if [ ${#metrics_args[@]} -gt 0 ]; then
    wait_line 'metrics and API on port ([0-9]+)'
    METRICS_PORT=${BASH_REMATCH[1]}
fi
wait_line 'listening on 127\.0\.0\.1@([0-9]+)'
PROXY_PORT=${BASH_REMATCH[1]}
check_match "started with upstream A" "upstreams 127\.0\.0\.1@$A_PORT#dns\.test" "$LINE"

for n in a1 a2 a3; do
    check_eq "before reload: $n.example answered" "$(expected_a $n.example)" \
        "$(qdig +short $n.example A)"
done

# Switch to B. The listen address changes too: that one needs a restart, so
# the daemon says so and keeps serving where it is.
write_conf "$B_PORT" 127.0.0.2@0
kill -HUP "$PROXY_PID"
wait_line 'warning: reload: changes to listen take effect only after a restart'
pass "listen change on reload: restart needed, said so"
wait_line 'dotproxyd\[0\]: info: configuration reloaded: 1 upstream\(s\), 0 kept warm'
pass "reload applied by the worker"

for n in b1 b2 b3 b4 b5; do
    check_eq "after reload: $n.example answered" "$(expected_a $n.example)" \
        "$(qdig +short $n.example A)"
done

# A broken file: reported with file and line, and nothing changes.
printf 'upstream = 127.0.0.1@%s#dns.test\nno-such-key = 1\n' "$A_PORT" >"$conf"
kill -HUP "$PROXY_PID"
wait_line 'error: reload: '
check_match "broken file: error names file and line, config kept" \
    "error: reload: $conf:2: unknown key 'no-such-key'; keeping the running configuration" "$LINE"
if kill -0 "$PROXY_PID" 2>/dev/null; then pass "broken file: still running"; else
    fail "broken file: dotproxyd exited"; fi
for n in c1 c2; do
    check_eq "broken file: $n.example still answered" "$(expected_a $n.example)" \
        "$(qdig +short $n.example A)"
done

# A bad value rather than a bad key: the same.
printf 'upstream = 127.0.0.1@%s#dns.test\ntimeout = soon\n' "$A_PORT" >"$conf"
kill -HUP "$PROXY_PID"
wait_line 'error: reload: '
check_match "bad value: reported, config kept" \
    "$conf:2: timeout = 'soon': must be a number of milliseconds" "$LINE"
check_eq "bad value: d1.example still answered" "$(expected_a d1.example)" \
    "$(qdig +short d1.example A)"

if [ ${#metrics_args[@]} -gt 0 ]; then
    write_conf "$B_PORT" 127.0.0.1@0
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        "http://127.0.0.1:$METRICS_PORT/api/v1/reload")
    check_eq "API reload without the token: 401" 401 "$code"
    # --metrics-host: that name is answered (case and final dot aside), others
    # are refused as DNS rebinding would send them; /health answers any Host.
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: status.example:8080' \
        "http://127.0.0.1:$METRICS_PORT/api/v1/stats")
    check_eq "--metrics-host: the named Host is answered" 200 "$code"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: evil.example' \
        "http://127.0.0.1:$METRICS_PORT/api/v1/stats")
    check_eq "--metrics-host: another name gets 421" 421 "$code"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: evil.example' \
        "http://127.0.0.1:$METRICS_PORT/health")
    check_eq "--metrics-host: /health answers any Host" 200 "$code"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        -H 'Authorization: Bearer test-token' "http://127.0.0.1:$METRICS_PORT/api/v1/reload")
    check_eq "API reload with the token: 200" 200 "$code"
    wait_line 'dotproxyd\[0\]: info: configuration reloaded: 1 upstream\(s\)'
    pass "API reload applied by the worker"
    check_eq "after API reload: e1.example answered" "$(expected_a e1.example)" \
        "$(qdig +short e1.example A)"
    b_expected=9
else
    echo "note: no metrics server or no curl: API reload not tested"
    b_expected=8
fi

# Other options only a restart applies (the option table marks them): named
# in one warning, in table order, and the rest of the file still applied.
write_conf "$B_PORT" 127.0.0.1@0
printf 'workers = 2\nlog-format = json\n' >>"$conf"
kill -HUP "$PROXY_PID"
wait_line 'warning: reload: changes to '
check_match "restart-only options: named together" \
    'reload: changes to workers, log-format take effect only after a restart$' "$LINE"
wait_line 'dotproxyd\[0\]: info: configuration reloaded: 1 upstream\(s\)'
pass "restart-only options: the reload still applied"
check_eq "after that reload: f1.example answered" "$(expected_a f1.example)" \
    "$(qdig +short f1.example A)"
b_expected=$((b_expected + 1))

# SIGTERM: exit 0. The rest of the output goes to the log.
cat <&"$PFD" >>"$WORK/dotproxyd.log" &
PROXY_DRAIN=$!
PIDS+=("$PROXY_DRAIN")
exec {PFD}<&-
stop_bg "$PROXY_PID" "$PROXY_DRAIN"
check_eq "SIGTERM after reloads: exit status" 0 "$STOP_STATUS"

stop_bg "$A_PID" "$A_DRAIN"
stop_bg "$B_PID" "$B_DRAIN"
a=$(sed -n 's/^queries=//p' "$WORK/dotA.log")
b=$(sed -n 's/^queries=//p' "$WORK/dotB.log")
check_eq "upstream A got the 3 queries before the reload, and no more" 3 "$a"
check_eq "upstream B got the $b_expected queries after it" "$b_expected" "$b"
finish
