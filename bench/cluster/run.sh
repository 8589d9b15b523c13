#!/usr/bin/env bash
# run.sh [BUILD_DIR] - the cluster benchmark (make bench-cluster).
#
# A three-node ZooKeeper ensemble, PostgreSQL 15 with fsync on (PG_DURABLE=1), servers and
# executors as separate processes, all on 127.0.0.1, driven by cluster_bench.py through
# the system tests' harness (tests/system/cluster.py, zkens.py): failover time at session
# timeouts of 4 s and 10 s, rebalance of 10,000 jobs when an executor joins, ZooKeeper
# writes per fire and znodes/watches per job, ZooKeeper heap and start-up time at 500,000
# jobs, sustained fires/s over 3 executors against this machine's floor, and one server
# set over 1-100 ensembles (simulated: chroots of one ZooKeeper; memory, threads, idle
# CPU, start-up and refresh time against the count).  The floor is measured first, in the
# same run: R, the raw posix_spawn rate of `/bin/sh -c /bin/true` with 8 in flight
# (bench/spawn/raw_spawn).  See cluster_bench.py for the method.
#
#   bench/cluster/run.sh build
#   BENCH_CLUSTER_JOBS=100000 REPS=5 WINDOW=60 bench/cluster/run.sh build
#   PHASES=ensembles bench/cluster/run.sh build          # that phase alone, ~4 minutes
#   PHASES=ensembles ENSEMBLES=1,128 ENS_EXECUTORS=10 bench/cluster/run.sh build
#
# PHASES (default all: failover.t10,failover.t4,steady,znodes,rebalance,large,ensembles)
# runs only those; ENSEMBLES (1,10,50,100) the ensemble counts, ENS_EXECUTORS (100) at
# most that many executors, one an ensemble.
# BENCH_CLUSTER_JOBS (default 500000) sizes the large phase, CREATE_BUDGET (seconds,
# default jobs/300) bounds its creation; REPS (5) failovers per timeout; WINDOW (40) the
# steady-state window in seconds; REBALANCE_JOBS (10000).  BENCH_DIR (default $TMPDIR or
# /tmp) holds the data directories.  Takes 25-35 minutes at the defaults on a 2-vCPU VM.
# The last line is exactly
#   RESULT cluster failover_s=<n> zk_writes_per_fire=<n> znodes_per_job=<n> jobs_500k_zk_heap_mb=<n>
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-build}" && pwd)
[ -x "$BUILD/tethys" ] || { echo "run.sh: $BUILD/tethys is missing (make build)" >&2; exit 2; }
RAW="$BUILD/raw_spawn"
if [ ! -x "$RAW" ]; then # `--target tethys` builds only the server: compile the floor here
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    RAW="$TMP/raw_spawn"
    ${CC:-cc} -O2 -std=c17 -D_POSIX_C_SOURCE=200809L -o "$RAW" "$ROOT/bench/spawn/raw_spawn.c"
fi
R=$("$RAW" -p 8 -t 3 | sed -n 's/.*raw.runs_per_s=\([0-9.]*\).*/\1/p')
[ -n "${TMP:-}" ] && rm -rf "$TMP"
[ -n "$R" ] || { echo "run.sh: could not measure the raw spawn rate" >&2; exit 1; }
echo "cluster: this machine starts ${R} processes/s (raw posix_spawn of sh -c /bin/true, 8 in flight)"
# tests/zk/zk.sh gives each node 160 MB, which placements of ~45,000 jobs exhaust (see
# docs/performance.md); the benchmark's nodes get ZK_HEAP, 1 GB unless said otherwise
export ZK_HEAP=${ZK_HEAP:-1g}
PG_DURABLE=1 exec /usr/bin/python3 "$HERE/cluster_bench.py" --tethys "$BUILD/tethys" \
    --raw-rate "$R" --jobs "${BENCH_CLUSTER_JOBS:-500000}" --reps "${REPS:-5}" \
    --window "${WINDOW:-40}" --rebalance-jobs "${REBALANCE_JOBS:-10000}" \
    ${CREATE_BUDGET:+--create-budget "$CREATE_BUDGET"} --dir "${BENCH_DIR:-${TMPDIR:-/tmp}}" \
    ${PHASES:+--only "$PHASES"} ${ENSEMBLES:+--ensembles "$ENSEMBLES"} \
    ${ENS_EXECUTORS:+--ens-executors "$ENS_EXECUTORS"}
