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
usage_error "port after a colon" \
    "--listen '127\.0\.0\.1:5353': not an IPv4 or IPv6 address; the port goes after '@': '127\.0\.0\.1@5353'" \
    --listen 127.0.0.1:5353
usage_error "bracketed IPv6 and a colon port" "the port goes after '@': '::1@5353'" \
    --listen '[::1]:5353'
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
usage_error "cache size not a number" "--cache-size '10k': must be a number of entries" \
    --cache-size 10k
usage_error "cache size above the cache's limit" "--cache-size '268435457'" \
    --cache-size 268435457
usage_error "cache TTL out of range" "--cache-max-ttl '604801': must be a number of seconds" \
    --cache-max-ttl 604801
usage_error "cache min TTL above max TTL" "--cache-min-ttl 600 is above --cache-max-ttl 300" \
    --cache-min-ttl 600 --cache-max-ttl 300
usage_error "min TTL above the default max" "--cache-min-ttl 90000 is above cache-max-ttl" \
    --cache-min-ttl 90000
usage_error "stale-max negative" "--stale-max '-1'" --stale-max -1
usage_error "padding too large" "--padding '513': must be a number of octets \\(0 = off\\) from 0 to 512" \
    --padding 513
usage_error "flag given a value" "option '--keep-ecs' takes no value" --keep-ecs=yes
usage_error "bad allow network" "--allow '10\.0\.0\.0/33': not an address or ADDR/PREFIX" \
    --allow 10.0.0.0/33
usage_error "allow host name" "--allow 'lan': not an address" --allow lan
usage_error "rate limit junk" "--rate-limit '5qps': must be QPS or QPS/BURST" --rate-limit 5qps
usage_error "rate limit zero burst" "--rate-limit '5/0'" --rate-limit 5/0
usage_error "rate limit prefix out of range" "--rate-limit-prefix '24/130': must be V4/V6" \
    --rate-limit-prefix 24/130
usage_error "rate limit prefix without v6" "--rate-limit-prefix '24'" --rate-limit-prefix 24
usage_error "rate limit action" "--rate-limit-action 'block': must be refuse or drop" \
    --rate-limit-action block
usage_error "client queries too many" "--max-client-queries '1048577'" --max-client-queries 1048577
usage_error "zero TCP clients" "--max-tcp-clients '0': must be a number from 1 to 1048576" \
    --max-tcp-clients 0
usage_error "TCP idle timeout too long" "--tcp-idle-timeout '3600001'" --tcp-idle-timeout 3600001
usage_error "upstream idle timeout zero" "--idle-timeout '0': must be a number of milliseconds" \
    --idle-timeout 0
usage_error "too many connections" "--max-connections '65': must be a number from 1 to 64" \
    --max-connections 65
usage_error "in-flight not a power of two" "--max-inflight '1000': must be a power of two" \
    --max-inflight 1000
usage_error "handshake timeout too long" "--handshake-timeout '60001'" --handshake-timeout 60001
usage_error "unknown selection policy" "--selection 'random': must be latency, round-robin or ordered" \
    --selection random
usage_error "pin before any upstream" "--pin 'sha256/.*': a pin applies to the --upstream given before it" \
    --pin sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
usage_error "pin not 32 octets" "--pin 'sha256/AAAA': not a SHA-256 SPKI pin" \
    -u 127.0.0.1@853 --pin sha256/AAAA
usage_error "empty TLS priority" "--tls-priority '': must not be empty" --tls-priority ''
usage_error "unknown user" "--user 'no-such-user-x': no such user" --user no-such-user-x
usage_error "log format" "--log-format 'xml': must be text or json" --log-format xml
usage_error "metrics port out of range" "--metrics '70000': bad port '70000'" --metrics 70000
usage_error "metrics address" "--metrics 'localhost@9100': 'localhost' is not an IPv4 or IPv6 address" \
    --metrics localhost@9100
usage_error "missing API token file" "--api-token-file '$WORK/no-token': cannot open" \
    --api-token-file "$WORK/no-token"
usage_error "missing config file" "$WORK/no\.conf: cannot open: No such file" -c "$WORK/no.conf"
usage_error "config option missing its value" "'--config' needs a value" --config
usage_error "stray argument" "unexpected argument 'extra'" extra

out=$(timeout 10 "$DOTPROXYD" --version)
check_eq "--version exit status" 0 "$?"
check_match "--version output" '^dotproxyd [0-9]+\.[0-9]+\.[0-9]+$' "$out"

out=$(timeout 10 "$DOTPROXYD" --help)
check_eq "--help exit status" 0 "$?"
for opt in --listen --upstream --ca-file --timeout --cache-size --workers --verbose --quiet \
    --config --check-config --allow --rate-limit --pin --user --log-format --syslog --metrics; do
    check_match "--help mentions $opt" "(^| )$opt( |,|$)" "$out"
done

# --help states the defaults and ranges the library has (read back from it,
# not written twice), and is served before a later bad option is looked at.
check_match "--help: timeout range and library default" \
    '(1\.\.600000, default 4000)' "$(tr -s ' \n' ' ' <<<"$out")"
check_match "--help: the daemon's own cache default" 'default 10000\)' "$(tr -s ' \n' ' ' <<<"$out")"
out=$(timeout 10 "$DOTPROXYD" --help --bogus 2>&1)
check_eq "--help before a bad option: exit status" 0 "$?"
# --dump-options (hidden, for tests/docs): one tab-separated line per option.
out=$(timeout 10 "$DOTPROXYD" --dump-options)
check_eq "--dump-options exit status" 0 "$?"
check_match "--dump-options: timeout row" $'^timeout\t-\tuint\t1\t600000\t-\t4000$' "$out"
check_match "--dump-options: listen row" $'^listen\tl\tendpoint\t0\t16\trepeat,restart\t127\.0\.0\.1@53$' "$out"
usage_error "more upstreams than the library takes" "--upstream '127\.0\.0\.17': more than 16 upstreams" \
    $(for i in $(seq 1 17); do printf -- '-u 127.0.0.%d ' "$i"; done)
usage_error "more pins than the library takes" "--pin '.*': more than 8 pins for one upstream" \
    -u 127.0.0.1 $(for i in $(seq 1 9); do printf -- '--pin sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= '; done)

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

# Without -u both default upstreams are configured. No query is sent, so the
# daemon opens no connection to them (it connects on demand only).
PROXY_NAME=dotproxyd-defaults start_proxy --cache-size 0
check_match "default upstreams: both Cloudflare addresses" \
    'upstreams 1\.0\.0\.1@853#cloudflare-dns\.com, 1\.1\.1\.1@853#cloudflare-dns\.com;' "$BG_LINE"
stop_proxy
check_eq "default upstreams: exit status" 0 "$STOP_STATUS"

PROXY_NAME=dotproxyd-int start_proxy -u 127.0.0.1@9 -w 3
check_match "startup line counts workers" '; 3 workers$' "$BG_LINE"
stop_bg "$PROXY_PID" "$PROXY_DRAIN" INT
check_eq "SIGINT with 3 workers: exit status" 0 "$STOP_STATUS"
if [ "$STOP_MS" -le 2000 ]; then pass "SIGINT: exit within 2 s ($STOP_MS ms)"; else
    fail "SIGINT: took $STOP_MS ms"; fi

finish
