#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for tests and prints its DSN on stdout.
#
#   eval "$(scripts/postgres.sh start)"   # sets ARENA_TEST_POSTGRES and ARENA_PG_DIR
#   scripts/postgres.sh stop "$ARENA_PG_DIR"
#
# It uses Debian's postgresql (initdb and pg_ctl from /usr/lib/postgresql/*/bin
# or PATH), initialises a cluster in a new temporary directory with trust
# authentication for one user, listens on 127.0.0.1 on a free port (and a
# Unix socket in the same directory), and waits until it accepts
# connections. PostgreSQL refuses to run as root, so as root (CI) the
# cluster belongs to the "postgres" system user that the Debian package
# creates. Without PostgreSQL installed it prints nothing to stdout,
# explains on stderr and exits 3.
set -euo pipefail

find_bin() {
  local name=$1 d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/$name" ]; then echo "$d/$name"; return 0; fi
  done
  command -v "$name" 2>/dev/null || return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local initdb pg_ctl dir port
  if ! initdb=$(find_bin initdb) || ! pg_ctl=$(find_bin pg_ctl); then
    echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 3
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: running as root needs the postgres system user (Debian's postgresql package creates it)" >&2
    exit 3
  fi
  dir=$(mktemp -d /tmp/arena-pg.XXXXXX)
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_owner "$initdb" -D "$dir/data" -U arena --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  # fsync stays on: the tests check durability, and the benchmark measures
  # a database configured as in production.
  as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null || {
    cat "$dir/server.log" >&2; exit 1; }
  echo "export ARENA_TEST_POSTGRES='postgres://arena@127.0.0.1:$port/postgres?sslmode=disable'"
  echo "export ARENA_PG_DIR='$dir'"
}

stop() {
  local dir=${1:?usage: postgres.sh stop DIR} pg_ctl
  pg_ctl=$(find_bin pg_ctl) || exit 0
  as_owner "$pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
