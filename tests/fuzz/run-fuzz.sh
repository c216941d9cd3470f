#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every libFuzzer target of a -Dfuzzing=true build for SECONDS each, on a
# temporary copy of its corpus (the committed corpus is never modified), and
# print the total executions per target. Exits non-zero if any target found a
# crash (its reproducer is kept and its path printed).
#   tests/fuzz/run-fuzz.sh TARGET_BUILD_DIR SECONDS [TARGET...]
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET_BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
build=$1
secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
targets=${*:-"dns_parse dns_iter frame endpoint edns rpz xfr blocklist feed_url"}

work=$(mktemp -d "${TMPDIR:-/tmp}/dotproxy-fuzz.XXXXXX")
status=0
for t in $targets; do
    exe=$build/tests/fuzz/fuzz_$t
    if [ ! -x "$exe" ]; then
        echo "$t: $exe not built (meson setup with -Dfuzzing=true and CC=clang)" >&2
        status=1
        continue
    fi
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp "$here/corpus/$t/"* "$work/$t/corpus/" 2>/dev/null || true
    rc=0
    "$exe" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n 1)
    echo "$t: ${execs:-?} executions in ${secs}s, exit $rc"
    if [ "$rc" -ne 0 ]; then
        status=1
        tail -n 40 "$work/$t/log" >&2
        ls "$work/$t/artifacts/" >&2
        echo "$t: artifacts kept in $work/$t/artifacts" >&2
    fi
done
if [ "$status" -eq 0 ]; then
    rm -rf "$work"
else
    echo "work directory kept: $work" >&2
fi
exit "$status"
