# Shared by scripts/bench.sh and scripts/test.sh (sourced, not run): a throw-away PostgreSQL
# cluster in a temp dir on a free port of 127.0.0.1. Needs $pgbin (Debian's
# /usr/lib/postgresql/15/bin unless GROUPD_PG_BIN says otherwise); start_cluster sets $pgport,
# stop_cluster removes it (call it from an EXIT trap).

pgbin=${GROUPD_PG_BIN:-/usr/lib/postgresql/15/bin}
pgdir=${pgdir:-}

# as_pg CMD…: runs CMD as the `postgres` OS user when this is root (initdb and postgres refuse
# root), else as this user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgsql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }

# postgres_missing: why a cluster cannot be started here, or nothing.
postgres_missing() {
    for tool in initdb pg_ctl psql; do
        if [ ! -x "$pgbin/$tool" ]; then
            echo "no $pgbin/$tool (scripts/install-postgres.sh installs it; or set GROUPD_PG_BIN)"
            return
        fi
    done
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "running as root and there is no postgres OS user for initdb"
    fi
}

# start_cluster: a throw-away cluster in a temp dir on a free port of 127.0.0.1; sets $pgport.
# Every wait is bounded (pg_ctl -t); stop_cluster (the EXIT trap too) removes it.
start_cluster() {
    pgdir=$(mktemp -d "${TMPDIR:-/tmp}/groupd-pg.XXXXXX")
    if [ "$(id -u)" = 0 ]; then chown postgres: "$pgdir"; fi
    as_pg "$pgbin/initdb" -N -A trust -U postgres -E UTF8 --locale=C.UTF-8 -D "$pgdir/data" \
        >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log" >&2; exit 1; }
    for _ in 1 2 3 4 5; do
        pgport=$((20000 + RANDOM % 40000))
        if as_pg "$pgbin/pg_ctl" start -w -t 60 -D "$pgdir/data" -l "$pgdir/postgres.log" \
            -o "-k $pgdir -p $pgport -c listen_addresses=127.0.0.1" >/dev/null; then
            return
        fi
        # Only a port taken meanwhile is worth another try.
        grep -q 'could not bind' "$pgdir/postgres.log" || break
    done
    echo "postgres did not start; log:" >&2; cat "$pgdir/postgres.log" >&2; exit 1
}
stop_cluster() {
    if [ -z "$pgdir" ]; then return; fi
    as_pg "$pgbin/pg_ctl" stop -m immediate -w -t 10 -D "$pgdir/data" >/dev/null 2>&1 || true
    rm -rf "$pgdir"
    pgdir=
}

