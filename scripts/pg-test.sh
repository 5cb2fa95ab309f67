#!/usr/bin/env bash
# Throwaway PostgreSQL for the smdpp-store test battery.
#
#   source scripts/pg-test.sh        # starts a server, exports SMDPP_TEST_PG_URL,
#                                    # defines pg_test_stop; then: trap pg_test_stop EXIT
#   eval "$(scripts/pg-test.sh start)"   # same, from a subshell: prints export lines
#   scripts/pg-test.sh stop DIR      # stops the server started in DIR and deletes DIR
#
# The cluster lives in a fresh /tmp/smdpp-pg.XXXXXX directory (owned by the
# `postgres` user when run as root, because PostgreSQL refuses to run as root),
# uses trust authentication, listens on a unix socket in that directory and on
# 127.0.0.1 at a free port, and is tuned for tests (fsync off). If initdb is
# missing, the Debian/Ubuntu `postgresql` package is installed with apt-get.
#
# Exports: SMDPP_TEST_PG_URL (TCP URL, database `postgres`, user `postgres`),
#          SMDPP_TEST_PG_SOCKET_URL (same via the unix socket), SMDPP_TEST_PG_DIR.

_pg_test_log() { echo "pg-test: $*" >&2; }

_pg_test_bindir() {
    local d
    # Prefer the Debian layout (newest version first), then whatever is on PATH.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -n -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

_pg_test_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_pg_test_free_port() {
    local port i
    for i in $(seq 1 50); do
        port=$(( 20000 + (RANDOM % 20000) ))
        # A refused connection means nobody listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
    done
    return 1
}

# Prints shell export lines on stdout; logs go to stderr.
pg_test_start() {
    local bindir dir port attempt
    if ! bindir=$(_pg_test_bindir); then
        if [ "$(id -u)" != 0 ]; then
            _pg_test_log "initdb not found and not root: install the postgresql package"; return 1
        fi
        _pg_test_log "installing postgresql with apt-get"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
        bindir=$(_pg_test_bindir) || { _pg_test_log "initdb still not found"; return 1; }
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        _pg_test_log "creating system user postgres"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres || return 1
    fi

    dir=$(mktemp -d /tmp/smdpp-pg.XXXXXX) || return 1
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi

    _pg_test_as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { _pg_test_log "initdb failed:"; cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1; }

    for attempt in 1 2 3 4 5; do
        port=$(_pg_test_free_port) || { _pg_test_log "no free port"; rm -rf "$dir"; return 1; }
        if _pg_test_as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            start >/dev/null 2>&1; then
            echo "export SMDPP_TEST_PG_URL='postgres://postgres@127.0.0.1:$port/postgres'"
            echo "export SMDPP_TEST_PG_SOCKET_URL='postgres://postgres@localhost:$port/postgres?host=$dir'"
            echo "export SMDPP_TEST_PG_DIR='$dir'"
            _pg_test_log "$("$bindir/postgres" --version) on 127.0.0.1:$port and $dir"
            return 0
        fi
        _pg_test_log "start on port $port failed (attempt $attempt)"
    done
    _pg_test_log "could not start PostgreSQL; log:"; cat "$dir/server.log" >&2 2>/dev/null
    rm -rf "$dir"
    return 1
}

# Stops the server in DIR (default: $SMDPP_TEST_PG_DIR) and deletes DIR.
pg_test_stop() {
    local dir="${1:-${SMDPP_TEST_PG_DIR:-}}" bindir
    case "$dir" in
        /tmp/smdpp-pg.*) ;;
        *) _pg_test_log "refusing to stop/delete '$dir' (not a pg-test directory)"; return 1 ;;
    esac
    bindir=$(_pg_test_bindir) || return 1
    if [ -d "$dir/data" ]; then
        _pg_test_as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    _pg_test_log "stopped and removed $dir"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: start now and export into the caller's shell.
    _pg_test_exports=$(pg_test_start) && eval "$_pg_test_exports"
    unset _pg_test_exports
else
    set -euo pipefail
    case "${1:-}" in
        start) pg_test_start ;;
        stop) pg_test_stop "${2:-}" ;;
        *) echo "usage: $0 start | stop DIR   (or: source $0)" >&2; exit 2 ;;
    esac
fi
