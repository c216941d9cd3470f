#!/bin/sh
# SPDX-License-Identifier: MIT
# Build bench/rpz_bench.c against lib/rpz.c at -O2 and run it:
#   bench/rpz_bench.sh [RULES] [ZONEFILE]   (default 1000000, a temporary file)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=$(mktemp -d "${TMPDIR:-/tmp}/rpz_bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I"$top/include" -I"$top/lib" \
    -o "$out/rpz_bench" "$here/rpz_bench.c" "$top/lib/rpz.c"
"$out/rpz_bench" "$@"
