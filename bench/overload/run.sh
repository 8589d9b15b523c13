#!/usr/bin/env bash
# run.sh [BUILD_DIR] - the embedded server past what the machine can start (issue 9, 3).
#
# First this machine's own floor: R, the raw posix_spawn rate of `/bin/sh -c /bin/true`
# with 8 in flight (bench/spawn/raw_spawn).  Then a real `tethys server` on 127.0.0.1 gets
# 2R shell jobs firing every second for DURATION seconds (30), while a client measures the
# API; then every job is disabled and the time to drain is measured; then history is read
# back to account for every fire.  Prints figures and ends with
#   RESULT overload api_p99_ms=<n> start_late_p99_ms=<n> fires_accounted_pct=<n> drain_s=<n>
#
#   bench/overload/run.sh build
#   DURATION=10 FACTOR=3 bench/overload/run.sh build
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
RAW="$BUILD/raw_spawn"
[ -x "$RAW" ] || { echo "overload: $RAW is missing (make build)" >&2; exit 2; }
R=$("$RAW" -p 8 -t 3 | sed -n 's/.*raw.runs_per_s=\([0-9.]*\).*/\1/p')
echo "overload: this machine starts ${R} processes/s (raw posix_spawn, 8 in flight)"
exec /usr/bin/python3 "$HERE/overload.py" --tethys "$BUILD/tethys" --raw-rate "$R" \
    --factor "${FACTOR:-2}" --duration "${DURATION:-30}"
