#!/usr/bin/env bash
# Run a command beside a private PostgreSQL:  with-pg.sh COMMAND [ARGS...]
#
# Starts a server with pg.sh in a fresh directory, runs COMMAND with
#   TETHYS_TEST_PG_URL  the server's URL          PGPASSWORD          its password
#   TETHYS_TEST_PG_DIR  its directory (pg.sh down/up DIR restart it)
#   TETHYS_TEST_PG_SH   this pg.sh
# and always stops and removes the server afterwards, also when COMMAND fails or the run
# is interrupted.  Exits with COMMAND's status, or non-zero when the server cannot start:
# a test that needs PostgreSQL fails without it, it is never skipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: with-pg.sh COMMAND [ARGS...]" >&2; exit 2; }

# the server runs as another user when we are root: every parent must let it through
base=$(mktemp -d /tmp/tethys-pg.XXXXXX)
chmod 755 "$base"
dir=$base/pg
child=
cleanup() {
  [ -n "$child" ] && kill "$child" 2>/dev/null
  bash "$here/pg.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! url=$(bash "$here/pg.sh" start "$dir"); then
  echo "with-pg.sh: PostgreSQL did not start" >&2
  exit 1
fi
export TETHYS_TEST_PG_URL=$url TETHYS_TEST_PG_DIR=$dir TETHYS_TEST_PG_SH=$here/pg.sh
PGPASSWORD=$(cat "$dir/password")
export PGPASSWORD

# in the background, so a TERM (ctest's timeout) reaches the traps while it runs
"$@" &
child=$!
set +e
wait "$child"
status=$?
child=
exit $status
