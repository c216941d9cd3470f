# SPDX-License-Identifier: MIT
# Shared by the integration scripts (sourced, not a test by itself).
#
# Every script is called by meson with the built programs as arguments:
#   SCRIPT DOTPROXYD TS_DOTSERVER TS_PKI [EMBED_POLL QUERY_ONCE]
# It works in a private mktemp directory, starts its processes in the
# background, kills exactly those (by PID) when it exits, and gives up after
# a hard timeout of its own, below meson's.
#
# Background processes are read through FIFOs: "wait until the server says
# 'port N'" is a blocking read on its output, never a sleep.

set -u

DOTPROXYD=${1:?usage: $0 DOTPROXYD TS_DOTSERVER TS_PKI [EMBED_POLL QUERY_ONCE]}
TS_DOTSERVER=${2:?}
TS_PKI=${3:?}
EMBED_POLL=${4:-}
QUERY_ONCE=${5:-}

TEST_NAME=$(basename "$0" .sh)
HARD_TIMEOUT=${HARD_TIMEOUT:-90}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-$TEST_NAME.XXXXXX") || exit 1
PIDS=()
FAILED=0
CHECKS=0

# ---- cleanup and the hard timeout -------------------------------------------

cleanup() {
    local pid
    trap - TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    # The logs say why a check failed; meson --print-errorlogs shows them.
    if [ "$FAILED" != 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "----- $(basename "$f") -----" >&2
            tail -n 40 "$f" >&2
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAIL: $TEST_NAME: hard timeout of ${HARD_TIMEOUT}s" >&2; FAILED=1; exit 1' TERM
# Any other way out still runs cleanup (a signal with its default action
# would skip the EXIT trap and leave processes behind).
trap 'echo "FAIL: $TEST_NAME: interrupted" >&2; FAILED=1; exit 1' INT HUP

# send_line FD TEXT: write a line to a child's stdin FIFO. A child that died
# must fail the check, not kill this script with SIGPIPE; the subshell keeps
# SIGPIPE ignored only for the write, never for the programs under test.
send_line() {
    (
        trap '' PIPE
        printf '%s\n' "$2" >&"$1"
    ) 2>/dev/null
}

# The watchdog is a subshell that kills its own sleep when it is told to go.
(
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$HARD_TIMEOUT" &
    s=$!
    wait "$s"
    kill -TERM $$
) &
PIDS+=("$!")

# ---- reporting ----------------------------------------------------------------

fail() {
    echo "FAIL: $*" >&2
    FAILED=1
}

die() {
    echo "FAIL: $*" >&2
    FAILED=1
    exit 1
}

pass() {
    CHECKS=$((CHECKS + 1))
    echo "ok: $*"
}

# check DESCRIPTION EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1: expected '$2', got '$3'"
    fi
}

# check_match DESCRIPTION EXTENDED-REGEX TEXT
check_match() {
    if printf '%s\n' "$3" | grep -Eq -- "$2"; then
        pass "$1"
    else
        fail "$1: /$2/ not found in: $3"
    fi
}

# wait_for DESCRIPTION CMD...: poll CMD every 50 ms until it succeeds (a
# pass) or WAIT_FOR_S seconds (default 15) have gone by (a failure).
wait_for() {
    local what=$1 i n=$((${WAIT_FOR_S:-15} * 20))
    shift
    for ((i = 0; i < n; i++)); do
        "$@" >/dev/null 2>&1 && { pass "$what"; return 0; }
        sleep 0.05
    done
    fail "$what: not within ${WAIT_FOR_S:-15} s"
    return 1
}

# ---- the feeds scripts' view of a running dotproxyd ----------------------------
# METRICS: the metrics and API port the last start logged.
metrics_port_from_log() {
    METRICS=$(sed -nE 's/.*metrics and API on port ([0-9]+).*/\1/p' "$WORK/dotproxyd.log" | tail -n 1)
    [ -n "$METRICS" ] || die "no metrics port in the log"
}
api() { curl -s --max-time 5 "http://127.0.0.1:$METRICS$1"; }
# metric REGEX: the value of the first sample whose name and labels match.
metric() { api /metrics | grep -E "^$1" | head -n 1 | awk '{print $NF}'; }
status_of() { qdig "$1" A | sed -nE 's/.*status: ([A-Z]+),.*/\1/p'; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
# Stop dotproxyd and fail unless it exited cleanly.
stop_feed_proxy() {
    stop_proxy
    [ "$STOP_STATUS" = 0 ] || fail "dotproxyd exited with $STOP_STATUS (a sanitizer report?)"
}

# A TCP port on 127.0.0.1 that nothing listens on just now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

finish() {
    if [ "$FAILED" != 0 ]; then
        echo "$TEST_NAME: FAILED" >&2
        exit 1
    fi
    echo "$TEST_NAME: all $CHECKS checks passed"
    exit 0
}

# ---- background processes -----------------------------------------------------

# start_bg NAME REGEX CMD [ARGS...]
# Start CMD with stdout and stderr into $WORK/NAME.log (through a FIFO) and
# block until a line matches REGEX (bash ERE). Sets BG_PID, BG_DRAIN (the
# process copying the rest of the output; it ends when CMD's output closes),
# BG_LINE (the matching line) and BG_MATCH (BASH_REMATCH[1]). With
# BG_STDIN=1 in the environment CMD's stdin is a FIFO too, open for writing
# on fd BG_IN. Fails (dies) when CMD ends or is silent for 20 s first.
start_bg() {
    local name=$1 re=$2 out in="" line fd
    shift 2
    out=$WORK/$name.out.fifo
    rm -f "$out"
    mkfifo "$out" || die "mkfifo"
    : >"$WORK/$name.log"
    BG_IN=""
    if [ "${BG_STDIN:-0}" = 1 ]; then
        in=$WORK/$name.in.fifo
        rm -f "$in"
        mkfifo "$in" || die "mkfifo"
        # Redirections open left to right and each FIFO open waits for the
        # other end: stdin first on both sides, then stdout.
        "$@" <"$in" >"$out" 2>&1 &
        BG_PID=$!
        exec {BG_IN}>"$in"
    else
        "$@" >"$out" 2>&1 &
        BG_PID=$!
    fi
    PIDS+=("$BG_PID")
    exec {fd}<"$out"
    BG_LINE=""
    BG_MATCH=""
    while IFS= read -r -t 20 -u "$fd" line; do
        printf '%s\n' "$line" >>"$WORK/$name.log"
        if [[ $line =~ $re ]]; then
            BG_LINE=$line
            BG_MATCH=${BASH_REMATCH[1]:-}
            break
        fi
    done
    if [ -z "$BG_LINE" ]; then
        exec {fd}<&-
        die "$name did not print /$re/ (it exited or hung): $*"
    fi
    # The drain must not inherit the write end of CMD's stdin, or closing
    # BG_IN would never reach CMD as end of input.
    if [ -n "$BG_IN" ]; then
        cat <&"$fd" >>"$WORK/$name.log" {BG_IN}>&- &
    else
        cat <&"$fd" >>"$WORK/$name.log" &
    fi
    BG_DRAIN=$!
    PIDS+=("$BG_DRAIN")
    exec {fd}<&-
}

# Drop PIDs that were waited for, so cleanup never signals a recycled PID.
forget_pid() {
    local pid keep=()
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}

# stop_bg PID DRAIN_PID [SIGNAL]: signal PID, wait for it and for its output
# to be copied. Sets STOP_STATUS (exit status) and STOP_MS (milliseconds from
# the signal to the exit).
stop_bg() {
    local t0 t1
    t0=$(date +%s%N)
    kill "-${3:-TERM}" "$1" 2>/dev/null
    wait "$1"
    STOP_STATUS=$?
    t1=$(date +%s%N)
    STOP_MS=$(((t1 - t0) / 1000000))
    wait "$2" 2>/dev/null
    forget_pid "$1"
    forget_pid "$2"
}

# ---- the test upstream and the proxy ---------------------------------------------

make_pki() {
    PKI=$WORK/pki
    mkdir -p "$PKI" || die "mkdir $PKI"
    "$TS_PKI" "$PKI" || die "ts-pki failed"
}

# start_dotserver [CERT-BASENAME] [EXTRA ARGS...]: a DoT server on a kernel-
# chosen port with $PKI/CERT.pem (default "server"). Sets SRV_PID, SRV_PORT,
# SRV_DRAIN.
start_dotserver() {
    local cert=${1:-server}
    [ $# -gt 0 ] && shift
    start_bg dotserver '^port ([0-9]+)$' "$TS_DOTSERVER" \
        --cert "$PKI/$cert.pem" --key "$PKI/$cert-key.pem" "$@"
    SRV_PID=$BG_PID
    SRV_PORT=$BG_MATCH
    SRV_DRAIN=$BG_DRAIN
}

# stop_dotserver: stop it and read its counters (server_counter NAME).
stop_dotserver() {
    stop_bg "$SRV_PID" "$SRV_DRAIN"
    [ "$STOP_STATUS" = 0 ] || fail "ts-dotserver exited with $STOP_STATUS"
}

server_counter() {
    sed -n "s/^$1=//p" "$WORK/dotserver.log" | tail -n 1
}

# start_proxy [ARGS...]: dotproxyd on 127.0.0.1, a kernel-chosen port, with
# the given options. Sets PROXY_PID, PROXY_PORT, PROXY_DRAIN.
start_proxy() {
    start_bg "${PROXY_NAME:-dotproxyd}" 'listening on 127\.0\.0\.1@([0-9]+)' \
        "$DOTPROXYD" --listen 127.0.0.1@0 "$@"
    PROXY_PID=$BG_PID
    PROXY_PORT=$BG_MATCH
    PROXY_DRAIN=$BG_DRAIN
}

stop_proxy() {
    stop_bg "$PROXY_PID" "$PROXY_DRAIN"
}

# ---- DNS ------------------------------------------------------------------------

# The A address ts-dotserver synthesises for NAME (see ts_dns_expected_a in
# tests/support/dnsclient.h): 192.0.2.N, N = 1 + (sum of the octets of the
# wire name, letters folded to lower case) mod 250.
expected_a() {
    local name=${1%.} sum=0 label i c code
    local IFS=.
    # printf -v, not $(printf): no fork per character (a fork each made
    # reuse.sh's 200 names take a minute on a loaded machine).
    for label in $name; do
        sum=$((sum + ${#label}))
        for ((i = 0; i < ${#label}; i++)); do
            c=${label:i:1}
            c=${c,,}
            printf -v code '%d' "'$c"
            sum=$((sum + code))
        done
    done
    echo "192.0.2.$((sum % 250 + 1))"
}

# dig against the proxy: one try, a bounded wait, no search list.
qdig() {
    dig -p "$PROXY_PORT" @127.0.0.1 +tries=1 +time=5 +nosearch "$@"
}

qkdig() {
    kdig -p "$PROXY_PORT" @127.0.0.1 +retry=0 +time=5 "$@"
}
