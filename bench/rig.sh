# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# rig.sh - what bench/instructions.sh and bench/floor.sh share (sourced, not run):
# the private network namespace, the release daemon, stopping by PID, and the
# shared rig's DoT upstream with its query files.
#
# The sourcing script defines SELF (its own path), SRC, BUILD_DIR, UPSTREAM_SH,
# ORIG_ARGS (its arguments) and die() first.

# rig_netns FLAG : re-execute SELF inside `unshare -n` (a namespace whose only
# interface is loopback: nothing leaves the machine, no port collides with other
# jobs) unless the environment variable FLAG says this already happened; there,
# bring loopback up. Sets NETNS to yes, or no when unshare is not allowed.
rig_netns() {
    local flag=$1
    NETNS=no
    if [[ -z ${!flag:-} ]]; then
        if unshare -n true 2>/dev/null; then
            exec unshare -n -- env "$flag=1" bash "$SELF" "${ORIG_ARGS[@]}"
        fi
        echo "$(basename "$SELF"): warning: unshare -n failed; using the host's loopback" >&2
        return 0
    fi
    ip link set lo up || die "cannot bring up lo in the namespace"
    NETNS=yes
}

# rig_ports_free PORT... : outside a namespace, refuse ports someone else holds
rig_ports_free() {
    [[ ${NETNS:-no} == yes ]] && return 0
    local p
    for p in "$@"; do
        [[ -z $(ss -Hlntu "( sport = :$p )" 2>/dev/null) ]] || die "port $p is already in use"
    done
}

# rig_build_daemon : the release daemon (incremental; keeps the one already
# built if the tree is broken elsewhere for a moment). Sets DOTPROXYD.
rig_build_daemon() {
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        meson setup "$BUILD_DIR" "$SRC" --buildtype=release -Dtests=false -Dexamples=false >/dev/null ||
            die "meson setup failed"
    fi
    if ! ninja -C "$BUILD_DIR" cli/dotproxyd >/dev/null 2>&1; then
        [[ -x $BUILD_DIR/cli/dotproxyd ]] || die "build failed"
        echo "$(basename "$SELF"): warning: build failed; using the dotproxyd already built" >&2
    fi
    # shellcheck disable=SC2034 # read by the sourcing script
    DOTPROXYD=$BUILD_DIR/cli/dotproxyd
}

# rig_stop_pid PID SECONDS : SIGTERM, up to SECONDS to exit, then SIGKILL; reaped
rig_stop_pid() {
    local pid=$1 tenths=$(($2 * 10))
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq "$tenths"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$(basename "$SELF"): pid $pid ignored TERM for $2 s: KILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# rig_upstream_start DIR PORT_BASE CACHED_NAMES : the shared rig's upstream in
# DIR/up (plain DNS on PORT_BASE, DoT on PORT_BASE+1), its variables (UP_PID,
# UP_DOT_PORT, TLS_NAME, CA, UP_NAMES_FILE) loaded, and the query files
# DIR/q-uncached.txt (all 10,000 names) and DIR/q-cached.txt (the first
# CACHED_NAMES). rig_upstream_stop DIR undoes it.
RIG_UP_STARTED=0
rig_upstream_start() {
    local dir=$1
    [[ -x $UPSTREAM_SH ]] || die "no $UPSTREAM_SH (the rig is bench/rig in the repository; SHARED_BENCH overrides it)"
    "$UPSTREAM_SH" start "$dir/up" "$2" >"$dir/upstream.log" 2>&1 ||
        { cat "$dir/upstream.log" >&2; die "upstream failed to start"; }
    RIG_UP_STARTED=1
    # shellcheck disable=SC1091
    source "$dir/up/env"
    awk '{print $1, "A"}' "$UP_NAMES_FILE" >"$dir/q-uncached.txt"
    head -n "$3" "$dir/q-uncached.txt" >"$dir/q-cached.txt"
}
rig_upstream_stop() {
    ((RIG_UP_STARTED)) && "$UPSTREAM_SH" stop "$1/up" >/dev/null 2>&1
    RIG_UP_STARTED=0
    rm -rf "$1/up" "$1"/q-*.txt
}
