#!/usr/bin/env bash
# A private three-node ZooKeeper ensemble for tests, on 127.0.0.1 and free ports.
#
#   zk.sh start DIR          make DIR (if not yet) and start every node that is not running;
#                            waits until all three serve; prints the connect string
#                            "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" (also in DIR/hosts)
#   zk.sh stop DIR           stop every node and remove DIR
#   zk.sh stop-node DIR N    stop node N (1-3) with SIGTERM, keeping its data
#   zk.sh start-node DIR N   start node N again; waits until it serves (which needs a quorum)
#   zk.sh kill-node DIR N    SIGKILL node N (no goodbye to its clients or peers)
#   zk.sh pause-node DIR N   SIGSTOP node N (a hung server: sockets open, nothing answered)
#   zk.sh resume-node DIR N  SIGCONT it
#   zk.sh hosts DIR          print the connect string
#   zk.sh port DIR N         print node N's client port (for four-letter words)
#
# Each node has DIR/nN/{zoo.cfg,data/myid,log,pid}.  tickTime is 500 ms, so the ensemble
# grants session timeouts from 1 s to 10 s and a test can watch a session expire within
# seconds.  Four-letter words are all allowed (srvr, mntr, ...); the admin server is off.
# Nodes run as whoever calls this (ZooKeeper, unlike PostgreSQL, does not mind root).
# Every wait has a deadline (ZK_START_SECS, default 90, for a node to serve; 20 s for one
# to stop before it is killed), so a broken installation fails the caller, never hangs it.
# ZK_HEAP (default 160m) is each node's -Xmx: enough for tests; bench/cluster gives more.
set -euo pipefail

cmd=${1:?usage: zk.sh start|stop|stop-node|start-node|kill-node|pause-node|resume-node|hosts|port DIR [N]}
dir=${2:?usage: zk.sh COMMAND DIR [N]}
START_SECS=${ZK_START_SECS:-90}
HEAP=${ZK_HEAP:-160m}
[[ "$HEAP" =~ ^[0-9]+[mMgG]$ ]] || { echo "zk.sh: ZK_HEAP must be like 160m or 1g (got '$HEAP')" >&2; exit 1; }
STOP_SECS=20
JAVA=${JAVA:-java}
# zookeeper.jar's manifest names the libraries it needs (jute, netty, metrics, snappy,
# commons, slf4j-api); slf4j-simple is the logging back end, into each node's log file.
CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar

die() {
  echo "zk.sh: $*" >&2
  exit 1
}

node_arg() {
  local n=${1:-}
  [[ "$n" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${n}')"
  [ -f "$dir/n$n/zoo.cfg" ] || die "$dir has no ensemble (run zk.sh start first)"
  echo "$n"
}

# The pid of node n's java if it runs (its command line names its zoo.cfg, so a recycled
# pid is never taken for it), else nothing.
node_pid() {
  local n=$1 pid
  [ -f "$dir/n$n/pid" ] || return 0
  pid=$(cat "$dir/n$n/pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/n$n/zoo.cfg"; then
    # a zombie is not running
    if ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      echo "$pid"
    fi
  fi
}

# A four-letter word to node n; its answer on stdout (empty when the node does not answer
# within 2 s).
fourlw() {
  local n=$1 word=$2 port
  port=$(client_port "$n")
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3' _ \
    "$port" "$word" 2>/dev/null || true
}

client_port() {
  sed -n 's/^clientPort=//p' "$dir/n$1/zoo.cfg"
}

serving() {
  fourlw "$1" srvr | grep -qE '^Mode: (leader|follower|standalone)'
}

make_config() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local ports=()
  # nine ports free right now: a client, a peer and an election port for each node
  read -r -a ports < <(python3 -c '
import socket
socks = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))')
  [ ${#ports[@]} -eq 9 ] || die "could not find free ports"
  local n hosts=""
  for n in 1 2 3; do
    mkdir -p "$dir/n$n/data"
    echo "$n" >"$dir/n$n/data/myid"
    {
      echo "tickTime=500"
      echo "initLimit=20"
      echo "syncLimit=10"
      echo "dataDir=$dir/n$n/data"
      echo "clientPort=${ports[$((n - 1))]}"
      echo "clientPortAddress=127.0.0.1"
      echo "admin.enableServer=false"
      echo "4lw.commands.whitelist=*"
      echo "maxClientCnxns=0"
      echo "preAllocSize=4096"
      echo "forceSync=no"
      echo "autopurge.purgeInterval=0"
      local m
      for m in 1 2 3; do
        echo "server.$m=127.0.0.1:${ports[$((m + 2))]}:${ports[$((m + 5))]}"
      done
    } >"$dir/n$n/zoo.cfg"
    hosts+="${hosts:+,}127.0.0.1:${ports[$((n - 1))]}"
  done
  echo "$hosts" >"$dir/hosts"
}

launch() {
  local n=$1
  [ -n "$(node_pid "$n")" ] && return 0
  # setsid: a Ctrl-C meant for the test runner reaches the test's traps, which stop the
  # ensemble in order, instead of killing the nodes under it
  setsid "$JAVA" -Xms16m "-Xmx$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
    -Djava.awt.headless=true -Dzookeeper.admin.enableServer=false \
    -Dzookeeper.jmx.log4j.disable=true -Dzookeeper.cnxTimeout=1000 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
    -cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/n$n/zoo.cfg" \
    >>"$dir/n$n/log" 2>&1 </dev/null &
  echo $! >"$dir/n$n/pid"
}

# Wait until every node named serves; on the deadline, or when one dies, show its log.
wait_serving() {
  local deadline=$((SECONDS + START_SECS)) n pending
  while :; do
    pending=()
    for n in "$@"; do
      serving "$n" || pending+=("$n")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    for n in "${pending[@]}"; do
      if [ -z "$(node_pid "$n")" ]; then
        echo "zk.sh: node $n exited; the end of its log:" >&2
        tail -20 "$dir/n$n/log" >&2 || true
        return 1
      fi
    done
    if [ $SECONDS -ge $deadline ]; then
      for n in "${pending[@]}"; do
        echo "zk.sh: node $n does not serve after ${START_SECS}s; the end of its log:" >&2
        tail -20 "$dir/n$n/log" >&2 || true
      done
      return 1
    fi
    sleep 0.2
  done
}

# SIGTERM (or the signal given), then wait; SIGKILL what is left after STOP_SECS.
stop_node() {
  local n=$1 sig=${2:-TERM} pid deadline
  pid=$(node_pid "$n")
  if [ -n "$pid" ]; then
    kill -CONT "$pid" 2>/dev/null || true # a paused node cannot act on TERM
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_SECS))
    while [ -n "$(node_pid "$n")" ]; do
      if [ $SECONDS -ge $deadline ]; then
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + STOP_SECS))
      fi
      sleep 0.05
    done
  fi
  rm -f "$dir/n$n/pid"
}

case "$cmd" in
start)
  fresh=0
  if [ ! -f "$dir/hosts" ]; then
    make_config
    fresh=1
  fi
  dir=$(cd "$dir" && pwd)
  for attempt in 1 2 3; do
    for n in 1 2 3; do
      launch "$n"
    done
    if wait_serving 1 2 3; then
      cat "$dir/hosts"
      exit 0
    fi
    # another program took a port between our choosing and the node binding it: a new
    # ensemble chooses again (an existing one keeps its ports, which its data names)
    if [ $fresh -eq 1 ] && [ $attempt -lt 3 ] && grep -qs 'Address already in use' "$dir"/n*/log; then
      echo "zk.sh: a port was taken meanwhile; choosing others" >&2
      for n in 1 2 3; do
        stop_node "$n"
      done
      rm -rf "$dir/n1" "$dir/n2" "$dir/n3" "$dir/hosts"
      make_config
      continue
    fi
    exit 1
  done
  ;;
stop)
  if [ -d "$dir" ]; then
    dir=$(cd "$dir" && pwd)
    for n in 1 2 3; do
      [ -f "$dir/n$n/zoo.cfg" ] && stop_node "$n"
    done
    # only what this script made: DIR itself may be a caller's empty mktemp directory
    rm -rf "$dir/n1" "$dir/n2" "$dir/n3" "$dir/hosts"
    rmdir "$dir" 2>/dev/null || true
  fi
  ;;
stop-node | kill-node | pause-node | resume-node | start-node | port)
  dir=$(cd "$dir" 2>/dev/null && pwd) || die "no directory $2"
  n=$(node_arg "${3:-}")
  case "$cmd" in
  stop-node) stop_node "$n" ;;
  kill-node) stop_node "$n" KILL ;;
  pause-node)
    pid=$(node_pid "$n")
    [ -n "$pid" ] || die "node $n is not running"
    kill -STOP "$pid"
    ;;
  resume-node)
    pid=$(node_pid "$n")
    [ -n "$pid" ] || die "node $n is not running"
    kill -CONT "$pid"
    ;;
  start-node)
    launch "$n"
    wait_serving "$n" || exit 1
    ;;
  port) client_port "$n" ;;
  esac
  ;;
hosts)
  cat "$dir/hosts"
  ;;
*)
  die "unknown command $cmd"
  ;;
esac
