#!/usr/bin/env bash
# run.sh [BUILD_DIR] - configuration at scale (make bench-config).
#
# The real server (BUILD_DIR/tethys server, 127.0.0.1, --rate-limit 0, its own data
# directory) with many jobs: create rate through the API at 1,000, 10,000 and 100,000 jobs,
# `tethys apply` of 1,000,000 jobs from one file, the whole server's RSS per job,
# restart-to-ready with 1,000,000 jobs, p99 of a job read and of a page of 100 at that
# size.  See config_bench.py for the method.  The last line is exactly
#   RESULT config create_per_s_1k=<n> create_per_s_100k=<n> rss_per_job_b=<n> restart_1m_s=<n>
#
# CONFIG_JOBS (default 1000000) sizes the apply; BENCH_DIR (default $TMPDIR or /tmp) holds
# the data directories: about 2.5 GB at the peak for a million jobs.  Takes 10-20 minutes
# on a 2-vCPU VM; every phase is bounded and the benchmark stops if one overruns.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$BUILD/tethys" ] || { echo "run.sh: $BUILD/tethys is missing (make build)" >&2; exit 2; }
exec /usr/bin/python3 "$HERE/config_bench.py" --tethys "$BUILD/tethys" \
    --jobs "${CONFIG_JOBS:-1000000}" --dir "${BENCH_DIR:-${TMPDIR:-/tmp}}"
