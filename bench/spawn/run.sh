#!/usr/bin/env bash
# run.sh [BUILD_DIR] - shell-run throughput: exec_start (exec_spawn) against a plain
# posix_spawn + waitpid loop (raw_spawn), same workload (`/bin/sh -c /bin/true`), same
# parallelism, in the same invocation.
#
#   bench/spawn/run.sh build            # uses build/raw_spawn and build/exec_spawn
#   P_LIST="2 8" ROUNDS=15 RUNS=1000 OUT_DIR=/var/tmp/x bench/spawn/run.sh build
#
# When the binaries are not in BUILD_DIR they are compiled here with cc -O2 (needs only
# libuv).  The machine is shared and noisy (its speed can change by 2x from one second to
# the next), so each P runs ROUNDS short rounds, raw and exec back to back (which goes
# first alternates); the figure that counts is the median of the per-round ratios, since
# two runs of one round see the same machine far more often than two medians do.
# exec_spawn writes one output file per run into OUT_DIR (default: a new directory under
# /tmp); its file system matters, see docs/internals/exec.md ("Cost of a run").
# Prints each round, then per P:
#   SPAWN p=<P> raw.runs_per_s=<median> exec.runs_per_s=<median> ratio=<median of round ratios>
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
P_LIST=${P_LIST:-"2 8"}
ROUNDS=${ROUNDS:-15}
RUNS=${RUNS:-1000}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RAW="$BUILD/raw_spawn"
EXEC="$BUILD/exec_spawn"
if [ ! -x "$RAW" ] || [ ! -x "$EXEC" ]; then
    CC=${CC:-cc}
    FLAGS="-O2 -std=c17 -D_POSIX_C_SOURCE=200809L -Wall -Wextra"
    RAW="$TMP/raw_spawn"
    EXEC="$TMP/exec_spawn"
    $CC $FLAGS -o "$RAW" "$HERE/raw_spawn.c"
    $CC $FLAGS -I"$ROOT/src" -o "$EXEC" "$HERE/exec_spawn.c" "$ROOT/src/exec/exec_shell.c" \
        "$ROOT/src/core/ty_err.c" -luv
fi
OUT=${OUT_DIR:-$TMP/out}
mkdir -p "$OUT"
echo "spawn: output files in $OUT ($(stat -f -c %T "$OUT")), $RUNS runs per round, $ROUNDS rounds"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
rate() { sed -n 's/.*runs_per_s=\([0-9.]*\).*/\1/p'; }

for P in $P_LIST; do
    : >"$TMP/raw.$P"
    : >"$TMP/exec.$P"
    : >"$TMP/ratio.$P"
    for ((i = 1; i <= ROUNDS; i++)); do
        if ((i % 2)); then order="raw exec"; else order="exec raw"; fi
        for side in $order; do
            if [ "$side" = raw ]; then
                r=$("$RAW" -p "$P" -n "$RUNS" | rate)
                raw_r=$r
            else
                r=$("$EXEC" -p "$P" -n "$RUNS" -d "$OUT" | rate)
                exec_r=$r
            fi
            echo "$r" >>"$TMP/$side.$P"
        done
        ratio=$(awk -v a="$exec_r" -v b="$raw_r" 'BEGIN {printf "%.3f", a / b}')
        echo "$ratio" >>"$TMP/ratio.$P"
        echo "  p=$P round=$i raw.runs_per_s=$raw_r exec.runs_per_s=$exec_r ratio=$ratio"
    done
    raw=$(median <"$TMP/raw.$P")
    exe=$(median <"$TMP/exec.$P")
    ratio=$(median <"$TMP/ratio.$P")
    echo "SPAWN p=$P raw.runs_per_s=$raw exec.runs_per_s=$exe ratio=$ratio"
done
