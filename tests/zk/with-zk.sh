#!/usr/bin/env bash
# Run a command beside a private three-node ZooKeeper ensemble:  with-zk.sh COMMAND [ARGS...]
#
# Starts the ensemble with zk.sh in a fresh directory, runs COMMAND with
#   TETHYS_TEST_ZK_HOSTS  the connect string ("127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3")
#   TETHYS_TEST_ZK_DIR    the ensemble's directory (zk.sh stop-node/start-node DIR N ...)
#   TETHYS_TEST_ZK_SH     this zk.sh
# and always stops the ensemble and removes its directory afterwards, also when COMMAND
# fails or the run is interrupted.  When COMMAND fails, the end of each node's log is
# shown first.  Exits with COMMAND's status, or non-zero when the ensemble cannot start:
# a test that needs ZooKeeper fails without it, it is never skipped.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: with-zk.sh COMMAND [ARGS...]" >&2; exit 2; }

base=$(mktemp -d /tmp/tethys-zk.XXXXXX)
dir=$base/zk
child=
cleanup() {
  [ -n "$child" ] && kill "$child" 2>/dev/null
  bash "$here/zk.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! hosts=$(bash "$here/zk.sh" start "$dir"); then
  echo "with-zk.sh: the ZooKeeper ensemble did not start" >&2
  exit 1
fi
export TETHYS_TEST_ZK_HOSTS=$hosts TETHYS_TEST_ZK_DIR=$dir TETHYS_TEST_ZK_SH=$here/zk.sh

# in the background, so a TERM (ctest's timeout) reaches the traps while it runs
"$@" &
child=$!
set +e
wait "$child"
status=$?
child=
if [ $status -ne 0 ]; then
  for n in 1 2 3; do
    echo "--- with-zk.sh: the end of node $n's log ($dir/n$n/log)" >&2
    tail -15 "$dir/n$n/log" >&2 2>/dev/null || true
  done
fi
exit $status
