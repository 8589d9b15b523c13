#!/usr/bin/env bash
# run.sh [BUILD_DIR] - the cron benchmark: Tethys's engine (bench_cron.c) against Quartz
# 2.3.2's CronExpression (QuartzCronBench.java) on the same workload, one after the other
# (never at once: the machine has two cores and both sides would disturb each other).
#
#   bench/cron/run.sh build        # BUILD_DIR defaults to ./build
#
# Needs <BUILD_DIR>/bench_cron (cmake --build BUILD_DIR --target bench_cron), javac/java 17
# and Debian's libquartz2-java and libslf4j-java.  QuartzCronBench.java is compiled into
# <BUILD_DIR>/quartz/ when its class is missing or older than the source.
#
# Prints each side's own report, then parse ns, next() median and p99 ns and bytes per
# compiled expression side by side with the ratios Quartz/Tethys, checks that both sides
# gave the same next times for every UTC question (a WARNING line if not; the other
# zones are only counted, since Quartz differs there by design around daylight-saving
# changes, see conformance/cron/QUARTZ-DIFFERENCES.md), and ends with exactly one line
#   RESULT cron speedup_vs_quartz=<Quartz median next ns / Tethys median next ns>
#          bytes_per_expr=<largest Tethys compiled expression of the mix, bytes>
# (on one line).  Takes well under two minutes.
set -euo pipefail

BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="$BUILD/bench_cron"
JARS=/usr/share/java/quartz2.jar:/usr/share/java/slf4j-api.jar
CLASSES="$BUILD/quartz"
CP="$CLASSES:$JARS"

if [ ! -x "$BIN" ]; then
    echo "run.sh: $BIN is missing; build it with: cmake --build $BUILD --target bench_cron" >&2
    exit 2
fi
mkdir -p "$CLASSES"
if [ ! -f "$CLASSES/QuartzCronBench.class" ] ||
   [ "$HERE/QuartzCronBench.java" -nt "$CLASSES/QuartzCronBench.class" ]; then
    javac -nowarn -d "$CLASSES" -cp "$JARS" "$HERE/QuartzCronBench.java"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== Tethys (C)"
"$BIN" --next-out "$TMP/tethys_next.tsv" | tee "$TMP/tethys.txt"
echo
echo "== Quartz 2.3.2 (Java), timing"
java -Xms1g -Xmx1g -cp "$CP" QuartzCronBench time --next-out "$TMP/quartz_next.tsv" | tee "$TMP/quartz.txt"
echo
echo "== Quartz 2.3.2 (Java), memory"
java -XX:+UseParallelGC -Xms2g -Xmx2g -cp "$CP" QuartzCronBench memory | tee -a "$TMP/quartz.txt"
echo

# key=value lines of both sides -> shell variables
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }
t_parse=$(val tethys.parse_ns "$TMP/tethys.txt")
t_med=$(val tethys.next_ns_median "$TMP/tethys.txt")
t_p99=$(val tethys.next_ns_p99 "$TMP/tethys.txt")
t_bytes=$(val tethys.bytes_per_expr "$TMP/tethys.txt")
q_parse=$(val quartz.parse_ns "$TMP/quartz.txt")
q_med=$(val quartz.next_ns_median "$TMP/quartz.txt")
q_p99=$(val quartz.next_ns_p99 "$TMP/quartz.txt")
q_bytes=$(val quartz.bytes_per_expr "$TMP/quartz.txt")
q_bytes_max=$(val quartz.bytes_per_expr_max "$TMP/quartz.txt")
for v in t_parse t_med t_p99 t_bytes q_parse q_med q_p99 q_bytes q_bytes_max; do
    if [ -z "${!v}" ]; then
        echo "run.sh: a figure is missing from the output ($v)" >&2
        exit 1
    fi
done

# Same answers?  Rows are (expression, zone, instant, next or -1) in the same order.
paste "$TMP/tethys_next.tsv" "$TMP/quartz_next.tsv" | awk -F'\t' '
    $1 != $5 || $2 != $6 || $3 != $7 { bad_rows++; next }
    $4 != $8 { d[$2]++; if ($2 == "UTC" && shown++ < 5)
        printf "WARNING: UTC answers differ: expression #%d from %d: tethys %d, quartz %d\n", $1, $3, $4, $8 }
    { n[$2]++ }
    END {
        if (bad_rows) printf "WARNING: the two answer files do not line up (%d rows)\n", bad_rows
        if (d["UTC"]) printf "WARNING: %d of %d UTC next() answers differ between Tethys and Quartz\n", d["UTC"], n["UTC"]
        else printf "agreement: all %d UTC next() answers are the same on both sides\n", n["UTC"]
        for (z in n) if (z != "UTC")
            printf "  %s: %d of %d answers differ (daylight-saving differences, expected)\n", z, d[z] + 0, n[z]
    }'
if [ "$(wc -l < "$TMP/tethys_next.tsv")" -ne "$(wc -l < "$TMP/quartz_next.tsv")" ]; then
    echo "WARNING: the two sides answered a different number of questions"
fi

echo
awk -v tp="$t_parse" -v tm="$t_med" -v t9="$t_p99" -v tb="$t_bytes" \
    -v qp="$q_parse" -v qm="$q_med" -v q9="$q_p99" -v qb="$q_bytes" -v qx="$q_bytes_max" 'BEGIN {
    printf "%-34s %12s %12s %14s\n", "", "Tethys", "Quartz", "Quartz/Tethys"
    printf "%-34s %12.1f %12.1f %14.2f\n", "parse, ns per expression (median)", tp, qp, qp / tp
    printf "%-34s %12.1f %12.1f %14.2f\n", "next(), ns (median)", tm, qm, qm / tm
    printf "%-34s %12.1f %12.1f %14.2f\n", "next(), ns (p99)", t9, q9, q9 / t9
    printf "%-34s %12d %12d %14.2f\n", "bytes per compiled expression", tb, qb, qb / tb
    printf "%-34s %12d %12d %14.2f\n", "  (largest of the mix)", tb, qx, qx / tb
}'
awk -v tm="$t_med" -v qm="$q_med" -v tb="$t_bytes" \
    'BEGIN { printf "RESULT cron speedup_vs_quartz=%.2f bytes_per_expr=%d\n", qm / tm, tb }'
