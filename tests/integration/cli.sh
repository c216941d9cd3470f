#!/bin/bash
# SPDX-License-Identifier: MIT
# dotproxyd's command-line contract: usage errors exit 2 naming the option and
# the value, a runtime failure (an address already taken) exits 1, --version
# and --help exit 0, SIGTERM and SIGINT exit 0 within 2 s.
. "$(dirname "$0")/lib.sh"

# usage_error DESCRIPTION EXPECTED-REGEX ARGS...: exit 2, nothing started,
# and a message matching the regex on stderr.
usage_error() {
    local what=$1 re=$2 err status
    shift 2
    err=$(timeout 10 "$DOTPROXYD" "$@" 2>&1 >/dev/null)
    status=$?
    check_eq "$what: exit status" 2 "$status"
    check_match "$what: message" "$re" "$err"
}

usage_error "bad upstream port" \
    "--upstream '1\.1\.1\.1@99999': port must be a number from 1 to 65535" \
    --upstream 1.1.1.1@99999
usage_error "bad listen address" "--listen '1\.2\.3': not an IPv4 or IPv6 address" \
    --listen 1.2.3
usage_error "host name as an address" "--upstream 'dns\.google': not an IPv4 or IPv6 address" \
    -u dns.google
usage_error "bad TLS name" "--upstream '1\.1\.1\.1#bad_name\.example': not a valid TLS host name" \
    -u '1.1.1.1#bad_name.example'
usage_error "name on a listen address" "--listen '127\.0\.0\.1@53#x': " -l '127.0.0.1@53#x'
usage_error "unknown long option" "unknown option '--bogus'" --bogus
usage_error "unknown short option" "unknown option '-x'" -x
usage_error "option missing its value" "'--timeout' needs a value" --timeout
usage_error "timeout not a number" "--timeout 'abc': must be a number of milliseconds" \
    --timeout abc
usage_error "timeout with trailing junk" "--timeout '100ms'" --timeout 100ms
usage_error "timeout zero" "--timeout '0'" --timeout 0
usage_error "missing CA file" "--ca-file '$WORK/no-such-ca\.pem': cannot open: No such file" \
    --ca-file "$WORK/no-such-ca.pem"
usage_error "CA path is a directory" "--ca-file '$WORK': not a regular file" --ca-file "$WORK"
usage_error "zero workers" "--workers '0': must be a number from 1 to 64" --workers 0
usage_error "too many workers" "--workers '65'" -w 65
usage_error "negative workers" "--workers '-1'" -w -1
usage_error "cache not available" "--cache-size '100': the answer cache is not available" \
    --cache-size 100
usage_error "stray argument" "unexpected argument 'extra'" extra

out=$(timeout 10 "$DOTPROXYD" --version)
check_eq "--version exit status" 0 "$?"
check_match "--version output" '^dotproxyd [0-9]+\.[0-9]+\.[0-9]+$' "$out"

out=$(timeout 10 "$DOTPROXYD" --help)
check_eq "--help exit status" 0 "$?"
for opt in --listen --upstream --ca-file --timeout --cache-size --workers --verbose --quiet; do
    check_match "--help mentions $opt" "(^| )$opt( |,|$)" "$out"
done

# A running daemon: the startup line names what it serves. The upstream is a
# closed port; nothing is asked of it here.
start_proxy -u '127.0.0.1@9#dns.test' --cache-size 0 --timeout 1500
check_match "startup line lists the upstream" 'upstreams 127\.0\.0\.1@9#dns\.test' "$BG_LINE"
taken=$PROXY_PORT

# The same address again, without SO_REUSEPORT: a runtime failure, exit 1,
# with the reason on stderr.
err=$(timeout 10 "$DOTPROXYD" -l "127.0.0.1@$taken" -u 127.0.0.1@9 2>&1)
check_eq "address in use: exit status" 1 "$?"
check_match "address in use: final message" "dotproxyd: cannot start: cannot bind listen address" "$err"

stop_proxy
check_eq "SIGTERM: exit status" 0 "$STOP_STATUS"
if [ "$STOP_MS" -le 2000 ]; then pass "SIGTERM: exit within 2 s ($STOP_MS ms)"; else
    fail "SIGTERM: took $STOP_MS ms"; fi

PROXY_NAME=dotproxyd-int start_proxy -u 127.0.0.1@9 -w 3
check_match "startup line counts workers" '; 3 workers$' "$BG_LINE"
stop_bg "$PROXY_PID" "$PROXY_DRAIN" INT
check_eq "SIGINT with 3 workers: exit status" 0 "$STOP_STATUS"
if [ "$STOP_MS" -le 2000 ]; then pass "SIGINT: exit within 2 s ($STOP_MS ms)"; else
    fail "SIGINT: took $STOP_MS ms"; fi

finish
