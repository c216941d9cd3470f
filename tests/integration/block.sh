#!/bin/bash
# SPDX-License-Identifier: MIT
# Blocking end to end, through dotproxyd (two workers sharing one copy of the
# lists) with dig and kdig against the in-tree DoT upstream: each block
# action on the wire (rcode, SOA in authority with --block-ttl, EDE 15 with
# the list and rule, no OPT for a client without EDNS), allowlists and
# adblock exceptions, CNAME cloaking, a name cached before a reload that
# blocks it, RPZ (client-ip from 127.0.0.2 vs 127.0.0.3, drop, tcp-only,
# local data), the check API, metrics and the query log, a list that cannot
# be read on reload (old names kept, failure counted), and reloads under
# load with no query lost.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "SKIP: needs curl"; exit 77; }

make_pki
start_dotserver

BL=$WORK/block.txt
AL=$WORK/allow.txt
RPZ=$WORK/policy.rpz
printf '%s\n' '# threat feed' '! adblock comment' 'ads.example' \
    "0.0.0.0	hosts.example" '||tracker.test^' '@@||ok.ads.example^' 'this line is bad' >"$BL"
printf '%s\n' 'fine.hosts.example' >"$AL"
cat >"$RPZ" <<'EOF'
$TTL 300
$ORIGIN policy.rpz.
@ IN SOA ns.policy.rpz. admin.policy.rpz. 1 3600 600 86400 60
  IN NS ns.policy.rpz.
32.2.0.0.127.rpz-client-ip CNAME .
drop.example CNAME rpz-drop.
tcp.example CNAME rpz-tcp-only.
local.example A 192.0.2.55
*.wild.example CNAME *.
EOF

check_eq "--check-config names the bad line" \
    "dotproxyd: $BL:7: more than one word and no hosts-file address first" \
    "$("$DOTPROXYD" --check-config -u 127.0.0.1 --blocklist "$BL" 2>&1)"

start_proxy -w 2 -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" \
    --blocklist "$BL" --allowlist "$AL" --rpz "$RPZ" --block-ttl 120 \
    --blocklist-check 0 --log-queries 1000 --metrics 127.0.0.1@0
METRICS=$(sed -nE 's/.*metrics and API on port ([0-9]+).*/\1/p' "$WORK/dotproxyd.log" | head -n 1)
[ -n "$METRICS" ] || die "no metrics port in the log"
api() { curl -s --max-time 5 "http://127.0.0.1:$METRICS$1"; }

# ---- nxdomain (the default) on the wire ----
out=$(qdig www.ads.example A)
check_match "nxdomain: rcode" 'status: NXDOMAIN' "$out"
check_match "nxdomain: RD copied, RA set" 'flags: qr rd ra;' "$out"
check_match "nxdomain: SOA in authority with --block-ttl" \
    '^ads\.example\.[[:space:]]+120[[:space:]]+IN[[:space:]]+SOA' "$out"
check_match "nxdomain: EDE 15 naming list and rule" \
    'EDE: 15 \(Blocked\): \(blocklist block\.txt: ads\.example\.\)' "$out"
check_match "nxdomain: question as asked" ';www\.ads\.example\.[[:space:]]+IN[[:space:]]+A' "$out"
out=$(qdig +noedns x.hosts.example A)
check_match "no EDNS: blocked (hosts line with a tab)" 'status: NXDOMAIN' "$out"
check_eq "no EDNS: no OPT in the answer" "" "$(grep 'OPT PSEUDOSECTION' <<<"$out")"
out=$(qkdig +edns www.ads.example A)
check_match "kdig: NXDOMAIN" 'status: NXDOMAIN' "$out"
check_match "kdig: EDE 15" 'EDE: 15 \(Blocked\)' "$out"
check_match "kdig sees the EDE text" 'blocklist block\.txt: ads\.example\.' "$out"

# ---- what passes ----
check_eq "adblock exception passes its name" "$(expected_a a.ok.ads.example)" \
    "$(qdig +short a.ok.ads.example A)"
check_eq "allowlist beats a blocked parent" "$(expected_a fine.hosts.example)" \
    "$(qdig +short fine.hosts.example A)"
check_eq "unlisted name answered" "$(expected_a www.example.org)" \
    "$(qdig +short www.example.org A)"

# ---- CNAME cloaking against the real upstream ----
out=$(qdig cname.shop.example A)
check_match "cname chain to a blocked name: NXDOMAIN" 'status: NXDOMAIN' "$out"
check_match "cname chain: EDE says via cname" \
    'blocklist block\.txt: tracker\.test\. via cname cloak\.tracker\.test\.' "$out"

# ---- RPZ ----
out=$(qdig -b 127.0.0.2 client.example A)
check_match "rpz-client-ip: 127.0.0.2 blocked" 'status: NXDOMAIN' "$out"
check_match "rpz-client-ip: EDE names zone and rule" \
    'rpz policy\.rpz\.: 32\.2\.0\.0\.127\.rpz-client-ip' "$out"
check_eq "rpz-client-ip: 127.0.0.3 answered" "$(expected_a client.example)" \
    "$(qdig -b 127.0.0.3 +short client.example A)"
check_eq "rpz local data" "192.0.2.55" "$(qdig +short local.example A)"
check_match "rpz wildcard: NODATA below" 'status: NOERROR.*ANSWER: 0' \
    "$(qdig a.wild.example A | tr '\n' ' ')"
check_eq "rpz wildcard: not the name itself" "$(expected_a wild.example)" \
    "$(qdig +short wild.example A)"
check_match "rpz-tcp-only: TC over UDP" 'flags: qr tc rd ra;' "$(qdig +ignore tcp.example A)"
check_eq "rpz-tcp-only: answered over TCP" "$(expected_a tcp.example)" \
    "$(qdig +tcp +short tcp.example A)"
dig -p "$PROXY_PORT" @127.0.0.1 +tries=1 +time=1 drop.example A >/dev/null 2>&1
check_eq "rpz-drop: no answer (dig exit 9)" 9 "$?"

# ---- the check API, metrics, query log ----
out=$(api '/api/v1/blocklist/check?name=a.ok.ads.example')
check_match "check API: the exception decides" \
    '"decision":\{"kind":"blocklist","list":"[^"]*block\.txt","rule":"ok\.ads\.example\.","action":"allow"\}' \
    "$out"
check_match "check API: the blocking rule is listed too" '"rule":"ads\.example\.","action":"nxdomain","decides":false' "$out"
out=$(api /metrics)
check_match "metrics: blocked per list" "dotproxy_blocked_total\{list=\"$BL\",kind=\"blocklist\"\} [1-9]" "$out"
check_match "metrics: entries" "dotproxy_blocklist_entries\{list=\"$BL\",kind=\"blocklist\"\} 4" "$out"
check_match "metrics: skipped lines" "dotproxy_blocklist_skipped_lines\{list=\"$BL\",kind=\"blocklist\"\} 1" "$out"
check_match "query log names list and rule" \
    'query 127\.0\.0\.1#[0-9]+ udp www\.ads\.example\. A NXDOMAIN .* list blocklist block\.txt rule ads\.example\.' \
    "$(cat "$WORK/dotproxyd.log")"

# ---- a cached name is blocked by a reload, and answered again after ----
check_eq "before: answered (and cached)" "$(expected_a later.example)" "$(qdig +short later.example A)"
echo later.example >>"$BL"
kill -HUP "$PROXY_PID"
blocked_now() { qdig later.example A | grep -q 'status: NXDOMAIN'; }
wait_for "reload: the cached name is blocked" blocked_now
sed -i '/^later\.example$/d' "$BL"
kill -HUP "$PROXY_PID"
answered_now() { [ "$(qdig +short later.example A)" = "$(expected_a later.example)" ]; }
wait_for "reload: unblocked, answered again" answered_now

# ---- a list that cannot be read on reload keeps its names ----
mv "$BL" "$BL.away"
kill -HUP "$PROXY_PID"
failed_now() { api /metrics | grep -q "dotproxy_blocklist_load_failures_total{list=\"$BL\",kind=\"blocklist\"} 1"; }
wait_for "unreadable list: the failure is counted" failed_now
check_match "unreadable list: logged" "blocklist $BL: .*No such file.*keeping the names loaded before" \
    "$(cat "$WORK/dotproxyd.log")"
check_match "unreadable list: old names still blocked" 'status: NXDOMAIN' "$(qdig www.ads.example A)"
mv "$BL.away" "$BL"

# ---- reloads under load: nothing lost ----
if command -v dnsperf >/dev/null; then
    # 50,000 names: each reload rebuilds the list on its thread and swaps.
    seq 1 50000 | sed 's/^/n/; s/$/.big.example/' >>"$BL"
    for i in $(seq 1 200); do
        echo "q$((i % 50)).example A"
        echo "n$i.big.example A"
    done >"$WORK/queries.txt"
    dnsperf -s 127.0.0.1 -p "$PROXY_PORT" -d "$WORK/queries.txt" -l 4 -Q 2000 -t 5 \
        >"$WORK/dnsperf.log" 2>&1 &
    PERF=$!
    PIDS+=("$PERF")
    for i in 1 2 3 4 5 6; do
        sleep 0.5
        kill -HUP "$PROXY_PID"
    done
    wait "$PERF"
    forget_pid "$PERF"
    check_match "reload under load: dnsperf completed queries" 'Queries completed:[[:space:]]+[1-9]' \
        "$(cat "$WORK/dnsperf.log")"
    check_match "reload under load: no query lost" 'Queries lost:[[:space:]]+0 ' \
        "$(cat "$WORK/dnsperf.log")"
    check_match "reload under load: the new names block" 'status: NXDOMAIN' \
        "$(qdig n77.big.example A)"
else
    echo "note: dnsperf not installed; reload under load not checked"
fi

stop_proxy
check_eq "SIGTERM: exit 0" 0 "$STOP_STATUS"

# ---- the other actions ----
for action in nodata refused zero; do
    start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" \
        --blocklist "$BL" --block-action "$action"
    out=$(qdig ads.example A)
    case $action in
    nodata)
        check_match "nodata: NOERROR, no answer" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' \
            "$(tr '\n' ' ' <<<"$out")"
        check_match "nodata: SOA" 'ads\.example\.[[:space:]]+60[[:space:]]+IN[[:space:]]+SOA' "$out"
        ;;
    refused)
        check_match "refused: REFUSED" 'status: REFUSED' "$out"
        check_match "refused: EDE" 'EDE: 15 \(Blocked\)' "$out"
        ;;
    zero)
        check_eq "zero: A 0.0.0.0" "0.0.0.0" "$(qdig +short ads.example A)"
        check_eq "zero: AAAA ::" "::" "$(qdig +short ads.example AAAA)"
        check_match "zero: TXT gets NODATA" 'status: NOERROR' "$(qdig ads.example TXT)"
        ;;
    esac
    stop_proxy
done

# ---- lists that only a reload brings: the check API and metrics follow ----
CONF=$WORK/noblock.conf
printf 'upstream = 127.0.0.1@%s#dns.test\nca-file = %s\n' "$SRV_PORT" "$PKI/ca.pem" >"$CONF"
start_proxy -c "$CONF" -w 2 --blocklist-check 0 --metrics 127.0.0.1@0
METRICS=$(sed -nE 's/.*metrics and API on port ([0-9]+).*/\1/p' "$WORK/dotproxyd.log" | tail -n 1)
[ -n "$METRICS" ] || die "no metrics port in the log"
check_match "no lists: the check API says so" 'no blocklists configured' \
    "$(api '/api/v1/blocklist/check?name=ads.example')"
printf 'blocklist = %s\n' "$BL" >>"$CONF"
kill -HUP "$PROXY_PID"
blocked_late() { qdig www.ads.example A | grep -q 'status: NXDOMAIN'; }
wait_for "reload brings lists: blocking" blocked_late
check_match "reload brings lists: the check API decides" \
    '"decision":\{"kind":"blocklist","list":"[^"]*block\.txt","rule":"ads\.example\.","action":"nxdomain"\}' \
    "$(api '/api/v1/blocklist/check?name=www.ads.example')"
out=$(api /metrics)
check_match "reload brings lists: per-list metrics" \
    "dotproxy_blocked_total\{list=\"$BL\",kind=\"blocklist\"\} [1-9]" "$out"
check_match "reload brings lists: entries" \
    "dotproxy_blocklist_entries\{list=\"$BL\",kind=\"blocklist\"\} [1-9]" "$out"
stop_proxy
check_eq "reload brings lists: SIGTERM exit 0" 0 "$STOP_STATUS"

stop_dotserver
finish
