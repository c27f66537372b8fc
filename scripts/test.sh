#!/usr/bin/env bash
# Runs every test: go vet, then the whole suite with the race detector
# against a real memcached on a free port (when the memcached binary
# exists; else against the embedded one), then the packages that talk to
# memcached again against the embedded memcached (without the race
# detector, which the first pass already ran over them; the integration
# package, which runs arena binaries, only in the first pass: the browser
# tests run arena up on the embedded memcached). The player database
# tests run against SQLite and against a PostgreSQL started on a free
# port in a temporary directory
# (scripts/postgres.sh; skipped with a message when PostgreSQL is not
# installed, a failure under CI=true). Browser tests run when Chromium and
# Node are present (CI installs them). Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

cleanups=()
cleanup() { for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT

if pg_env=$(scripts/postgres.sh start); then
  eval "$pg_env"
  cleanups+=("scripts/postgres.sh stop '$ARENA_PG_DIR'")
  echo "== PostgreSQL for the player database tests: ${ARENA_TEST_POSTGRES%%\?*}"
elif [ "${CI:-}" = "true" ]; then
  echo "FAIL: could not start PostgreSQL; CI must run the player database tests against it (.ci/run installs postgresql)" >&2
  exit 1
else
  echo "== PostgreSQL not available: the player database tests run against SQLite only"
fi

echo "== gofmt and go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "FAIL: not gofmt-formatted (run gofmt -w on them):" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...

mc_env=()
if command -v memcached >/dev/null 2>&1; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 21211)
  user_flag=()
  [ "$(id -u)" = 0 ] && user_flag=(-u root)
  memcached -l 127.0.0.1 -p "$port" -U 0 -m 256 -c 4096 "${user_flag[@]}" &
  mc_pid=$!
  cleanups+=("kill $mc_pid 2>/dev/null")
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  mc_env=(ARENA_TEST_MEMCACHE="127.0.0.1:$port")
  echo "== go test -race (real memcached on 127.0.0.1:$port)"
else
  echo "== memcached not installed: the whole suite runs against the embedded memcached only"
  echo "== go test -race (embedded memcached)"
fi
start=$(date +%s)
env "${mc_env[@]}" go test -race -count=1 -timeout 15m "$@" ./...
echo "== go test -race took $(( $(date +%s) - start ))s"

if [ ${#mc_env[@]} -gt 0 ]; then
  echo "== go test (embedded memcached)"
  # Packages that talk to memcached; the pure ones and the integration
  # package already ran above.
  start=$(date +%s)
  go test -count=1 -timeout 15m "$@" \
    $(go list ./... | grep -v -e /matchmaking/matcher -e /internal/lineproto -e /internal/auth -e /proto/ -e /internal/memcached -e /integration)
  echo "== go test (embedded memcached) took $(( $(date +%s) - start ))s"
fi

if [ -f web/test/package.json ] && command -v node >/dev/null 2>&1; then
  echo "== browser tests"
  scripts/browser-test.sh
fi
echo "== all tests passed"
