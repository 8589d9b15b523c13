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
# then the real server (server_bench.py): 1,000 shell jobs every second with history
# written, and shell-run throughput against a plain posix_spawn loop (raw_spawn).
#
# The last two lines are exactly
#   RESULT sched lateness_p99_ms=<x> quartz_lateness_p99_ms=<y> bytes_per_job=<b> quartz_bytes_per_job=<q> idle_cpu_pct=<c>
#   RESULT spawn ratio_vs_raw=<r>
# with the 10,000-job figures in the first.  Takes about five minutes.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=${SECS:-15}
JARS=/usr/share/java/quartz2.jar:/usr/share/java/slf4j-api.jar
CLASSES="$BUILD/quartz"
CP="$CLASSES:$JARS"
for b in bench_sched raw_spawn tethys; do
    [ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b is missing (make build)" >&2; exit 2; }
done
mkdir -p "$CLASSES"
if [ ! -f "$CLASSES/QuartzSchedBench.class" ] ||
   [ "$HERE/QuartzSchedBench.java" -nt "$CLASSES/QuartzSchedBench.class" ]; then
    javac -nowarn -d "$CLASSES" -cp "$JARS" "$HERE/QuartzSchedBench.java"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/all.txt"
quartz() { java -Xms4g -Xmx4g -cp "$CP" QuartzSchedBench "$@" 2>/dev/null | tee -a "$OUT"; }
tethys() { "$BUILD/bench_sched" "$@" | tee -a "$OUT"; }
val() { grep "^$1=" "$2" | tail -n 1 | cut -d= -f2; }

for n in 10000 100000 1000000; do
    echo "== load $n jobs"
    tethys load $n > "$TMP/t-load-$n.txt"; cat "$TMP/t-load-$n.txt"
    if [ $n -le 100000 ]; then
        quartz load $n > "$TMP/q-load-$n.txt"; cat "$TMP/q-load-$n.txt"
    fi
done
echo "== idle: 100000 jobs, 10 s"
tethys idle 100000 10 > "$TMP/t-idle.txt"; cat "$TMP/t-idle.txt"
for n in 10000 100000; do
    echo "== fire: $n jobs every second, $SECS s"
    tethys fire $n "$SECS" > "$TMP/t-fire-$n.txt"; cat "$TMP/t-fire-$n.txt"
    quartz fire $n "$SECS" > "$TMP/q-fire-$n.txt"; cat "$TMP/q-fire-$n.txt"
done

echo "== the real server"
# The data directory goes on a tmpfs when we may mount one: this VM's root file system is
# ext4 without a journal, where creating a file soon after others were deleted costs about
# half a millisecond (see docs/performance.md); the figure on the root file system is
# printed too.
DATA_FS="$TMP"
if [ "$(id -u)" = 0 ] && mkdir -p "$TMP/tmpfs" && mount -t tmpfs -o size=1g tmpfs "$TMP/tmpfs" 2>/dev/null; then
    DATA_FS="$TMP/tmpfs"
    trap 'umount "$TMP/tmpfs" 2>/dev/null; rm -rf "$TMP"' EXIT
fi
/usr/bin/python3 "$HERE/server_bench.py" --tethys "$BUILD/tethys" --raw "$BUILD/raw_spawn" \
    --jobs 1000 --seconds "$SECS" --data "$DATA_FS/data" | tee "$TMP/server.txt"
echo "== the real server, data directory on the root file system"
/usr/bin/python3 "$HERE/server_bench.py" --tethys "$BUILD/tethys" --raw "$BUILD/raw_spawn" \
    --jobs 200 --seconds 5 --data "$TMP/rootfs-data" | grep -E "spawn|raw" | sed 's/^/rootfs./'

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
echo "ratio Quartz/Tethys lateness p99 (10000 jobs/s): $(awk -v q="$q_p99" -v t="$t_p99" 'BEGIN{printf "%.0f", q/t}')"
echo "RESULT sched lateness_p99_ms=$t_p99 quartz_lateness_p99_ms=$q_p99 bytes_per_job=$t_b quartz_bytes_per_job=$q_b idle_cpu_pct=$idle"
echo "RESULT spawn ratio_vs_raw=$ratio"
