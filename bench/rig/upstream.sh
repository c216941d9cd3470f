#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# upstream.sh - throwaway local DNS-over-TLS upstream for the proxy benchmark rig.
#
#   upstream.sh start DIR PORT_BASE    plain DNS on 127.0.0.1:PORT_BASE (UDP+TCP),
#                                      DoT on 127.0.0.1:PORT_BASE+1
#   upstream.sh stop DIR
#   upstream.sh stats DIR              print unbound's counters (key=value)
#
# What "start" does:
#   * makes a test CA (DIR/ca.pem) and a server certificate for the TLS name
#     dns.test (certtool, ECDSA P-256), unless told otherwise (see knobs below);
#   * writes a synthetic zone: h1..h10000.bench.test A (198.18.0.0/15, the
#     benchmarking range, TTL 3600) plus big1..big4.bench.test with TXT RRsets of
#     roughly 1.5, 3, 6 and 12 KB (bigger than the 1232-byte EDNS buffer);
#   * runs unbound in the foreground (do-daemonize: no) as an authoritative-only
#     server: module-config "iterator" with local-zone "." static, so every name
#     outside bench.test gets NXDOMAIN and nothing is ever looked up elsewhere;
#   * writes DIR/env (shell syntax) with the addresses, ports, TLS name and CA.
#
# Threads: 2 by default.  Measured on this 2-core machine (peer benchmark, 2 runs each):
# with 2 threads dnsperf straight at the upstream got ~132-139k qps over UDP and
# ~66-70k over DoT (16 connections), against ~104-120k and ~37-62k with 1 thread,
# while the proxies' figures did not change beyond run-to-run noise (a proxy on
# one TLS connection is served by one upstream thread anyway).  UPSTREAM_THREADS=1
# to compare.
#
# Knobs (environment):
#   UPSTREAM_THREADS=N       unbound num-threads (default 2)
#   UPSTREAM_CERT_NAME=NAME  name put in the server certificate (default dns.test)
#   UPSTREAM_CA_FROM=DIR2    sign the server certificate with the CA already in
#                            DIR2 (ca.pem + ca-key.pem) instead of a new CA
#   UPSTREAM_NAMES=N         number of hN.bench.test names (default 10000)
#   UPSTREAM_NODELAY=1       set TCP_NODELAY on the sockets unbound accepts (it does
#                            not for DoT; measured on the peer benchmark): builds a small
#                            LD_PRELOAD shim with cc into DIR.  Default off.
#   UPSTREAM_LD_PRELOAD=SO   diagnostics only: LD_PRELOAD for the unbound process
#
# Only 127.0.0.1 is ever used.  Nothing here sends packets anywhere else.
set -euo pipefail

die() { echo "upstream.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

stop_pid() {   # stop_pid PID : TERM, wait up to 5 s, then KILL
    local pid=$1
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

make_certs() {   # make_certs DIR NAME CA_FROM
    local d=$1 name=$2 ca_from=$3
    if [[ -n "$ca_from" ]]; then
        [[ -s "$ca_from/ca.pem" && -s "$ca_from/ca-key.pem" ]] || die "no CA in $ca_from"
        cp "$ca_from/ca.pem" "$d/ca.pem"
        cp "$ca_from/ca-key.pem" "$d/ca-key.pem"
    else
        cat >"$d/ca.tmpl" <<EOF
cn = "dotproxy bench throwaway CA $(date +%s)-$$"
organization = "bench"
serial = $(date +%s)
expiration_days = 30
ca
cert_signing_key
crl_signing_key
EOF
        certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
            --outfile "$d/ca-key.pem" 2>/dev/null
        certtool --generate-self-signed --load-privkey "$d/ca-key.pem" \
            --template "$d/ca.tmpl" --no-text --outfile "$d/ca.pem" 2>/dev/null
    fi
    cat >"$d/server.tmpl" <<EOF
cn = "$name"
dns_name = "$name"
organization = "bench"
serial = $(( $(date +%s) + 1 ))
expiration_days = 30
tls_www_server
signing_key
EOF
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
        --outfile "$d/server-key.pem" 2>/dev/null
    certtool --generate-certificate --load-privkey "$d/server-key.pem" \
        --load-ca-certificate "$d/ca.pem" --load-ca-privkey "$d/ca-key.pem" \
        --template "$d/server.tmpl" --no-text --outfile "$d/server-cert.pem" 2>/dev/null
    # unbound's tls-service-pem: leaf first, then the chain
    cat "$d/server-cert.pem" "$d/ca.pem" >"$d/server.pem"
    chmod 600 "$d/server-key.pem" "$d/ca-key.pem"
}

make_zone() {   # make_zone DIR N
    local d=$1 n=$2
    awk -v n="$n" 'BEGIN {
        print "server:"
        print "  local-zone: \"bench.test.\" static"
        print "  local-data: \"bench.test. 3600 IN SOA ns.bench.test. host.bench.test. 1 3600 600 86400 3600\""
        print "  local-data: \"bench.test. 3600 IN NS ns.bench.test.\""
        print "  local-data: \"ns.bench.test. 3600 IN A 198.18.255.254\""
        for (i = 1; i <= n; i++)
            printf "  local-data: \"h%d.bench.test. 3600 IN A 198.%d.%d.%d\"\n", i, 18 + int(i / 65536) % 2, int(i / 256) % 256, i % 256
        # big TXT answers: bigK has 6*2^(K-1) TXT RRs of ~250 bytes each
        s = ""
        for (c = 0; c < 240; c++) s = s "x"
        for (k = 1; k <= 4; k++) {
            m = 6 * 2 ^ (k - 1)
            for (j = 1; j <= m; j++)
                printf "  local-data: '\''big%d.bench.test. 3600 IN TXT \"%04d-%s\"'\''\n", k, j, s
        }
    }' >"$d/zone.conf"
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "h%d.bench.test\n", i }' >"$d/names.txt"
}

build_nodelay_shim() {   # build_nodelay_shim DIR -> DIR/nodelay.so
    local d=$1
    command -v cc >/dev/null || return 1
    cat >"$d/nodelay.c" <<'CSRC'
/* upstream.sh: turn on TCP_NODELAY on every socket the upstream accepts */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static int nodelay(int fd) {
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}
int accept(int s, struct sockaddr *a, socklen_t *l) {
    static int (*next)(int, struct sockaddr *, socklen_t *);
    if (!next) next = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    return nodelay(next(s, a, l));
}
int accept4(int s, struct sockaddr *a, socklen_t *l, int flags) {
    static int (*next)(int, struct sockaddr *, socklen_t *, int);
    if (!next) next = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    return nodelay(next(s, a, l, flags));
}
CSRC
    cc -shared -fPIC -O2 -o "$d/nodelay.so" "$d/nodelay.c" -ldl
}

do_start() {
    local d=$1 base=$2
    [[ "$base" =~ ^[0-9]+$ ]] || die "PORT_BASE must be a number"
    local port=$base dot=$((base + 1))
    local threads=${UPSTREAM_THREADS:-2}
    local name=${UPSTREAM_CERT_NAME:-dns.test}
    local ca_from=${UPSTREAM_CA_FROM:-}
    local nnames=${UPSTREAM_NAMES:-10000}
    mkdir -p "$d"
    d=$(cd "$d" && pwd)
    if [[ -f "$d/upstream.pid" ]] && pid_alive "$(cat "$d/upstream.pid")"; then
        die "already running in $d (pid $(cat "$d/upstream.pid"))"
    fi
    command -v unbound >/dev/null || die "unbound not installed"
    command -v certtool >/dev/null || die "certtool (gnutls-bin) not installed"

    make_certs "$d" "$name" "$ca_from"
    make_zone "$d" "$nnames"

    cat >"$d/unbound.conf" <<EOF
# generated by upstream.sh: authoritative-only DoT upstream, no recursion
server:
  verbosity: 0
  num-threads: $threads
  interface: 127.0.0.1@$port
  interface: 127.0.0.1@$dot
  port: $port
  tls-port: $dot
  tls-service-key: "$d/server-key.pem"
  tls-service-pem: "$d/server.pem"
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  so-reuseport: yes
  username: ""
  chroot: ""
  directory: "$d"
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: "$d/unbound.log"
  log-time-ascii: yes
  access-control: 127.0.0.0/8 allow
  # never talk to anybody: no validator, no trust anchors, everything local
  module-config: "iterator"
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::/0
  local-zone: "." static
  minimal-responses: yes
  # many concurrent DoT clients (dnsperf -m dot -c 16, proxies with pools)
  incoming-num-tcp: 512
  tcp-idle-timeout: 120000
  edns-tcp-keepalive: yes
  edns-tcp-keepalive-timeout: 120000
  num-queries-per-thread: 4096
  so-rcvbuf: 4m
  so-sndbuf: 4m
  ratelimit: 0
  ip-ratelimit: 0
  extended-statistics: yes
  statistics-interval: 0
  statistics-cumulative: yes
include: "$d/zone.conf"
remote-control:
  control-enable: yes
  control-interface: "$d/control.sock"
EOF
    unbound-checkconf "$d/unbound.conf" >/dev/null || die "unbound-checkconf failed ($d/unbound.conf)"

    rm -f "$d/control.sock"
    local preload=${UPSTREAM_LD_PRELOAD:-}
    if [[ ${UPSTREAM_NODELAY:-0} == 1 ]]; then
        build_nodelay_shim "$d" || die "UPSTREAM_NODELAY=1 needs a C compiler (cc)"
        preload="$d/nodelay.so${preload:+:$preload}"
    fi
    if [[ -n $preload ]]; then
        LD_PRELOAD=$preload nohup unbound -d -c "$d/unbound.conf" >"$d/unbound.stderr" 2>&1 </dev/null &
    else
        nohup unbound -d -c "$d/unbound.conf" >"$d/unbound.stderr" 2>&1 </dev/null &
    fi
    local pid=$!
    echo "$pid" >"$d/upstream.pid"

    cat >"$d/env" <<EOF
UP_ADDR=127.0.0.1
UP_PORT=$port
UP_DOT_PORT=$dot
TLS_NAME=dns.test
CERT_NAME=$name
CA=$d/ca.pem
UP_PID=$pid
UP_THREADS=$threads
UP_CONF=$d/unbound.conf
UP_NAMES_FILE=$d/names.txt
UP_NAMES=$nnames
UP_NODELAY=${UPSTREAM_NODELAY:-0}
EOF

    # wait until both listeners answer (at most ~10 s)
    local ok=0
    for _ in $(seq 100); do
        pid_alive "$pid" || { cat "$d/unbound.stderr" "$d/unbound.log" >&2 2>/dev/null; die "unbound exited"; }
        if dig @127.0.0.1 -p "$port" h1.bench.test A +short +time=1 +tries=1 2>/dev/null | grep -q '^198\.' &&
            [[ -S "$d/control.sock" ]]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [[ $ok == 1 ]] || { stop_pid "$pid"; die "upstream did not answer on UDP $port"; }
    echo "upstream: unbound pid $pid, udp/tcp 127.0.0.1:$port, dot 127.0.0.1:$dot, cert name $name, threads $threads, nodelay ${UPSTREAM_NODELAY:-0}"
}

do_stop() {
    local d=$1 pid
    [[ -f "$d/upstream.pid" ]] || { echo "upstream.sh: nothing to stop in $d" >&2; return 0; }
    pid=$(cat "$d/upstream.pid")
    stop_pid "$pid"
    rm -f "$d/upstream.pid"
    echo "upstream: stopped pid $pid"
}

do_stats() {
    local d=$1
    unbound-control -c "$d/unbound.conf" stats_noreset
}

[[ $# -ge 2 ]] || usage
case "$1" in
start) [[ $# -eq 3 ]] || usage; do_start "$2" "$3" ;;
stop) do_stop "$2" ;;
stats) do_stats "$2" ;;
*) usage ;;
esac
