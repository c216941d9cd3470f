#!/bin/bash
# SPDX-License-Identifier: MIT
#
# systemd-verify.sh UNIT [DOTPROXYD]
#
# Offline checks of deploy/systemd/dotproxyd.service:
#   * `systemd-analyze verify` accepts it with no message at all (unknown keys and bad
#     values are only warnings there, with exit 0, so any output counts as failure);
#   * the hardening the unit promises is all present (a removed line fails), and so are
#     the configuration file, the SIGHUP reload and readiness by sd_notify (Type=notify);
#   * with DOTPROXYD: the command line ExecStart builds, from the default config path's
#     stand-in (deploy/dotproxyd.conf.example when present, else an empty file) and the
#     DOTPROXYD_ARGS example in the unit's header, passes `dotproxyd --check-config`;
#   * `systemd-analyze security --offline` rates its exposure at most 2.5 of 10.
# ExecStart must name an existing executable for verify, so a copy of the unit points at
# DOTPROXYD (the built daemon) or, without it, at /bin/true.
# Exit 77 (skipped) where systemd-analyze is missing.
set -euo pipefail

unit=${1:?usage: systemd-verify.sh UNIT [DOTPROXYD]}
exe=${2:-/bin/true}
[[ -x $exe ]] && exe=$(readlink -f "$exe") || exe=/bin/true
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/systemd-verify.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

grep -q '^ExecStart=/usr/sbin/dotproxyd' "$unit" || fail "ExecStart does not run /usr/sbin/dotproxyd"
sed "s|/usr/sbin/dotproxyd|$exe|" "$unit" > "$tmp/dotproxyd.service"

out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/dotproxyd.service" 2>&1) ||
    fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify warns: $out"
echo "ok: systemd-analyze verify is silent"

for want in \
    'Type=notify' 'NotifyAccess=main' 'DynamicUser=yes' 'NoNewPrivileges=yes' \
    'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service' \
    'MemoryDenyWriteExecute=yes' 'LockPersonality=yes' 'RestrictNamespaces=yes' \
    'Restart=on-failure' 'RestartPreventExitStatus=2' \
    'Environment=DOTPROXYD_CONFIG=/etc/dotproxyd/dotproxyd.conf' \
    'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qx "$want" "$unit" || fail "unit lacks '$want'"
done
echo "ok: hardening directives present"
grep -Eq '^ExecStart=/usr/sbin/dotproxyd --config \$\{DOTPROXYD_CONFIG\} ' "$unit" ||
    fail "ExecStart does not pass --config \${DOTPROXYD_CONFIG}"
# EnvironmentFile= must come after Environment= so that it can override the path.
env_line=$(grep -n '^Environment=DOTPROXYD_CONFIG=' "$unit" | cut -d: -f1)
file_line=$(grep -n '^EnvironmentFile=' "$unit" | cut -d: -f1)
(( env_line < file_line )) || fail "EnvironmentFile= comes before Environment=DOTPROXYD_CONFIG"
echo "ok: --config from DOTPROXYD_CONFIG, reload by SIGHUP"

if [[ $exe != /bin/true ]]; then
    example=$(dirname "$unit")/../dotproxyd.conf.example
    [[ -f $example ]] || { example=$tmp/empty.conf; : > "$example"; }
    args=$(sed -n 's/^#   DOTPROXYD_ARGS="\(.*\)"$/\1/p' "$unit" | head -1)
    [[ -n $args ]] || fail "no DOTPROXYD_ARGS=\"...\" example in the unit's header"
    cmd=$(sed -n 's/^ExecStart=//p' "$unit")
    cmd=${cmd//'${DOTPROXYD_CONFIG}'/$example}
    cmd=${cmd//'$DOTPROXYD_ARGS'/$args}
    cmd=${cmd/\/usr\/sbin\/dotproxyd/$exe --check-config}
    # shellcheck disable=SC2086  # split into words as systemd splits $VAR
    out=$($cmd 2>&1) || fail "the unit's command line is rejected: $out"
    [[ $out == 'configuration OK' ]] || fail "--check-config printed '$out'"
    echo "ok: ExecStart with $(basename "$example") and the example arguments: $out"
fi

# --threshold is in tenths; the exit code says whether the exposure is above it.
if ! sec=$(cd "$tmp" && systemd-analyze security --offline=true --threshold=25 "$tmp/dotproxyd.service" 2>&1); then
    echo "$sec" | grep '✗' >&2 || true
    fail "exposure above 2.5: $(echo "$sec" | grep 'Overall exposure')"
fi
echo "ok: $(echo "$sec" | grep -o 'Overall exposure.*')"
