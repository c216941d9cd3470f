#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# anomaly-eval.sh - the anomaly detectors against four attacks beside a
# benign load, on loopback (bench/anomaly_eval.py says how; its traffic comes
# from bench/anomaly_gen.py). Prints a table: time to detection, what was
# blocked, false positives on the benign load.
#
#   bench/anomaly-eval.sh [BUILD_DIR]     (default: build)
#
# Needs python3 and a built tree (dotproxyd, ts-dotserver, ts-pki). About 70 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=${1:-$SRC/build}
exec python3 "$HERE/anomaly_eval.py" "$BUILD"
