#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# load-sweep.sh - achieved qps and p99 latency against offered load, for dotproxyd,
# dnsdist and unbound, on the shared benchmark rig; one TSV and one PNG (two panels).
#
#   bench/load-sweep.sh [--loads LIST] [--duration S] [--systems LIST] [--out DIR]
#                       [--png FILE]
#   bench/load-sweep.sh --plot-only SWEEP_TSV --png FILE
#
#   --loads LIST     offered loads in qps, comma list; "max" = no rate limit
#                    (default 2000,5000,10000,20000,40000,max)
#   --duration S     measured seconds per row (default 5; 2 s warmup before each)
#   --systems LIST   peers.sh systems (default dnsdist,unbound,candidate)
#   --out DIR        results folder (default /tmp/dotbench/sweep-<time>-<pid>)
#   --png FILE       where the plot goes (default DIR/perf-load.png); the repository's
#                    figure is made with --png docs/perf-load.png
#
# Each load is one run of bench/peers-run.sh (so one peers.sh run, one fresh
# upstream, the systems one after the other, never two at once):
#   N:    --scenarios light --light-qps N   (dnsperf -Q N; caches off)
#   max:  --scenarios uncached              (no -Q: as fast as the proxy answers)
# both with dnsperf -c 16 -q 200 over the 10,000 uncached names.  Rows of one
# load are comparable with each other (same minutes, same noise); ext% (CPU used
# by other jobs during the row) is kept in the TSV.
#
# The whole default sweep takes about 2.5 minutes on this machine (5 s rows).
set -uo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOADS=2000,5000,10000,20000,40000,max
DURATION=5
SYSTEMS=dnsdist,unbound,candidate
OUT=""
PNG=""
PLOT_ONLY=""

die() { echo "load-sweep.sh: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
    --loads) [[ $# -ge 2 ]] || die "--loads needs a value"; LOADS=$2; shift 2 ;;
    --duration) [[ $# -ge 2 ]] || die "--duration needs a value"; DURATION=$2; shift 2 ;;
    --systems) [[ $# -ge 2 ]] || die "--systems needs a value"; SYSTEMS=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a value"; OUT=$2; shift 2 ;;
    --png) [[ $# -ge 2 ]] || die "--png needs a value"; PNG=$2; shift 2 ;;
    --plot-only) [[ $# -ge 2 ]] || die "--plot-only needs a value"; PLOT_ONLY=$2; shift 2 ;;
    -h | --help) sed -n '3,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
command -v gnuplot >/dev/null || die "gnuplot not installed (Debian: gnuplot-nox)"

# plot TSV PNG : gnuplot wants one block per system (index i), in a fixed order,
# each sorted by offered load; "max" is drawn one step right of the largest N
plot() {
    local tsv=$1 png=$2 dat=${1%.tsv}.dat names
    names=$(awk -F'\t' 'NR > 1 && !s[$3]++ {printf "%s%s", (n++ ? " " : ""), $3}' "$tsv")
    [[ -n $names ]] || die "no rows in $tsv"
    local sys
    : >"$dat"
    for sys in $names; do
        {
            printf '# %s\n' "$sys"
            awk -F'\t' -v s="$sys" 'NR > 1 && $3 == s && $4 != "" {print $1 "\t" $2 "\t" $4 "\t" $5}' "$tsv" | sort -n
            printf '\n\n'
        } >>"$dat"
    done
    local xmax title
    xmax=$(awk -F'\t' 'NR > 1 {if ($1 > m) m = $1} END {print m}' "$tsv")
    title=$(awk -F'\t' 'NR == 1 {sub(/^# */, ""); print; exit}' "${tsv%.tsv}.title" 2>/dev/null)
    # how disturbed the rows were: CPU other jobs used during each row (peers.sh ext%)
    title+="${title:+; }$(awk -F'\t' 'NR > 1 && $9 ~ /^[0-9]+$/ {v[++n] = $9} END {
        if (!n) exit
        for (i = 2; i <= n; i++) { t = v[i]; j = i - 1; while (j > 0 && v[j] > t) { v[j + 1] = v[j]; j-- } v[j + 1] = t }
        printf "CPU used by other jobs per row (ext%%): median %d%%, max %d%%", v[int((n + 1) / 2)], v[n] }' "$tsv")"
    gnuplot -e "dat='$dat'; out='$png'; systems='$names'; xmax=$xmax; subtitle='${title//\'/}'" "$HERE/plot.gp" ||
        die "gnuplot failed"
    echo "load-sweep.sh: plot written to $png" >&2
}

if [[ -n $PLOT_ONLY ]]; then
    [[ -f $PLOT_ONLY ]] || die "no $PLOT_ONLY"
    plot "$PLOT_ONLY" "${PNG:-${PLOT_ONLY%.tsv}.png}"
    exit 0
fi

[[ -n $OUT ]] || OUT=/tmp/dotbench/sweep-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
[[ -n $PNG ]] || PNG=$OUT/perf-load.png

IFS=, read -ra LOAD_LIST <<<"$LOADS"
maxn=0
for l in "${LOAD_LIST[@]}"; do
    [[ $l == max || $l =~ ^[0-9]+$ ]] || die "load '$l' is neither a number nor max"
    [[ $l != max ]] && ((l > maxn)) && maxn=$l
done
# where "max" sits on the (log) x axis: one "doubling" right of the largest N
xmax_pos=$((maxn > 0 ? maxn * 2 : 80000))

TSV=$OUT/sweep.tsv
printf 'x\toffered\tsystem\tqps\tp99_ms\tavg_ms\tlost\tcpu_us_q\text_pct\tbusy_pct\trun_dir\n' >"$TSV"
t0=$(date +%s)
for l in "${LOAD_LIST[@]}"; do
    if [[ $l == max ]]; then
        scen=(--scenarios uncached) x=$xmax_pos
    else
        scen=(--scenarios light --light-qps "$l") x=$l
    fi
    echo "load-sweep.sh: offered $l qps ($(($(date +%s) - t0)) s so far)" >&2
    "$HERE/peers-run.sh" --out "$OUT/load-$l" --systems "$SYSTEMS" "${scen[@]}" \
        --duration "$DURATION" --max-seconds 150 >"$OUT/load-$l.log" 2>&1 ||
        { tail -5 "$OUT/load-$l.log" >&2; die "peers-run.sh failed at load $l (log $OUT/load-$l.log)"; }
    awk -F'\t' -v x="$x" -v l="$l" -v d="$OUT/load-$l/w1" '
        /^#/ { next }
        $1 == "system" { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { print x "\t" l "\t" $c["system"] "\t" $c["qps"] "\t" $c["p99_ms"] "\t" $c["avg_ms"] "\t" $c["lost"] "\t" $c["cpu_us_q"] "\t" $c["ext_pct"] "\t" $c["busy_pct"] "\t" d }
    ' "$OUT/load-$l/w1/results.tsv" >>"$TSV"
done
printf '# %s, %s s per row, dnsperf -c 16 -q 200, %s\n' "$(date '+%F %H:%M')" "$DURATION" "$(nproc) cores" >"$OUT/sweep.title"
echo "load-sweep.sh: done in $(($(date +%s) - t0)) s; $TSV" >&2
column -t -s $'\t' "$TSV" | cut -c1-150
plot "$TSV" "$PNG"
