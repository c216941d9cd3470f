#!/bin/bash
# SPDX-License-Identifier: MIT
# Forward zones through the daemon, with real clients and a real plain DNS
# server: cluster.local goes to unbound (plain DNS on loopback, a static
# local zone), corp.test to a DoT server of its own, the rest to the default
# DoT server. dig and kdig ask, over UDP and TCP; the start log says the
# plain upstream is not private; SIGHUP with the zone removed sends its names
# back to the default upstream; --check-config names a bad zone or upstream
# (exit 2). Each server's final counters say where the queries went.
. "$(dirname "$0")/lib.sh"

command -v unbound >/dev/null || { echo "SKIP: needs unbound"; exit 77; }
make_pki

start_bg dotdef '^port ([0-9]+)$' "$TS_DOTSERVER" --cert "$PKI/server.pem" \
    --key "$PKI/server-key.pem"
DEF_PID=$BG_PID DEF_PORT=$BG_MATCH DEF_DRAIN=$BG_DRAIN
start_bg dotcorp '^port ([0-9]+)$' "$TS_DOTSERVER" --cert "$PKI/server.pem" \
    --key "$PKI/server-key.pem"
CORP_PID=$BG_PID CORP_PORT=$BG_MATCH CORP_DRAIN=$BG_DRAIN

# unbound on a free loopback port (found by binding port 0; unbound cannot
# be told to pick one), answering cluster.local from local data only.
UB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    die "no free port"
mkdir -p "$WORK/unbound"
cat >"$WORK/unbound/unbound.conf" <<EOF2
server:
    interface: 127.0.0.1@$UB_PORT
    port: $UB_PORT
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$WORK/unbound"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    local-zone: "cluster.local." static
    local-data: "web.default.svc.cluster.local. 30 IN A 10.96.0.42"
    local-data: "db.default.svc.cluster.local. 30 IN A 10.96.0.43"
remote-control:
    control-enable: no
EOF2
start_bg unbound 'start of service' unbound -d -c "$WORK/unbound/unbound.conf"
UB_PID=$BG_PID UB_DRAIN=$BG_DRAIN

# ---- --check-config -------------------------------------------------------------
for bad in 'cluster..local=plain:127.0.0.1' 'cluster.local=plain:127.0.0.1#dns.test' \
    'corp.test=127.0.0.1@0' 'corp.test'; do
    msg=$("$DOTPROXYD" --check-config -u 127.0.0.1 --forward-zone "$bad" 2>&1)
    check_eq "--check-config --forward-zone '$bad': exit status" 2 "$?"
    check_match "--check-config names the bad value" "^dotproxyd: --forward-zone '$bad': " "$msg"
done
ups=$(for i in $(seq 1 17); do printf 'plain:10.0.0.%d,' "$i"; done)
msg=$("$DOTPROXYD" --check-config -u 127.0.0.1 --forward-zone "many.test=${ups%,}" 2>&1)
check_match "--check-config: the 17th zone upstream is one too many" \
    "upstream 'plain:10\.0\.0\.17': more than 16 distinct forward upstreams" "$msg"
zones=()
for i in $(seq 1 65); do zones+=(--forward-zone "z$i.test=plain:10.0.0.1"); done
msg=$("$DOTPROXYD" --check-config -u 127.0.0.1 "${zones[@]}" 2>&1)
check_match "--check-config: the 65th zone is one too many" \
    "^dotproxyd: --forward-zone 'z65\.test=plain:10\.0\.0\.1': more than 64 forward zones" "$msg"
msg=$("$DOTPROXYD" --check-config -u 127.0.0.1 --forward-zone 'a.test=127.0.0.1,plain:1.2.3' 2>&1)
check_match "--check-config names the bad upstream of a list" \
    "upstream 'plain:1\.2\.3' of zone 'a\.test': " "$msg"

# ---- the daemon ---------------------------------------------------------------------
conf=$WORK/dotproxyd.conf
write_conf() {
    {
        printf 'upstream = 127.0.0.1@%s#dns.test\n' "$DEF_PORT"
        printf 'ca-file = %s\ncache-size = 0\n' "$PKI/ca.pem"
        printf 'forward-zone = cluster.local=plain:127.0.0.1@%s\n' "$UB_PORT"
        [ "$1" = with-corp ] && printf 'forward-zone = corp.test=127.0.0.1@%s#dns.test\n' "$CORP_PORT"
    } >"$conf.new"
    mv "$conf.new" "$conf"
}
write_conf with-corp
msg=$("$DOTPROXYD" --check-config -c "$conf" 2>&1)
check_eq "--check-config of the file" "configuration OK" "$msg"

out=$WORK/proxy.out.fifo
mkfifo "$out" || die "mkfifo"
"$DOTPROXYD" -c "$conf" --listen 127.0.0.1@0 >"$out" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
exec {PFD}<"$out"
: >"$WORK/dotproxyd.log"
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
wait_line "forward zone cluster\.local: upstream plain:127\.0\.0\.1@$UB_PORT is plain DNS, NOT private"
pass "start: the plain upstream is logged as not private"
wait_line 'listening on 127\.0\.0\.1@([0-9]+)'
PROXY_PORT=${BASH_REMATCH[1]}

check_eq "dig: a cluster.local name comes from unbound" 10.96.0.42 \
    "$(qdig +short web.default.svc.cluster.local A)"
check_eq "kdig over TCP: another one" 10.96.0.43 \
    "$(qkdig +tcp +short db.default.svc.cluster.local A)"
check_match "dig: unbound's NXDOMAIN comes back" 'status: NXDOMAIN' \
    "$(qdig nothing.default.svc.cluster.local A)"
check_eq "dig: corp.test goes to its own DoT upstream" "$(expected_a a.corp.test)" \
    "$(qdig +short a.corp.test A)"
check_eq "kdig: the zone apex too" "$(expected_a corp.test)" "$(qkdig +short corp.test A)"
check_eq "dig: other names go to the default upstream" "$(expected_a x.example)" \
    "$(qdig +short x.example A)"
check_eq "kdig over TCP: other names" "$(expected_a y.example)" \
    "$(qkdig +tcp +short y.example A)"

# Reload without corp.test: its names go to the default upstream.
write_conf without-corp
kill -HUP "$PROXY_PID"
wait_line 'configuration reloaded'
pass "SIGHUP: reload applied"
check_eq "after reload: corp.test names go to the default upstream" \
    "$(expected_a b.corp.test)" "$(qdig +short b.corp.test A)"
check_eq "after reload: cluster.local still goes to unbound" 10.96.0.42 \
    "$(qdig +short web.default.svc.cluster.local A)"

cat <&"$PFD" >>"$WORK/dotproxyd.log" &
PROXY_DRAIN=$!
PIDS+=("$PROXY_DRAIN")
exec {PFD}<&-
stop_bg "$PROXY_PID" "$PROXY_DRAIN"
check_eq "SIGTERM: exit status" 0 "$STOP_STATUS"

stop_bg "$DEF_PID" "$DEF_DRAIN"
stop_bg "$CORP_PID" "$CORP_DRAIN"
stop_bg "$UB_PID" "$UB_DRAIN"
check_eq "the default upstream saw x.example, y.example and b.corp.test" 3 \
    "$(sed -n 's/^queries=//p' "$WORK/dotdef.log")"
check_eq "the corp.test upstream saw a.corp.test and corp.test" 2 \
    "$(sed -n 's/^queries=//p' "$WORK/dotcorp.log")"
check_match "unbound saw the 4 cluster.local queries" 'server stats for thread 0: 4 queries' \
    "$(cat "$WORK/unbound.log")"
finish
