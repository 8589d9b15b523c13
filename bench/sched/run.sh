#!/usr/bin/env bash
# run.sh [BUILD_DIR] - the scheduler benchmark (make bench-sched).
#
# Tethys's trigger engine (bench_sched, a consumer that does no work) and Quartz 2.3.2
# (RAMJobStore, a no-op job) on the same workloads, one after the other, never at once:
#   - memory per job and load time: 10,000, 100,000 and 1,000,000 enabled jobs (Quartz:
#     10,000 and 100,000; a million Quartz jobs need ~20 GB)
#   - CPU while 100,000 jobs are idle
#   - lateness at dispatch p50/p99/max and fires delivered: 10,000 and 100,000 jobs every
#     second for SECS seconds
# then the real server (server_bench.py), sized from this machine's own process-spawn rate
# R, which it measures first in the same run (raw_spawn: a plain posix_spawn + waitpid
# loop): LOAD x R shell jobs every second with history written (LOAD=0.5: a load the server
# should sustain), and R x 5 shards at once against raw_spawn with the same parallelism,
# run right after. Its figures are given as ratios against R. Machines of this kind start
# from ~190 to ~1,600 shells a second; a fixed 1,000 a second took a slow one over 15
# minutes.
#
# Every phase runs under a time limit (a few times what it takes: 20 minutes if every one
# of them hung); one that fails or runs out of time says so on stderr, its figures read
# nan, and the benchmark goes on. The last two lines are always exactly
#   RESULT sched lateness_p99_ms=<x> quartz_lateness_p99_ms=<y> bytes_per_job=<b> quartz_bytes_per_job=<q> idle_cpu_pct=<c>
#   RESULT spawn ratio_vs_raw=<r>
# with the 10,000-job figures in the first. Takes three to four minutes on an idle machine;
# about five with stress-ng --cpu 4 beside it (R about 250).
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=${SECS:-15}
LOAD=${LOAD:-0.5}
JARS=/usr/share/java/quartz2.jar:/usr/share/java/slf4j-api.jar
CLASSES="$BUILD/quartz"
CP="$CLASSES:$JARS"
TMP=$(mktemp -d)
MOUNTED=
FAILED=()

val() {
    local v
    v=$(grep -s "^$1=" "$2" | tail -n 1 | cut -d= -f2) || true
    echo "${v:-nan}"
}

# The summary and the RESULT lines, whatever happened before (also on an error or Ctrl-C).
finish() {
    local rc=$?
    set +e
    local t_p99 q_p99 t_b q_b idle ratio n
    t_p99=$(val tethys.fire.lateness_p99_ms "$TMP/t-fire-10000.txt")
    q_p99=$(val quartz.fire.lateness_p99_ms "$TMP/q-fire-10000.txt")
    t_b=$(val tethys.load.bytes_per_job "$TMP/t-load-10000.txt")
    q_b=$(val quartz.load.bytes_per_job "$TMP/q-load-10000.txt")
    idle=$(val tethys.idle.cpu_pct "$TMP/t-idle.txt")
    ratio=$(val spawn.ratio_vs_raw "$TMP/server.txt")
    echo
    printf '%-44s %12s %12s\n' "" Tethys Quartz
    for n in 10000 100000; do
        printf '%-44s %12s %12s\n' "lateness p50 ms, $n jobs/s" \
            "$(val tethys.fire.lateness_p50_ms "$TMP/t-fire-$n.txt")" "$(val quartz.fire.lateness_p50_ms "$TMP/q-fire-$n.txt")"
        printf '%-44s %12s %12s\n' "lateness p99 ms, $n jobs/s" \
            "$(val tethys.fire.lateness_p99_ms "$TMP/t-fire-$n.txt")" "$(val quartz.fire.lateness_p99_ms "$TMP/q-fire-$n.txt")"
        printf '%-44s %12s %12s\n' "fires delivered %, $n jobs/s" \
            "$(val tethys.fire.delivered_pct "$TMP/t-fire-$n.txt")" "$(val quartz.fire.delivered_pct "$TMP/q-fire-$n.txt")"
    done
    for n in 10000 100000; do
        printf '%-44s %12s %12s\n' "bytes per job (RSS), $n jobs" \
            "$(val tethys.load.bytes_per_job "$TMP/t-load-$n.txt")" "$(val quartz.load.bytes_per_job "$TMP/q-load-$n.txt")"
    done
    printf '%-44s %12s\n' "bytes per job (RSS), 1000000 jobs" "$(val tethys.load.bytes_per_job "$TMP/t-load-1000000.txt")"
    printf '%-44s %12s\n' "load seconds, 1000000 jobs" "$(val tethys.load.seconds "$TMP/t-load-1000000.txt")"
    local s="$TMP/server.txt"
    printf '%-44s %12s\n' "raw spawn rate R (runs/s, this run)" "$(val raw.before.runs_per_s "$s")"
    printf '%-44s %12s\n' "server load: jobs every second (x R)" \
        "$(val server.lateness.jobs "$s") ($(val server.lateness.load_vs_raw "$s"))"
    printf '%-44s %12s\n' "  runs delivered %" "$(val server.lateness.delivered_pct "$s")"
    printf '%-44s %12s\n' "  lateness to process start p50/p99 ms" \
        "$(val server.lateness.p50_ms "$s")/$(val server.lateness.p99_ms "$s")"
    printf '%-44s %12s\n' "server burst runs/s (x R)" \
        "$(val server.spawn.runs_per_s "$s") ($(val server.spawn.runs_per_s_vs_raw "$s"))"
    printf '%-44s %12s\n' "server burst vs raw loop right after" "$ratio"
    if [ "${#FAILED[@]}" -gt 0 ]; then
        echo "phases that failed or ran out of time: ${FAILED[*]}"
    fi
    echo "ratio Quartz/Tethys lateness p99 (10000 jobs/s): $(awk -v q="$q_p99" -v t="$t_p99" \
        'BEGIN { if (q + 0 > 0 && t + 0 > 0) printf "%.0f", q / t; else printf "nan" }')"
    echo "RESULT sched lateness_p99_ms=$t_p99 quartz_lateness_p99_ms=$q_p99 bytes_per_job=$t_b quartz_bytes_per_job=$q_b idle_cpu_pct=$idle"
    echo "RESULT spawn ratio_vs_raw=$ratio"
    [ -n "$MOUNTED" ] && umount "$TMP/tmpfs" 2>/dev/null
    rm -rf "$TMP"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# phase NAME SECONDS OUT CMD...: run CMD with a time limit, its output into OUT (and shown)
phase() {
    local name=$1 limit=$2 out=$3 rc=0
    shift 3
    timeout --kill-after=15 "$limit" "$@" >"$out" 2>"$out.err" || rc=$?
    cat "$out"
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "run.sh: $name ran out of its $limit s; its figures read nan" >&2
        else
            echo "run.sh: $name failed (status $rc); its figures read nan" >&2
        fi
        tail -n 5 "$out.err" >&2
        FAILED+=("$name")
    fi
    return 0
}

for b in bench_sched raw_spawn tethys; do
    [ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b is missing (make build)" >&2; exit 2; }
done
QUARTZ=1
mkdir -p "$CLASSES"
if [ ! -f "$CLASSES/QuartzSchedBench.class" ] ||
   [ "$HERE/QuartzSchedBench.java" -nt "$CLASSES/QuartzSchedBench.class" ]; then
    javac -nowarn -d "$CLASSES" -cp "$JARS" "$HERE/QuartzSchedBench.java" ||
        { echo "run.sh: cannot compile QuartzSchedBench.java; Quartz's figures read nan" >&2; QUARTZ=; }
fi
quartz() { # quartz NAME SECONDS OUT ARGS...
    local name=$1 limit=$2 out=$3
    shift 3
    [ -n "$QUARTZ" ] || return 0
    phase "$name" "$limit" "$out" java -Xms4g -Xmx4g -cp "$CP" QuartzSchedBench "$@"
}

for n in 10000 100000 1000000; do
    echo "== load $n jobs"
    phase "tethys load $n" 60 "$TMP/t-load-$n.txt" "$BUILD/bench_sched" load $n
    if [ $n -le 100000 ]; then
        quartz "quartz load $n" 120 "$TMP/q-load-$n.txt" load $n
    fi
done
echo "== idle: 100000 jobs, 10 s"
phase "tethys idle" 40 "$TMP/t-idle.txt" "$BUILD/bench_sched" idle 100000 10
for n in 10000 100000; do
    echo "== fire: $n jobs every second, $SECS s"
    phase "tethys fire $n" $((SECS + 30)) "$TMP/t-fire-$n.txt" "$BUILD/bench_sched" fire $n "$SECS"
    quartz "quartz fire $n" $((SECS + 60)) "$TMP/q-fire-$n.txt" fire $n "$SECS"
done

echo "== the real server, sized from this machine's spawn rate"
# The data directory goes on a tmpfs when we may mount one: this VM's root file system is
# ext4 without a journal, where creating a file soon after others were deleted costs about
# half a millisecond (see docs/performance.md); the figure on the root file system is
# printed too.
DATA_FS="$TMP"
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/tmpfs" && mount -t tmpfs -o size=1g tmpfs "$TMP/tmpfs" 2>/dev/null; then
    DATA_FS="$TMP/tmpfs"
    MOUNTED=1
fi
phase "server" 240 "$TMP/server.txt" /usr/bin/python3 "$HERE/server_bench.py" \
    --tethys "$BUILD/tethys" --raw "$BUILD/raw_spawn" --load "$LOAD" --seconds 10 \
    --data "$DATA_FS/data"
echo "== the real server, data directory on the root file system"
phase "server on the root file system" 150 "$TMP/server-rootfs.txt" /usr/bin/python3 \
    "$HERE/server_bench.py" --tethys "$BUILD/tethys" --raw "$BUILD/raw_spawn" --load "$LOAD" \
    --seconds 5 --burst-seconds 3 --data "$TMP/rootfs-data" >/dev/null
grep -E "spawn|raw" "$TMP/server-rootfs.txt" | sed 's/^/rootfs./' || true
