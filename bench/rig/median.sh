#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# median.sh - medians over several peers.sh runs.
#
#   median.sh [--max-ext PCT] RUN_DIR... | RESULTS_TSV...
#
# --max-ext PCT: leave out rows during which other processes on the machine
# used more than PCT % of its CPU (peers.sh's ext% column), i.e. rows that
# another job disturbed.  "runs" then counts the rows kept.
#
# For every (system, scenario) row found in the runs' results.tsv: the number
# of runs it appears in, the median of each figure, and the spread of qps
# (min-max, and (max-min)/median).  x_dd/run is the median of the per-run
# ratios (each run's row against dnsdist in that same run); x_dd/med is the
# ratio of this row's median qps to dnsdist's median qps in the same scenario
# ("direct" rows: against dnsdist uncached).
set -euo pipefail
export LC_ALL=C

MAX_EXT=""
if [[ ${1:-} == --max-ext ]]; then
    [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "median.sh: --max-ext needs a whole number" >&2; exit 2; }
    MAX_EXT=$2
    shift 2
fi
[[ $# -ge 1 ]] || { sed -n '2,14p' "$0" >&2; exit 2; }
files=()
for a in "$@"; do
    if [[ -d $a ]]; then a="$a/results.tsv"; fi
    [[ -f $a ]] || { echo "median.sh: no $a" >&2; exit 1; }
    files+=("$a")
done

awk -F'\t' -v maxext="$MAX_EXT" '
function med(k, c,    n, i, j, v, t) {
    n = cnt[k, c]
    if (n == 0) return "-"
    for (i = 1; i <= n; i++) v[i] = val[k, c, i]
    for (i = 2; i <= n; i++) { t = v[i]; j = i - 1; while (j > 0 && v[j] > t) { v[j + 1] = v[j]; j-- } v[j + 1] = t }
    if (n % 2) return v[(n + 1) / 2]
    return (v[n / 2] + v[n / 2 + 1]) / 2
}
function mm(k, c, which,    i, r) {
    r = val[k, c, 1]
    for (i = 2; i <= cnt[k, c]; i++)
        if ((which == "min" && val[k, c, i] < r) || (which == "max" && val[k, c, i] > r)) r = val[k, c, i]
    return r
}
FNR == 1 { nfiles++ }
/^#/ { next }
$1 == "system" { delete col; for (i = 1; i <= NF; i++) col[$i] = i; next }
{
    k = $col["system"] SUBSEP $col["scenario"]
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    if (maxext != "" && ("ext_pct" in col) && $col["ext_pct"] ~ /^[0-9]+$/ && $col["ext_pct"] + 0 > maxext + 0) { dropped++; next }
    runs[k]++
    split("qps lost udp_drops listen_drops avg_ms p99_ms cpu_us_q rss_mib x_dnsdist fwd_per_q new_conns open_conns up_cpu_us_q gen_cpu_us_q ext_pct", cs, " ")
    for (i in cs) {
        c = cs[i]
        if (!(c in col)) continue
        v = $col[c]
        if (v ~ /^-?[0-9]+(\.[0-9]+)?$/) { cnt[k, c]++; val[k, c, cnt[k, c]] = v + 0 }
    }
}
END {
    printf "medians over %d run(s)", nfiles
    if (maxext != "") printf "; rows with ext%% > %d left out (%d)", maxext, dropped
    printf "\n"
    for (o = 1; o <= nk; o++) {
        k = order[o]
        split(k, p, SUBSEP)
        if (p[1] == "dnsdist") ddq[p[2]] = med(k, "qps")
    }
    ddq["direct"] = ddq["uncached"]
    printf "%-16s %-9s %4s %8s %7s %8s %8s %9s %8s %8s %8s %15s %6s | %9s %6s %6s %6s %8s %8s %5s\n", \
        "system", "scenario", "runs", "qps", "lost", "avg_ms", "p99_ms", "cpu_us/q", "rss_MiB", "x_dd/run", "x_dd/med", \
        "qps_min-max", "spread", "drops", "fwd/q", "new_c", "open_c", "up_us/q", "gen_us/q", "ext%"
    for (o = 1; o <= nk; o++) {
        k = order[o]
        split(k, p, SUBSEP)
        if (!runs[k]) { printf "%-16s %-9s    0 (every row left out)\n", p[1], p[2]; continue }
        q = med(k, "qps")
        spread = "-"
        range = "-"
        if (cnt[k, "qps"] > 0) {
            range = sprintf("%d-%d", mm(k, "qps", "min"), mm(k, "qps", "max"))
            if (q > 0) spread = sprintf("%.0f%%", 100 * (mm(k, "qps", "max") - mm(k, "qps", "min")) / q)
        }
        xm = "-"
        if (q != "-" && ddq[p[2]] != "" && ddq[p[2]] != "-" && ddq[p[2]] > 0) xm = sprintf("%.2f", q / ddq[p[2]])
        printf "%-16s %-9s %4d %8s %7s %8s %8s %9s %8s %8s %8s %15s %6s | %9s %6s %6s %6s %8s %8s %5s\n", p[1], p[2], runs[k], \
            fmt(q, "%.0f"), fmt(med(k, "lost"), "%.0f"), fmt(med(k, "avg_ms"), "%.3f"), fmt(med(k, "p99_ms"), "%.3f"), \
            fmt(med(k, "cpu_us_q"), "%.1f"), fmt(med(k, "rss_mib"), "%.1f"), fmt(med(k, "x_dnsdist"), "%.2f"), xm, range, spread, \
            fmt(med(k, "listen_drops"), "%.0f") "/" fmt(med(k, "udp_drops"), "%.0f"), fmt(med(k, "fwd_per_q"), "%.3f"), fmt(med(k, "new_conns"), "%.0f"), fmt(med(k, "open_conns"), "%.0f"), \
            fmt(med(k, "up_cpu_us_q"), "%.1f"), fmt(med(k, "gen_cpu_us_q"), "%.1f"), fmt(med(k, "ext_pct"), "%.0f")
    }
}
function fmt(v, f) { return (v == "-") ? "-" : sprintf(f, v) }
' "${files[@]}"
