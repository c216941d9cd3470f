#!/bin/bash
# SPDX-License-Identifier: MIT
# Fault injection, black box: the built dotproxyd on loopback against
# ts-dotserver made to fail in the ways real upstreams and clients do, with
# the python3 clients in faults/dnsq.py counting what comes back. Every query
# gets an answer or SERVFAIL, never nothing and never someone else's answer:
#   upstream_down     upstream closed at start, then up (no restart of the proxy)
#   upstream_restart  upstream killed -9 mid-stream, back 1 s later
#   silent_upstream   a black hole as the only upstream, then beside a good one
#   idle_close        an upstream that closes idle connections after 1 s
#   bad_upstream      mismatched IDs, wrong questions, garbage frames
#   idle_clients      300 idle TCP clients and a slowloris vs a fresh client
#   flood             one flooding client vs another client; peak RSS
#   allow             the access list
#   sigterm_inflight  SIGTERM with 20 queries in flight
# Each scenario prints a "figures:" line; a summary table ends the output.
# Options the daemon does not have yet are probed in --help: a scenario that
# needs one is skipped with a message saying which.
. "$(dirname "$0")/lib.sh"

DNSQ=$(dirname "$0")/faults/dnsq.py
command -v python3 >/dev/null || {
    echo "SKIP: python3 not found"
    exit 77
}
HELP=$("$DOTPROXYD" --help 2>&1)
HAVE_DIG=0
command -v dig >/dev/null && HAVE_DIG=1
SUMMARY=()

# has_opt OPTION: whether dotproxyd --help lists it.
has_opt() {
    [[ $HELP =~ (^|[[:space:],])$1([[:space:],=]|$) ]]
}

skip_scenario() {
    echo "skip: $1: $2"
    SUMMARY+=("$(printf '%-26s %s' "$1" "skipped: $2")")
}

# figures SCENARIO RESULT-LINE [NOTE]: print and keep a scenario's figures.
figures() {
    local r=$2
    echo "figures: $1: sent=$(fig sent "$r") answered=$(fig answered "$r")" \
        "servfail=$(fig servfail "$r") refused=$(fig refused "$r") wrong=$(fig wrong "$r")" \
        "lost=$(fig lost "$r") p99_ms=$(fig p99_ms "$r") max_ms=$(fig max_ms "$r")${3:+ $3}"
    SUMMARY+=("$(printf '%-26s %6s %8s %8s %7s %5s %5s %7s %7s  %s' "$1" \
        "$(fig sent "$r")" "$(fig answered "$r")" "$(fig servfail "$r")" \
        "$(fig refused "$r")" "$(fig wrong "$r")" "$(fig lost "$r")" \
        "$(fig p99_ms "$r")" "$(fig max_ms "$r")" "${3:-}")")
}

# fig KEY [RESULT-LINE]: one key=value figure of a driver's result line
# ("-" when it is not there).
fig() {
    local re="(^| )$1=(-?[0-9]+)( |$)"
    if [[ ${2:-$RES} =~ $re ]]; then echo "${BASH_REMATCH[2]}"; else echo -; fi
}

# check_le DESCRIPTION VALUE LIMIT: VALUE is a number no greater than LIMIT.
check_le() {
    if [[ $2 =~ ^-?[0-9]+$ ]] && [ "$2" -le "$3" ]; then
        pass "$1 ($2 <= $3)"
    else
        fail "$1: got '$2', limit $3"
    fi
}

check_ge() {
    if [[ $2 =~ ^-?[0-9]+$ ]] && [ "$2" -ge "$3" ]; then
        pass "$1 ($2 >= $3)"
    else
        fail "$1: got '$2', want at least $3"
    fi
}

# drive NAME MODE [ARGS...]: run the driver against the proxy to the end;
# RES is its result line, its output is in $WORK/NAME.log.
drive() {
    local name=$1
    shift
    timeout 60 python3 "$DNSQ" "$@" --port "$PROXY_PORT" >"$WORK/$name.log" 2>&1
    RES=$(grep '^result ' "$WORK/$name.log" | tail -n 1)
    [ -n "$RES" ] || fail "$name: the driver gave no result: $(tail -n 5 "$WORK/$name.log")"
}

# drive_bg NAME MODE [ARGS...]: the driver in the background, its output
# read through a FIFO: await NAME REGEX blocks until it prints a matching line
# (MATCH: the first group), drive_end NAME reads the rest and sets RES.
drive_bg() {
    local name=$1 fifo=$WORK/$1.out.fifo
    shift
    rm -f "$fifo"
    mkfifo "$fifo" || die "mkfifo"
    : >"$WORK/$name.log"
    python3 "$DNSQ" "$@" --port "$PROXY_PORT" >"$fifo" 2>&1 &
    DRV_PID=$!
    PIDS+=("$DRV_PID")
    exec {DRV_FD}<"$fifo"
}

await() {
    local line
    MATCH=""
    while IFS= read -r -t 30 -u "$DRV_FD" line; do
        printf '%s\n' "$line" >>"$WORK/$1.log"
        if [[ $line =~ $2 ]]; then
            MATCH=${BASH_REMATCH[1]:-}
            return 0
        fi
    done
    die "$1: the driver did not print /$2/: $(tail -n 5 "$WORK/$1.log")"
}

drive_end() {
    local line
    while IFS= read -r -t 60 -u "$DRV_FD" line; do
        printf '%s\n' "$line" >>"$WORK/$1.log"
    done
    exec {DRV_FD}<&-
    wait "$DRV_PID"
    forget_pid "$DRV_PID"
    RES=$(grep '^result ' "$WORK/$1.log" | tail -n 1)
    [ -n "$RES" ] || fail "$1: the driver gave no result: $(tail -n 5 "$WORK/$1.log")"
}

# upstream NAME [ARGS...]: a ts-dotserver (log $WORK/NAME.log). Sets
# SRV_PID, SRV_PORT, SRV_DRAIN, SRV_NAME.
upstream() {
    local name=$1
    shift
    start_bg "$name" '^port ([0-9]+)$' "$TS_DOTSERVER" \
        --cert "$PKI/server.pem" --key "$PKI/server-key.pem" "$@"
    SRV_PID=$BG_PID
    SRV_PORT=$BG_MATCH
    SRV_DRAIN=$BG_DRAIN
    SRV_NAME=$name
}

# upstream_done [PID DRAIN NAME]: SIGTERM, and it exits 0 (default: the
# last one started).
upstream_done() {
    stop_bg "${1:-$SRV_PID}" "${2:-$SRV_DRAIN}"
    check_eq "ts-dotserver ${3:-$SRV_NAME} exit status" 0 "$STOP_STATUS"
}

# counter NAME KEY: a counter the stopped ts-dotserver NAME printed.
counter() {
    sed -n "s/^$2=//p" "$WORK/$1.log" | tail -n 1
}

# proxy NAME ARGS...: dotproxyd on a kernel-chosen port; no cache, so that
# every query is a trip to the upstream.
proxy() {
    PROXY_NAME=$1
    shift
    PROXY_NAME=$PROXY_NAME start_proxy --ca-file "$PKI/ca.pem" --cache-size 0 "$@"
}

# proxy_done SCENARIO: SIGTERM, exit 0.
proxy_done() {
    stop_proxy
    check_eq "$1: dotproxyd exit status" 0 "$STOP_STATUS"
}

up() {
    echo "127.0.0.1@$1#dns.test"
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# section NAME: a header with the time so far, so slow scenarios show.
section() {
    echo "== $1 (at ${SECONDS} s)"
}

make_pki

# ---- 1. upstream down at start, then up ----------------------------------------
section upstream_down
# A port just closed is a port nobody listens on.
upstream s1-probe
port=$SRV_PORT
upstream_done
proxy s1-proxy -u "$(up "$port")" --timeout 3000
drive s1-down seq --tag s1down --count 5 --timeout 3
down=$RES
check_eq "upstream_down: every query SERVFAIL" "5" "$(fig servfail)"
check_le "upstream_down: slowest SERVFAIL, ms" "$(fig max_ms)" 999
if [ "$HAVE_DIG" = 1 ]; then
    check_match "upstream_down: dig over TCP sees SERVFAIL" 'status: SERVFAIL' \
        "$(qdig +tcp down.example A 2>&1)"
fi
upstream s1-up --port "$port"
t0=$(now_ms)
drive s1-up seq --tag s1up --interval 0.2 --timeout 1 --until-answered 8
recover=$(fig first_answer_ms)
check_ge "upstream_down: answered once the upstream is up" "$(fig answered)" 1
check_le "upstream_down: ms from upstream up to the first answer" "$recover" 8000
drive s1-after seq --tag s1after --count 5 --timeout 3
check_eq "upstream_down: then every query answered" "5" "$(fig answered)"
figures upstream_down "$down" "all while down; first answer ${recover} ms after it was up"
proxy_done upstream_down
upstream_done

# ---- 2. upstream killed -9 and restarted mid-stream --------------------------------
section upstream_restart
# 20 qps for 10 s; at 4 s the upstream dies, at 5 s it is back on its port.
upstream s2-up
port=$SRV_PORT
proxy s2-proxy -u "$(up "$port")" --timeout 2000
drive_bg s2-stream stream --tag s2 --rate 20 --duration 10 --timeout 3 \
    --mark kill@4 --mark restart@5
await s2-stream '^mark kill ([0-9]+)$'
kill_ms=$MATCH
# (bash would report the job "Killed" on stderr: it is the point here.)
stop_bg "$SRV_PID" "$SRV_DRAIN" KILL 2>/dev/null
await s2-stream '^mark restart ([0-9]+)$'
upstream s2-up-again --port "$port"
drive_end s2-stream
restart_ms=$MATCH
check_eq "upstream_restart: no query lost (no reply at all)" 0 "$(fig lost)"
check_eq "upstream_restart: no wrong answer" 0 "$(fig wrong)"
check_ge "upstream_restart: answered" "$(fig answered)" 150
if [ "$(fig servfail)" != 0 ]; then
    # Only a query sent while the upstream was down (or in flight as it
    # died) may fail,
    check_ge "upstream_restart: first SERVFAIL sent, ms" "$(fig servfail_first_ms)" $((kill_ms - 200))
    # and the reconnect backoff (lib/upstream.c: 250 ms doubling, +-10 %)
    # may hold it back for one more step: after ~1 s of failures the next
    # probe is due at most ~1.1 s after the last one, so 1.5 s past the
    # restart every query is answered again.
    check_le "upstream_restart: last SERVFAIL sent, ms" "$(fig servfail_last_ms)" $((restart_ms + 1500))
fi
figures upstream_restart "$RES" "killed at ${kill_ms} ms, back at ${restart_ms} ms; SERVFAIL sent $(fig servfail_first_ms)..$(fig servfail_last_ms) ms"
proxy_done upstream_restart
upstream_done

# ---- 3. a silent (black-holed) upstream --------------------------------------------
section silent_upstream
upstream s3-silent --silent
silent=$SRV_PORT
silent_pid=$SRV_PID
silent_drain=$SRV_DRAIN
proxy s3-proxy -u "$(up "$silent")" --timeout 1000
drive s3-alone burst --tag s3alone --count 10 --timeout 4
check_eq "silent_upstream alone: every query SERVFAIL" 10 "$(fig servfail)"
check_eq "silent_upstream alone: none without a reply" 0 "$(fig lost)"
# --timeout 1000 plus the time to notice it: ~1.2 s on a loaded machine.
check_le "silent_upstream alone: slowest SERVFAIL, ms" "$(fig max_ms)" 1300
figures silent_upstream_alone "$RES" "--timeout 1000"
proxy_done silent_upstream
upstream s3-good
proxy s3-proxy2 -u "$(up "$silent")" -u "$(up "$SRV_PORT")" --timeout 1000
drive s3-pair seq --tag s3pair --count 10 --timeout 3
check_eq "silent_upstream beside a good one: every query answered" 10 "$(fig answered)"
check_le "silent_upstream beside a good one: slowest answer, ms" "$(fig max_ms)" 999
figures silent_upstream_pair "$RES" "silent first, healthy second"
proxy_done silent_upstream_pair
upstream_done
upstream_done "$silent_pid" "$silent_drain" s3-silent

# ---- 4. an upstream that closes idle connections after 1 s ---------------------------
section idle_close
upstream s4-up --idle-close 1000
proxy s4-proxy -u "$(up "$SRV_PORT")" --timeout 3000
drive s4-spaced seq --tag s4 --count 5 --interval 1.5 --timeout 3
check_eq "idle_close: queries 1.5 s apart all answered" 5 "$(fig answered)"
check_eq "idle_close: no SERVFAIL" 0 "$(fig servfail)"
r4=$RES
proxy_done idle_close
upstream_done
# The fault happened: the upstream closed an idle connection under the proxy
# (after that the proxy may learn the limit and close first), and no
# connection lived from one query to the next.
closed=$(counter s4-up closed_by_server)
conns=$(counter s4-up connections)
check_ge "idle_close: the upstream closed an idle connection" "$closed" 1
check_ge "idle_close: a connection per query" "$conns" 5
figures idle_close "$r4" "$conns connections, $closed closed by the upstream"

# ---- 5. an upstream that answers wrongly ----------------------------------------------
section bad_upstream
for fault in bad-id wrong-question garbage; do
    upstream "s5-$fault" "--$fault"
    proxy "s5-proxy-$fault" -u "$(up "$SRV_PORT")" --timeout 1000
    drive "s5-$fault" burst --tag "s5${fault//-/}" --count 10 --timeout 4
    check_eq "bad_upstream --$fault: no wrong answer reaches the client" 0 "$(fig wrong)"
    check_eq "bad_upstream --$fault: none without a reply" 0 "$(fig lost)"
    check_eq "bad_upstream --$fault: every query SERVFAIL" 10 "$(fig servfail)"
    figures "bad_upstream_$fault" "$RES"
    proxy_done "bad_upstream --$fault"
    upstream_done
    check_ge "bad_upstream --$fault: the upstream saw the queries" \
        "$(counter "s5-$fault" queries)" 10
done

# ---- 6. idle TCP clients and a slowloris ----------------------------------------------
section idle_clients
# 300 connections that never send, one that sends a query an octet a second:
# a fresh client is still served at once, on UDP and on TCP.
upstream s6-up
s6_upstream=$SRV_PORT
idle_clients() {
    local name=$1
    shift
    proxy "$name-proxy" -u "$(up "$s6_upstream")" --timeout 3000 "$@"
    drive_bg "$name-hold" hold --tag "${name//_/}" --count 300 --slowloris --duration 60
    await "$name-hold" '^held ([0-9]+)$'
    # Spread over 2.5 s each, so that the slowloris is mid-query throughout.
    drive "$name-udp" seq --tag "${name//_/}u" --count 5 --interval 0.5 --timeout 2
    check_eq "$name: fresh UDP client answered" 5 "$(fig answered)"
    check_le "$name: fresh UDP client, slowest answer, ms" "$(fig max_ms)" 499
    RES_UDP=$RES
    drive "$name-tcp" seq --tag "${name//_/}t" --proto tcp --count 5 --interval 0.5 --timeout 2
    check_eq "$name: fresh TCP client answered" 5 "$(fig answered)"
    check_le "$name: fresh TCP client, slowest answer, ms" "$(fig max_ms)" 499
    RES_TCP=$RES
    kill -TERM "$DRV_PID"
    drive_end "$name-hold"
    RES_HOLD=$RES
}
# The idle clients must outlive the scenario on a slow machine: the idle
# timeout is the next scenario's subject, not this one's.
long_idle=()
has_opt --tcp-idle-timeout && long_idle=(--tcp-idle-timeout 60000)
idle_clients idle_clients "${long_idle[@]}"
note="300 idle held, $(fig closed "$RES_HOLD") closed; slowloris wrote $(fig slowloris_octets "$RES_HOLD") octets"
if [ ${#long_idle[@]} != 0 ]; then
    check_eq "idle_clients: the proxy kept all 300 idle clients" 0 "$(fig closed "$RES_HOLD")"
fi
figures idle_clients_udp "$RES_UDP" "$note"
figures idle_clients_tcp "$RES_TCP"
proxy_done idle_clients
if has_opt --max-tcp-clients; then
    idle_clients idle_clients_cap100 --max-tcp-clients 100 "${long_idle[@]}"
    # 301 held + 5 fresh through a cap of 100: the oldest idle ones went.
    check_ge "idle_clients_cap100: idle clients evicted" "$(fig closed "$RES_HOLD")" 200
    note="--max-tcp-clients 100: $(fig closed "$RES_HOLD") of 300 idle evicted"
    note+=", slowloris closed: $(fig slowloris_closed "$RES_HOLD")"
    figures idle_clients_cap100_udp "$RES_UDP" "$note"
    figures idle_clients_cap100_tcp "$RES_TCP"
    proxy_done idle_clients_cap100
else
    skip_scenario idle_clients_cap100 "dotproxyd has no --max-tcp-clients yet"
fi
# With --tcp-idle-timeout 1000 the 300 idle clients are all closed about a
# second after they connected, and the proxy still serves a fresh client.
if has_opt --tcp-idle-timeout; then
    proxy idle_timeout-proxy -u "$(up "$s6_upstream")" --timeout 3000 --tcp-idle-timeout 1000
    drive_bg idle_timeout-hold hold --tag idletimeout --count 300 --slowloris --duration 30
    await idle_timeout-hold '^held ([0-9]+)$'
    await idle_timeout-hold '^all closed ([0-9]+)$'
    gone_ms=$MATCH
    drive idle_timeout-tcp seq --tag idletimeoutt --proto tcp --count 5 --timeout 2
    check_eq "tcp_idle_timeout: fresh TCP client answered" 5 "$(fig answered)"
    RES_TCP=$RES
    kill -TERM "$DRV_PID"
    drive_end idle_timeout-hold
    # The timer may start at accept, a little before "held"; it fires on
    # a loaded machine late, but not seconds late.
    check_le "tcp_idle_timeout: ms from held to all 300 closed" "$gone_ms" 2500
    # Trickled bytes are no activity: a query written a byte a second never
    # completes, so that client is idle too and must be closed.
    check_eq "tcp_idle_timeout: the slowloris was closed too" 1 "$(fig slowloris_closed)"
    figures tcp_idle_timeout_1000 "$RES_TCP" \
        "300 idle closed in ${gone_ms} ms; slowloris closed: $(fig slowloris_closed)"
    proxy_done tcp_idle_timeout
else
    skip_scenario tcp_idle_timeout_1000 "dotproxyd has no --tcp-idle-timeout yet"
fi
upstream_done

# ---- 7. one client floods, another keeps being served -----------------------------------
section flood
# The flooder (127.0.0.2) keeps 100 queries outstanding for 5 s, as
# dnsperf -c 1 -q 100 does; the other client (127.0.0.3) asks 50 a second.
upstream s7-up
s7_upstream=$SRV_PORT
flood() {
    local name=$1
    shift
    proxy "$name-proxy" -u "$(up "$s7_upstream")" --timeout 3000 "$@"
    # Niced: it stands for a client elsewhere, and on a 2-core test host an
    # unniced flooder would take the CPU the proxy and the other client
    # need, which measures the scheduler, not the proxy.
    drive_bg "$name-flood" flood --tag "${name//_/}f" --bind 127.0.0.2 --window 100 \
        --duration 5 --timeout 1 --nice 10
    await "$name-flood" '^flooding$'
    drive "$name-victim" stream --tag "${name//_/}v" --bind 127.0.0.3 --rate 50 \
        --duration 4 --timeout 1
    RES_VICTIM=$RES
    drive_end "$name-flood"
    RES_FLOOD=$RES
    HWM_KB=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$PROXY_PID/status")
    proxy_done "$name"
    check_eq "$name: the other client: every query answered" \
        "$(fig sent "$RES_VICTIM")" "$(fig answered "$RES_VICTIM")"
    # Starvation would show as queries timing out (1 s, counted as lost or
    # unanswered above); the p99 is reported in the figures, and only a
    # generous bound is checked: on a shared 2-core machine the scheduler,
    # not the proxy, decides the tail (benchmarks measure latency).
    check_le "$name: the other client: p99, ms" "$(fig p99_ms "$RES_VICTIM")" 900
    check_eq "$name: the flooder: no wrong answer" 0 "$(fig wrong "$RES_FLOOD")"
}
flood flood
check_ge "flood: the flooder was served" "$(fig answered "$RES_FLOOD")" 1000
figures flood_flooder "$RES_FLOOD" "$(fig qps "$RES_FLOOD") qps; dotproxyd VmHWM ${HWM_KB} kB"
figures flood_other_client "$RES_VICTIM"
if has_opt --rate-limit && has_opt --rate-limit-loopback; then
    flood flood_rate_limited --rate-limit 100 --rate-limit-loopback
    refused=$(fig refused "$RES_FLOOD")
    sent=$(fig sent "$RES_FLOOD")
    check_ge "flood_rate_limited: the flooder REFUSED for most queries" "$((refused * 2))" "$sent"
    # At 100 qps for 5 s (and a burst) the flooder gets a few hundred answers.
    check_le "flood_rate_limited: the flooder answered at most its rate" \
        "$(fig answered "$RES_FLOOD")" 1000
    figures flood_rate_limited_flooder "$RES_FLOOD" \
        "--rate-limit 100; $(fig qps "$RES_FLOOD") qps; VmHWM ${HWM_KB} kB"
    figures flood_rate_limited_other "$RES_VICTIM"
else
    skip_scenario flood_rate_limited "dotproxyd has no --rate-limit/--rate-limit-loopback yet"
fi
upstream_done

# ---- 8. the access list -------------------------------------------------------------------
section allow
upstream s8-up
if has_opt --allow; then
    proxy s8-proxy -u "$(up "$SRV_PORT")" --timeout 3000 --allow 10.0.0.0/8
    drive s8-denied seq --tag s8denied --count 3 --timeout 2
    check_eq "allow 10.0.0.0/8: 127.0.0.1 REFUSED" 3 "$(fig refused)"
    figures allow_10.0.0.0/8 "$RES"
    if [ "$HAVE_DIG" = 1 ]; then
        check_match "allow 10.0.0.0/8: dig sees REFUSED" 'status: REFUSED' \
            "$(qdig www.example.com A 2>&1)"
    fi
    proxy_done "allow 10.0.0.0/8"
else
    skip_scenario allow_10.0.0.0/8 "dotproxyd has no --allow yet"
fi
proxy s8-proxy-default -u "$(up "$SRV_PORT")" --timeout 3000
drive s8-default seq --tag s8default --count 3 --timeout 2
check_eq "default access list: 127.0.0.1 answered" 3 "$(fig answered)"
figures allow_default "$RES"
proxy_done "default access list"
upstream_done

# ---- 9. SIGTERM with queries in flight -----------------------------------------------------
section sigterm_inflight
# Answers take 300 ms; 20 queries go out and, once the proxy has read them
# (its socket's receive queue is empty: a query still in the kernel at the
# signal is not one it took on), SIGTERM: the proxy finishes what it took on
# and exits 0 within 2 s.
upstream s9-up --delay 300
proxy s9-proxy -u "$(up "$SRV_PORT")" --timeout 3000
drive_bg s9-burst burst --tag s9 --count 20 --timeout 4 --wait-read
await s9-burst '^sent ([0-9]+)$'
stop_proxy
drive_end s9-burst
check_eq "sigterm_inflight: dotproxyd exit status" 0 "$STOP_STATUS"
check_le "sigterm_inflight: ms from SIGTERM to exit" "$STOP_MS" 2000
check_eq "sigterm_inflight: all 20 answered" 20 "$(fig answered)"
figures sigterm_inflight "$RES" "exit $STOP_STATUS after $STOP_MS ms"
upstream_done

# ---- summary ---------------------------------------------------------------------------------
echo
echo "faults: summary after ${SECONDS} s (queries per scenario; ms are per-query latencies)"
printf '%-26s %6s %8s %8s %7s %5s %5s %7s %7s  %s\n' scenario sent answered servfail \
    refused wrong lost p99_ms max_ms note
for row in "${SUMMARY[@]}"; do
    echo "$row"
done
finish
