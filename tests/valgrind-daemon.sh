#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the built dotproxyd under valgrind (memcheck) against the in-tree DoT
# test server on loopback: UDP and TCP queries, a big answer (TC), an
# NXDOMAIN, a malformed packet, then SIGTERM. Fails on any memcheck error or
# leak. Usage: tests/valgrind-daemon.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$build/tests/support/ts-pki" "$tmp"
mkfifo "$tmp/srv.fifo"
"$build/tests/support/ts-dotserver" --cert "$tmp/server.pem" --key "$tmp/server-key.pem" \
    >"$tmp/srv.fifo" 2>"$tmp/srv.err" &
pids+=($!)
read -r _ up_port <"$tmp/srv.fifo"

valgrind --error-exitcode=9 --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --log-file="$tmp/vg.log" \
    "$build/cli/dotproxyd" -v -l 127.0.0.1@0 -u "127.0.0.1@$up_port#dns.test" \
    --ca-file "$tmp/ca.pem" 2>"$tmp/d.log" &
dp=$!
pids+=($dp)
port=""
for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1@\([0-9]*\).*/\1/p' "$tmp/d.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$dp" 2>/dev/null || { cat "$tmp/d.log" "$tmp/vg.log" >&2; exit 1; }
    sleep 0.1 # polling for the startup line, bounded by the loop
done
[ -n "$port" ] || { echo "dotproxyd did not start" >&2; cat "$tmp/d.log" >&2; exit 1; }

q() { dig @127.0.0.1 -p "$port" +tries=1 +time=10 "$@"; }
q example.com +short | grep -q '^192\.0\.2\.' || { echo "no UDP answer" >&2; exit 1; }
q example.com +tcp +short | grep -q '^192\.0\.2\.' || { echo "no TCP answer" >&2; exit 1; }
q big.example.com TXT +noedns +ignore | grep -q 'flags: qr tc' || { echo "no TC" >&2; exit 1; }
q nxdomain-x.example.com | grep -q 'status: NXDOMAIN' || { echo "no NXDOMAIN" >&2; exit 1; }
printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03' >"$tmp/bad.bin"
python3 - "$port" "$tmp/bad.bin" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(open(sys.argv[2], 'rb').read(), ('127.0.0.1', int(sys.argv[1])))
r, _ = s.recvfrom(4096)
assert r[3] & 0x0f == 1, 'expected FORMERR'
PY
kill -TERM "$dp"
set +e
wait "$dp"
rc=$?
set -e
pids=("${pids[0]}")
if [ "$rc" -ne 0 ]; then
    echo "dotproxyd under valgrind exited $rc" >&2
    cat "$tmp/vg.log" >&2
    exit 1
fi
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|All heap blocks" "$tmp/vg.log"
echo "valgrind: dotproxyd clean (UDP, TCP, TC, NXDOMAIN, FORMERR, SIGTERM)"
