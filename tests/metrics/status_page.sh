#!/bin/bash
# SPDX-License-Identifier: MIT
# The status page in a real browser: headless Chromium loads it from
# metrics_harness, runs its script under the page's Content-Security-Policy
# for 5 s of virtual time (so it polls the API at least twice), and the DOM
# it dumps must hold the values the script filled in from the API.
#
# Usage: status_page.sh METRICS_HARNESS CHROMIUM
# STATUS_SCREENSHOT=FILE also saves a screenshot (for a human to look at).
set -u
harness=$1
chromium=$2
token=page-test-token
work=$(mktemp -d)
hpid=
fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}
cleanup() {
    exec 3>&- 4<&- 2>/dev/null
    if [ -n "$hpid" ]; then
        wait "$hpid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/in" "$work/out"
"$harness" "$token" <"$work/in" >"$work/out" 2>"$work/err" &
hpid=$!
exec 3>"$work/in" # holding the write end open keeps the harness running
exec 4<"$work/out"
read -r -t 30 -u 4 ready || ready=
[[ $ready == ready* ]] || { cat "$work/err"; fail "harness did not start"; }
port=$(sed -n 's/.* metrics=\([0-9]*\).*/\1/p' <<<"$ready")
upstream=$(sed -n 's/.* upstream=\([^ ]*\).*/\1/p' <<<"$ready")

browse() {
    # Each run has a throwaway profile; nothing reaches beyond loopback.
    local profile
    profile=$(mktemp -d -p "$work")
    timeout 45 "$chromium" --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update --disable-sync \
        --no-first-run --disable-default-apps --disable-extensions \
        --user-data-dir="$profile" --virtual-time-budget=5000 "$@" \
        "http://127.0.0.1:$port/"
}

browse --dump-dom >"$work/dom.html" 2>"$work/chromium.err" ||
    { tail -20 "$work/chromium.err"; fail "chromium failed"; }

passed=0
expect() { # expect WHAT REGEX: the dumped DOM must match REGEX
    if grep -Eq -- "$2" "$work/dom.html"; then
        passed=$((passed + 1))
    else
        echo "--- DOM ---"
        cat "$work/dom.html"
        fail "$1 (no match for $2)"
    fi
}
# The harness sent 6 queries (5 went upstream, 1 answered from the cache)
# to 2 workers: exactly these numbers come only from the script.
expect "queries filled in" 'id="queries">6<'
expect "answers filled in" 'id="answers">5<'
expect "workers filled in" 'id="workers">2<'
expect "cache hit ratio computed" 'id="hit-ratio">16\.7 %<'
expect "in-flight filled in" 'id="inflight">0<'
expect "queries/s computed from two polls" 'id="qps">[0-9]+\.[0-9]<'
expect "updated by the poll" 'id="state" class="state">updated '
expect "upstream row" "<tr data-upstream=\"${upstream//./\\.}\"><td>${upstream//./\\.}</td><td class=\"up\">up \\(2/2\\)</td>"
expect "SRTT shown" '<td>[0-9]+\.[0-9]{2} ms</td>'

if [ -n "${STATUS_SCREENSHOT:-}" ]; then
    browse --window-size=1100,700 --screenshot="$STATUS_SCREENSHOT" >/dev/null 2>&1 ||
        echo "warning: screenshot failed"
fi

exec 3>&- # EOF: the harness stops and checks its ports were released
wait "$hpid"
rc=$?
hpid=
[ "$rc" -eq 0 ] || { cat "$work/err"; fail "harness exit status $rc"; }
echo "$passed passed, 0 failed"
