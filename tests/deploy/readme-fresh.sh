#!/bin/bash
# SPDX-License-Identifier: MIT
#
# readme-fresh.sh SRCDIR
#
# The README's first command ("Install, build and start"), as the README prints it, on a
# fresh Debian 12: a debian:bookworm-slim container run by podman
# (/work/shared/container/podman-here.sh made the base image; no Docker engine here).
#
#   1. The command is read from README.md (the first ```sh block), so this cannot drift
#      from what readers copy.
#   2. Everything before its last `&&` (apt-get install, meson setup, ninja) runs in a
#      container with the host's network: apt needs Debian's mirror.
#   3. The last part (starting dotproxyd) runs in a container made from the result with
#      --network=none: only loopback, so the default upstreams (Cloudflare) are never
#      tried. It must be listening within 60 s; `dig` (installed in step 2, after the
#      README's command) then asks it over UDP and TCP and must get an answer: SERVFAIL,
#      since no upstream can be reached, with the question echoed.
#
# Not part of the suite (it takes minutes and needs podman). Exit 0 pass, 1 fail.
set -euo pipefail

src=$(cd "${1:?usage: readme-fresh.sh SRCDIR}" && pwd)
here=/work/shared/container/podman-here.sh
command -v podman >/dev/null || { echo "FAIL: podman missing: run $here setup" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

cmd=$(awk '/^```sh$/ {inside = 1; next} inside && /^```$/ {exit} inside {print}' "$src/README.md")
[[ -n $cmd && $(wc -l <<<"$cmd") -eq 1 ]] || fail "README's first sh block is not one command: $cmd"
build=${cmd% && *}
start=${cmd##* && }
[[ $start == build/cli/dotproxyd* ]] || fail "the command does not end by starting dotproxyd: $start"
ok "README command: $cmd"

tag=readme-fresh-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/readme-fresh.XXXXXX")
cleanup() {
    podman rm -f "$tag-build" "$tag-run" >/dev/null 2>&1 || true
    podman rmi -f "localhost/$tag" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# The tree as committed (what a clone gives), not the build directories around it.
git -C "$src" archive --format=tar HEAD >"$tmp/src.tar"

# shellcheck disable=SC2016  # expanded in the container
podman --runtime runc --cgroup-manager cgroupfs run --name "$tag-build" \
    --ulimit nproc=4096:4096 --ulimit nofile=1024:20000 --network=host \
    -v "$tmp:/in:ro" docker.io/library/debian:bookworm-slim bash -ec '
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        mkdir /src && cd /src && tar -xf /in/src.tar
        eval "$1" >/build.log 2>&1 || { tail -40 /build.log; exit 1; }
        apt-get install -y -qq bind9-dnsutils >/dev/null
        test -x build/cli/dotproxyd' _ "$build" || fail "install and build (see above)"
ok "install and build: done in a fresh bookworm container"
podman commit -q "$tag-build" "localhost/$tag" >/dev/null

# shellcheck disable=SC2016
podman --runtime runc --cgroup-manager cgroupfs run --name "$tag-run" --rm \
    --ulimit nproc=4096:4096 --ulimit nofile=1024:20000 --network=none \
    "localhost/$tag" bash -ec '
        cd /src
        ip link set lo up 2>/dev/null || true
        eval "exec $1" >/tmp/daemon.log 2>&1 & # exec: $! is dotproxyd itself
        pid=$!
        for _ in $(seq 600); do
            dig @127.0.0.1 -p 5353 +time=1 +tries=1 +norecurse . SOA >/dev/null 2>&1 && break
            kill -0 $pid 2>/dev/null || { cat /tmp/daemon.log; exit 1; }
            sleep 0.1
        done
        for t in +notcp +tcp; do
            out=$(dig @127.0.0.1 -p 5353 +time=5 +tries=1 $t example.com A)
            echo "$out" | grep -q "status: SERVFAIL" || { echo "$out"; cat /tmp/daemon.log; exit 1; }
            echo "$out" | grep -q "^;example.com\.[[:space:]]*IN[[:space:]]*A" ||
                { echo "$out"; exit 1; }
            echo "dig $t: SERVFAIL with the question (no upstream reachable)"
        done
        kill -TERM $pid
        wait $pid || rc=$?
        echo "dotproxyd exit status after SIGTERM: ${rc:-0}"
        [ "${rc:-0}" = 0 ] || exit 1
        head -5 /tmp/daemon.log' _ "$start" || fail "start (see above)"
ok "start: dotproxyd listened on 127.0.0.1@5353 with loopback only, answered UDP and TCP"
