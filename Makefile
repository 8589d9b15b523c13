# Tethys - top-level entry points.  `make help` lists them.
#
# Everything goes through CMake; this file only names the common tasks, installs what
# they need (scripts/install-deps.sh, idempotent) and keeps the build directories apart:
#   build/        release build with debug info (the binary: build/tethys)
#   build-asan/   unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, built with
#                 clang so every test run compiles the tree with both gcc and clang
#   build-fuzz/   libFuzzer targets (clang)

SHELL      := /bin/bash
JOBS       ?= $(shell nproc)
BUILD      ?= build
CC         ?= cc
FUZZ_SECS  ?= 60
SHARED     := $(wildcard ../shared/conformance/cron/vectors.tsv)
VECTORS    := $(if $(SHARED),../shared/conformance/cron/vectors.tsv,tests/conformance/cron/vectors.tsv)
CHECKPY    := $(if $(SHARED),../shared/conformance/cron/check.py,tests/conformance/cron/check.py)
PY         := /usr/bin/python3
PREFIX     ?= /usr/local
C_SOURCES   = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src tests bench -name '*.[ch]')

.PHONY: help deps build build-test run cluster cluster-down test unit unit-asan unit-tsan system system-pg e2e conformance ref-diff quartz-diff fuzz lint format \
        format-check install bench-cron bench-sched bench-spawn bench-store bench-overload bench-config bench-shard bench-cluster clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | \
	  awk -F'\t' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install every Debian package needed (idempotent; apt-get update first when needed)
	@bash scripts/install-deps.sh

build: deps ## configure and build build/tethys (release with debug info)
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build ## install, build, and start the embedded server in the foreground (Ctrl-C stops it)
	@echo "Starting tethys server (data: $${XDG_DATA_HOME:-$$HOME/.local/share}/tethys)."
	@echo "Console: http://127.0.0.1:8080/ - the first start prints the admin's one-time password (also in DATA/initial-admin-password)."
	@echo "In another terminal: $(BUILD)/tethys job add hello --cron '0/5 * * * * ?' --command 'echo hello'"
	@exec $(BUILD)/tethys server

cluster: build ## start a whole cluster on 127.0.0.1 under .cluster/ (3 ZooKeeper nodes, PostgreSQL, 2 servers, 3 executors)
	@bash scripts/cluster.sh up

cluster-down: ## stop the cluster `make cluster` started and remove .cluster/
	@bash scripts/cluster.sh down

install: build ## install build/tethys, its docs and the systemd unit under PREFIX (default /usr/local; DESTDIR honoured)
	@cmake --install $(BUILD) --prefix $(PREFIX)

test: build ## install, build and run every test (unit, ASan/UBSan, system, console e2e, conformance, Quartz diff, fuzz)
	@bash tests/run-all.sh

unit: build ## unit tests (ctest)
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

unit-asan: deps ## unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (built with clang)
	@CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTETHYS_SANITIZE=ON -DTETHYS_WEB=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

unit-tsan: deps ## the threaded unit tests (spool, coordination, ZooKeeper session, trigger engine, store) under ThreadSanitizer
	@CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTETHYS_TSAN=ON -DTETHYS_WEB=OFF >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target test_spool test_coord test_zkc test_sched test_store
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --output-on-failure -R '^(test_spool|test_coord|test_zkc|test_sched|test_store)$$'

conformance: build ## the public cron vectors through `tethys cron next`
	@$(PY) $(CHECKPY) $(VECTORS) --jobs $(JOBS) \
	  --cmd '$(BUILD)/tethys cron next --tz {tz} --from {from} --count {count} -- {expr}' \
	  --invalid-exit 2

build-test: deps ## build build-test/tethys: the server with its test-only clock hook
	@cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHYS_TEST_HOOKS=ON >/dev/null
	@cmake --build build-test -j$(JOBS) --target tethys

system: build build-test ## system tests (pytest): the real server and CLI on 127.0.0.1
	@TETHYS_BIN=$(BUILD)/tethys TETHYS_TEST_BIN=build-test/tethys $(PY) -m pytest -q tests/system

system-pg: build build-test ## the system tests again with PostgreSQL as every server's store (a private PostgreSQL 15)
	@TETHYS_TEST_STORE=postgresql TETHYS_BIN=$(BUILD)/tethys TETHYS_TEST_BIN=build-test/tethys \
	  $(PY) -m pytest -q tests/system

e2e: build ## the console: Vitest (web/src) and end-to-end tests in headless Chromium against a real server
	@TETHYS_BIN=$(BUILD)/tethys bash tests/e2e/run.sh

ref-diff: build ## random schedules in DST-heavy zones against an independent reference (Python)
	@$(PY) tests/reference/ref_diff.py --tethys $(BUILD)/tethys --n 6000 --seed 1 --jobs $(JOBS)

quartz-diff: build ## random expressions against Quartz 2.3.2 itself
	@$(PY) tests/quartz/quartz_diff.py --tethys $(BUILD)/tethys --build $(BUILD)

fuzz: deps ## build the libFuzzer targets with clang and run each for FUZZ_SECS seconds
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHYS_FUZZ=ON \
	  -DTETHYS_SANITIZE=ON -DTETHYS_WEB=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_cron fuzz_tzif fuzz_crontab fuzz_defs fuzz_result \
	  fuzz_coord_wire fuzz_placement fuzz_cookie
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECS)

lint: deps ## clang-tidy and cppcheck over every C file (zero findings; a Debug configuration, asserts on)
	@cmake -S . -B build-lint -DCMAKE_BUILD_TYPE=Debug -DTETHYS_TEST_HOOKS=ON -DTETHYS_WEB=OFF >/dev/null
	@bash scripts/lint.sh build-lint

format: ## apply .clang-format to every C file
	@clang-format -i $(C_SOURCES)

format-check: ## fail if any C file is not formatted
	@clang-format --dry-run --Werror $(C_SOURCES)

bench-cron: build ## cron engine vs Quartz CronExpression: parse, next-fire, bytes
	@bash bench/cron/run.sh $(BUILD)

bench-sched: build ## trigger engine vs Quartz: lateness, memory, idle CPU; the real server's spawn rate
	@bash bench/sched/run.sh $(BUILD)

bench-spawn: build ## the executor alone vs a plain posix_spawn loop
	@bash bench/spawn/run.sh $(BUILD)

bench-store: build ## SQLite and PostgreSQL side by side: history writes/s; history queries at 1M runs
	@PG_DURABLE=1 bash tests/pg/with-pg.sh sh -c '$(BUILD)/bench_store -u "$$TETHYS_TEST_PG_URL"'

bench-overload: build ## 2x this machine's spawn rate of shell jobs: API latency, lateness, every fire accounted, drain
	@bash bench/overload/run.sh $(BUILD)

bench-config: build ## the real server with a million jobs: create rate, apply, RSS per job, restart
	@bash bench/config/run.sh $(BUILD)

bench-shard: build ## shard placement at a leader's size: 500,000 jobs x 4 shards over 100 executors
	@$(BUILD)/bench_shard

bench-cluster: build ## a real cluster on 127.0.0.1: failover, rebalance, ZooKeeper writes per fire, 500,000 jobs
	@bash bench/cluster/run.sh $(BUILD)

clean: ## remove the build directories (and the console's web/node_modules)
	rm -rf build build-asan build-tsan build-fuzz build-test build-lint web/node_modules web/dist
