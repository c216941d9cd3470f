#!/bin/bash
# SPDX-License-Identifier: MIT
# systemd's readiness protocol (sd_notify(3)), with a python3 listener
# standing in for systemd on an AF_UNIX datagram socket, both as a path and
# in the abstract namespace ('@name'):
#   * the first message is READY=1 with MAINPID and a STATUS naming the
#     bound port, sent by the main process, and the port answers dig (UDP
#     and TCP) as soon as it has arrived;
#   * SIGHUP with a configuration file: RELOADING=1 with a CLOCK_MONOTONIC
#     time of now, then READY=1, and the daemon still answers;
#   * SIGTERM: STOPPING=1, then exit 0;
#   * a NOTIFY_SOCKET nobody listens on is logged at debug level and changes
#     nothing else.
# Every wait is a blocking read on the listener's output (through a FIFO).
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }

make_pki
start_dotserver server

# The listener prints one line per datagram: the sender's pid (from
# SCM_CREDENTIALS, as systemd checks NotifyAccess=main), its own
# CLOCK_MONOTONIC in microseconds at receipt, and the message with its
# newlines shown as '|'.
cat >"$WORK/listener.py" <<'EOF'
# SPDX-License-Identifier: MIT
import socket
import struct
import sys
import time

addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = "?"
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    text = data.decode(errors="replace").replace("\n", "|")
    print(f"pid={pid} at={now} {text}", flush=True)
EOF

conf=$WORK/dotproxyd.conf
write_conf() {
    cat >"$conf.new" <<EOF
listen = 127.0.0.1@0
upstream = 127.0.0.1@$SRV_PORT#dns.test
ca-file = $PKI/ca.pem
cache-size = $1
EOF
    mv "$conf.new" "$conf"
}

# start_listener ADDR TAG: the listener on ADDR, its output on fd LFD.
start_listener() {
    local fifo=$WORK/$2.fifo line
    mkfifo "$fifo" || die "mkfifo"
    python3 "$WORK/listener.py" "$1" >"$fifo" 2>>"$WORK/$2-listener.log" &
    LISTENER_PID=$!
    PIDS+=("$LISTENER_PID")
    exec {LFD}<"$fifo"
    NOTE_LOG=$WORK/$2-notify.log
    : >"$NOTE_LOG"
    IFS= read -r -t 20 -u "$LFD" line || die "$2: the listener did not bind $1"
    [ "$line" = bound ] || die "$2: listener said '$line'"
}

# next_message: the next datagram the listener got (20 s at most); sets
# MSG_PID, MSG_AT and MSG (newlines as '|').
next_message() {
    local line
    IFS= read -r -t 20 -u "$LFD" line || die "$CASE: no notification within 20 s"
    printf '%s\n' "$line" >>"$NOTE_LOG"
    [[ $line =~ ^pid=([0-9?]+)\ at=([0-9]+)\ (.*)$ ]] || die "$CASE: listener printed '$line'"
    MSG_PID=${BASH_REMATCH[1]}
    MSG_AT=${BASH_REMATCH[2]}
    MSG=${BASH_REMATCH[3]}
}

stop_listener() {
    exec {LFD}<&-
    kill -TERM "$LISTENER_PID" 2>/dev/null
    wait "$LISTENER_PID" 2>/dev/null
    forget_pid "$LISTENER_PID"
}

# run_case TAG NOTIFY_SOCKET
run_case() {
    local n
    CASE=$1
    start_listener "$2" "$1"
    write_conf 100
    NOTIFY_SOCKET=$2 "$DOTPROXYD" -c "$conf" --timeout 3000 >"$WORK/$1-dotproxyd.log" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")

    next_message
    check_match "$1: the first message is READY=1 with MAINPID and STATUS" \
        "^READY=1\|MAINPID=$PROXY_PID\|STATUS=listening on 127\.0\.0\.1@[0-9]+ \(UDP and TCP\); upstreams 127\.0\.0\.1@$SRV_PORT#dns\.test; 1 worker$" \
        "$MSG"
    check_eq "$1: READY=1 comes from the main process" "$PROXY_PID" "$MSG_PID"
    [[ $MSG =~ STATUS=listening\ on\ 127\.0\.0\.1@([0-9]+) ]] || die "$1: no port in '$MSG'"
    PROXY_PORT=${BASH_REMATCH[1]}
    # No wait of any kind between READY=1 and the queries: READY=1 must
    # mean that they are answered.
    check_eq "$1: answered over UDP right after READY=1" "$(expected_a "r1.$1.example")" \
        "$(qdig +short "r1.$1.example" A)"
    check_eq "$1: answered over TCP right after READY=1" "$(expected_a "r2.$1.example")" \
        "$(qdig +tcp +short "r2.$1.example" A)"

    write_conf 0
    kill -HUP "$PROXY_PID"
    next_message
    check_match "$1: SIGHUP first sends RELOADING=1 with MONOTONIC_USEC" \
        '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$' "$MSG"
    check_eq "$1: RELOADING=1 comes from the main process" "$PROXY_PID" "$MSG_PID"
    n=${MSG##*MONOTONIC_USEC=}
    # The daemon's clock reading is from just before the send, so it is at
    # most the listener's reading at receipt, and not far behind it.
    if [[ $n =~ ^[0-9]+$ ]] && ((n <= MSG_AT && MSG_AT - n < 10000000)); then
        pass "$1: MONOTONIC_USEC is CLOCK_MONOTONIC now ($n <= $MSG_AT)"
    else
        fail "$1: MONOTONIC_USEC=$n, the listener's CLOCK_MONOTONIC was $MSG_AT"
    fi
    next_message
    check_eq "$1: then READY=1 once the reload is done" "READY=1" "$MSG"
    check_eq "$1: answered after the reload" "$(expected_a "r3.$1.example")" \
        "$(qdig +short "r3.$1.example" A)"

    kill -TERM "$PROXY_PID"
    next_message
    check_eq "$1: SIGTERM sends STOPPING=1" "STOPPING=1" "$MSG"
    wait "$PROXY_PID"
    check_eq "$1: exit status after SIGTERM" 0 "$?"
    forget_pid "$PROXY_PID"
    stop_listener
}

run_case path "$WORK/notify.sock"
run_case abstract "@dotproxy-notify-test-$$-$RANDOM"

# Nobody listening: the sends fail, which is logged at debug and no more.
write_conf 100
NOTIFY_SOCKET=$WORK/nobody.sock start_proxy -v -c "$conf" --timeout 3000
check_eq "no listener: still answers" "$(expected_a r4.example)" "$(qdig +short r4.example A)"
stop_proxy
check_eq "no listener: exit status after SIGTERM" 0 "$STOP_STATUS"
check_match "no listener: the failed READY=1 is logged at debug level" \
    "dotproxyd: debug: sd_notify READY: (No such file or directory|Connection refused)" \
    "$(cat "$WORK/dotproxyd.log")"

stop_dotserver
check_eq "upstream got every query (cache or not, each name once)" 7 \
    "$(server_counter queries)"
finish
