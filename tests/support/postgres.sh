# A throwaway PostgreSQL server for the tests: Debian's postgresql package, a new cluster in a
# temp directory, listening on a free loopback port, trust authentication for loopback only.
# Source this file, then call start_postgres; stop_postgres stops it and removes its files.
#   exports: GATEWAY_TEST_POSTGRES (a superuser URL to the server's `postgres` database)
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user (made by
# the Debian package) and its commands run through runuser.

_pg_bin() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$initdb" ] && dirname "$initdb"
}

_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bin port
    bin="$(_pg_bin)" || { echo "PostgreSQL is not installed (Debian package postgresql)" >&2; return 1; }
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gateway-postgres.XXXXXX")"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    _pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U gateway --auth=trust -E UTF8 --no-sync \
        >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    PG_PORT="$port"
    _pg_start || return 1
    export GATEWAY_TEST_POSTGRES="postgres://gateway@127.0.0.1:$port/postgres"
}

# Start the cluster in $PG_DIR on $PG_PORT (again, after pause_postgres: same data, same port).
_pg_start() {
    local bin
    bin="$(_pg_bin)"
    # fsync off: a test server that loses its data in a power cut loses nothing of value.
    _pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c max_connections=300" \
        start >/dev/null || { cat "$PG_DIR/postgres.log" >&2; return 1; }
}

# A restart in two steps, for the fault tests (PG_DIR and PG_PORT name the cluster): stop the
# server as an operator would (fast: open sessions are cut), later start it again.
pause_postgres() {
    _pg_as_owner "$(_pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}
resume_postgres() {
    _pg_start
}

# Stop the server (immediate, or the fast mode's wait for clients) and remove its files.
stop_postgres() {
    [ -n "${PG_DIR:-}" ] || return 0
    local bin
    bin="$(_pg_bin)"
    _pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=""
    unset GATEWAY_TEST_POSTGRES
}
