#!/bin/bash
# SPDX-License-Identifier: MIT
# Strict authentication (RFC 7858 4.2, RFC 8310): an upstream whose
# certificate names another host, or chains to a CA we do not trust, gets no
# query at all, and the client gets SERVFAIL. A positive control first, with
# the same setup and the right certificate, so that a failing setup cannot
# pass for a refused upstream.
. "$(dirname "$0")/lib.sh"

make_pki

# expect_refused CERT-BASENAME UPSTREAM-NAME-SUFFIX DESCRIPTION
expect_refused() {
    local cert=$1 suffix=$2 what=$3 out
    start_dotserver "$cert"
    PROXY_NAME=dotproxyd-$cert start_proxy -u "127.0.0.1@$SRV_PORT$suffix" \
        --ca-file "$PKI/ca.pem" --timeout 2000
    out=$(qdig +time=6 www.example.com A)
    check_match "$what: UDP client gets SERVFAIL" 'status: SERVFAIL' "$out"
    out=$(qdig +time=6 +tcp www.example.com A)
    check_match "$what: TCP client gets SERVFAIL" 'status: SERVFAIL' "$out"
    stop_proxy
    check_eq "$what: dotproxyd exit status" 0 "$STOP_STATUS"
    stop_dotserver
    check_eq "$what: upstream received no query" 0 "$(server_counter queries)"
    if [ "$(server_counter connections)" -ge 1 ]; then
        pass "$what: the proxy did try to connect"
    else
        fail "$what: the proxy never connected, so nothing was tested"
    fi
}

# Positive control: the right certificate, by name and by IP address SAN.
start_dotserver server
PROXY_NAME=dotproxyd-good start_proxy -u "127.0.0.1@$SRV_PORT#dns.test" \
    -u "127.0.0.1@$SRV_PORT" --ca-file "$PKI/ca.pem" --timeout 2000
check_eq "control: good certificate answers" "$(expected_a www.example.com)" \
    "$(qdig +short www.example.com A)"
stop_proxy
stop_dotserver
check_eq "control: upstream received the query" 1 "$(server_counter queries)"

expect_refused wrongname "#dns.test" "certificate for another name"
expect_refused rogue "#dns.test" "certificate from an untrusted CA"
# No name: the certificate must carry 127.0.0.1 as an IP SAN, and
# wrongname.pem carries only "wrong.test".
expect_refused wrongname "" "certificate without the upstream's IP address"

finish
