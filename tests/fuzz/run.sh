#!/usr/bin/env bash
# Run each libFuzzer target for a bounded time over its corpus.  New inputs that grow
# coverage are written to a scratch directory, not the committed corpus; a crash, leak
# or timeout leaves its reproducer in build-fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-fuzz}
SECS=${2:-60}
mkdir -p "$BUILD/artifacts"
status=0
for t in fuzz_cron fuzz_tzif fuzz_crontab fuzz_defs fuzz_result fuzz_coord_wire fuzz_placement fuzz_cookie; do
  corpus=tests/fuzz/corpus/${t#fuzz_}
  scratch="$BUILD/corpus-$t"
  mkdir -p "$scratch"
  if [ "$t" = fuzz_tzif ]; then
    # seed with real zones of every shape: no DST, northern/southern DST, 30- and
    # 45-minute offsets, negative DST, v3 rule times, a slim file if the system has one
    for z in UTC Europe/Berlin America/Sao_Paulo Australia/Lord_Howe Pacific/Chatham \
             Europe/Dublin Asia/Jerusalem America/Nuuk Asia/Kathmandu Antarctica/Troll; do
      f=/usr/share/zoneinfo/$z
      [ -f "$f" ] && cp -n "$f" "$scratch/seed-${z//\//_}"
    done
  fi
  echo "fuzz: $t for ${SECS}s (corpus $corpus)"
  if ! ASAN_OPTIONS=detect_leaks=1 "$BUILD/tests/fuzz/$t" -max_total_time="$SECS" -timeout=5 \
      -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$BUILD/artifacts/$t-" "$scratch" "$corpus" 2>"$BUILD/$t.log"; then
    echo "fuzz: $t FAILED; last lines of $BUILD/$t.log:"
    tail -n 40 "$BUILD/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BUILD/$t.log" | sed 's/^/  /'
  fi
done
exit $status
