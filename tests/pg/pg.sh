#!/usr/bin/env bash
# A private PostgreSQL 15 for tests and benchmarks, on 127.0.0.1 and a free port.
#
#   pg.sh start DIR   initdb into DIR (if not yet) and start; prints the connection URL
#   pg.sh down DIR    stop the server, keep its data (a test's "database down")
#   pg.sh up DIR      start it again on the same port
#   pg.sh stop DIR    stop it and remove DIR
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
# Debian's package creates (or `nobody`).  Host connections need the password in
# DIR/password (scram-sha-256), as a real deployment would; clients read it from
# PGPASSWORD.  The URL is also in DIR/url.  PG_DURABLE=1 keeps fsync on (benchmarks);
# tests run with fsync off, since no test is about surviving the machine's power loss.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
cmd=${1:?usage: pg.sh start|down|up|stop DIR}
dir=${2:?usage: pg.sh start|down|up|stop DIR}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}

if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || owner=nobody
else
  owner=$(id -un)
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
  local port
  port=$(cat "$dir/port")
  local fsync=off
  [ "${PG_DURABLE:-0}" = 1 ] && fsync=on
  if ! as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/sock -c fsync=$fsync -c max_connections=200" \
      start >/dev/null; then
    echo "pg.sh: PostgreSQL did not start; its log:" >&2
    tail -20 "$dir/log" >&2 || true
    exit 1
  fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir/data" "$dir/sock"
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
    free_port > "$dir/port"
    [ "$(id -u)" -eq 0 ] && chown -R "$owner" "$dir"
    as_owner test -w "$dir" ||
      { echo "pg.sh: $owner cannot write $dir (is a parent directory private?)" >&2; exit 1; }
    chmod 700 "$dir/data"
    as_owner "$BIN/initdb" -D "$dir/data" -U tethys --pwfile="$dir/password" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { echo "pg.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    pg_start
    as_owner "$BIN/createdb" -h "$dir/sock" -p "$(cat "$dir/port")" -U tethys tethys
    echo "postgresql://tethys@127.0.0.1:$(cat "$dir/port")/tethys" > "$dir/url"
  else
    pg_start
  fi
  cat "$dir/url"
  ;;
down)
  as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
up)
  pg_start
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "pg.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
