#!/usr/bin/env bash
# Run every test suite in turn, keep going after a failure, and end with one line CI
# can read: "N passed, N failed" (suites).  Called by `make test` after the build.
set -uo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}
FUZZ_SECS=${FUZZ_SECS:-20}
suites=(format-check unit unit-asan unit-tsan system system-pg e2e conformance ref-diff quartz-diff fuzz)
passed=0
failed=0
failed_names=()

for s in "${suites[@]}"; do
  echo
  echo "=== $s ==="
  start=$(date +%s)
  if make --no-print-directory "$s" JOBS="$JOBS" FUZZ_SECS="$FUZZ_SECS"; then
    passed=$((passed + 1))
    echo "=== $s: passed ($(( $(date +%s) - start )) s) ==="
  else
    failed=$((failed + 1))
    failed_names+=("$s")
    echo "=== $s: FAILED ($(( $(date +%s) - start )) s) ==="
  fi
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
