#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# peers-run.sh - dotproxyd against dnsdist, unbound, stubby and kresd on the shared
# benchmark rig ($SHARED_BENCH/peers.sh), all in one run, same upstream, same load.
#
#   bench/peers-run.sh [--w2] [--w2-systems LIST] [--out DIR] [peers.sh options...]
#
#   --w2               also measure dotproxyd -w 2 (row "dotproxyd-w2").  peers.sh
#                      takes one candidate per run, so this is a second peers.sh run
#                      (its own upstream), by default with dnsdist in it again so that
#                      its x_dnsdist ratio is taken within that run
#   --w2-systems LIST  systems of the second run (default: dnsdist,candidate, or just
#                      candidate when the first run has no dnsdist)
#   --out DIR          results folder (default /tmp/dotbench/peers-<time>-<pid>);
#                      run 1 goes to DIR/w1, run 2 to DIR/w2
#   everything else goes to peers.sh unchanged: --scenarios, --duration, --systems,
#   --light-qps, --max-seconds, ...  (see the header of peers.sh)
#
# Environment: SHARED_BENCH (default: the rig in the repository,
# SRC/bench/rig), BUILD_DIR (default build-bench in the source tree), and
# candidate.sh's DOTPROXYD_CACHE_SIZE, DOTPROXYD_PADDING.
#
# Builds the release daemon first (meson setup + ninja, incremental).  If this
# dotproxyd cannot enable its answer cache yet, the "cached" scenario is dropped
# with a notice rather than measured without a cache.
#
# Prints each run's table (peers.sh's own) and then one combined table; all
# figures are in DIR/combined.tsv.  Runs are sequential: never two at once.
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$SRC/bench/rig}
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
PEERS=$SHARED_BENCH/peers.sh

die() { echo "peers-run.sh: $*" >&2; exit 1; }

W2=0
W2_SYSTEMS=""
OUT=""
SYSTEMS=""
SCENARIOS="uncached,cached,light"
PASS=()
while (($#)); do
    case $1 in
    --w2) W2=1; shift ;;
    --w2-systems) [[ $# -ge 2 ]] || die "--w2-systems needs a value"; W2_SYSTEMS=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --systems) [[ $# -ge 2 ]] || die "--systems needs a value"; SYSTEMS=$2; shift 2 ;;
    --scenarios) [[ $# -ge 2 ]] || die "--scenarios needs a value"; SCENARIOS=$2; shift 2 ;;
    --candidate | --candidate-name) die "$1 is set by this script" ;;
    -h | --help) sed -n '3,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) PASS+=("$1"); shift ;;
    esac
done
[[ -x $PEERS ]] || die "no $PEERS (set SHARED_BENCH)"

# ---- release build (incremental; an unrelated broken file elsewhere in the tree
# must not stop a benchmark of the daemon that is already built)
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
    meson setup "$BUILD_DIR" "$SRC" --buildtype=release -Dtests=false -Dexamples=false >"/tmp/peers-run-setup.$$.log" 2>&1 ||
        { cat "/tmp/peers-run-setup.$$.log" >&2; die "meson setup failed"; }
    rm -f "/tmp/peers-run-setup.$$.log"
fi
if ! ninja -C "$BUILD_DIR" cli/dotproxyd >"/tmp/peers-run-build.$$.log" 2>&1; then
    tail -5 "/tmp/peers-run-build.$$.log" >&2
    [[ -x $BUILD_DIR/cli/dotproxyd ]] || die "build failed"
    echo "peers-run.sh: warning: build failed; benchmarking the dotproxyd already built" >&2
fi
rm -f "/tmp/peers-run-build.$$.log"
DOTPROXYD=$BUILD_DIR/cli/dotproxyd
export DOTPROXYD
echo "peers-run.sh: daemon $DOTPROXYD ($("$DOTPROXYD" --version 2>&1 | head -1)), source $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" diff --quiet HEAD -- lib cli include 2>/dev/null || echo '+uncommitted')" >&2

# ---- scenarios this daemon can run honestly
if [[ ,$SCENARIOS, == *,cached,* ]] && ! "$DOTPROXYD" --cache-size "${DOTPROXYD_CACHE_SIZE:-10000}" --version >/dev/null 2>&1; then
    echo "peers-run.sh: notice: this dotproxyd rejects --cache-size ${DOTPROXYD_CACHE_SIZE:-10000}; scenario 'cached' dropped" >&2
    SCENARIOS=$(tr ',' '\n' <<<"$SCENARIOS" | grep -vx cached | paste -sd,)
    [[ -n $SCENARIOS ]] || die "no scenario left to run"
fi

[[ -n $OUT ]] || OUT=/tmp/dotbench/peers-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

CAND="TLS_LISTEN_PORT={tls_listen_port} TLS_CERT={tls_cert} TLS_KEY={tls_key} '$HERE/candidate.sh' {scenario} {listen_port} {up_addr} {up_port} {tls_name} {ca}"

run_peers() {   # run_peers SUBDIR NAME SYSTEMS EXTRA_DAEMON_ARGS
    local sub=$1 name=$2 systems=$3 extra=$4 sysarg=()
    [[ -n $systems ]] && sysarg=(--systems "$systems")
    echo "peers-run.sh: $PEERS --out $OUT/$sub --candidate-name $name ${sysarg[*]} --scenarios $SCENARIOS ${PASS[*]}" >&2
    "$PEERS" --out "$OUT/$sub" --candidate "$CAND${extra:+ $extra}" --candidate-name "$name" \
        "${sysarg[@]}" --scenarios "$SCENARIOS" "${PASS[@]}"
}

run_peers w1 dotproxyd "$SYSTEMS" "" || die "peers.sh failed (run 1); see $OUT/w1"
if ((W2)); then
    if [[ -z $W2_SYSTEMS ]]; then
        if [[ -z $SYSTEMS || ,$SYSTEMS, == *,dnsdist,* ]]; then W2_SYSTEMS=dnsdist,candidate; else W2_SYSTEMS=candidate; fi
    fi
    run_peers w2 dotproxyd-w2 "$W2_SYSTEMS" "-w 2" || die "peers.sh failed (run 2); see $OUT/w2"
fi

# ---- one table over both runs (x_dnsdist is always within its own run)
{
    printf 'run\t'
    awk -F'\t' '$1=="system"{print; exit}' "$OUT/w1/results.tsv"
    for r in w1 w2; do
        [[ -f $OUT/$r/results.tsv ]] || continue
        awk -F'\t' -v r="$r" '/^#/ || $1=="system" {next} {print r "\t" $0}' "$OUT/$r/results.tsv"
    done
} >"$OUT/combined.tsv"
echo
echo "== combined ($OUT/combined.tsv); x_dnsdist = qps / dnsdist's qps in the same run and scenario"
awk -F'\t' '
NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i
          printf "%-4s %-16s %-9s %8s %8s %8s %9s %8s %9s %5s %s\n", "run", "system", "scenario", "qps", "lost", "p99_ms", "cpu_us/q", "rss_MiB", "x_dnsdist", "ext%", "notes"; next }
{ printf "%-4s %-16s %-9s %8s %8s %8s %9s %8s %9s %5s %s\n", $1, $c["system"], $c["scenario"], $c["qps"], $c["lost"], $c["p99_ms"], $c["cpu_us_q"], $c["rss_mib"], $c["x_dnsdist"], $c["ext_pct"], $c["note"] }
' "$OUT/combined.tsv"
