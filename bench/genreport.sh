#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# genreport.sh - ISC's DNS compliance tester (genreport, the tool behind
# ednscomp) against dotproxyd on loopback, beside the upstream resolver itself
# as the reference row (issue 11, "Tests").
#
#   bench/genreport.sh [--out DIR] [--dotproxyd PATH] [--no-peers] [--no-netns]
#
# What it does, all on loopback inside a private network namespace:
#   1. builds genreport from the shared source tarball into a scratch build dir;
#   2. starts a DNSSEC-signed test zone, dnscomp.test, on knotd (authoritative,
#      automatic signing, RSASHA256 2048-bit KSK + ZSK, so the DNSKEY answer with
#      its RRSIG is well over 512 octets and edns@512 means something), and unbound
#      as a validating recursive resolver in front of it (stub-zone, the zone's KSK
#      as trust anchor), serving plain DNS and DNS over TLS with a certificate for
#      dns.test from a throwaway CA made by certtool;
#   3. starts dotproxyd --listen 127.0.0.1@5353 --upstream 127.0.0.1@853#dns.test
#      --ca-file CA (defaults otherwise: cache on) and waits until dig gets the
#      zone's SOA through it;
#   4. runs `genreport -R -s -f -c -P PORT` (recursive mode: RD set on every query,
#      AA expected clear; serial; the FULL set, which includes EDNS, plus COMMON)
#      against each server:
#        dotproxyd        127.0.0.1@5353  the daemon under test
#        unbound          127.0.0.1@5302  the upstream itself over plain DNS:
#                                         the reference row
#        dnsdist          127.0.0.1@5354  peer, if dnsdist is installed
#        unbound-fwd      127.0.0.1@5355  peer: a second unbound, forward-zone "."
#                                         over TLS, iterator only (no validation),
#                                         built-in local zone test. switched off
#      the peers forward over DoT to the same upstream (127.0.0.1@853, dns.test, CA
#      verified); --no-peers leaves them out;
#   5. prints the table, writes everything to --out DIR, and stops every process it
#      started by PID on exit.
#
# Reading the table:
#   One line per genreport test, one column per server: genreport's own per-test
#   result lines side by side (a server per row would be 30+ columns wide).
#   "ok" (or "ok,<extra>", e.g. ok,nsid) passes; anything else is what genreport
#   found wrong, comma-separated:
#     an rcode it did not expect (noerror where BADVERS was due, formerr, ...),
#     a flag that should not be there (aa, ad, cd, ra, rd, z, tc) or one that is
#     missing (nord), opt / noopt (an OPT record where none belonged, or none where
#     one was due), badversion, nosoa / soa, toobig (a UDP answer bigger than the
#     buffer the query offered), echoed (an unknown option sent back), mbz (a
#     reserved EDNS flag bit set), timeout / eof / reset / malformed.
#   `dig` equivalents of each test: genreport -D (in the build dir), or
#   genreport.md in the tarball.  "signed" is not a test: it repeats the "do"
#   result, with ",yes" when an RRSIG came back, and is not counted.
#   Then one summary line per server: the tests that failed, and of those the
#   ones that pass on the reference row (failures the proxy adds, not inherits).
#   OUT/matrix.tsv holds the same results with a row per server and a column per
#   test; OUT/<server>.genreport is genreport's raw output line.
#
# Exit status: 0 when genreport ran against dotproxyd and the reference (failed
# tests are findings, not errors); 1 when the rig could not be set up (missing
# package, build failure, a server that did not come up); 2 on a usage error.
#
# Needs (Debian 12):
#   apt-get install -y gcc libc6-dev libssl-dev knot unbound gnutls-bin \
#                      bind9-dnsutils iproute2 util-linux
#   optional peers: dnsdist.  Root, for the network namespace (unshare -n); without
#   it (or with --no-netns) the host's loopback is used and the ports below must
#   be free, port 853 included (DOT_PORT=N to move it).
# dotproxyd is not built here: build it first with `meson setup build && ninja -C
# build` (or give --dotproxyd PATH, or BUILD_DIR=DIR for DIR/cli/dotproxyd).
#
# Environment:
#   GENREPORT_TARBALL  ISC's genreport source, a tarball holding dct/genreport.c
#                      (required: third-party code, not kept in this repository)
#   GENREPORT_BUILD_DIR  build genreport there and keep it (default: a temp dir,
#                        removed on exit); a genreport already built there is reused
#   BUILD_DIR          (default SRC/build)   DOT_PORT (default 853)
# Ports (127.0.0.1): knotd 5301, unbound 5302 (plain) and DOT_PORT (TLS),
# dotproxyd 5353, dnsdist 5354, unbound-fwd 5355.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
SRC=$(cd "$HERE/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build}
TARBALL=${GENREPORT_TARBALL:-}
ORIG_ARGS=("$@")

ZONE=dnscomp.test
TLS_NAME=dns.test
AUTH_PORT=5301
UP_PORT=5302
DOT_PORT=${DOT_PORT:-853}
PROXY_PORT=5353
DNSDIST_PORT=5354
FWD_PORT=5355

OUT=""
DOTPROXYD=""
PEERS=1
USE_NETNS=1

die() { echo "genreport.sh: $*" >&2; exit 1; }
usage() { sed -n '3,/^set -uo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
    case $1 in
    --out) [[ $# -ge 2 ]] || { echo "genreport.sh: --out needs a value" >&2; exit 2; }; OUT=$2; shift 2 ;;
    --dotproxyd) [[ $# -ge 2 ]] || { echo "genreport.sh: --dotproxyd needs a value" >&2; exit 2; }; DOTPROXYD=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --no-netns) USE_NETNS=0; shift ;;
    -h | --help) usage 0 ;;
    *) echo "genreport.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $DOT_PORT =~ ^[0-9]+$ ]] || { echo "genreport.sh: DOT_PORT must be a number" >&2; exit 2; }

# ---- what is missing, said all at once (before the namespace: same answer there)
missing=()
need_cmd() {   # need_cmd COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2 (for $1)")
}
need_cmd gcc gcc
need_cmd tar tar
need_cmd knotd knot
need_cmd unbound unbound
need_cmd certtool gnutls-bin
need_cmd dig bind9-dnsutils
need_cmd ip iproute2
need_cmd ss iproute2
[[ $USE_NETNS == 0 ]] || need_cmd unshare util-linux
[[ -e /usr/include/openssl/hmac.h ]] || missing+=("libssl-dev (for <openssl/hmac.h>, -lcrypto)")
[[ -e /usr/include/resolv.h ]] || missing+=("libc6-dev (for <resolv.h>, -lresolv)")
if ((${#missing[@]})); then
    echo "genreport.sh: missing packages:" >&2
    printf '  %s\n' "${missing[@]}" >&2
    die "install them (Debian 12: apt-get install -y gcc libc6-dev libssl-dev knot unbound gnutls-bin bind9-dnsutils iproute2 util-linux)"
fi
[[ -n $TARBALL ]] || die "set GENREPORT_TARBALL to ISC's genreport source tarball"
[[ -r $TARBALL ]] || die "no genreport source at $TARBALL (set GENREPORT_TARBALL)"
[[ -n $DOTPROXYD ]] || DOTPROXYD=$BUILD_DIR/cli/dotproxyd
[[ -x $DOTPROXYD ]] || die "no dotproxyd at $DOTPROXYD: build it first (meson setup build && ninja -C build), or give --dotproxyd PATH / BUILD_DIR"
DOTPROXYD=$(cd "$(dirname "$DOTPROXYD")" && pwd)/$(basename "$DOTPROXYD")

# ---- a private network namespace (bench/rig.sh), stopping by PID
UPSTREAM_SH=""   # rig.sh's upstream helpers are not used here
# shellcheck source=bench/rig.sh
source "$HERE/rig.sh"
NETNS=no
((USE_NETNS)) && rig_netns GENREPORT_IN_NETNS
ports=("$AUTH_PORT" "$UP_PORT" "$DOT_PORT" "$PROXY_PORT")
((PEERS)) && ports+=("$DNSDIST_PORT" "$FWD_PORT")
rig_ports_free "${ports[@]}"

[[ -n $OUT ]] || OUT=/tmp/dotbench/genreport-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/genreport-rig.XXXXXX) || die "mktemp failed"
GR_BUILD=${GENREPORT_BUILD_DIR:-}
GR_TMP=0
if [[ -z $GR_BUILD ]]; then
    GR_BUILD=$WORK/genreport-build
    GR_TMP=1
fi
log() { printf '[%s] %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }

PIDS=()   # name:pid, stopped in reverse order
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    local i entry
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        entry=${PIDS[i]}
        rig_stop_pid "${entry#*:}" 10
    done
    # keep the servers' logs and configurations, drop keys and scratch files
    for f in "$WORK"/*.log "$WORK"/*.conf "$WORK"/*.stderr; do
        [[ -e $f ]] && cp "$f" "$OUT/" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

start_bg() {   # start_bg NAME CMD... : in the background, output to WORK/NAME.stderr
    local name=$1
    shift
    "$@" >"$WORK/$name.stderr" 2>&1 </dev/null &
    PIDS+=("$name:$!")
    LAST_PID=$!
}

# wait_answer NAME PID PORT QTYPE PATTERN [DIG_ARGS...] : until dig's full output
# matches PATTERN (at most ~20 s); dies if PID exits
wait_answer() {
    local name=$1 pid=$2 port=$3 qtype=$4 pat=$5
    shift 5
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || { tail -5 "$WORK/$name.stderr" >&2; die "$name exited"; }
        if dig @127.0.0.1 -p "$port" "$ZONE" "$qtype" +time=1 +tries=1 "$@" 2>/dev/null | grep -Eq "$pat"; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer $ZONE $qtype on 127.0.0.1@$port"
}

# ---- 1. genreport
build_genreport() {
    if [[ -x $GR_BUILD/dct/genreport && $GR_BUILD/dct/genreport -nt $TARBALL ]]; then
        log "genreport: reusing $GR_BUILD/dct/genreport"
        return 0
    fi
    mkdir -p "$GR_BUILD" || die "cannot create $GR_BUILD"
    tar -xzf "$TARBALL" -C "$GR_BUILD" || die "cannot extract $TARBALL"
    [[ -f $GR_BUILD/dct/genreport.c ]] || die "$TARBALL has no dct/genreport.c"
    (cd "$GR_BUILD/dct" && gcc -O2 -I. -Wno-deprecated-declarations -o genreport genreport.c -lresolv -lcrypto) \
        >"$OUT/genreport-build.log" 2>&1 || { tail -20 "$OUT/genreport-build.log" >&2; die "genreport build failed"; }
    log "genreport: built in $GR_BUILD/dct$( ((GR_TMP)) && echo ' (temporary)')"
}
build_genreport
GENREPORT=$GR_BUILD/dct/genreport

# ---- 2a. a throwaway CA and the upstream's certificate for dns.test
make_certs() {
    local d=$WORK
    cat >"$d/ca.tmpl" <<EOF
cn = "genreport.sh throwaway CA $(date +%s)-$$"
organization = "dotproxy genreport rig"
serial = $(date +%s)
expiration_days = 2
ca
cert_signing_key
EOF
    cat >"$d/server.tmpl" <<EOF
cn = "$TLS_NAME"
dns_name = "$TLS_NAME"
organization = "dotproxy genreport rig"
serial = $(($(date +%s) + 1))
expiration_days = 2
tls_www_server
signing_key
EOF
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$d/ca-key.pem" &&
        certtool --generate-self-signed --load-privkey "$d/ca-key.pem" --template "$d/ca.tmpl" \
            --no-text --outfile "$d/ca.pem" &&
        certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$d/server-key.pem" &&
        certtool --generate-certificate --load-privkey "$d/server-key.pem" --load-ca-certificate "$d/ca.pem" \
            --load-ca-privkey "$d/ca-key.pem" --template "$d/server.tmpl" --no-text --outfile "$d/server-cert.pem"
}
make_certs >"$WORK/certtool.log" 2>&1 || { cat "$WORK/certtool.log" >&2; die "certtool failed"; }
cat "$WORK/server-cert.pem" "$WORK/ca.pem" >"$WORK/server.pem"   # leaf first, then the chain
CA=$WORK/ca.pem
cp "$CA" "$OUT/ca.pem"

# ---- 2b. knotd: the signed zone
mkdir -p "$WORK/knot"
cat >"$WORK/knot/$ZONE.zone" <<EOF
\$ORIGIN $ZONE.
\$TTL 3600
@       SOA   ns hostmaster 1 3600 600 86400 300
@       NS    ns
ns      A     127.0.0.1
@       A     192.0.2.1
@       AAAA  2001:db8::1
@       MX    10 mail
mail    A     192.0.2.25
@       TXT   "genreport test zone for dotproxyd"
www     A     192.0.2.80
EOF
cat >"$WORK/knot.conf" <<EOF
# generated by genreport.sh: authoritative, automatic DNSSEC signing
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$AUTH_PORT
log:
  - target: "$WORK/knotd.log"
    any: info
database:
    storage: "$WORK/knot"
control:
    listen: "$WORK/knot/knot.sock"
policy:
  - id: rsa2048
    algorithm: rsasha256
    ksk-size: 2048
    zsk-size: 2048
    nsec3: off
zone:
  - domain: $ZONE
    storage: "$WORK/knot"
    file: "$ZONE.zone"
    dnssec-signing: on
    dnssec-policy: rsa2048
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
EOF
knotc -c "$WORK/knot.conf" conf-check >"$WORK/knot-check.log" 2>&1 ||
    { cat "$WORK/knot-check.log" >&2; die "knotc conf-check failed"; }
start_bg knotd knotd -c "$WORK/knot.conf"
KNOT_PID=$LAST_PID
wait_answer knotd "$KNOT_PID" "$AUTH_PORT" DNSKEY 'IN[[:space:]]+RRSIG[[:space:]]+DNSKEY' +dnssec +norec
DNSKEY_SIZE=$(dig @127.0.0.1 -p "$AUTH_PORT" "$ZONE" DNSKEY +dnssec +norec +bufsize=4096 +time=2 +tries=1 |
    awk '/MSG SIZE/ {print $NF}')
((${DNSKEY_SIZE:-0} > 512)) || log "warning: the DNSKEY answer is only ${DNSKEY_SIZE:-?} octets: edns@512 proves little"
dig @127.0.0.1 -p "$AUTH_PORT" "$ZONE" DNSKEY +norec +noall +answer +time=2 +tries=1 |
    awk '$4 == "DNSKEY" && $5 == 257' >"$WORK/anchor.key"
[[ -s $WORK/anchor.key ]] || die "no KSK (DNSKEY 257) in $ZONE"
log "knotd: pid $KNOT_PID, $ZONE signed (RSASHA256), DNSKEY answer $DNSKEY_SIZE octets with DO"

# ---- 2c. unbound: validating recursive resolver, plain DNS + DoT
cat >"$WORK/unbound.conf" <<EOF
# generated by genreport.sh: recursive resolver for $ZONE (stub to knotd), DoT
server:
  verbosity: 1
  num-threads: 1
  interface: 127.0.0.1@$UP_PORT
  interface: 127.0.0.1@$DOT_PORT
  tls-port: $DOT_PORT
  tls-service-key: "$WORK/server-key.pem"
  tls-service-pem: "$WORK/server.pem"
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: "$WORK/unbound.log"
  log-time-ascii: yes
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor-file: "$WORK/anchor.key"
  do-not-query-localhost: no
  # nothing but $ZONE is resolved: everything else is answered here, NXDOMAIN
  local-zone: "." static
  local-zone: "$ZONE." transparent
stub-zone:
  name: "$ZONE."
  stub-addr: 127.0.0.1@$AUTH_PORT
EOF
unbound-checkconf "$WORK/unbound.conf" >"$WORK/unbound-checkconf.log" 2>&1 ||
    { cat "$WORK/unbound-checkconf.log" >&2; die "unbound-checkconf failed"; }
start_bg unbound unbound -d -c "$WORK/unbound.conf"
UNBOUND_PID=$LAST_PID
wait_answer unbound "$UNBOUND_PID" "$UP_PORT" SOA 'flags:[^;]* ad[ ;]' +dnssec
log "unbound: pid $UNBOUND_PID, 127.0.0.1@$UP_PORT plain, @$DOT_PORT TLS ($TLS_NAME); $ZONE validates (AD)"

# ---- 3. dotproxyd
start_bg dotproxyd "$DOTPROXYD" --listen "127.0.0.1@$PROXY_PORT" --upstream "127.0.0.1@$DOT_PORT#$TLS_NAME" --ca-file "$CA"
PROXY_PID=$LAST_PID
wait_answer dotproxyd "$PROXY_PID" "$PROXY_PORT" SOA 'IN[[:space:]]+SOA[[:space:]]'
log "dotproxyd: pid $PROXY_PID, 127.0.0.1@$PROXY_PORT -> 127.0.0.1@$DOT_PORT#$TLS_NAME ($("$DOTPROXYD" --version 2>/dev/null | head -1))"

SERVERS=(dotproxyd unbound)
declare -A SPORT=([dotproxyd]=$PROXY_PORT [unbound]=$UP_PORT [dnsdist]=$DNSDIST_PORT [unbound-fwd]=$FWD_PORT)
declare -A NOTE=([dotproxyd]="the daemon under test" [unbound]="the upstream, plain DNS: reference")

# ---- optional peers in front of the same DoT upstream; a peer that does not
# come up is left out with a note, not an error
start_peer() {   # start_peer NAME : sets PEER_OK
    local name=$1 pid
    PEER_OK=0
    case $name in
    dnsdist)
        cat >"$WORK/dnsdist.conf" <<EOF
-- generated by genreport.sh: dnsdist over DoT to the rig's upstream
setLocal("127.0.0.1:$DNSDIST_PORT")
setACL({"127.0.0.0/8"})
newServer({address="127.0.0.1:$DOT_PORT", tls="openssl", subjectName="$TLS_NAME", caStore="$CA", validateCertificates=true, checkName="$ZONE."})
EOF
        dnsdist --check-config -C "$WORK/dnsdist.conf" >"$WORK/dnsdist-check.log" 2>&1 ||
            { log "dnsdist: config rejected ($(tail -1 "$WORK/dnsdist-check.log")): left out"; return 0; }
        start_bg dnsdist dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf"
        ;;
    unbound-fwd)
        cat >"$WORK/unbound-fwd.conf" <<EOF
# generated by genreport.sh: unbound as a forwarder over TLS to the rig's upstream
server:
  verbosity: 1
  num-threads: 1
  interface: 127.0.0.1@$FWD_PORT
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  do-daemonize: no
  use-syslog: no
  logfile: "$WORK/unbound-fwd.log"
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  do-not-query-localhost: no
  tls-cert-bundle: "$CA"
  # test. is one of unbound's built-in local zones (RFC 6761): forward it too
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-tls-upstream: yes
  forward-addr: 127.0.0.1@$DOT_PORT#$TLS_NAME
EOF
        unbound-checkconf "$WORK/unbound-fwd.conf" >"$WORK/unbound-fwd-check.log" 2>&1 ||
            { log "unbound-fwd: config rejected: left out"; return 0; }
        start_bg unbound-fwd unbound -d -c "$WORK/unbound-fwd.conf"
        ;;
    esac
    pid=$LAST_PID
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || { log "$name: exited ($(tail -1 "$WORK/$name.stderr")): left out"; return 0; }
        if dig @127.0.0.1 -p "${SPORT[$name]}" "$ZONE" SOA +time=1 +tries=1 2>/dev/null | grep -Eq 'IN[[:space:]]+SOA[[:space:]]'; then
            PEER_OK=1
            log "$name: pid $pid, 127.0.0.1@${SPORT[$name]} -> 127.0.0.1@$DOT_PORT#$TLS_NAME"
            return 0
        fi
        sleep 0.1
    done
    log "$name: no answer through it: left out"
    rig_stop_pid "$pid" 5
}
if ((PEERS)); then
    if command -v dnsdist >/dev/null 2>&1; then
        start_peer dnsdist
        ((PEER_OK)) && SERVERS+=(dnsdist) && NOTE[dnsdist]="peer: $(dnsdist --version 2>/dev/null | head -1 | awk '{print $1, $2}')"
    else
        log "dnsdist: not installed (apt-get install -y dnsdist): no peer row"
    fi
    start_peer unbound-fwd
    ((PEER_OK)) && SERVERS+=(unbound-fwd) && NOTE[unbound-fwd]="peer: unbound $(unbound -V 2>/dev/null | awk 'NR == 1 {print $2}') forward-tls-upstream"
fi

# ---- 4. genreport against each server
"$GENREPORT" -D >"$OUT/genreport-tests.txt" 2>&1
for s in "${SERVERS[@]}"; do
    log "genreport -R -s -f -c -P ${SPORT[$s]} against $s"
    echo "$ZONE $s 127.0.0.1" | timeout -k 5 600 "$GENREPORT" -R -s -f -c -P "${SPORT[$s]}" \
        >"$OUT/$s.genreport" 2>"$OUT/$s.genreport.stderr"
    rc=$?
    ((rc == 0)) || log "$s: genreport exited with status $rc"
    grep -q "@127.0.0.1 ($s.):" "$OUT/$s.genreport" || {
        [[ $s == dotproxyd || $s == unbound ]] && die "$s: genreport printed no result line (see $OUT/$s.genreport)"
        log "$s: genreport printed no result line"
    }
done

# ---- the table
declare -A RES       # RES[server,test] = result
declare -A FAILED    # FAILED[server] = how many tests failed
declare -A SEEN      # tests in the order genreport prints them
TESTS=()
for s in "${SERVERS[@]}"; do
    line=$(grep -m1 "@127.0.0.1 ($s.):" "$OUT/$s.genreport" | sed 's/^[^:]*://')
    for tok in $line; do
        t=${tok%%=*}
        r=${tok#*=}
        [[ $t == "$tok" ]] && continue
        if [[ -z ${SEEN[$t]:-} ]]; then
            SEEN[$t]=1
            TESTS+=("$t")
        fi
        RES[$s,$t]=$r
    done
done
passes() { [[ $1 == ok || $1 == ok,* ]]; }
declare -A SUMMARY   # SUMMARY[server] = its summary line
for s in "${SERVERS[@]}"; do
    n=0 total=0 list="" extra=""
    for t in "${TESTS[@]}"; do
        [[ $t == signed ]] && continue
        r=${RES[$s,$t]:-}
        [[ -n $r ]] || continue
        total=$((total + 1))
        passes "$r" && continue
        n=$((n + 1))
        list+=" $t"
        if [[ $s != unbound ]] && passes "${RES[unbound,$t]:-}"; then extra+=" $t"; fi
    done
    FAILED[$s]=$n
    if [[ $s == unbound ]]; then
        SUMMARY[$s]=$(printf '%-12s %2d of %d tests failed:%s (reference)' "$s" "$n" "$total" "${list:- none}")
    else
        SUMMARY[$s]=$(printf '%-12s %2d of %d tests failed:%s; of those, passing on the reference:%s' \
            "$s" "$n" "$total" "${list:- none}" "${extra:- none}")
    fi
done

{
    echo "== genreport -R -s -f -c ($(date -u '+%F %T UTC')): zone $ZONE (knotd, RSASHA256, DNSKEY answer $DNSKEY_SIZE octets)"
    echo "   upstream: unbound $(unbound -V 2>/dev/null | awk 'NR == 1 {print $2}') recursive + validating, DoT 127.0.0.1@$DOT_PORT#$TLS_NAME; netns: $NETNS; out: $OUT"
    echo "   dotproxyd: $DOTPROXYD ($("$DOTPROXYD" --version 2>/dev/null | head -1)), source $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet HEAD -- lib cli include 2>/dev/null || echo '+uncommitted')"
    for s in "${SERVERS[@]}"; do printf '   %-12s 127.0.0.1@%-5s %s\n' "$s" "${SPORT[$s]}" "${NOTE[$s]}"; done
    echo
    printf '%-12s' test
    for s in "${SERVERS[@]}"; do printf ' %-28s' "$s"; done
    printf '\n'
    for t in "${TESTS[@]}"; do
        printf '%-12s' "$t"
        for s in "${SERVERS[@]}"; do printf ' %-28s' "${RES[$s,$t]:--}"; done
        printf '\n'
    done
    echo
    for s in "${SERVERS[@]}"; do echo "${SUMMARY[$s]}"; done
} | tee "$OUT/table.txt"

# the same results, a row per server and a column per test
{
    printf 'server'
    for t in "${TESTS[@]}"; do printf '\t%s' "$t"; done
    printf '\tfailed\n'
    for s in "${SERVERS[@]}"; do
        printf '%s' "$s"
        for t in "${TESTS[@]}"; do printf '\t%s' "${RES[$s,$t]:-}"; done
        printf '\t%d\n' "${FAILED[$s]}"
    done
} >"$OUT/matrix.tsv"
log "raw outputs, logs and matrix.tsv in $OUT"
exit 0
