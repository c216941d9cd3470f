#!/bin/bash
# SPDX-License-Identifier: MIT
#
# man-lint.sh PAGE [DOTPROXYD]
#
# docs/dotproxyd.8 must render with no groff or man warning, carry the sections a
# reader looks for, and document every long option the daemon's --help prints (when
# DOTPROXYD is given and runs), so a new option cannot ship undocumented.
# Exit 77 (skipped) where groff is missing.
set -euo pipefail

page=${1:?usage: man-lint.sh PAGE [DOTPROXYD]}
exe=${2:-}
command -v groff >/dev/null || { echo "SKIP: no groff"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$page" 2>&1) || fail "groff failed: $out"
[[ -z $out ]] || fail "groff warns: $out"
if command -v man >/dev/null; then
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man failed: $out"
    [[ -z $out ]] || fail "man warns: $out"
fi
echo "ok: renders without warnings"

for s in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' SIGNALS EXAMPLES FILES 'SEE ALSO'; do
    grep -qE "^\.SH \"?${s}\"?\$" "$page" || fail "no .SH $s section"
done
echo "ok: sections present"

text=$(LC_ALL=C.UTF-8 MANWIDTH=200 groff -man -Tutf8 -P-cbou "$page" 2>/dev/null)
documented() { grep -qE -- "(^|[^[:alnum:]-])$1([^[:alnum:]-]|\$)" <<<"$text"; }
for opt in --listen --upstream --ca-file --timeout --cache-size --workers --verbose --quiet --version --help; do
    documented "$opt" || fail "option $opt not documented"
done

if [[ -n $exe && -x $exe ]]; then
    help=$("$exe" --help 2>&1) || fail "$exe --help exited $?"
    mapfile -t opts < <(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u)
    [[ ${#opts[@]} -gt 0 ]] || fail "$exe --help names no long option"
    for opt in "${opts[@]}"; do
        documented "$opt" || fail "$exe --help offers $opt, which the man page does not document"
    done
    echo "ok: all ${#opts[@]} options of --help documented"
else
    echo "note: no daemon binary given; --help cross-check not run"
fi
