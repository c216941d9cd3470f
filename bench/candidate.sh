#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# candidate.sh - run dotproxyd as the "candidate" of the shared benchmark rig
# ($SHARED_BENCH/peers.sh --candidate, run by bench/peers-run.sh), with the options
# each scenario wants.
#
#   candidate.sh SCENARIO LISTEN_PORT UP_ADDR UP_PORT TLS_NAME CA [DOTPROXYD_ARGS...]
#
# peers.sh fills these from its placeholders:
#   --candidate 'bench/candidate.sh {scenario} {listen_port} {up_addr} {up_port} {tls_name} {ca}'
#
# SCENARIO (the rig's names):
#   uncached, light   answer cache off (--cache-size 0): every query goes upstream,
#                     as with the peers, whose caches the rig turns off too
#   cached            answer cache on (--cache-size $DOTPROXYD_CACHE_SIZE)
#   dot-in, dot-idle  clients speak DNS over TLS to --listen-tls 127.0.0.1@$TLS_LISTEN_PORT
#                     with $TLS_CERT / $TLS_KEY (peers.sh's {tls_listen_port},
#                     {tls_cert}, {tls_key}, passed in the environment by
#                     peers-run.sh); cache off; dot-idle keeps idle clients 120 s
# Extra arguments (e.g. -w 2) are passed to dotproxyd after the scenario's own.
#
# Environment:
#   DOTPROXYD            the daemon (default: build-bench/cli/dotproxyd next to this script)
#   DOTPROXYD_CACHE_SIZE entries for the cached scenario (default 10000)
#   DOTPROXYD_PADDING    if set, passed as --padding N (only if the daemon has that option)
#
# The script execs dotproxyd, so the process peers.sh started is the one that owns
# the UDP socket, is measured and is stopped by its PID.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOTPROXYD=${DOTPROXYD:-$HERE/../build-bench/cli/dotproxyd}
CACHE_SIZE=${DOTPROXYD_CACHE_SIZE:-10000}

die() { echo "candidate.sh: $*" >&2; exit 2; }

[[ $# -ge 6 ]] || { sed -n '3,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
scenario=$1 listen_port=$2 up_addr=$3 up_port=$4 tls_name=$5 ca=$6
shift 6
[[ -x $DOTPROXYD ]] || die "no daemon at $DOTPROXYD (build it: meson setup build-bench --buildtype=release -Dtests=false -Dexamples=false && ninja -C build-bench)"

# An option the daemon does not know makes it exit 2 before it binds anything;
# "OPTS --version" checks that without starting it.
supports() { "$DOTPROXYD" "$@" --version >/dev/null 2>&1; }

args=(-l "127.0.0.1@$listen_port" -u "$up_addr@$up_port#$tls_name" --ca-file "$ca")
case $scenario in
uncached | light) args+=(--cache-size 0) ;;
cached)
    # A cached row measured without a cache would be silently wrong: refuse.
    supports --cache-size "$CACHE_SIZE" ||
        die "this dotproxyd rejects --cache-size $CACHE_SIZE: $("$DOTPROXYD" --cache-size "$CACHE_SIZE" --version 2>&1 | head -1)"
    args+=(--cache-size "$CACHE_SIZE")
    ;;
dot-in | dot-idle)
    [[ -n ${TLS_LISTEN_PORT:-} && -n ${TLS_CERT:-} && -n ${TLS_KEY:-} ]] ||
        die "$scenario needs TLS_LISTEN_PORT, TLS_CERT and TLS_KEY in the environment"
    args+=(--cache-size 0 --listen-tls "127.0.0.1@$TLS_LISTEN_PORT" --tls-cert "$TLS_CERT"
        --tls-key "$TLS_KEY")
    # peers.sh's IDLE_TIMEOUT (120 s) for every system, and room for its
    # --idle-conns clients (default 1000) beside the measuring ones.
    [[ $scenario == dot-idle ]] && args+=(--tls-idle-timeout 120000 --max-tcp-clients 8192)
    ;;
*) die "unknown scenario '$scenario' (uncached, cached, light, dot-in or dot-idle)" ;;
esac
if [[ -n ${DOTPROXYD_PADDING:-} ]]; then
    supports --padding "$DOTPROXYD_PADDING" || die "this dotproxyd has no --padding $DOTPROXYD_PADDING"
    args+=(--padding "$DOTPROXYD_PADDING")
fi

echo "candidate.sh: exec $DOTPROXYD ${args[*]} $*" >&2
exec "$DOTPROXYD" "${args[@]}" "$@"
