#!/usr/bin/env bash
# Build the web console (web/) into OUTDIR: `npm ci` only when web/package-lock.json
# changed since the last install (a hash of it is kept in web/node_modules), then
# `npm run build` (tsc --noEmit, then Vite).  Called by CMake (the tethys target) and by
# the console's tests; fails loudly, naming what to do.
set -euo pipefail
out=${1:?usage: web-build.sh OUTDIR}
cd "$(dirname "$0")/../web"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web-build: Node.js and npm are needed to build the console: run 'make deps'" >&2
  exit 1
fi
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat node_modules/.tethys-lock-sha256 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "web-build: npm ci (package-lock.json changed)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.tethys-lock-sha256
fi
npm run --silent build -- --outDir "$out" --emptyOutDir
