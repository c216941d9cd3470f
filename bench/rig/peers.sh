#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# peers.sh - side-by-side benchmark of DNS -> DNS-over-TLS forwarding proxies.
#
# Starts a local DoT upstream (upstream.sh), then runs each system in turn
# (never two at once) on 127.0.0.1, forwarding over DoT to that upstream with
# strict certificate verification (CA = the upstream's throwaway CA, name
# dns.test), drives it with dnsperf over UDP and prints one line per system.
# Two more scenarios (dot-in, dot-idle) have the clients speak DoT to the system.
#
# Needs (Debian): apt-get install -y unbound dnsdist stubby knot-resolver dnsperf \
#                  gnutls-bin bind9-dnsutils knot-dnsutils iproute2
#                 and python3 (standard library only) for dot-in / dot-idle
# Run as root: it re-executes itself in a private network namespace.
#
# Usage: peers.sh [options]
#   --out DIR              results folder (default /tmp/dotbench/run-<time>)
#   --duration S           measured seconds per row (default 10)
#   --warmup S             unmeasured load before each measured row (default 2)
#   --clients N            dnsperf -c (default 16)
#   --outstanding N        dnsperf -q (default 200)
#   --qtimeout S           dnsperf -t: unanswered after S s counts as lost (default 2)
#   --systems LIST         comma list (default: limit-udp,limit-dot,dnsdist,
#                          unbound,stubby,kresd, plus candidate when given).
#                          Also available: dnsdist-default (no maxInFlight,
#                          default TCP workers) and kresd-default (default
#                          net.tcp_pipeline), to show what the tuning changes.
#   --scenarios LIST       uncached,cached,light,dot-in,dot-idle (default: the
#                          first three).
#                          uncached: caches off, 10,000 names, full load;
#                          cached: caches on, 1,000 names, pre-filled;
#                          light: caches off, 10,000 names, dnsperf -Q LIGHT_QPS
#                          (latency without queueing; limit rows run it too);
#                          dot-in: as uncached, but dnsperf -m dot to the system's
#                          TLS listener (see below); stubby has none: n/a row.
#                          The reference for it is limit-dot/direct (the same
#                          dnsperf -m dot load straight at the upstream);
#                          dot-idle: memory per idle client TLS connection: with
#                          the dot-in setup, open --idle-conns TLS connections,
#                          one query on each (answer read), keep them all open
#                          and idle, record (RSS with them - RSS before) / N.
#   --idle-conns N         connections of the dot-idle scenario (default 1000)
#   --light-qps N          rate of the light scenario (default 2000)
#   --candidate 'CMD'      one more system: CMD is run through bash after these
#                          placeholders are replaced: {listen_port} {up_addr}
#                          {up_port} {tls_name} {ca} (and {scenario}: uncached,
#                          cached, light, dot-in or dot-idle; only "cached" wants
#                          a cache).  It must stay in the foreground or leave a
#                          process that owns the listening UDP socket, and serve
#                          UDP+TCP on 127.0.0.1:{listen_port}.  The process(es)
#                          owning that UDP socket are the ones measured and
#                          stopped.  In dot-in and dot-idle it must instead serve
#                          DNS over TLS on 127.0.0.1:{tls_listen_port} with the
#                          certificate chain {tls_cert} (PEM, leaf first, for
#                          dns.test and IP 127.0.0.1, from the run's CA {ca}) and
#                          key {tls_key}; UDP on {listen_port} is then optional,
#                          and the owners of that TCP listening socket are the
#                          ones measured.  In dot-idle it must keep idle client
#                          connections open for at least IDLE_TIMEOUT (120 s).
#                          (The three tls_ placeholders are replaced in every
#                          scenario; the files exist only when a dot-* scenario
#                          is run.)
#   --candidate-name NAME  label of that row (default candidate)
#   --tls-check            do not benchmark: prove that every system verifies
#                          the upstream certificate (right cert / wrong name /
#                          untrusted CA) and that it speaks TLS to the upstream
#   --up-threads N         upstream unbound threads (default 2)
#   --up-nodelay           upstream sets TCP_NODELAY on accepted sockets (unbound
#                          does not by itself for DoT; needs cc): see notes
#   --no-netns             do not re-run inside a private network namespace
#   --max-seconds S        hard wall-clock cap for the whole run (default 360)
#
# Peer tunables (environment, defaults are the settings under which the peers were measured):
#   DNSDIST_TCP_THREADS (2)  DNSDIST_MAX_IN_FLIGHT (100)
#   UNBOUND_THREADS (1)      UNBOUND_OUTGOING_TCP (64)  UNBOUND_MAX_REUSE (200)
#   KRESD_INSTANCES (1)      KRESD_TCP_PIPELINE (1000)     STUBBY_PADDING (128)
#   DNSDIST_TLS_PROVIDER (openssl): addTLSLocal provider of dnsdist's listener.
#     The Debian dnsdist 1.7.3 build here is linked with OpenSSL only (--version:
#     "dns-over-tls(openssl)"); asked for gnutls it silently uses OpenSSL, so
#     openssl is the only one measurable here; the run records which one it got.
#
# TLS listeners (dot-in, dot-idle): each system gets, besides its usual UDP/TCP
# port P, a DoT listener on 127.0.0.1:P+3 (dnsdist 20203, unbound 20213, kresd
# 20233, candidate 20243, dnsdist-default 20253, kresd-default 20263) with a
# server certificate for dns.test + IP 127.0.0.1 signed by the run's throwaway
# CA (OUT/tls-in/: cert.pem = leaf + CA, key.pem); it still forwards over DoT to
# the upstream, caches off.  dnsdist: addTLSLocal (frontend maxInFlight =
# DNSDIST_MAX_IN_FLIGHT, i.e. out-of-order on the client connections; none for
# dnsdist-default); unbound: interface P+3 with tls-port and tls-service-key/pem;
# kresd: net.tls() + net.listen(..., {kind='tls'}).  In dot-idle the client idle
# timeouts are raised to IDLE_TIMEOUT = 120 s (dnsdist setTCPRecvTimeout, unbound
# tcp-idle-timeout with incoming-num-tcp >= 2 N + 64 so that it never shortens
# them, kresd net.tcp_in_idle) and RLIMIT_NOFILE is raised to >= 2 N + 1024 for
# the whole run (systems inherit it).  Client side: dot_conns.py beside this script.
#
# Results: OUT/results.tsv, one row per system and scenario (columns named in
# its header line; x_dnsdist = qps / dnsdist's in the same scenario), and
# OUT/table.txt.  dot-idle rows: sent = N connections, completed = those whose
# query was answered (lost = the rest), rss_mib = total RSS (VmRSS) with the N
# connections open, cpu_us_q = the system's CPU per connection (TLS handshake +
# one query), open_conns = upstream DoT sockets at the sample, and the trailing
# column kib_per_conn = (VmRSS with the N open - VmRSS before) / N, in KiB; note
# says whether all N were answered, how many were still open when sampled, and
# the RSS before and after closing them.  kib_per_conn is empty on other rows;
# stubby's dot-* rows say n/a.
#
# By default the whole run is re-executed inside `unshare -n` (a fresh network
# namespace whose only interface is loopback): nothing can leave the machine,
# the other jobs' ports cannot collide, and /proc/net/snmp counts only our TCP
# connections.  All ports are in 20000-20999.  Every process started here is
# stopped by its PID (checked against its start time) on exit.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
UPSTREAM_SH="$HERE/upstream.sh"
ORIG_ARGS=("$@")

OUT=""
DURATION=10
WARMUP=2
CLIENTS=16
OUTSTANDING=200
QTIMEOUT=2
SYSTEMS=""
SCENARIOS="uncached,cached,light"
LIGHT_QPS=2000
IDLE_CONNS=1000
IDLE_TIMEOUT=120   # dot-idle: client idle timeout given to every system, seconds
CANDIDATE=""
CANDIDATE_NAME="candidate"
MODE=bench
UP_THREADS=${UPSTREAM_THREADS:-2}
UP_NODELAY=0
USE_NETNS=1
MAX_SECONDS=360

DNSDIST_TCP_THREADS=${DNSDIST_TCP_THREADS:-2}
DNSDIST_MAX_IN_FLIGHT=${DNSDIST_MAX_IN_FLIGHT:-100}
UNBOUND_THREADS=${UNBOUND_THREADS:-1}
UNBOUND_OUTGOING_TCP=${UNBOUND_OUTGOING_TCP:-64}
UNBOUND_MAX_REUSE=${UNBOUND_MAX_REUSE:-200}
KRESD_INSTANCES=${KRESD_INSTANCES:-1}
KRESD_TCP_PIPELINE=${KRESD_TCP_PIPELINE:-1000}
STUBBY_PADDING=${STUBBY_PADDING:-128}   # stubby's shipped default (EDNS(0) padding of queries)
DNSDIST_TLS_PROVIDER=${DNSDIST_TLS_PROVIDER:-openssl}
STUBBY_VERBOSITY=5     # stubby's default; --tls-check raises it to 6 to log "Verify failed"
DNSDIST_VERBOSE=""     # --tls-check sets -v to log failed health checks

UP_BASE=20100      # good upstream: 20100 plain, 20101 DoT
WRONG_BASE=20110   # --tls-check decoy: cert for wrong.test from the trusted CA
ROGUE_BASE=20120   # --tls-check decoy: cert for dns.test from an untrusted CA
declare -A PORT=([dnsdist]=20200 [unbound]=20210 [stubby]=20220 [kresd]=20230 [candidate]=20240
    [dnsdist-default]=20250 [kresd-default]=20260)
TLS_PORT_OFFSET=3  # dot-in/dot-idle: a system's DoT listener is on its port + 3
tls_port() { echo $((PORT[$1] + TLS_PORT_OFFSET)); }

usage() { sed -n '2,/^set -uo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { echo "peers.sh: $*" >&2; exit 1; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "option $1 needs a value"; }

while (($#)); do
    case $1 in
    --out) need "$@"; OUT=$2; shift 2 ;;
    --duration) need "$@"; DURATION=$2; shift 2 ;;
    --warmup) need "$@"; WARMUP=$2; shift 2 ;;
    --clients) need "$@"; CLIENTS=$2; shift 2 ;;
    --outstanding) need "$@"; OUTSTANDING=$2; shift 2 ;;
    --qtimeout) need "$@"; QTIMEOUT=$2; shift 2 ;;
    --systems) need "$@"; SYSTEMS=$2; shift 2 ;;
    --scenarios) need "$@"; SCENARIOS=$2; shift 2 ;;
    --light-qps) need "$@"; LIGHT_QPS=$2; shift 2 ;;
    --idle-conns) need "$@"; IDLE_CONNS=$2; shift 2 ;;
    --candidate) need "$@"; CANDIDATE=$2; shift 2 ;;
    --candidate-name) need "$@"; CANDIDATE_NAME=$2; shift 2 ;;
    --tls-check) MODE=tls-check; shift ;;
    --up-threads) need "$@"; UP_THREADS=$2; shift 2 ;;
    --up-nodelay) UP_NODELAY=1; shift ;;
    --no-netns) USE_NETNS=0; shift ;;
    --max-seconds) need "$@"; MAX_SECONDS=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "peers.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
for v in DURATION WARMUP CLIENTS OUTSTANDING QTIMEOUT UP_THREADS MAX_SECONDS KRESD_INSTANCES LIGHT_QPS IDLE_CONNS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((DURATION >= 2)) || die "--duration must be at least 2"
((IDLE_CONNS >= 1)) || die "--idle-conns must be at least 1"
[[ $DNSDIST_TLS_PROVIDER =~ ^(openssl|gnutls)$ ]] || die "DNSDIST_TLS_PROVIDER: openssl or gnutls"
[[ $CANDIDATE_NAME =~ ^[A-Za-z0-9._-]+$ ]] || die "--candidate-name: letters, digits, . _ - only"

if [[ -z $SYSTEMS ]]; then
    if [[ $MODE == tls-check ]]; then SYSTEMS="dnsdist,unbound,stubby,kresd"; else SYSTEMS="limit-udp,limit-dot,dnsdist,unbound,stubby,kresd"; fi
    [[ -n $CANDIDATE ]] && SYSTEMS+=",candidate"
fi
IFS=, read -ra SYS_LIST <<<"$SYSTEMS"
IFS=, read -ra SCEN_LIST <<<"$SCENARIOS"
for s in "${SYS_LIST[@]}"; do
    case $s in
    limit-udp | limit-dot | dnsdist | unbound | stubby | kresd | dnsdist-default | kresd-default) ;;
    candidate) [[ -n $CANDIDATE ]] || die "system 'candidate' needs --candidate" ;;
    *) die "unknown system '$s'" ;;
    esac
done
WANT_DOT=0    # a dot-* scenario is run: TLS listeners, their certificate, dot_conns.py
WANT_IDLE=0
for s in "${SCEN_LIST[@]}"; do
    case $s in
    uncached | cached | light) ;;
    dot-in) WANT_DOT=1 ;;
    dot-idle) WANT_DOT=1 WANT_IDLE=1 ;;
    *) die "unknown scenario '$s'" ;;
    esac
done

# ---------------------------------------------------------------- netns
if [[ $USE_NETNS == 1 && -z ${DOTBENCH_IN_NETNS:-} ]]; then
    if unshare -n true 2>/dev/null; then
        exec unshare -n -- env DOTBENCH_IN_NETNS=1 bash "$SELF" "${ORIG_ARGS[@]}"
    fi
    echo "peers.sh: warning: unshare -n failed; running in the host network namespace (loopback only)" >&2
fi
NETNS=no
if [[ -n ${DOTBENCH_IN_NETNS:-} ]]; then
    ip link set lo up || die "cannot bring up lo in the namespace"
    NETNS=yes
fi

for c in dnsperf dig unbound unbound-control ss awk; do command -v "$c" >/dev/null || die "$c not installed"; done
DOT_CONNS="$HERE/dot_conns.py"
if ((WANT_DOT)) && [[ $MODE == bench ]]; then
    command -v python3 >/dev/null || die "python3 not installed (needed by dot-in / dot-idle)"
    command -v certtool >/dev/null || die "certtool (gnutls-bin) not installed"
    [[ -r $DOT_CONNS ]] || die "$DOT_CONNS missing"
fi
if ((WANT_IDLE)) && [[ $MODE == bench ]]; then
    # every idle connection is one descriptor in the client and one in the
    # system (plus its upstream side): raise the limit that they all inherit
    nofile_want=$((2 * IDLE_CONNS + 1024))
    if [[ $(ulimit -Sn) != unlimited ]] && (($(ulimit -Sn) < nofile_want)); then
        if [[ $(ulimit -Hn) != unlimited ]] && (($(ulimit -Hn) < nofile_want)); then
            ulimit -Hn "$nofile_want" 2>/dev/null || die "cannot raise the hard RLIMIT_NOFILE to $nofile_want (--idle-conns $IDLE_CONNS)"
        fi
        ulimit -Sn "$nofile_want" || die "cannot raise RLIMIT_NOFILE to $nofile_want"
    fi
fi
TLS_PORTS=()
if ((WANT_DOT)); then for s in "${!PORT[@]}"; do TLS_PORTS+=("$(tls_port "$s")"); done; fi
if [[ $NETNS == no ]]; then   # sharing the host's loopback: our ports must be free
    for p in "$UP_BASE" $((UP_BASE + 1)) "$WRONG_BASE" $((WRONG_BASE + 1)) "$ROGUE_BASE" $((ROGUE_BASE + 1)) "${PORT[@]}" "${TLS_PORTS[@]}"; do
        [[ -z $(ss -Hlntu "( sport = :$p )" 2>/dev/null) ]] || die "port $p is already in use"
    done
fi

[[ -n $OUT ]] || OUT=/tmp/dotbench/run-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
START_TS=$(date +%s)
CLK_TCK=$(getconf CLK_TCK)

elapsed() { echo $(($(date +%s) - START_TS)); }
log() { printf '[%3ss] %s\n' "$(elapsed)" "$*" | tee -a "$OUT/run.log" >&2; }

# ---------------------------------------------------------------- processes
# Every long-running process is tracked as PID:STARTTIME so that we never
# signal a recycled PID.
TRACKED=()
UP_DIRS=()
WATCHDOG=""

proc_start() {   # proc_start PID -> start time (clock ticks since boot)
    local l
    read -r l 2>/dev/null <"/proc/$1/stat" || return 1
    l=${l##*) }
    local -a f
    read -ra f <<<"$l"
    echo "${f[19]}"
}
track() { local st; st=$(proc_start "$1") && TRACKED+=("$1:$st"); }
is_same() { local st; st=$(proc_start "${1%%:*}") && [[ $st == "${1#*:}" ]]; }
stop_tracked() {   # stop_tracked PID:ST ... : TERM, up to 5 s, then KILL
    local e i alive
    for e in "$@"; do is_same "$e" && kill -TERM "${e%%:*}" 2>/dev/null; done
    for i in $(seq 50); do
        alive=0
        for e in "$@"; do is_same "$e" && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for e in "$@"; do
        if is_same "$e"; then
            log "  pid ${e%%:*} ignored TERM for 5 s: KILL"
            kill -KILL "${e%%:*}" 2>/dev/null
        fi
        wait "${e%%:*}" 2>/dev/null
    done
    local keep=() t
    for t in "${TRACKED[@]}"; do
        local gone=0
        for e in "$@"; do [[ $t == "$e" ]] && gone=1; done
        ((gone)) || keep+=("$t")
    done
    TRACKED=("${keep[@]}")
}
launch() {   # launch LOGBASE CMD... ; sets LAST_PID
    local base=$1
    shift
    "$@" >"$base.out" 2>"$base.err" </dev/null &
    LAST_PID=$!
    track "$LAST_PID"
}
cleanup() {
    trap - EXIT INT TERM
    [[ -n ${DP_PID:-} ]] && kill -TERM "$DP_PID" 2>/dev/null && wait "$DP_PID" 2>/dev/null
    [[ -n ${IDLE_PID:-} ]] && kill -TERM "$IDLE_PID" 2>/dev/null && wait "$IDLE_PID" 2>/dev/null
    ((${#TRACKED[@]})) && stop_tracked "${TRACKED[@]}"
    local d
    for d in "${UP_DIRS[@]}"; do "$UPSTREAM_SH" stop "$d" >/dev/null 2>&1; done
    if [[ -n $WATCHDOG ]]; then kill -TERM "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

MAIN_PID=$$
(
    sleep "$MAX_SECONDS" &
    sp=$!
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    wait "$sp"
    echo "peers.sh: hard limit of $MAX_SECONDS s reached, aborting" >&2
    kill -TERM "$MAIN_PID"
) &
WATCHDOG=$!

# ---------------------------------------------------------------- helpers
cpu_ticks() {   # cpu_ticks PID... -> utime+stime summed over all threads
    local p l t=0
    local -a f
    for p in "$@"; do
        read -r l 2>/dev/null <"/proc/$p/stat" || continue
        l=${l##*) }
        read -ra f <<<"$l"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
hwm_kib() {   # hwm_kib PID... -> sum of VmHWM
    local p t=0 v
    for p in "$@"; do
        v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
rss_kib() {   # rss_kib PID... -> sum of VmRSS (resident now, not the peak)
    local p t=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
sys_cpu() {   # sys_cpu -> "total idle+iowait steal irq+softirq" jiffies from /proc/stat (guest excluded)
    awk '$1=="cpu"{t=0; for (i=2;i<=9;i++) t+=$i; print t, $5+$6, $9, $7+$8; exit}' /proc/stat
}
udp_rcvbuf_errors() {   # UDP datagrams dropped for lack of receive-buffer room (netns only)
    if [[ $NETNS == yes ]]; then
        awk '$1=="Udp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1; next } print $c; exit }' /proc/net/snmp
    else
        echo ""
    fi
}
sock_drops() {   # sock_drops PORT -> drops counted on the UDP sockets bound to PORT (ss skmem d)
    ss -Huanm "( sport = :$1 )" 2>/dev/null | grep -o ',d[0-9]*)' | tr -dc '0-9\n' | awk '{t += $1} END {print t + 0}'
}
passive_opens() {
    if [[ $NETNS == yes ]]; then
        awk '$1=="Tcp:" && $7 ~ /^[0-9]+$/ {print $7; exit}' /proc/net/snmp
    else
        echo ""
    fi
}
up_counters() {   # up_counters DIR -> "total tls"
    unbound-control -c "$1/unbound.conf" stats_noreset 2>/dev/null |
        awk -F= '$1=="total.num.queries"{t=$2} $1=="num.query.tls"{s=$2} END{print t+0, s+0}'
}
port_pids() {   # port_pids PORT [tcp] -> pids owning a UDP (or listening TCP) socket bound to 127.0.0.1:PORT
    local t=u
    [[ ${2:-udp} == tcp ]] && t=t
    ss -Hl${t}np "( sport = :$1 )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -un | tr '\n' ' '
}
estab_count() {   # estab_count PORT -> established TCP sockets whose local port is PORT
    ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}
port_bound() { [[ -n $(ss -Hlun "( sport = :$1 )" 2>/dev/null) ]]; }
answers() {   # answers PORT NAME [dig opts] -> 0 if an A answer in 198.x came back
    dig @127.0.0.1 -p "$1" "$2" A +time=1 +tries=1 +short "${@:3}" 2>/dev/null | grep -q '^198\.'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN{ if (v == "" || v == "n/a") print "n/a"; else printf f, v }'; }

# ---------------------------------------------------------------- peers
# start_peer SYS SCENARIO DOT_PORT DIR : sets PEER_PIDS (array); returns 1 on failure.
# Scenarios dot-in and dot-idle add a DoT listener on $(tls_port SYS) with
# TLS_CERT/TLS_KEY (caches stay off as in uncached).
start_peer() {
    local sys=$1 scen=$2 dot=$3 d=$4 port=${PORT[$1]} tlsp
    tlsp=$(tls_port "$1")
    PEER_PIDS=()
    mkdir -p "$d"
    local DNSDIST_TCP_THREADS=$DNSDIST_TCP_THREADS DNSDIST_MAX_IN_FLIGHT=$DNSDIST_MAX_IN_FLIGHT
    local KRESD_TCP_PIPELINE=$KRESD_TCP_PIPELINE
    case $sys in
    dnsdist-default) sys=dnsdist DNSDIST_TCP_THREADS=default DNSDIST_MAX_IN_FLIGHT=default ;;
    kresd-default) sys=kresd KRESD_TCP_PIPELINE=default ;;
    esac
    case $sys in
    dnsdist)
        {
            echo "-- generated by peers.sh ($scen)"
            echo 'setSecurityPollSuffix("")'
            [[ -n $DNSDIST_VERBOSE ]] && echo 'setVerboseHealthChecks(true)'
            echo "setLocal(\"127.0.0.1:$port\")"
            [[ $DNSDIST_TCP_THREADS == default ]] || echo "setMaxTCPClientThreads($DNSDIST_TCP_THREADS)"
            local mif=""
            [[ $DNSDIST_MAX_IN_FLIGHT == default ]] || mif=", maxInFlight=$DNSDIST_MAX_IN_FLIGHT"
            echo "newServer({address=\"127.0.0.1:$dot\", tls=\"openssl\", subjectName=\"$TLS_NAME\", caStore=\"$CA\", validateCertificates=true$mif, checkName=\"h1.bench.test.\"})"
            if [[ $scen == dot-* ]]; then
                # maxInFlight on the frontend: read and forward up to that many
                # queries of one client connection at once (without it dnsdist
                # handles a client connection's queries one at a time)
                echo "addTLSLocal(\"127.0.0.1:$tlsp\", \"$TLS_CERT\", \"$TLS_KEY\", {provider=\"$DNSDIST_TLS_PROVIDER\"$mif})"
                [[ $scen == dot-idle ]] && echo "setTCPRecvTimeout($IDLE_TIMEOUT)   -- default 2 s would close the idle clients"
            fi
            if [[ $scen == cached ]]; then
                echo 'pc = newPacketCache(100000, {maxTTL=86400})'
                echo 'getPool(""):setCache(pc)'
            fi
        } >"$d/dnsdist.conf"
        dnsdist --check-config -C "$d/dnsdist.conf" >"$d/check.log" 2>&1 || { log "  dnsdist config rejected: $(tail -1 "$d/check.log")"; return 1; }
        launch "$d/dnsdist" dnsdist --supervised --disable-syslog $DNSDIST_VERBOSE -C "$d/dnsdist.conf"
        PEER_PIDS=("$LAST_PID")
        ;;
    unbound)
        {
            echo "# generated by peers.sh ($scen)"
            echo "server:"
            echo "  verbosity: 0"
            echo "  num-threads: $UNBOUND_THREADS"
            echo "  interface: 127.0.0.1@$port"
            echo "  port: $port"
            if [[ $scen == dot-* ]]; then
                echo "  interface: 127.0.0.1@$tlsp"
                echo "  tls-port: $tlsp"
                echo "  tls-service-key: \"$TLS_KEY\""
                echo "  tls-service-pem: \"$TLS_CERT\""
            fi
            echo "  do-ip6: no"
            echo "  so-reuseport: yes"
            echo "  username: \"\""
            echo "  chroot: \"\""
            echo "  directory: \"$d\""
            echo "  pidfile: \"\""
            echo "  do-daemonize: no"
            echo "  use-syslog: no"
            echo "  logfile: \"$d/unbound.log\""
            echo "  access-control: 127.0.0.0/8 allow"
            echo "  module-config: \"iterator\""
            echo "  # unbound serves test. itself (RFC 6761 default local zone): turn that off"
            echo "  local-zone: \"test.\" nodefault"
            echo "  do-not-query-localhost: no"
            echo "  tls-cert-bundle: \"$CA\""
            echo "  num-queries-per-thread: 4096"
            echo "  outgoing-num-tcp: $UNBOUND_OUTGOING_TCP"
            echo "  max-reuse-tcp-queries: $UNBOUND_MAX_REUSE"
            echo "  tcp-reuse-timeout: 60000"
            if [[ $scen == dot-idle ]]; then
                # below 50 % free incoming slots unbound cuts tcp-idle-timeout
                # to 1 % (then less): keep N under half of them
                echo "  incoming-num-tcp: $((2 * IDLE_CONNS + 64))"
                echo "  tcp-idle-timeout: $((IDLE_TIMEOUT * 1000))"
            else
                echo "  incoming-num-tcp: 64"
            fi
            echo "  prefetch: no"
            if [[ $scen != cached ]]; then
                echo "  cache-max-ttl: 0"
                echo "  cache-max-negative-ttl: 0"
            fi
            echo "  extended-statistics: yes"
            echo "forward-zone:"
            echo "  name: \".\""
            echo "  forward-tls-upstream: yes"
            echo "  forward-addr: 127.0.0.1@$dot#$TLS_NAME"
            echo "remote-control:"
            echo "  control-enable: yes"
            echo "  control-interface: \"$d/control.sock\""
        } >"$d/unbound.conf"
        unbound-checkconf "$d/unbound.conf" >"$d/check.log" 2>&1 || { log "  unbound config rejected: $(tail -1 "$d/check.log")"; return 1; }
        launch "$d/unbound" unbound -d -c "$d/unbound.conf"
        PEER_PIDS=("$LAST_PID")
        ;;
    stubby)
        cat >"$d/stubby.yml" <<EOF
# generated by peers.sh ($scen) - stubby has no answer cache
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list:
  - GETDNS_TRANSPORT_TLS
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_ca_file: "$CA"
tls_query_padding_blocksize: $STUBBY_PADDING
edns_client_subnet_private: 1
round_robin_upstreams: 1
idle_timeout: 10000
appdata_dir: "$d"
listen_addresses:
  - 127.0.0.1@$port
upstream_recursive_servers:
  - address_data: 127.0.0.1
    tls_port: $dot
    tls_auth_name: "$TLS_NAME"
EOF
        stubby -i -C "$d/stubby.yml" >"$d/check.log" 2>&1 || { log "  stubby config rejected: $(tail -1 "$d/check.log")"; return 1; }
        launch "$d/stubby" stubby -v "$STUBBY_VERBOSITY" -C "$d/stubby.yml"
        PEER_PIDS=("$LAST_PID")
        ;;
    kresd)
        {
            echo "-- generated by peers.sh ($scen)"
            echo "net.listen('127.0.0.1', $port, { kind = 'dns' })"
            if [[ $scen == dot-* ]]; then
                echo "net.tls('$TLS_CERT', '$TLS_KEY')"
                echo "net.listen('127.0.0.1', $tlsp, { kind = 'tls' })"
                [[ $scen == dot-idle ]] && echo "net.tcp_in_idle($((IDLE_TIMEOUT * 1000)))   -- default 10 s"
            fi
            echo "-- no DNSSEC and no background queries of its own"
            echo "trust_anchors.remove('.')"
            echo "for _, m in ipairs({'ta_update', 'ta_signal_query', 'ta_sentinel', 'priming', 'detect_time_skew', 'detect_time_jump'}) do pcall(modules.unload, m) end"
            echo "cache.open(100 * MB, 'lmdb://$d/cache')"
            echo "-- default 100: with more queries in flight on the one upstream TLS connection kresd answers SERVFAIL"
            [[ $KRESD_TCP_PIPELINE == default ]] || echo "net.tcp_pipeline($KRESD_TCP_PIPELINE)"
            if [[ $scen != cached ]]; then
                echo "policy.add(policy.all(policy.FLAGS({'NO_CACHE'})))"
            fi
            echo "policy.add(policy.all(policy.TLS_FORWARD({{'127.0.0.1@$dot', hostname = '$TLS_NAME', ca_file = '$CA'}})))"
        } >"$d/kresd.conf"
        local i
        for ((i = 1; i <= KRESD_INSTANCES; i++)); do
            launch "$d/kresd-$i" kresd -n -c "$d/kresd.conf" "$d"
            PEER_PIDS+=("$LAST_PID")
        done
        ;;
    candidate)
        local cmd=$CANDIDATE
        cmd=${cmd//\{listen_port\}/$port}
        cmd=${cmd//\{up_addr\}/127.0.0.1}
        cmd=${cmd//\{up_port\}/$dot}
        cmd=${cmd//\{tls_name\}/$TLS_NAME}
        cmd=${cmd//\{ca\}/$CA}
        cmd=${cmd//\{scenario\}/$scen}
        cmd=${cmd//\{tls_listen_port\}/$tlsp}
        cmd=${cmd//\{tls_cert\}/$TLS_CERT}
        cmd=${cmd//\{tls_key\}/$TLS_KEY}
        echo "$cmd" >"$d/command"
        launch "$d/candidate" bash -c "$cmd"
        PEER_PIDS=("$LAST_PID")
        ;;
    esac
    return 0
}

# wait_bound PORT SECONDS : wait until something has the UDP port open
wait_bound() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        port_bound "$1" && return 0
        sleep 0.1
    done
    return 1
}
# wait_answer PORT SECONDS
wait_answer() {
    local end=$(($(date +%s) + $2))
    while (($(date +%s) < end)); do
        answers "$1" h1.bench.test && return 0
        sleep 0.2
    done
    return 1
}
# after start: adopt the processes that really own the socket (daemonizing
# candidates), keep tracking them, and return them in PEER_PIDS.
# adopt_socket_owners PORT [tcp] : the UDP socket, or the listening TCP one
adopt_socket_owners() {
    local port=$1 p found=()
    for p in $(port_pids "$port" "${2:-udp}"); do
        found+=("$p")
        local known=0 t
        for t in "${TRACKED[@]}"; do [[ ${t%%:*} == "$p" ]] && known=1; done
        ((known)) || track "$p"
    done
    ((${#found[@]})) && PEER_PIDS=("${found[@]}")
}
stop_peer() {
    # only peer processes are in TRACKED (the upstreams and the watchdog are
    # not), including a candidate's bash wrapper and any daemonized child
    ((${#TRACKED[@]})) && stop_tracked "${TRACKED[@]}"
    PEER_PIDS=()
}

# ---------------------------------------------------------------- dnsperf
DP_PID=""
DP_EXTRA=()
CHILD_MS=0
children_cpu_ms() {   # sets CHILD_MS: CPU (user+sys, ms) of this shell's reaped children (times builtin;
    # must run in the main shell, not in $(...), or it would see a subshell's children)
    times >"$OUT/.times"
    CHILD_MS=$(awk 'NR==2 { t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); t += a[1] * 60 + a[2] }
        printf "%d", t * 1000 }' "$OUT/.times")
}
run_dnsperf() {   # run_dnsperf OUTFILE MODE PORT QFILE [extra dnsperf args]; foreground, bounded
    local of=$1 mode=$2 port=$3 qf=$4
    shift 4
    timeout -k 2 $((DURATION + QTIMEOUT + 20)) dnsperf -m "$mode" -s 127.0.0.1 -p "$port" -d "$qf" \
        -c "$CLIENTS" -q "$OUTSTANDING" -t "$QTIMEOUT" "${DP_EXTRA[@]}" \
        -O suppress=timeouts,congestion,sockready,unexpected,sendfailed "$@" >"$of" 2>&1 &
    DP_PID=$!
    wait "$DP_PID"
    local rc=$?
    DP_PID=""
    return $rc
}

# big-answer checks through a peer: TCP must carry the full 12-RR TXT RRset,
# UDP with a 1232-byte EDNS buffer must come back truncated (TC) or complete.
check_big() {
    local port=$1 t u res=""
    t=$(dig @127.0.0.1 -p "$port" big2.bench.test TXT +tcp +time=3 +tries=1 2>/dev/null)
    if grep -q 'ANSWER: 12,' <<<"$t"; then res="tcp:ok"; else res="tcp:FAIL"; fi
    u=$(dig @127.0.0.1 -p "$port" big2.bench.test TXT +notcp +ignore +bufsize=1232 +time=3 +tries=1 2>/dev/null)
    if grep -q '^;; flags:.* tc' <<<"$u"; then
        res+=",udp-big:TC"
    elif grep -q 'ANSWER: 12,' <<<"$u"; then
        res+=",udp-big:full$(grep -o 'MSG SIZE  rcvd: [0-9]*' <<<"$u" | awk '{print "(" $4 "B)"}')"
    else
        res+=",udp-big:FAIL($(grep -o 'status: [A-Z]*' <<<"$u" | awk '{print $2}'))"
    fi
    echo "$res"
}

# ---------------------------------------------------------------- DoT clients (dot-in, dot-idle)
DOT_PROBE=""
# dot_probe PORT [dot_conns.py probe options] : one DoT query, certificate
# verified against CA for TLS_NAME; its one-line report in DOT_PROBE
dot_probe() {
    local port=$1
    shift
    DOT_PROBE=$(timeout -k 2 20 python3 "$DOT_CONNS" probe "$port" "$CA" --name "$TLS_NAME" "$@" 2>&1 | tail -1)
    [[ $DOT_PROBE == "probe: ok"* ]]
}
# wait_dot_answer PORT SECONDS : wait_answer over DoT
wait_dot_answer() {
    local end=$(($(date +%s) + $2))
    while (($(date +%s) < end)); do
        dot_probe "$1" --timeout 1 && return 0
        sleep 0.2
    done
    return 1
}
# check_dot PORT : the DoT listener answers with a certificate that verifies
# for TLS_NAME, and carries the full 12-RR TXT RRset
check_dot() {
    local res
    if dot_probe "$1" --timeout 3; then res="dot:ok"; else res="dot:FAIL"; fi
    if dot_probe "$1" --timeout 3 --qname big2.bench.test --qtype TXT --answers 12; then res+=",dot-big:ok"; else res+=",dot-big:FAIL"; fi
    echo "$res"
}

# ---------------------------------------------------------------- results
RESULTS="$OUT/results.partial.tsv"
ROWS=()
declare -A R
FIELDS="system scenario qps sent completed lost udp_drops listen_drops avg_ms p50_ms p99_ms cpu_us_q rss_mib fwd_per_q tls_pct new_conns open_conns up_cpu_us_q gen_cpu_us_q busy_pct ext_pct steal_pct rcodes checks note"
# after FIELDS (and, in results.tsv, after x_dnsdist): kept last so that the
# older columns keep their places.  kib_per_conn: dot-idle only (see header)
TAIL_FIELDS="kib_per_conn"

record() {   # record KEY ; R[KEY.field] must be set
    local k=$1 f line=""
    ROWS+=("$k")
    for f in $FIELDS $TAIL_FIELDS; do line+="${R[$k.$f]:-}"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >>"$RESULTS"
}

# measure KEY SYSTEM SCENARIO PORT MODE QFILE PIDS...
measure() {
    local key=$1 sys=$2 scen=$3 port=$4 mode=$5 qf=$6
    shift 6
    local pids=("$@")
    local of="$OUT/$key.dnsperf" lat="$OUT/$key.lat"
    DP_EXTRA=()
    [[ $scen == light ]] && DP_EXTRA=(-Q "$LIGHT_QPS")
    R[$key.system]=$sys
    R[$key.scenario]=$scen

    if [[ $scen == cached ]]; then   # fill the cache: one pass over the working set
        run_dnsperf "$OUT/$key.fill" "$mode" "$port" "$qf" -n 1
    fi
    if ((WARMUP > 0)); then
        local saved=$DURATION
        DURATION=$WARMUP
        run_dnsperf "$OUT/$key.warm" "$mode" "$port" "$qf" -l "$WARMUP"
        DURATION=$saved
    fi

    local c0 u0 s0 o0 up0 ut0
    c0=$(cpu_ticks "${pids[@]}")
    u0=$(cpu_ticks "$UP_PID")
    read -r up0 ut0 < <(up_counters "$OUT/up")
    o0=$(passive_opens)
    local d0 d1 l0 l1
    d0=$(udp_rcvbuf_errors)
    l0=$(sock_drops "$port")
    s0=$(sys_cpu)
    local g0 g1
    children_cpu_ms
    g0=$CHILD_MS

    timeout -k 2 $((DURATION + QTIMEOUT + 20)) dnsperf -m "$mode" -s 127.0.0.1 -p "$port" -d "$qf" \
        -c "$CLIENTS" -q "$OUTSTANDING" -t "$QTIMEOUT" "${DP_EXTRA[@]}" -l "$DURATION" -v \
        -O suppress=timeouts,congestion,sockready,unexpected,sendfailed >"$of" 2>&1 &
    DP_PID=$!
    sleep $((DURATION / 2))
    local open
    open=$(ss -Htn state established "( sport = :$UP_DOT_PORT )" 2>/dev/null | wc -l)
    wait "$DP_PID"
    DP_PID=""
    children_cpu_ms
    g1=$CHILD_MS

    local c1 u1 s1 o1 up1 ut1
    c1=$(cpu_ticks "${pids[@]}")
    u1=$(cpu_ticks "$UP_PID")
    read -r up1 ut1 < <(up_counters "$OUT/up")
    o1=$(passive_opens)
    d1=$(udp_rcvbuf_errors)
    l1=$(sock_drops "$port")
    s1=$(sys_cpu)

    grep -v '^> ' "$of" >"$of.log"
    awk '$1==">" && $2!="T" && $2!="I" {print $NF}' "$of" | sort -n >"$lat"
    rm -f "$of"
    local sent comp lost qps avg n p50="" p99="" rcodes
    sent=$(awk '/Queries sent:/{print $3; exit}' "$of.log")
    comp=$(awk '/Queries completed:/{print $3; exit}' "$of.log")
    lost=$(awk '/Queries lost:/{print $3; exit}' "$of.log")
    qps=$(awk '/Queries per second:/{print $4; exit}' "$of.log")
    avg=$(awk '/Average Latency \(s\):/{print $4; exit}' "$of.log")
    rcodes=$(awk '/Response codes:/{sub(/.*Response codes: */, ""); gsub(/ /, ""); print; exit}' "$of.log")
    n=$(wc -l <"$lat")
    if ((n > 0)); then
        p50=$(sed -n "$(((n * 50 + 99) / 100))p" "$lat")
        p99=$(sed -n "$(((n * 99 + 99) / 100))p" "$lat")
    fi
    rm -f "$lat"
    if [[ -z $comp || -z $qps ]]; then
        R[$key.note]+="dnsperf failed: $(tail -2 "$of.log" | tr '\n' ' ')"
        record "$key"
        return 1
    fi
    R[$key.qps]=$(fmt "$qps" "%.0f")
    R[$key.sent]=$sent
    R[$key.completed]=$comp
    R[$key.lost]=$lost
    R[$key.avg_ms]=$(fmt "$(awk -v a="$avg" 'BEGIN{print a*1000}')" "%.3f")
    R[$key.p50_ms]=$([[ -n $p50 ]] && fmt "$(awk -v a="$p50" 'BEGIN{print a*1000}')" "%.3f" || echo n/a)
    R[$key.p99_ms]=$([[ -n $p99 ]] && fmt "$(awk -v a="$p99" 'BEGIN{print a*1000}')" "%.3f" || echo n/a)
    if ((${#pids[@]})); then
        R[$key.cpu_us_q]=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$comp" 'BEGIN{ if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "n/a" }')
        R[$key.rss_mib]=$(awk -v k="$(hwm_kib "${pids[@]}")" 'BEGIN{printf "%.1f", k / 1024}')
    else
        R[$key.cpu_us_q]="-"
        R[$key.rss_mib]="-"
    fi
    R[$key.gen_cpu_us_q]=$(awk -v d=$((g1 - g0)) -v n="$comp" 'BEGIN{ if (n > 0) printf "%.1f", d * 1000 / n; else print "n/a" }')
    R[$key.up_cpu_us_q]=$(awk -v d=$((u1 - u0)) -v hz="$CLK_TCK" -v n="$comp" 'BEGIN{ if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "n/a" }')
    R[$key.fwd_per_q]=$(awk -v d=$((up1 - up0)) -v n="$comp" 'BEGIN{ if (n > 0) printf "%.3f", d / n; else print "n/a" }')
    R[$key.tls_pct]=$(awk -v t=$((ut1 - ut0)) -v d=$((up1 - up0)) 'BEGIN{ if (d > 0) printf "%.1f", 100 * t / d; else print "n/a" }')
    if [[ -n $o0 && -n $o1 ]]; then R[$key.new_conns]=$((o1 - o0)); else R[$key.new_conns]="n/a"; fi
    if [[ -n $d0 && -n $d1 ]]; then R[$key.udp_drops]=$((d1 - d0)); else R[$key.udp_drops]="n/a"; fi
    R[$key.listen_drops]=$((l1 - l0))
    R[$key.open_conns]=$open
    local st0 si0 ss0 sq0 st1 si1 ss1 sq1
    read -r st0 si0 ss0 sq0 <<<"$s0"
    read -r st1 si1 ss1 sq1 <<<"$s1"
    # CPU used by anything but this row's processes (other jobs on the box),
    # as % of the whole machine; interrupt time is left out (loopback traffic
    # is processed there and not charged to any process)
    R[$key.ext_pct]=$(awk -v t=$((st1 - st0)) -v i=$((si1 - si0)) -v q=$((sq1 - sq0)) \
        -v ours=$(((c1 - c0) + (u1 - u0))) -v g=$((g1 - g0)) -v hz="$CLK_TCK" \
        'BEGIN{ if (t > 0) { e = 100 * (t - i - q - ours - g * hz / 1000) / t; if (e < 0) e = 0; printf "%.0f", e } else print "n/a" }')
    R[$key.busy_pct]=$(awk -v t=$((st1 - st0)) -v i=$((si1 - si0)) 'BEGIN{ if (t > 0) printf "%.0f", 100 * (t - i) / t; else print "n/a" }')
    R[$key.steal_pct]=$(awk -v t=$((st1 - st0)) -v s=$((ss1 - ss0)) 'BEGIN{ if (t > 0) printf "%.1f", 100 * s / t; else print "n/a" }')
    R[$key.rcodes]=$rcodes
    local p alive=1
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || alive=0; done
    ((alive)) || { R[$key.note]+=" DIED during run"; log "  $sys/$scen: a measured process died during the run"; }
    record "$key"
    log "  $sys/$scen: qps ${R[$key.qps]} lost $lost avg ${R[$key.avg_ms]} ms p99 ${R[$key.p99_ms]} ms cpu ${R[$key.cpu_us_q]} us/q rss ${R[$key.rss_mib]} MiB fwd/q ${R[$key.fwd_per_q]} tls ${R[$key.tls_pct]}% new_conns ${R[$key.new_conns]} open ${R[$key.open_conns]}"
}

# idle_measure KEY SYSTEM PORT PIDS... : the dot-idle row.  dot_conns.py opens
# IDLE_CONNS TLS connections to PORT (a query answered on each) and holds them
# idle; the system's VmRSS is read before, with all of them open, and after
# they are closed.
IDLE_PID=""
IDLE_COST=$((15 + IDLE_CONNS / 100))   # seconds a dot-idle row takes, roughly
idle_measure() {
    local key=$1 sys=$2 port=$3
    shift 3
    local pids=("$@") out="$OUT/$key.idle"
    R[$key.system]=$sys
    R[$key.scenario]="dot-idle"
    # a few connections first, opened and closed: per-thread state (TLS
    # contexts, every worker's malloc arena, the upstream connection) is then
    # in the "before" figure instead of being charged to the first connections
    timeout -k 2 30 python3 "$DOT_CONNS" idle "$port" "$CA" --name "$TLS_NAME" --conns 16 --hold 0 >"$out.warm" 2>&1
    sleep 1
    local r0 r1 r2 c0 c1 up0 ut0 up1 ut1 line
    r0=$(rss_kib "${pids[@]}")
    c0=$(cpu_ticks "${pids[@]}")
    read -r up0 ut0 < <(up_counters "$OUT/up")
    python3 "$DOT_CONNS" idle "$port" "$CA" --name "$TLS_NAME" --conns "$IDLE_CONNS" --hold "$IDLE_TIMEOUT" >"$out" 2>&1 &
    IDLE_PID=$!
    local deadline=$(($(date +%s) + 20 + IDLE_CONNS / 20))
    while ! grep -q '^held ' "$out" 2>/dev/null; do
        kill -0 "$IDLE_PID" 2>/dev/null || break
        (($(date +%s) < deadline)) || break
        sleep 0.2
    done
    line=$(grep -m1 '^held ' "$out" 2>/dev/null)
    if [[ -z $line ]]; then
        kill -TERM "$IDLE_PID" 2>/dev/null
        wait "$IDLE_PID" 2>/dev/null
        IDLE_PID=""
        R[$key.note]+="client did not finish opening $IDLE_CONNS connections: $(tail -2 "$out" | tr '\n' ' ')"
        log "  $sys/dot-idle: ${R[$key.note]}"
        record "$key"
        return 1
    fi
    c1=$(cpu_ticks "${pids[@]}")
    read -r up1 ut1 < <(up_counters "$OUT/up")
    sleep 2   # let the system settle (deferred frees, session tickets sent) before sampling
    r1=$(rss_kib "${pids[@]}")
    R[$key.held]=$(estab_count "$port")
    R[$key.open_conns]=$(estab_count "$UP_DOT_PORT")
    local p alive=1
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || alive=0; done
    kill -TERM "$IDLE_PID" 2>/dev/null
    wait "$IDLE_PID" 2>/dev/null
    IDLE_PID=""
    sleep 2
    r2=$(rss_kib "${pids[@]}")

    local opened answered secs errs
    opened=$(sed -n 's/.* opened=\([0-9]*\).*/\1/p' <<<"$line")
    answered=$(sed -n 's/.* answered=\([0-9]*\).*/\1/p' <<<"$line")
    secs=$(sed -n 's/.* secs=\([0-9.]*\).*/\1/p' <<<"$line")
    errs=$(sed -n 's/.* errors=\(.*\)$/\1/p' <<<"$line")
    R[$key.sent]=$IDLE_CONNS
    R[$key.completed]=${answered:-0}
    R[$key.lost]=$((IDLE_CONNS - ${answered:-0}))
    R[$key.rss_mib]=$(awk -v k="$r1" 'BEGIN{printf "%.1f", k / 1024}')
    R[$key.kib_per_conn]=$(awk -v a="$r0" -v b="$r1" -v n="$IDLE_CONNS" 'BEGIN{printf "%.1f", (b - a) / n}')
    R[$key.cpu_us_q]=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="${opened:-0}" 'BEGIN{ if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "n/a" }')
    R[$key.fwd_per_q]=$(awk -v d=$((up1 - up0)) -v n="${answered:-0}" 'BEGIN{ if (n > 0) printf "%.3f", d / n; else print "n/a" }')
    R[$key.tls_pct]=$(awk -v t=$((ut1 - ut0)) -v d=$((up1 - up0)) 'BEGIN{ if (d > 0) printf "%.1f", 100 * t / d; else print "n/a" }')
    R[$key.rss0_mib]=$(awk -v k="$r0" 'BEGIN{printf "%.1f", k / 1024}')
    R[$key.rss2_mib]=$(awk -v k="$r2" 'BEGIN{printf "%.1f", k / 1024}')
    R[$key.open_secs]=${secs:-?}
    local verdict="all answered"
    [[ ${answered:-0} == "$IDLE_CONNS" ]] || verdict="ONLY ${answered:-0}/$IDLE_CONNS answered (errors $errs)"
    [[ ${R[$key.held]} -ge $IDLE_CONNS ]] || verdict+="; only ${R[$key.held]} held"
    ((alive)) || { verdict+="; DIED during run"; log "  $sys/dot-idle: a measured process died during the run"; }
    R[$key.verdict]=$verdict
    R[$key.note]+="$verdict; held ${R[$key.held]}/$IDLE_CONNS open at sample; rss before ${R[$key.rss0_mib]} MiB, after close ${R[$key.rss2_mib]} MiB; opened in ${secs:-?} s"
    record "$key"
    log "  $sys/dot-idle: $IDLE_CONNS conns: answered ${answered:-0} held ${R[$key.held]} rss ${R[$key.rss0_mib]} -> ${R[$key.rss_mib]} MiB (${R[$key.kib_per_conn]} KiB/conn), after close ${R[$key.rss2_mib]} MiB; cpu ${R[$key.cpu_us_q]} us/conn; opened in ${secs:-?} s"
}

# ---------------------------------------------------------------- table
print_table() {
    local k f line
    declare -A BASE=()
    for k in "${ROWS[@]}"; do
        [[ ${R[$k.system]} == dnsdist && -n ${R[$k.qps]:-} ]] && BASE[${R[$k.scenario]}]=${R[$k.qps]}
    done
    for k in "${ROWS[@]}"; do
        local sc=${R[$k.scenario]} b
        b=${BASE[$sc]:-}
        [[ $sc == direct ]] && b=${BASE[uncached]:-}
        R[$k.ratio]="n/a"
        if [[ $b =~ ^[0-9.]+$ && ${R[$k.qps]:-} =~ ^[0-9.]+$ && $b != 0 ]]; then
            R[$k.ratio]=$(awk -v a="${R[$k.qps]}" -v b="$b" 'BEGIN{printf "%.2f", a / b}')
        fi
        local notes="${R[$k.checks]:-} ${R[$k.note]:-}"
        [[ -n ${R[$k.rcodes]:-} && (${R[$k.rcodes]} != NOERROR* || ${R[$k.rcodes]} == *,*) ]] && notes+=" rcodes:${R[$k.rcodes]}"
        R[$k.notes]=$notes
    done
    {
        grep '^#' "$RESULTS"
        echo "$FIELDS x_dnsdist $TAIL_FIELDS" | tr ' ' '\t'
        for k in "${ROWS[@]}"; do
            line=""
            for f in $FIELDS ratio $TAIL_FIELDS; do line+="${R[$k.$f]:-}"$'\t'; done
            printf '%s\n' "${line%$'\t'}"
        done
    } >"$OUT/results.tsv"
    {
        echo
        echo "== peers.sh results  ($(date '+%F %T'), run dir $OUT)"
        echo "   load: dnsperf UDP -c $CLIENTS -q $OUTSTANDING -l $DURATION -t $QTIMEOUT; uncached/light: 10000 names; cached: 1000 names (cache pre-filled)"
        echo "   upstream: unbound ${UP_THREADS} thread(s), TCP_NODELAY $( ((UP_NODELAY)) && echo on || echo 'off (unbound default)'); netns: $NETNS; machine: $(nproc) cores"
        printf '%-16s %-9s %8s %7s %8s %8s %9s %8s %9s | %7s %6s %6s %6s %6s %8s %8s %5s %5s %s\n' \
            system scenario qps lost avg_ms p99_ms cpu_us/q rss_MiB x_dnsdist drops fwd/q tls% new_c open_c up_us/q gen_us/q busy% ext% notes
        for k in "${ROWS[@]}"; do
            [[ ${R[$k.scenario]} == dot-idle ]] && continue   # own table below
            printf '%-16s %-9s %8s %7s %8s %8s %9s %8s %9s | %7s %6s %6s %6s %6s %8s %8s %5s %5s %s\n' \
                "${R[$k.system]}" "${R[$k.scenario]}" "${R[$k.qps]:-FAIL}" "${R[$k.lost]:--}" "${R[$k.avg_ms]:--}" "${R[$k.p99_ms]:--}" \
                "${R[$k.cpu_us_q]:--}" "${R[$k.rss_mib]:--}" "${R[$k.ratio]}" "${R[$k.listen_drops]:--}/${R[$k.udp_drops]:--}" "${R[$k.fwd_per_q]:--}" "${R[$k.tls_pct]:--}" \
                "${R[$k.new_conns]:--}" "${R[$k.open_conns]:--}" "${R[$k.up_cpu_us_q]:--}" "${R[$k.gen_cpu_us_q]:--}" "${R[$k.busy_pct]:--}" "${R[$k.ext_pct]:--}" "${R[$k.notes]}"
        done
        echo "   cpu_us/q, rss_MiB: the proxy process(es) only (utime+stime / queries completed; VmHWM).  drops: UDP datagrams the"
        echo "   kernel dropped for a full receive buffer, at the tested listening socket / at any socket (netns only).  fwd/q: queries the upstream"
        echo "   received per query completed (1 = no caching, 0 = all from cache); tls%: share of those that came over TLS;"
        echo "   new_c: TCP connections opened to the upstream during the run (netns only); open_c: established upstream DoT"
        echo "   sockets at mid-run; up_us/q: upstream CPU per query; gen_us/q: dnsperf CPU per query; busy%: whole-machine"
        echo "   CPU busy during the run (all three share the same $(nproc) cores); ext%: machine CPU used by other processes"
        echo "   (other jobs: noise).  light: dnsperf -Q $LIGHT_QPS (rate-limited).  x_dnsdist: qps / dnsdist's in the same scenario."
        if [[ " ${SCEN_LIST[*]} " == *" dot-in "* ]]; then
            echo "   dot-in: dnsperf -m dot (same -c/-q/-l, 10000 names, caches off) to the system's TLS listener (cert for $TLS_NAME + 127.0.0.1"
            echo "   from the run's CA; dnsdist provider $DNSDIST_TLS_USED); new_c then also counts dnsperf's own -c connections to the system."
            echo "   The reference is limit-dot/direct: the same load straight at the upstream.  stubby has no TLS listener (n/a)."
        fi
        if [[ " ${SCEN_LIST[*]} " == *" dot-idle "* ]]; then
            echo
            echo "== dot-idle: memory per idle client TLS connection ($IDLE_CONNS connections, one query answered on each, then all held idle)"
            printf '%-16s %8s %6s %10s %9s %10s %9s %11s %8s %6s %s\n' \
                system answered held rss_before rss_with rss_closed KiB/conn cpu_us/conn open_s open_c notes
            for k in "${ROWS[@]}"; do
                [[ ${R[$k.scenario]} == dot-idle ]] || continue
                printf '%-16s %8s %6s %10s %9s %10s %9s %11s %8s %6s %s\n' \
                    "${R[$k.system]}" "${R[$k.completed]:--}" "${R[$k.held]:--}" "${R[$k.rss0_mib]:--}" "${R[$k.rss_mib]:--}" \
                    "${R[$k.rss2_mib]:--}" "${R[$k.kib_per_conn]:--}" "${R[$k.cpu_us_q]:--}" "${R[$k.open_secs]:--}" \
                    "${R[$k.open_conns]:--}" "${R[$k.verdict]:-${R[$k.note]:-}} ${R[$k.checks]:-}"
            done
            echo "   rss_*: VmRSS of the system's process(es) in MiB before the connections, with all of them open (sampled 2 s after"
            echo "   the last answer), and 2 s after the client closed them; KiB/conn = (rss_with - rss_before) / $IDLE_CONNS; held: connections"
            echo "   still established at the sample; cpu_us/conn: CPU per connection (TLS handshake + one query); open_s: time to open"
            echo "   them all (at most 32 handshakes at a time); open_c: upstream DoT sockets.  Idle timeouts raised to $IDLE_TIMEOUT s."
            echo "   unbound's rss_before includes the incoming-num-tcp slots it needs to hold them ($((2 * IDLE_CONNS + 64)) here, set up at start)."
        fi
    } | tee "$OUT/table.txt"
}

# ---------------------------------------------------------------- start upstream
UP_DIRS+=("$OUT/up")
UPSTREAM_THREADS=$UP_THREADS UPSTREAM_NODELAY=$UP_NODELAY "$UPSTREAM_SH" start "$OUT/up" "$UP_BASE" >"$OUT/upstream.log" 2>&1 || {
    cat "$OUT/upstream.log" >&2
    die "upstream failed to start"
}
# shellcheck disable=SC1091
source "$OUT/up/env"
log "run dir $OUT (netns: $NETNS); upstream pid $UP_PID: udp/tcp $UP_ADDR:$UP_PORT, DoT $UP_ADDR:$UP_DOT_PORT ($TLS_NAME), $UP_THREADS thread(s), nodelay $UP_NODELAY"

# ---------------------------------------------------------------- TLS listeners (dot-in, dot-idle)
TLS_CERT="$OUT/tls-in/cert.pem"
TLS_KEY="$OUT/tls-in/key.pem"
# make_listener_cert DIR : DIR/cert.pem (leaf for $TLS_NAME and IP 127.0.0.1,
# then the CA) and DIR/key.pem, signed by the run's throwaway CA (the
# upstream's, so that the same ca.pem verifies both sides)
make_listener_cert() {
    local d=$1
    mkdir -p "$d" || return 1
    cat >"$d/server.tmpl" <<EOF
cn = "$TLS_NAME"
dns_name = "$TLS_NAME"
ip_address = "127.0.0.1"
organization = "bench"
serial = $(($(date +%s) + 2))
expiration_days = 30
tls_www_server
signing_key
EOF
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$d/key.pem" 2>/dev/null &&
        certtool --generate-certificate --load-privkey "$d/key.pem" \
            --load-ca-certificate "$OUT/up/ca.pem" --load-ca-privkey "$OUT/up/ca-key.pem" \
            --template "$d/server.tmpl" --no-text --outfile "$d/leaf.pem" 2>/dev/null || return 1
    cat "$d/leaf.pem" "$OUT/up/ca.pem" >"$d/cert.pem"
    chmod 600 "$d/key.pem"
}
# the provider dnsdist really uses: what it was asked for if the build has it,
# else the one it falls back to (the one compiled in; GnuTLS if both)
DNSDIST_TLS_LIBS=$(dnsdist --version 2>/dev/null | grep -o 'dns-over-tls([^)]*)' | sed 's/.*(//; s/)//')
DNSDIST_TLS_USED=$DNSDIST_TLS_PROVIDER
if [[ " $DNSDIST_TLS_LIBS " != *" $DNSDIST_TLS_PROVIDER "* ]]; then
    if [[ " $DNSDIST_TLS_LIBS " == *" gnutls "* ]]; then DNSDIST_TLS_USED=gnutls; else DNSDIST_TLS_USED=openssl; fi
fi
if ((WANT_DOT)) && [[ $MODE == bench ]]; then
    make_listener_cert "$OUT/tls-in" || die "cannot make the listener certificate (certtool)"
    log "TLS listeners: ports +$TLS_PORT_OFFSET, cert $TLS_CERT ($TLS_NAME, 127.0.0.1); dnsdist provider $DNSDIST_TLS_PROVIDER (build has: ${DNSDIST_TLS_LIBS:-?}; uses $DNSDIST_TLS_USED)"
fi
{
    echo "# peers.sh $(printf '%q ' "${ORIG_ARGS[@]}")"
    echo "# started $(date '+%F %T'); netns=$NETNS; cores=$(nproc); duration=$DURATION warmup=$WARMUP clients=$CLIENTS outstanding=$OUTSTANDING qtimeout=$QTIMEOUT up_threads=$UP_THREADS up_nodelay=$UP_NODELAY light_qps=$LIGHT_QPS"
    echo "# tunables: DNSDIST_TCP_THREADS=$DNSDIST_TCP_THREADS DNSDIST_MAX_IN_FLIGHT=$DNSDIST_MAX_IN_FLIGHT UNBOUND_THREADS=$UNBOUND_THREADS UNBOUND_OUTGOING_TCP=$UNBOUND_OUTGOING_TCP UNBOUND_MAX_REUSE=$UNBOUND_MAX_REUSE KRESD_INSTANCES=$KRESD_INSTANCES KRESD_TCP_PIPELINE=$KRESD_TCP_PIPELINE STUBBY_PADDING=$STUBBY_PADDING"
    echo "# versions: unbound $(unbound -V 2>/dev/null | awk 'NR==1{print $2}'); $(dnsdist --version 2>/dev/null | head -1); kresd $(kresd --version 2>/dev/null | awk '{print $NF}'); $(stubby -V 2>/dev/null | head -1); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/{print $2; exit}')"
    [[ -n $CANDIDATE ]] && echo "# candidate ($CANDIDATE_NAME): $CANDIDATE"
    if ((WANT_DOT)); then
        echo "# dot: listener cert $TLS_CERT ($TLS_NAME + 127.0.0.1, run CA); dnsdist tls provider $DNSDIST_TLS_USED (asked $DNSDIST_TLS_PROVIDER, build has ${DNSDIST_TLS_LIBS:-?}); idle_conns=$IDLE_CONNS idle_timeout=$IDLE_TIMEOUT nofile=$(ulimit -Sn)"
    fi
    echo "$FIELDS $TAIL_FIELDS" | tr ' ' '\t'
} >"$RESULTS"

awk '{print $1, "A"}' "$UP_NAMES_FILE" >"$OUT/q-uncached.txt"
head -n 1000 "$OUT/q-uncached.txt" >"$OUT/q-cached.txt"

label() { [[ $1 == candidate ]] && echo "$CANDIDATE_NAME" || echo "$1"; }

# ---------------------------------------------------------------- tls-check mode
if [[ $MODE == tls-check ]]; then
    STUBBY_VERBOSITY=6
    DNSDIST_VERBOSE=-v
    UP_DIRS+=("$OUT/up-wrongname" "$OUT/up-rogueca")
    UPSTREAM_CA_FROM="$OUT/up" UPSTREAM_CERT_NAME=wrong.test UPSTREAM_NAMES=1000 \
        "$UPSTREAM_SH" start "$OUT/up-wrongname" "$WRONG_BASE" >>"$OUT/upstream.log" 2>&1 || die "decoy (wrong name) failed"
    UPSTREAM_CERT_NAME=dns.test UPSTREAM_NAMES=1000 \
        "$UPSTREAM_SH" start "$OUT/up-rogueca" "$ROGUE_BASE" >>"$OUT/upstream.log" 2>&1 || die "decoy (rogue CA) failed"
    # the decoys themselves must fail a strict check (kdig) while the good one passes
    if command -v kdig >/dev/null; then
        for t in up:$UP_DOT_PORT up-wrongname:$((WRONG_BASE + 1)) up-rogueca:$((ROGUE_BASE + 1)); do
            r=$(kdig @127.0.0.1 -p "${t#*:}" +tls-ca="$CA" +tls-hostname="$TLS_NAME" +time=2 +retry=0 h1.bench.test A 2>&1 |
                grep -E -o 'status: [A-Z]+|handshake failed \([^)]*\)' | head -1)
            log "kdig strict check against ${t%%:*} (port ${t#*:}): ${r:-no answer}"
        done
    fi
    declare -A TC EV
    for sys in "${SYS_LIST[@]}"; do
        [[ $sys == limit-* ]] && continue
        for target in good wrongname rogueca; do
            case $target in
            good) dir=$OUT/up; dot=$UP_DOT_PORT ;;
            wrongname) dir=$OUT/up-wrongname; dot=$((WRONG_BASE + 1)) ;;
            rogueca) dir=$OUT/up-rogueca; dot=$((ROGUE_BASE + 1)) ;;
            esac
            if (($(elapsed) > MAX_SECONDS - 30)); then TC[$sys.$target]="skipped(time)"; continue; fi
            pd="$OUT/tls-$sys-$target"
            read -r a0 t0 < <(up_counters "$dir")
            if ! start_peer "$sys" uncached "$dot" "$pd"; then TC[$sys.$target]="start-failed"; continue; fi
            wait_bound "${PORT[$sys]}" 15 || log "  $sys did not bind its port"
            adopt_socket_owners "${PORT[$sys]}"
            outcome="no-answer"
            for _ in 1 2 3; do
                r=$(dig @127.0.0.1 -p "${PORT[$sys]}" h1.bench.test A +time=2 +tries=1 2>/dev/null)
                if grep -q '^h1\.bench\.test\..*198\.' <<<"$r"; then outcome="ANSWER"; break; fi
                st=$(grep -o 'status: [A-Z]*' <<<"$r" | awk '{print $2}')
                [[ -n $st ]] && outcome=$st
                sleep 1
            done
            read -r a1 t1 < <(up_counters "$dir")
            stop_peer
            TC[$sys.$target]="$outcome q=$((a1 - a0)) tls=$((t1 - t0))"
            # the peer's own words about the failed verification (first such log line)
            EV[$sys.$target]=$(cat "$pd"/*.out "$pd"/*.err "$pd"/*.log 2>/dev/null |
                grep -i -m1 -E 'verif|not trusted|certificate|handshake' | sed -E 's/^\[[0-9.:]+\] //; s/\(1\) [0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:[a-z_]+://; s/:[^ ]*\.c:[0-9]+:$//' | cut -c1-160)
            log "  tls-check $(label "$sys") -> $target: ${TC[$sys.$target]}"
        done
    done
    {
        echo
        echo "== TLS verification check ($(date '+%F %T'), run dir $OUT)"
        echo "   good = cert for $TLS_NAME from the trusted CA; wrongname = cert for wrong.test from the trusted CA;"
        echo "   rogueca = cert for $TLS_NAME from a CA the proxy was not given.  q/tls = DNS queries / TLS queries the target upstream received."
        printf '%-14s %-28s %-28s %-28s %s\n' system good wrongname rogueca verdict
        for sys in "${SYS_LIST[@]}"; do
            [[ $sys == limit-* ]] && continue
            g=${TC[$sys.good]:-} w=${TC[$sys.wrongname]:-} x=${TC[$sys.rogueca]:-}
            verdict=FAIL
            if [[ $g == ANSWER* && $g != *"tls=0" ]] &&
                [[ $(awk '{split($2,a,"="); split($3,b,"="); print (a[2]==b[2]) ? "y" : "n"}' <<<"$g") == y ]] &&
                [[ $w != ANSWER* && $w == *" q=0 tls=0" ]] && [[ $x != ANSWER* && $x == *" q=0 tls=0" ]]; then
                verdict=PASS
            fi
            printf '%-14s %-28s %-28s %-28s %s\n' "$(label "$sys")" "$g" "$w" "$x" "$verdict"
        done
        echo "   what each system logged when pointed at the bad certificates:"
        for sys in "${SYS_LIST[@]}"; do
            [[ $sys == limit-* ]] && continue
            for target in wrongname rogueca; do
                printf '   %-10s %-9s %s\n' "$(label "$sys")" "$target" "${EV[$sys.$target]:-(nothing logged)}"
            done
        done
    } | tee "$OUT/tls-check.txt"
    log "done in $(elapsed) s"
    exit 0
fi

# ---------------------------------------------------------------- bench mode
ROW_COST=$((DURATION + WARMUP + 12))
limit_row() {   # limit_row SYS SCENARIO
    local sys=$1 scen=$2 key=$1-$2
    if (($(elapsed) + ROW_COST > MAX_SECONDS - 10)); then
        R[$key.system]=$sys R[$key.scenario]=$scen R[$key.note]="skipped (time budget)"
        record "$key"
        return
    fi
    log "$sys/$scen: dnsperf straight at the upstream"
    if [[ $sys == limit-udp ]]; then
        measure "$key" "$sys" "$scen" "$UP_PORT" udp "$OUT/q-uncached.txt"
    else
        measure "$key" "$sys" "$scen" "$UP_DOT_PORT" dot "$OUT/q-uncached.txt"
    fi
}
for sys in "${SYS_LIST[@]}"; do
    [[ $sys == limit-* ]] && limit_row "$sys" direct
done

for scen in "${SCEN_LIST[@]}"; do
    qf="$OUT/q-uncached.txt"
    [[ $scen == cached ]] && qf="$OUT/q-cached.txt"
    for sys in "${SYS_LIST[@]}"; do
        if [[ $sys == limit-* ]]; then
            # dnsperf's own DoT client is not usable rate-limited: with -Q its
            # latency is the per-connection gap between queries (~c/Q s), so
            # only limit-udp gives the light baseline
            [[ $scen == light && $sys == limit-udp ]] && limit_row "$sys" light
            continue
        fi
        name=$(label "$sys")
        key="$name-$scen"
        via_dot=0   # dot-in / dot-idle: the clients speak DoT to the system's TLS listener
        [[ $scen == dot-* ]] && via_dot=1
        if ((via_dot)) && [[ $sys == stubby ]]; then
            R[$key.system]=$name R[$key.scenario]=$scen R[$key.qps]="n/a" R[$key.note]="n/a: stubby has no TLS listener"
            record "$key"
            log "$name/$scen: n/a (no TLS listener)"
            continue
        fi
        cost=$ROW_COST
        [[ $scen == dot-idle ]] && cost=$IDLE_COST
        if (($(elapsed) + cost > MAX_SECONDS - 10)); then
            R[$key.system]=$name R[$key.scenario]=$scen R[$key.note]="skipped (time budget)"
            record "$key"
            log "$name/$scen: skipped (time budget)"
            continue
        fi
        log "$name/$scen: starting"
        pd="$OUT/$key"
        if ! start_peer "$sys" "$scen" "$UP_DOT_PORT" "$pd"; then
            R[$key.system]=$name R[$key.scenario]=$scen R[$key.note]="failed to start"
            record "$key"
            continue
        fi
        if ((via_dot)); then
            lport=$(tls_port "$sys")
            if ! wait_dot_answer "$lport" 20; then
                R[$key.system]=$name R[$key.scenario]=$scen R[$key.note]="no 198.x answer over DoT on $lport within 20 s ($DOT_PROBE)"
                log "$name/$scen: no DoT answer within 20 s ($DOT_PROBE); stderr: $(tail -3 "$pd"/*.err 2>/dev/null | tr '\n' ' ')"
                record "$key"
                stop_peer
                continue
            fi
            adopt_socket_owners "$lport" tcp
            R[$key.checks]=$(check_dot "$lport")
        else
            if ! wait_answer "${PORT[$sys]}" 20; then
                R[$key.system]=$name R[$key.scenario]=$scen R[$key.note]="no 198.x answer within 20 s"
                log "$name/$scen: no answer within 20 s; stderr: $(tail -3 "$pd"/*.err 2>/dev/null | tr '\n' ' ')"
                record "$key"
                stop_peer
                continue
            fi
            adopt_socket_owners "${PORT[$sys]}"
            R[$key.checks]=$(check_big "${PORT[$sys]}")
        fi
        [[ $sys == stubby && $scen == cached ]] && R[$key.note]="(stubby has no cache)"
        ((${#PEER_PIDS[@]} > 1)) && R[$key.note]+="(${#PEER_PIDS[@]} processes)"
        case $scen in
        dot-in) measure "$key" "$name" "$scen" "$lport" dot "$qf" "${PEER_PIDS[@]}" ;;
        dot-idle) idle_measure "$key" "$name" "$lport" "${PEER_PIDS[@]}" ;;
        *) measure "$key" "$name" "$scen" "${PORT[$sys]}" udp "$qf" "${PEER_PIDS[@]}" ;;
        esac
        stop_peer
    done
done

print_table
log "done in $(elapsed) s; results in $OUT/results.tsv and $OUT/table.txt"
