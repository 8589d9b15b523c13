#!/usr/bin/env bash
# A whole Tethys cluster on this machine, on 127.0.0.1 only, under .cluster/:
#
#   scripts/cluster.sh up     three ZooKeeper nodes, PostgreSQL 15, two servers (ports 8081,
#                             8082) and three executors; waits until a server leads and
#                             every executor is online; prints how to reach it
#   scripts/cluster.sh down   stops everything and removes .cluster/
#   scripts/cluster.sh status what runs
#
# `make cluster` and `make cluster-down` call it.  Idempotent: `up` on a running cluster
# starts only what is missing.  Logs: .cluster/*.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
top=$root/.cluster
bin=${TETHYS_BIN:-$root/build/tethys}
ports=(8081 8082)
executors=(e1 e2 e3)

die() {
  echo "cluster: $*" >&2
  exit 1
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_until() { # seconds, what, command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs in $top)"
    sleep 0.2
  done
}

# Is executor $1 online, as server s1 sees it?
online() {
  "$bin" executors --data "$top/s1" --json |
    python3 -c 'import json, sys; items = json.load(sys.stdin)["items"]
sys.exit(0 if any(e.get("id") == sys.argv[1] and e.get("state") == "online" for e in items) else 1)' "$1"
}

up() {
  [ -x "$bin" ] || die "$bin is missing: run make build"
  # PostgreSQL runs as its own user when we are root: every parent of its directory must
  # let it through, so it lives in a directory of its own under /tmp, linked from here
  mkdir -p "$top"
  chmod 755 "$top"
  if [ ! -e "$top/pg" ]; then
    local pgdir
    pgdir=$(mktemp -d /tmp/tethys-cluster-pg.XXXXXX)
    chmod 755 "$pgdir"
    ln -s "$pgdir" "$top/pg"
  fi
  bash "$root/tests/zk/zk.sh" start "$top/zk" >/dev/null
  local hosts url
  hosts=$(bash "$root/tests/zk/zk.sh" hosts "$top/zk")
  url=$(bash "$root/tests/pg/pg.sh" start "$top/pg/db" | tail -1)
  PGPASSWORD=$(cat "$top/pg/db/password")
  export PGPASSWORD
  [ -f "$top/zk-auth" ] || { umask 077; echo "tethys:$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$top/zk-auth"; }
  local i=0
  for port in "${ports[@]}"; do
    i=$((i + 1))
    if ! alive "$top/s$i.pid"; then
      "$bin" server --data "$top/s$i" --listen "127.0.0.1:$port" --zk "$hosts" \
        --zk-auth "$top/zk-auth" --db "$url" >>"$top/s$i.log" 2>&1 &
      echo $! >"$top/s$i.pid"
    fi
  done
  wait_until 60 "server s1" test -f "$top/s1/server.json"
  for x in "${executors[@]}"; do
    if ! alive "$top/$x.pid"; then
      "$bin" executor --data "$top/$x" --name "$x" --zk "$hosts" --zk-auth "$top/zk-auth" \
        --labels "node=$x" >>"$top/$x.log" 2>&1 &
      echo $! >"$top/$x.pid"
    fi
  done
  for x in "${executors[@]}"; do
    wait_until 60 "executor $x" online "$x"
  done
  cat <<EOF

A Tethys cluster runs on this machine (all on 127.0.0.1):
  ZooKeeper    $hosts (chroot /tethys)
  PostgreSQL   $url
  servers      http://127.0.0.1:${ports[0]}  http://127.0.0.1:${ports[1]}  (either answers the whole API)
  executors    ${executors[*]}

Try it:
  $bin executors --data $top/s1
  $bin job add hello --shards 3 --cron '0/5 * * * * ?' --command 'echo shard \$TETHYS_SHARD on \$(hostname)' --data $top/s1
  $bin history --job hello --data $top/s2

Logs are in $top/*.log; stop it all with: make cluster-down
EOF
}

down() {
  [ -d "$top" ] || return 0
  for f in "$top"/*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$top"/*.pid; do
    [ -f "$f" ] || continue
    local pid deadline=$((SECONDS + 40))
    pid=$(cat "$f")
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  [ -d "$top/zk" ] && bash "$root/tests/zk/zk.sh" stop "$top/zk" || true
  if [ -e "$top/pg" ]; then
    local pgdir
    pgdir=$(readlink -f "$top/pg")
    bash "$root/tests/pg/pg.sh" stop "$pgdir/db" >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
  rm -rf "$top"
  echo "cluster: stopped and removed $top"
}

status() {
  [ -d "$top" ] || { echo "no cluster (make cluster starts one)"; return 0; }
  for f in "$top"/*.pid; do
    [ -f "$f" ] || continue
    local name
    name=$(basename "$f" .pid)
    if alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: scripts/cluster.sh up|down|status" ;;
esac
