#!/bin/bash
# SPDX-License-Identifier: MIT
# Lists over HTTPS (--blocklist-url) against a local HTTPS server
# (listserver.py: python3 http.server + ssl, a certificate of the test PKI
# that dotproxyd trusts through --ca-file). The first fetch is enforced, with
# EDE naming the URL; a refresh sends If-None-Match and If-Modified-Since and
# gets 304 (the server records the request headers); a changed list is
# picked up; a 500, an oversized body and a 200 that is no list keep the old
# list and are counted; a redirect chain within the limit works and one past
# it fails; a server whose certificate is for another name fails
# verification; a plain http:// URL is a configuration error; a restart with
# the server down enforces the copy in --state-dir.
. "$(dirname "$0")/lib.sh"
WAIT_FOR_S=20

command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }
"$DOTPROXYD" --check-config -u 127.0.0.1 --blocklist-url https://127.0.0.1/x 2>&1 |
    grep -q 'no libcurl' && { echo "SKIP: dotproxyd built without libcurl"; exit 77; }

make_pki
start_dotserver

PROXY_PORT=$(free_port)
D=$WORK/www
mkdir -p "$D" "$WORK/state"
printf 'ads.example\n# a comment\ntracker.example\n' >"$D/list.txt"
printf 'redirected.example\n' >"$D/other.txt"
: >"$D/requests.log"
printf 'secret-token\n' >"$WORK/token"
chmod 600 "$WORK/token"

start_listserver() {
    start_bg listserver '^port ([0-9]+)$' python3 "$(dirname "$0")/listserver.py" \
        --cert "$PKI/$1.pem" --key "$PKI/$1-key.pem" --dir "$D"
    LS_PID=$BG_PID
    LS_DRAIN=$BG_DRAIN
    LS_PORT=$BG_MATCH
}
start_listserver server
LIST_URL="https://127.0.0.1:$LS_PORT/list.txt"
REDIR_OK="https://127.0.0.1:$LS_PORT/redirect/4"
REDIR_LONG="https://127.0.0.1:$LS_PORT/redirect/6"
TO_HTTP="https://127.0.0.1:$LS_PORT/to-http"
TOKEN_URL="https://127.0.0.1:$LS_PORT/other.txt?token=s3cret"

# A second server, whose certificate is for wrong.test only.
start_bg wrongserver '^port ([0-9]+)$' python3 "$(dirname "$0")/listserver.py" \
    --cert "$PKI/wrongname.pem" --key "$PKI/wrongname-key.pem" --dir "$D"
WRONG_URL="https://127.0.0.1:$BG_MATCH/list.txt"

start_feed_proxy() {
    start_bg dotproxyd 'listening on 127\.0\.0\.1@([0-9]+)' "$DOTPROXYD" \
        --listen "127.0.0.1@$PROXY_PORT" -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" \
        --state-dir "$WORK/state" --metrics 127.0.0.1@0 --api-token-file "$WORK/token" "$@"
    PROXY_PID=$BG_PID
    PROXY_DRAIN=$BG_DRAIN
    metrics_port_from_log
}
refresh() {
    curl -s --max-time 5 -X POST -H 'Authorization: Bearer secret-token' \
        "http://127.0.0.1:$METRICS/api/v1/feeds/refresh" >/dev/null
}
list_metric() { metric "$1\\{feed=\"$(printf '%s' "$LIST_URL" | sed 's/[.]/\\./g')\"[^}]*${2:-}"; }
fetches() { list_metric dotproxy_feed_fetches_total "result=\"$1\""; }
count_at_least() { [ "$(fetches "$1")" -ge "$2" ]; }

# ---- configuration errors ----
out=$("$DOTPROXYD" --check-config -u 127.0.0.1 --blocklist-url "http://127.0.0.1:$LS_PORT/list.txt" 2>&1)
status=$?
check_eq "http:// URL: exit status 2" "2" "$status"
check_match "http:// URL: refused, naming the value" "http://127\.0\.0\.1:$LS_PORT/list\.txt.*https://" "$out"

start_feed_proxy --blocklist-url "$LIST_URL" --blocklist-url "$REDIR_OK" \
    --blocklist-url "$REDIR_LONG" --blocklist-url "$WRONG_URL" --blocklist-url "$TO_HTTP" \
    --blocklist-url "$TOKEN_URL" --feed-max-size 4096

# ---- the first fetch ----
wait_for "first fetch: ads.example blocked" is_status ads.example NXDOMAIN
check_eq "first fetch: a name below is blocked" "NXDOMAIN" "$(status_of www.tracker.example)"
check_eq "a name not listed is forwarded" "$(expected_a fine.example)" "$(qdig +short fine.example A)"
out=$(qdig ads.example A)
check_match "EDE 15 names the URL list" \
    "EDE: 15 \\(Blocked\\): \\(blocklist https://127\\.0\\.0\\.1:$LS_PORT/list\\.txt: ads\\.example\\.\\)" \
    "$out"
check_match "check API names the URL list" "\"decision\":\\{\"kind\":\"blocklist\",\"list\":\"https://127\\.0\\.0\\.1:$LS_PORT/list\\.txt\"" \
    "$(api "/api/v1/blocklist/check?name=ads.example")"
check_eq "metrics: one 200" "1" "$(fetches 200)"
state=$(grep -l "^# url: $LIST_URL\$" "$WORK"/state/url-*.list)
check_match "state file holds the URL and validators" '^# etag: "[0-9a-f]{16}"' "$(head -n 5 "$state")"
check_eq "state file mode 0640" "640" "$(stat -c %a "$state")"
feeds=$(api /api/v1/feeds)
check_match "GET /api/v1/feeds: the URL feed" \
    "\"kind\":\"url\",\"source\":\"https://127\\.0\\.0\\.1:$LS_PORT/list\\.txt\",\"etag\":\"\\\\\"[0-9a-f]{16}\\\\\"\",\"last_modified\":\"[A-Z][a-z]{2}, .* GMT\",\"entries\":2," \
    "$feeds"

# ---- redirects, certificate ----
wait_for "a chain of 4 redirects is followed" is_status redirected.example NXDOMAIN
wait_for "a chain of 4 redirects: counted as one 200" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"source\":\"$REDIR_OK\"[^}]*\"fetches\":{\"200\":1'"
wait_for "a chain of 6 redirects fails" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"source\":\"$REDIR_LONG\"[^}]*\"last_error\":\"more than 5 redirects\"'"
wait_for "a certificate for another name fails verification" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"source\":\"$WRONG_URL\"[^}]*\"last_error\":\"[^\"]*\\(certificate\\|SSL\\)'"
wait_for "a redirect to http:// fails" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"source\":\"$TO_HTTP\"[^}]*\"last_error\":\"[^\"]*[Pp]rotocol'"
wait_for "a URL with a token in its query is fetched" \
    bash -c "curl -s http://127.0.0.1:$METRICS/api/v1/feeds | grep -q '\"source\":\"https://127.0.0.1:$LS_PORT/other.txt?...\"[^}]*\"fetches\":{\"200\":1'"
grep -q 'other.txt?token=s3cret' "$D/requests.log" && pass "the token went to the server" ||
    fail "the token was not sent"
for where in /metrics /api/v1/feeds; do
    api "$where" | grep -q s3cret && fail "$where shows the token" || pass "$where hides the token"
done
grep -q s3cret "$WORK/dotproxyd.log" && fail "the log shows the token" || pass "the log hides the token"
grep -q "blocklist-url $WRONG_URL: fetch failed: .*; the list in force stays, retry in [0-9]* s" \
    "$WORK/dotproxyd.log" && pass "the failure is logged with its reason" || fail "no failure line in the log"

# ---- a refresh: conditional, 304 ----
: >"$D/requests.log"
refresh
wait_for "refresh: 304 counted" count_at_least 304 1
req=$(grep '"path": "/list.txt"' "$D/requests.log" | tail -n 1)
check_match "refresh sent If-None-Match" '"if-none-match": "\\"[0-9a-f]{16}\\""' "$req"
check_match "refresh sent If-Modified-Since" '"if-modified-since": "[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT"' "$req"
check_eq "304: still blocked" "NXDOMAIN" "$(status_of ads.example)"
check_eq "304: still one 200" "1" "$(fetches 200)"

# ---- a changed list ----
printf 'changed.example\nads.example\n' >"$D/list.txt"
touch -d '2026-01-01 00:00:00 UTC' "$D/list.txt"
refresh
wait_for "changed list: changed.example blocked" is_status changed.example NXDOMAIN
check_eq "changed list: tracker.example no longer blocked" "$(expected_a tracker.example)" \
    "$(qdig +short tracker.example A)"
check_eq "metrics: two 200" "2" "$(fetches 200)"
check_eq "metrics: entries 2" "2" "$(list_metric dotproxy_feed_entries)"

# ---- failures keep the list in force ----
declare -A why=([500]='HTTP status 500' [big]='larger than 4096 octets \(--feed-max-size\)'
    [garbage]='no name in any blocklist format in the body \(1 lines\)')
for mode in 500 big garbage; do
    echo "$mode" >"$D/mode"
    before=$(fetches error)
    refresh
    wait_for "$mode: the failure is counted" count_at_least error $((before + 1))
    check_eq "$mode: changed.example still blocked" "NXDOMAIN" "$(status_of changed.example)"
    check_match "$mode: the API says why" "\"source\":\"$LIST_URL\"[^}]*\"last_error\":\"${why[$mode]}\"" \
        "$(api /api/v1/feeds)"
done
grep -q "blocklist-url $LIST_URL: fetch failed: HTTP status 500" "$WORK/dotproxyd.log" &&
    pass "500: logged" || fail "500: not logged"
grep -q "blocklist-url $LIST_URL: fetch failed: larger than 4096 octets" "$WORK/dotproxyd.log" &&
    pass "oversized: logged" || fail "oversized: not logged"
grep -q "blocklist-url $LIST_URL: fetch failed: no name in any blocklist format" "$WORK/dotproxyd.log" &&
    pass "garbage: logged" || fail "garbage: not logged"
check_eq "failures: still two 200" "2" "$(fetches 200)"
api /metrics >"$WORK/metrics.txt"
python3 "$(dirname "$0")/../metrics/promcheck.py" <"$WORK/metrics.txt" >"$WORK/promcheck.out" 2>&1 &&
    pass "/metrics with URL feeds is valid exposition text" ||
    fail "/metrics: $(cat "$WORK/promcheck.out")"
check_match "metrics: failures counted" '^[3-9]' "$(list_metric dotproxy_feed_failures_total)"
check_match "metrics: next refresh set" '^[1-9][0-9]{9}$' "$(list_metric dotproxy_feed_next_refresh_seconds)"
echo ok >"$D/mode"

# ---- the refresh timer runs by itself ----
stop_feed_proxy
printf 'timer.example\n' >"$D/list.txt"
start_feed_proxy --blocklist-url "$LIST_URL" --feed-refresh 2
wait_for "--feed-refresh 2: a change comes without asking" is_status timer.example NXDOMAIN
wait_for "--feed-refresh 2: later fetches are conditional (304)" count_at_least 304 1

# ---- a reload keeps the lists over HTTPS (restart-only) ----
stop_feed_proxy
printf 'blocklist-url = %s\n' "$LIST_URL" >"$WORK/dp.conf"
start_feed_proxy -c "$WORK/dp.conf"
wait_for "config file: the list is enforced" is_status timer.example NXDOMAIN
printf 'blocklist-url = %s\nfeed-refresh = 5\n' "$REDIR_OK" >"$WORK/dp.conf"
kill -HUP "$PROXY_PID"
wait_for "reload: blocklist-url and feed-refresh wait for a restart" \
    grep -Eq 'changes to .*blocklist-url.*take effect only after a restart' "$WORK/dotproxyd.log"
check_eq "reload: the list is still enforced" "NXDOMAIN" "$(status_of timer.example)"
printf 'reload.example\n' >"$D/list.txt"
refresh
wait_for "reload: the URL list is still fetched and applied" is_status reload.example NXDOMAIN
check_eq "reload: the new URL is not fetched" "$(expected_a redirected.example)" \
    "$(qdig +short redirected.example A)"

# ---- a stop is not held up by a transfer in progress ----
stop_feed_proxy
start_feed_proxy --blocklist-url "https://127.0.0.1:$LS_PORT/slow"
wait_for "a slow transfer has started" grep -q '"path": "/slow"' "$D/requests.log"
stop_proxy
check_eq "stop during a transfer: clean exit" "0" "$STOP_STATUS"
[ "$STOP_MS" -lt 5000 ] && pass "stop during a transfer: $STOP_MS ms" ||
    fail "stop during a transfer took $STOP_MS ms"
start_feed_proxy --blocklist-url "$LIST_URL"

# ---- restart with the server down ----
stop_feed_proxy
stop_bg "$LS_PID" "$LS_DRAIN"
start_feed_proxy --blocklist-url "$LIST_URL"
check_eq "restart, server down: enforced from --state-dir" "NXDOMAIN" "$(status_of reload.example)"
wait_for "restart, server down: the failed fetch is counted" count_at_least error 1
check_match "restart: last error says why" '"last_error":"Couldn.t connect to server' "$(api /api/v1/feeds)"

# ---- a state file of another URL is ignored ----
stop_feed_proxy
sed -i "s|^# url: .*|# url: https://other.example/list.txt|" "$state"
start_feed_proxy --blocklist-url "$LIST_URL"
check_eq "a state file of another URL is ignored" "$(expected_a reload.example)" \
    "$(qdig +short reload.example A)"
grep -q "is the copy of another URL; ignored" "$WORK/dotproxyd.log" &&
    pass "the other URL's copy is logged" || fail "not logged"
stop_feed_proxy

finish
