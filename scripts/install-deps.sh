#!/usr/bin/env bash
# Install every Debian package Tethys needs to build, test and benchmark.
# Idempotent: packages already installed are skipped, and apt-get update runs only
# when something is missing.  Run as root, or with sudo available.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake clang clang-tidy clang-format cppcheck pkg-config
  libclang-rt-14-dev
  # libraries
  libjansson-dev libcmocka-dev libyaml-dev
  # tz database (kept current by Debian stable updates)
  tzdata
  # tests and benchmarks
  python3 python3-pytest python3-requests python3-yaml default-jdk-headless libquartz2-java libslf4j-java
  # embedded server (GnuTLS: HTTPS in libmicrohttpd, token hashes)
  libuv1-dev libmicrohttpd-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev libgnutls28-dev
  # users' passwords: Argon2id (the console's sign-in)
  libsodium-dev
  # the PostgreSQL store (libpq), and the private server its tests start (tests/pg/pg.sh)
  libpq-dev postgresql-15
  # coordination: the ZooKeeper C client, and the private three-node ensemble its tests
  # start (tests/zk/zk.sh: zookeeper.jar from libzookeeper-java, slf4j-simple from
  # libslf4j-java above); kazoo for the Python tests that look inside it
  libzookeeper-mt-dev zookeeper libzookeeper-java python3-kazoo
  # security system tests: a private CA (openssl) and a TLS client (curl)
  openssl curl
  # deployment test: systemd-analyze verify of deploy/systemd/tethys.service
  systemd
  # the web console: built with Node.js and npm (web/, built into tethys), tested in
  # headless Chromium (tests/e2e)
  nodejs npm chromium
  # a CJK font, so the screenshots of the Chinese pages show the characters
  fonts-wqy-zenhei
)

missing=()
for p in "${PKGS[@]}"; do
  # Node.js from elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's
  # npm package): a working node and npm are enough
  if { [ "$p" = nodejs ] && command -v node >/dev/null; } ||
     { [ "$p" = npm ] && command -v npm >/dev/null; }; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
