#!/usr/bin/env bash
# Browser tests of the play page and the dashboard (web/test), in headless
# Debian Chromium driven by playwright-core. Installs the npm packages of
# web/test, builds arena, starts `arena up --bots 0` on free ports with its
# own store prefix and credentials, waits for its chat, fight and map
# servers, runs the tests with `node --test`, and stops arena.
#
# Without /usr/bin/chromium (or $CHROMIUM) it prints "SKIPPED: chromium not
# found" and exits 0, unless CI=true, where it fails: CI always runs them.
# Screenshots go to $ARENA_SCREENSHOTS (default test-artifacts/screenshots).
# Usage: scripts/browser-test.sh [test files, default: all in web/test]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: chromium not found at $chromium; CI must run the browser tests (.ci/run installs Debian's chromium)" >&2
    exit 1
  fi
  echo "SKIPPED: chromium not found at $chromium (apt-get install chromium to run the browser tests)"
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: node and npm are needed for the browser tests" >&2
    exit 1
  fi
  echo "SKIPPED: node or npm not found"
  exit 0
fi

echo "== npm packages (web/test)"
(cd web/test && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)

tmp=$(mktemp -d)
arena_pid=""
cleanup() {
  if [ -n "$arena_pid" ] && kill -0 "$arena_pid" 2>/dev/null; then
    kill -INT "$arena_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$arena_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$arena_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build arena and the turns game (examples/turns)"
go build -o "$tmp/arena" ./cmd/arena
go build -o "$tmp/turns" ./examples/turns/cmd/turns

# A block of 60 free ports: HTTP, line protocol, gRPC, chat, then fight
# servers from base+10, map servers from base+30 and turns servers from
# base+50.
base=$(node -e '
const net = require("net");
const free = (p) => new Promise((ok) => { const s = net.createServer(); s.once("error", () => ok(false)); s.listen(p, "127.0.0.1", () => s.close(() => ok(true))); });
(async () => {
  for (let t = 0; t < 50; t++) {
    const b = 20000 + Math.floor(Math.random() * 120) * 100; // below the ephemeral ports (32768-)
    let all = true;
    for (let p = b; p < b + 60 && all; p++) all = await free(p);
    if (all) { console.log(b); return; }
  }
  process.exit(1);
})();')

args=(up --http "127.0.0.1:$base" --listen "127.0.0.1:$((base + 1))" --chat-port "$((base + 3))"
  --fight-port-base "$((base + 10))" --map-port-base "$((base + 30))" --host 127.0.0.1
  --store-prefix "browsertest-$$-$base:" --credentials "$tmp/credentials.json" --bots 0
  --db "sqlite:$tmp/arena.db" --outbox "$tmp/outbox"
  --game "turns=$tmp/turns" --game-port-base "$((base + 50))" --game-option turns.start-delay=3s)
help=$("$tmp/arena" up --help 2>&1 || true)
if [[ $help == *--grpc* ]]; then
  args+=(--grpc "127.0.0.1:$((base + 2))")
fi
if [[ $help == *--host-listen* ]]; then
  args+=(--host-listen "127.0.0.1:$((base + 4))")
fi

echo "== arena ${args[*]}"
"$tmp/arena" "${args[@]}" >"$tmp/arena.log" 2>&1 &
arena_pid=$!

export ARENA_URL="http://127.0.0.1:$base"
export ARENA_BIN="$tmp/arena" # restart, signedin-restart and fightsurvives run an arena of their own
export ARENA_CREDENTIALS="$tmp/credentials.json"
export ARENA_SCREENSHOTS="${ARENA_SCREENSHOTS:-$root/test-artifacts/screenshots}"
export CHROMIUM="$chromium"

status=0
if ! (cd web/test && node wait.mjs); then
  echo "arena did not start; its log:" >&2
  tail -n 50 "$tmp/arena.log" >&2
  exit 1
fi

cd web/test
if [ $# -gt 0 ]; then
  files=("$@")
else
  # play first: it needs no bots in the queue; dashboard last: it leaves MAXNUM low for a while.
  files=(play.test.mjs backfill.test.mjs client.test.mjs rejoin.test.mjs turns.test.mjs party.test.mjs solo.test.mjs records.test.mjs accounts.test.mjs world.test.mjs errors.test.mjs newplayer.test.mjs restart.test.mjs signedin-restart.test.mjs fightsurvives.test.mjs dashboard.test.mjs)
fi
echo "== node --test ${files[*]} (screenshots in $ARENA_SCREENSHOTS)"
node --test --test-concurrency=1 "${files[@]}" || status=$?
cd "$root"

if [ "$status" != 0 ]; then
  echo "== browser tests failed; the last lines of arena's log:" >&2
  tail -n 80 "$tmp/arena.log" >&2
fi
exit "$status"
