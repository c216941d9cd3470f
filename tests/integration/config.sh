#!/bin/bash
# SPDX-License-Identifier: MIT
# dotproxyd's configuration file (-c): its keys take effect (queries are
# answered through a file-only setup, the cache and the access list work from
# it), the command line overrides it, errors name file and line and exit 2,
# --check-config says OK or why not; --user drops privileges; --log-format
# json writes one JSON object per line.
. "$(dirname "$0")/lib.sh"

make_pki
start_dotserver
UP="127.0.0.1@$SRV_PORT#dns.test"

# start_conf NAME ARGS...: dotproxyd with ARGS only (the listen address comes
# from the file or ARGS); sets PROXY_PID, PROXY_PORT, PROXY_DRAIN.
start_conf() {
    local name=$1
    shift
    start_bg "$name" 'listening on 127\.0\.0\.1@([0-9]+)' "$DOTPROXYD" "$@"
    PROXY_PID=$BG_PID
    PROXY_PORT=$BG_MATCH
    PROXY_DRAIN=$BG_DRAIN
}

# conf_error DESCRIPTION REGEX ARGS...: exit 2 and a message matching REGEX.
conf_error() {
    local what=$1 re=$2 err status
    shift 2
    err=$(timeout 10 "$DOTPROXYD" "$@" 2>&1 >/dev/null)
    status=$?
    check_eq "$what: exit status" 2 "$status"
    check_match "$what: message" "$re" "$err"
}

# ---- a file-only configuration serves queries --------------------------------

conf=$WORK/good.conf
cat >"$conf" <<EOF
# dotproxyd test configuration
listen = 127.0.0.1@0
upstream = $UP
ca-file = $PKI/ca.pem
timeout = 3000
cache-size = 100
padding = 0
allow = 10.0.0.0/8
allow = 127.0.0.0/8
keep-ecs = no
verbose = yes
EOF
start_conf good -c "$conf"
check_match "file: startup line names the file's upstream" "upstreams $UP" "$BG_LINE"
name=cfg.example.com
check_eq "file: query answered" "$(expected_a $name)" "$(qdig +short $name A)"
check_eq "file: same query again (cache)" "$(expected_a $name)" "$(qdig +short $name A)"
check_eq "file: TCP query answered" "$(expected_a tcp.$name)" "$(qdig +tcp +short tcp.$name A)"
stop_proxy
check_eq "file: SIGTERM exit status" 0 "$STOP_STATUS"
stop_dotserver
# Two distinct names reached the upstream; the repeat was a cache hit.
check_eq "file: cache-size from the file answered the repeat" 2 "$(server_counter queries)"
check_match "file: verbose = yes gives debug lines" "^dotproxyd\[0\]: debug: " \
    "$(cat "$WORK/good.log")"

start_dotserver
UP="127.0.0.1@$SRV_PORT#dns.test"

# ---- the access list from the file, and the command line over the file --------

conf=$WORK/override.conf
cat >"$conf" <<EOF
[dotproxyd]
listen = 127.0.0.1@0
upstream = 127.0.0.1@9#dns.test
ca-file = $PKI/ca.pem
timeout = 1
allow = 10.0.0.0/8
EOF
# Loopback is not in the file's list: REFUSED without asking the upstream.
start_conf refused -c "$conf"
check_match "file: allow list refuses loopback" 'status: REFUSED' "$(qdig refused.example A)"
stop_proxy
check_eq "refused: exit status" 0 "$STOP_STATUS"

# The command line replaces the file's upstream and allow lists and its
# timeout: answered (the file's upstream is a closed port, its timeout 1 ms).
start_conf override -c "$conf" -u "$UP" --allow 127.0.0.1 --timeout 3000
check_match "override: startup line has the command line's upstream only" \
    "upstreams $UP; 1 worker$" "$BG_LINE"
check_eq "override: query answered" "$(expected_a over.example)" "$(qdig +short over.example A)"
stop_proxy

# The command line's listen replaces the file's.
start_conf override-listen -c "$conf" -u "$UP" --allow 127.0.0.1 -l 127.0.0.1@0 --timeout 3000
check_eq "override listen: query answered" "$(expected_a l.example)" "$(qdig +short l.example A)"
stop_proxy

# ---- errors name the file, the line and the key --------------------------------

bad=$WORK/bad.conf
printf 'listen = 127.0.0.1@0\n\n# comment\ncache-size = 10\nbogus-key = 1\n' >"$bad"
conf_error "unknown key" "$bad:5: unknown key 'bogus-key'" -c "$bad"
conf_error "unknown key under --check-config" "$bad:5: unknown key 'bogus-key'" \
    --check-config -c "$bad"
printf 'upstream = %s\ntimeout = 12ms\n' "$UP" >"$bad"
conf_error "bad number" "$bad:2: timeout = '12ms': must be a number of milliseconds from 1 to 600000" \
    -c "$bad"
printf 'listen = 127.0.0.1@0\nupstream = 1.2.3\n' >"$bad"
conf_error "bad upstream" "$bad:2: upstream = '1\.2\.3': not an IPv4 or IPv6 address" -c "$bad"
printf 'keep-ecs = maybe\n' >"$bad"
conf_error "bad boolean" "$bad:1: keep-ecs = 'maybe': must be yes or no" -c "$bad"
printf 'timeout = 100\ntimeout = 200\n' >"$bad"
conf_error "key twice" "$bad:2: 'timeout' is already set on line 1" -c "$bad"
printf 'config = /etc/other.conf\n' >"$bad"
conf_error "command-line-only key" "$bad:1: 'config' is a command-line option" -c "$bad"
printf '[server]\ntimeout = 100\n' >"$bad"
conf_error "unknown section" "$bad:2: unknown section \[server\]" -c "$bad"
printf 'timeout 100\n' >"$bad"
conf_error "line without =" "$bad:1: expected 'key = value'" -c "$bad"
printf 'ca-file = %s\n' "$WORK/missing.pem" >"$bad"
conf_error "missing CA file" "$bad:1: ca-file = '$WORK/missing\.pem': cannot open" -c "$bad"
printf 'pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n' >"$bad"
conf_error "pin without upstream" "$bad:1: pin = .*applies to the 'upstream' line before it" \
    -c "$bad"
printf 'upstream = %s\npin = sha256/AAAA\n' "$UP" >"$bad"
conf_error "short pin" "$bad:2: pin = 'sha256/AAAA': not a SHA-256 SPKI pin" -c "$bad"
printf 'cache-min-ttl = 600\ncache-max-ttl = 60\n' >"$bad"
conf_error "min TTL above max" "$bad:1: cache-min-ttl 600 is above $bad:2: cache-max-ttl 60" \
    -c "$bad"

# The two TTL bounds are set together, so their order in the file does not
# matter: a minimum above the default maximum is fine with its maximum after it.
printf 'upstream = %s\ncache-min-ttl = 90000\ncache-max-ttl = 100000\n' "$UP" >"$WORK/ttl.conf"
out=$(timeout 10 "$DOTPROXYD" --check-config -c "$WORK/ttl.conf" 2>&1)
check_eq "TTL bounds in either order: check-config" "configuration OK" "$out"
printf 'upstream = %s\ncache-min-ttl = 600\n' "$UP" >"$bad"
conf_error "file TTL minimum above the command line's maximum" \
    "$bad:2: cache-min-ttl 600 is above --cache-max-ttl 60" -c "$bad" --cache-max-ttl 60

# A bad file value is an error even where the command line overrides it: the
# file must be valid on its own.
printf 'upstream = %s\ntimeout = abc\n' "$UP" >"$bad"
conf_error "bad value overridden on the command line" "$bad:2: timeout = 'abc': must be a number" \
    -c "$bad" --timeout 100

# ---- --check-config ----------------------------------------------------------------

out=$(timeout 10 "$DOTPROXYD" --check-config -c "$WORK/good.conf" 2>&1)
check_eq "check-config: good file exits 0" 0 "$?"
check_eq "check-config: says so" "configuration OK" "$out"
out=$(timeout 10 "$DOTPROXYD" --check-config -u "$UP" --ca-file "$PKI/ca.pem" 2>&1)
check_eq "check-config without a file: exit 0" 0 "$?"
printf 'not a certificate\n' >"$WORK/junk.pem"
conf_error "check-config: CA file that is not PEM" "TLS settings unusable: ca-file '$WORK/junk\.pem'" \
    --check-config -u "$UP" --ca-file "$WORK/junk.pem"
conf_error "check-config: bad TLS priority" \
    "--tls-priority 'NOPE': rejected at 'NOPE': " \
    --check-config -u "$UP" --ca-file "$PKI/ca.pem" --tls-priority NOPE
# In a file: its line and GnuTLS's position, under --check-config as at a
# real start (issue 16), also when the value continues on the next line.
printf 'upstream = %s\ntls-priority = NORMAL:-VERS-ALL:\n +VERS-TLS1.3:+NOPE\n' "$UP" >"$bad"
conf_error "check-config: bad TLS priority in a file" \
    "$bad:2: tls-priority = 'NORMAL:-VERS-ALL:\+VERS-TLS1\.3:\+NOPE': rejected at '\+NOPE': " \
    --check-config -c "$bad" --ca-file "$PKI/ca.pem"
conf_error "start: bad TLS priority in a file" \
    "$bad:2: tls-priority = 'NORMAL:-VERS-ALL:\+VERS-TLS1\.3:\+NOPE': rejected at '\+NOPE': " \
    -c "$bad" --ca-file "$PKI/ca.pem" --listen 127.0.0.1@0
printf '  \n' >"$WORK/empty-token"
conf_error "check-config: empty API token file" "api-token-file '$WORK/empty-token': empty" \
    --check-config -u "$UP" --ca-file "$PKI/ca.pem" --api-token-file "$WORK/empty-token"

# The shipped example: valid as it is, and with every documented default
# uncommented (the keys that name files, users, pins or ports left out).
example=$(dirname "$0")/../../deploy/dotproxyd.conf.example
out=$(timeout 10 "$DOTPROXYD" --check-config -c "$example" 2>&1)
check_eq "example file: check-config exit status" 0 "$?"
sed -E 's/^#([a-z-]+ = )/\1/' "$example" |
    grep -Ev '^(pin|user|api-token-file|ca-file|metrics|upstream-cert|upstream-key|listen-tls|tls-cert|tls-key|tls-client-ca|tls-client-id|blocklist|allowlist|rpz|rpz-primary|rpz-tsig|rpz-tsig-file|state-dir) = ' >"$WORK/example.conf"
check_match "example file: defaults uncommented" '^cache-size = 10000$' "$(cat "$WORK/example.conf")"
out=$(timeout 10 "$DOTPROXYD" --check-config -c "$WORK/example.conf" 2>&1)
check_eq "example file with its defaults: check-config" "configuration OK" "$out"

# ---- --user: privileges dropped after binding ------------------------------------

if id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    uid=$(id -u nobody)
    gid=$(id -g nobody)
    start_conf user -l 127.0.0.1@0 -u "$UP" --ca-file "$PKI/ca.pem" --timeout 3000 --user nobody
    status=$(cat "/proc/$PROXY_PID/status")
    check_match "--user nobody: real, effective, saved and fs uid" \
        "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid$" "$status"
    check_match "--user nobody: gids" \
        "^Gid:[[:space:]]+$gid[[:space:]]+$gid[[:space:]]+$gid[[:space:]]+$gid$" "$status"
    check_match "--user nobody: no root group left" "^Groups:[[:space:]]*($gid[[:space:]]*)?$" \
        "$status"
    check_eq "--user nobody: query answered" "$(expected_a u.example)" "$(qdig +short u.example A)"
    stop_proxy
    check_eq "--user nobody: SIGTERM exit status" 0 "$STOP_STATUS"
else
    echo "note: not root or no user nobody: --user test skipped"
fi

# ---- --log-format json -------------------------------------------------------------

start_conf json -u "$UP" --ca-file "$PKI/ca.pem" -l 127.0.0.1@0 --log-format json \
    --log-queries 10
check_match "json: startup line is one object" \
    '^\{"ts":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z","level":"info","worker":null,"msg":"dotproxyd [^"]* listening on [^"]*"\}$' \
    "$BG_LINE"
check_eq "json: query answered" "$(expected_a j.example)" "$(qdig +short j.example A)"
check_eq "json: query answered again" "$(expected_a j.example)" "$(qdig +short j.example A)"
stop_proxy
check_eq "json: exit status" 0 "$STOP_STATUS"
# Every line parses as JSON; the query lines carry their facts as fields,
# and the cache hit its real latency (not 0).
check_eq "json: query lines as fields" \
    "udp j.example. A NOERROR $UP nonzero|udp j.example. A NOERROR cache nonzero" \
    "$(python3 -c '
import json, sys
out = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("event") == "query":
        assert o["client"] == "127.0.0.1" and o["client_port"] > 0, o
        out.append("%s %s %s %s %s %s" % (o["transport"], o["qname"], o["qtype"], o["rcode"],
                                          o["source"], "nonzero" if o["latency_ms"] > 0 else "zero"))
print("|".join(out))
' "$WORK/json.log" 2>&1)"
check_match "json: stop line" '^\{"ts":"[^"]*","level":"info","worker":null,"msg":"stopped"\}$' \
    "$(cat "$WORK/json.log")"

stop_dotserver
finish
