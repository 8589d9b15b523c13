#!/usr/bin/env bash
# The console's tests: Vitest (web/src/**/*.test.ts, the pure TypeScript logic), then
# the end-to-end tests (console.test.mjs: a real server and Debian's headless Chromium).
# Installs web/'s npm packages when web/package-lock.json changed; fails loudly when
# node, npm or /usr/bin/chromium is missing.  Called by `make e2e` after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TETHYS_BIN:-build/tethys}
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is missing: run 'make deps'" >&2; exit 1; }
done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "e2e: ${CHROMIUM:-/usr/bin/chromium} is missing: run 'make deps' (Debian package chromium)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "e2e: $BIN is missing: build first (make build)" >&2; exit 1; }
want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [ "$want" != "$(cat web/node_modules/.tethys-lock-sha256 2>/dev/null || true)" ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > web/node_modules/.tethys-lock-sha256
fi
echo "--- vitest (web/src) ---"
(cd web && npx vitest run)
echo "--- end-to-end (tests/e2e, screenshots in build/e2e/screenshots) ---"
TETHYS_BIN="$BIN" node --test tests/e2e/
