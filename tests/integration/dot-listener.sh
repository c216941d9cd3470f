#!/bin/bash
# SPDX-License-Identifier: MIT
# The DNS-over-TLS listener with real clients (issue 15): kdig +tls-ca /
# +tls-hostname and, with mutual TLS, +tls-certfile/+tls-keyfile; BIND's dig
# +tls; stubby using dotproxyd as its upstream; dnsperf -m dot without loss;
# --check-config on the certificate files; a Kubernetes-style Secret
# rotation (the ..data symlink swapped) seen by a new handshake while the
# old connection's answers go on; POST /api/v1/reload; the TLS metrics.
. "$(dirname "$0")/lib.sh"

make_pki

# The listener's files the way a Secret volume lays them out.
SECRET=$WORK/secret
mkdir -p "$SECRET/..v1" "$SECRET/..v2" || die "mkdir"
cp "$PKI/server.pem" "$SECRET/..v1/tls.crt" && cp "$PKI/server-key.pem" "$SECRET/..v1/tls.key" &&
    cp "$PKI/rsa2048.pem" "$SECRET/..v2/tls.crt" && cp "$PKI/rsa2048-key.pem" "$SECRET/..v2/tls.key" &&
    cp "$PKI/ca.pem" "$SECRET/..v1/ca.crt" && cp "$PKI/ca.pem" "$SECRET/..v2/ca.crt" || die "cp"
ln -s ..v1 "$SECRET/..data" && ln -s ..data/tls.crt "$SECRET/tls.crt" &&
    ln -s ..data/tls.key "$SECRET/tls.key" && ln -s ..data/ca.crt "$SECRET/ca.crt" || die "ln"

# ---- --check-config ----
out=$("$DOTPROXYD" --check-config -u 127.0.0.1@853#dns.test --listen-tls 127.0.0.1 \
    --tls-cert "$SECRET/tls.crt" 2>&1)
check_eq "check-config: listen-tls without tls-key: exit 2" 2 "$?"
check_match "check-config: says what is missing" "tls-key" "$out"
out=$("$DOTPROXYD" --check-config -u 127.0.0.1@853#dns.test --listen-tls 127.0.0.1 \
    --tls-cert "$SECRET/tls.crt" --tls-key "$PKI/ca-key.pem" 2>&1)
check_eq "check-config: a key not matching the certificate: exit 2" 2 "$?"
out=$("$DOTPROXYD" --check-config -u 127.0.0.1@853#dns.test --listen-tls 127.0.0.1 \
    --tls-cert "$SECRET/tls.crt" --tls-key "$SECRET/tls.key" 2>&1)
check_eq "check-config: good certificate and key" "configuration OK" "$out"

start_dotserver
printf 'test-token\n' >"$WORK/token" && chmod 600 "$WORK/token"
start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" --timeout 3000 \
    --listen-tls 127.0.0.1@0 --tls-cert "$SECRET/tls.crt" --tls-key "$SECRET/tls.key" \
    --cache-size 0 --metrics 127.0.0.1@0 --api-token-file "$WORK/token"
TLS_PORT=$(sed -n 's/.*TLS on 127\.0\.0\.1@\([0-9]*\).*/\1/p' <<<"$BG_LINE")
[ -n "$TLS_PORT" ] || die "no TLS port in: $BG_LINE"
METRICS_PORT=$(sed -n 's/.*metrics and API on port \([0-9]*\).*/\1/p' "$WORK/dotproxyd.log" | head -1)

tkdig() {
    kdig -p "$TLS_PORT" @127.0.0.1 +retry=0 +time=5 +tls-ca="$PKI/ca.pem" \
        +tls-hostname=dns.test "$@"
}

check_eq "kdig +tls-ca +tls-hostname: A" "$(expected_a www.example.com)" \
    "$(tkdig +short www.example.com A)"
out=$(tkdig +padding nx-host.example A)
check_match "kdig over TLS: NXDOMAIN passes" 'status: NXDOMAIN' "$out"
check_match "kdig +padding: the answer is padded to 468" 'Received 468 B' "$out"
out=$(tkdig +tls-hostname=other.test +short x.example A 2>&1)
check_match "kdig checking another name: our certificate is refused" 'WARNING|failed' "$out"
check_eq "BIND dig +tls: A" "$(expected_a dig.example)" \
    "$(dig -p "$TLS_PORT" @127.0.0.1 +tls +tries=1 +time=5 +short dig.example A)"
count=$(dig -p "$TLS_PORT" @127.0.0.1 +tls +tries=1 +time=5 +short big.example TXT | wc -l)
check_eq "BIND dig +tls: a big answer arrives whole" 11 "$count"

# dnsperf -m dot: many connections, pipelined, nothing lost.
for i in $(seq 1 300); do echo "perf$i.example A"; done >"$WORK/queries"
if command -v dnsperf >/dev/null; then
    out=$(timeout 30 dnsperf -m dot -s 127.0.0.1 -p "$TLS_PORT" -d "$WORK/queries" -n 3 \
        -c 4 -q 50 -t 5 2>&1)
    check_match "dnsperf -m dot: 900 sent" 'Queries sent: +900' "$out"
    check_match "dnsperf -m dot: all completed" 'Queries completed: +900 ' "$out"
else
    echo "SKIP: dnsperf not installed"
fi

# stubby, a real DoT client stack, with dotproxyd as its only upstream.
STUBBY=$(command -v stubby || true)
if [ -n "$STUBBY" ]; then
    cat >"$WORK/stubby.yml" <<EOS
resolution_type: GETDNS_RESOLUTION_STUB
dns_transport_list: [GETDNS_TRANSPORT_TLS]
tls_authentication: GETDNS_AUTHENTICATION_REQUIRED
tls_ca_file: "$PKI/ca.pem"
tls_query_padding_blocksize: 128
edns_client_subnet_private: 1
idle_timeout: 5000
round_robin_upstreams: 0
listen_addresses: [127.0.0.1@0]
upstream_recursive_servers:
  - address_data: 127.0.0.1
    tls_port: $TLS_PORT
    tls_auth_name: "dns.test"
EOS
    # stubby cannot report a port it chose: take a free one from the kernel.
    SPORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed -i "s/127.0.0.1@0/127.0.0.1@$SPORT/" "$WORK/stubby.yml"
    "$STUBBY" -C "$WORK/stubby.yml" >"$WORK/stubby.log" 2>&1 &
    STUBBY_PID=$!
    PIDS+=("$STUBBY_PID")
    got=""
    for _ in $(seq 1 50); do
        got=$(dig -p "$SPORT" @127.0.0.1 +tries=1 +time=1 +short stubby.example A 2>/dev/null)
        [ -n "$got" ] && break
    done
    check_eq "stubby through our TLS listener: A" "$(expected_a stubby.example)" "$got"
    kill "$STUBBY_PID" 2>/dev/null
    wait "$STUBBY_PID" 2>/dev/null
    forget_pid "$STUBBY_PID"
else
    echo "SKIP: stubby not installed"
fi

# ---- rotation: swap the Secret's ..data link, as the kubelet does ----
serial() {
    timeout 10 gnutls-cli --x509cafile "$PKI/ca.pem" --verify-hostname dns.test -p "$TLS_PORT" \
        127.0.0.1 --print-cert </dev/null 2>/dev/null |
        sed -n 's/.*, serial 0x\([0-9a-fA-F]*\),.*/\1/p' | head -1
}
old=$(serial)
[ -n "$old" ] || die "no serial from gnutls-cli"
# A connection made under the old certificate, kept open across the swap:
# a python3 client (standard library) asking once before and once after.
cat >"$WORK/keep.py" <<'EOP'
import socket, ssl, struct, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="dns.test")
def exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b
def ask(i):
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x04keep\x07example\x00\x00\x01\x00\x01"
    s.sendall(struct.pack(">H", len(q)) + q)
    n = struct.unpack(">H", exact(2))[0]
    a = exact(n)
    print("answer", struct.unpack(">H", a[:2])[0], a[3] & 15, flush=True)
ask(1)
sys.stdin.readline()
ask(2)
EOP
mkfifo "$WORK/keep.in" || die "mkfifo"
python3 "$WORK/keep.py" "$TLS_PORT" "$PKI/ca.pem" <"$WORK/keep.in" >"$WORK/keep.out" 2>&1 &
KEEP_PID=$!
PIDS+=("$KEEP_PID")
exec {KIN}>"$WORK/keep.in"
for _ in $(seq 1 100); do grep -q '^answer 1 ' "$WORK/keep.out" 2>/dev/null && break; sleep 0.05; done
check_match "open connection: answered before the swap" '^answer 1 0' "$(cat "$WORK/keep.out")"
ln -s ..v2 "$SECRET/..data_tmp" && mv -T "$SECRET/..data_tmp" "$SECRET/..data" && rm -rf "$SECRET/..v1"
new=$old
for _ in $(seq 1 40); do
    new=$(serial)
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    sleep 0.05
done
check_match "after the swap: a new handshake gets the new certificate" "^[0-9a-fA-F]+$" "$new"
[ "$new" != "$old" ] && pass "serial changed ($old -> $new)" || fail "serial unchanged ($old)"
echo >&"$KIN"
exec {KIN}>&-
for _ in $(seq 1 100); do grep -q '^answer 2 ' "$WORK/keep.out" && break; sleep 0.05; done
check_match "open connection: still answered after the swap" '^answer 2 0' "$(cat "$WORK/keep.out")"
wait "$KEEP_PID" 2>/dev/null
forget_pid "$KEEP_PID"

# POST /api/v1/reload with a broken certificate: refused, old one kept.
printf 'not a certificate\n' >"$SECRET/..v2/tls.crt.new" && mv "$SECRET/..v2/tls.crt.new" "$SECRET/..v2/tls.crt"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    -H 'Authorization: Bearer test-token' "http://127.0.0.1:$METRICS_PORT/api/v1/reload")
check_match "API reload: accepted" '^20[0-9]$' "$code"
metrics=""
for _ in $(seq 1 50); do
    metrics=$(curl -s --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")
    grep -q 'dotproxy_tls_cert_loads_total{result="refused"} [1-9]' <<<"$metrics" && break
    sleep 0.05
done
check_match "metrics: the broken file was refused" \
    'dotproxy_tls_cert_loads_total\{result="refused"\} [1-9]' "$metrics"
check_eq "broken file: new handshakes keep the last good certificate" "$new" "$(serial)"
check_match "metrics: seconds to our certificate's notAfter" \
    'dotproxy_tls_cert_expiry_seconds [0-9]+' "$metrics"
check_match "metrics: handshakes by result" \
    'dotproxy_tls_listener_handshakes_total\{result="full"\} [1-9]' "$metrics"
check_match "metrics: TLS queries counted" 'dotproxy_queries_total\{transport="tls"\} [1-9]' \
    "$metrics"
stop_proxy
check_eq "dotproxyd exit status" 0 "$STOP_STATUS"

# ---- mutual TLS with a SPIFFE identity ----
start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" --ca-file "$PKI/ca.pem" --timeout 3000 \
    --listen-tls 127.0.0.1@0 --tls-cert "$PKI/server.pem" --tls-key "$PKI/server-key.pem" \
    --tls-client-ca "$PKI/ca.pem" --tls-client-id spiffe://cluster.local/ns/web/sa/app
TLS_PORT=$(sed -n 's/.*TLS on 127\.0\.0\.1@\([0-9]*\).*/\1/p' <<<"$BG_LINE")
check_eq "mTLS: kdig with the SPIFFE certificate" "$(expected_a m1.example)" \
    "$(tkdig +tls-certfile="$PKI/client-uri.pem" +tls-keyfile="$PKI/client-uri-key.pem" \
        +short m1.example A)"
out=$(tkdig +short m2.example A 2>&1)
check_match "mTLS: kdig without a certificate is refused" 'WARNING|failed' "$out"
out=$(tkdig +tls-certfile="$PKI/client-dns.pem" +tls-keyfile="$PKI/client-dns-key.pem" \
    +short m3.example A 2>&1)
check_match "mTLS: kdig with another identity is refused" 'WARNING|failed' "$out"
stop_proxy
check_match "mTLS: the refusal is logged with its reason" 'refused: no client certificate' \
    "$(cat "$WORK/dotproxyd.log")"
# Two refusals of one client address within a minute: one line.
check_eq "mTLS: refusals logged once a minute per client" 1 \
    "$(grep -c 'TLS client 127.0.0.1@[0-9]* refused' "$WORK/dotproxyd.log")"

stop_dotserver
finish
