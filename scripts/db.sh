#!/usr/bin/env bash
# Finds or starts the PostgreSQL this project uses.
#
#   db.sh up [--local]   print the URL of a reachable database on stdout (messages on stderr):
#                        1. DATABASE_URL (or STRATA_DATABASE__URL, or database.url in
#                           strata.toml) when it answers;
#                        2. else a server answering on 127.0.0.1:5432 (user postgres);
#                        3. else a project-local cluster under target/postgres, started with
#                           the installed PostgreSQL binaries (as the postgres user when root).
#                        --local skips 1 and 2.
#   db.sh up-redacted    the same, with the URL's password hidden, for people to read.
#   db.sh fresh NAME     (re)create database NAME, empty, on the server `up` finds; print its URL.
#   db.sh service        after the migrations: create or update the login role strata_service
#                        (a member of strata_app; neither superuser nor BYPASSRLS) with a
#                        generated password kept in target/strata-service.env, and print its
#                        URL with the password hidden. This is the URL services use.
#   db.sh down           stop the project-local cluster, and nothing else.
#   db.sh replica-up [--local]  start a streaming replica of the server `up` finds (pg_basebackup -R,
#                        127.0.0.1:$STRATA_REPLICA_PORT, default 54330); print its URL.
#   db.sh replica-down   stop that replica, and nothing else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pg_dir="$root/target/postgres"
# As root, when the postgres user cannot reach the clone (under /root, say), the cluster lives
# in a directory of its own outside it; this file records where.
location_file="$root/target/postgres.location"
if [ -f "$location_file" ]; then pg_dir="$(cat "$location_file")"; fi
replica_dir="$pg_dir-replica"
port="${STRATA_PG_PORT:-54329}"
replica_port="${STRATA_REPLICA_PORT:-54330}"
db_name="${STRATA_DB_NAME:-strata}"
marker="created-by-strata-db-up"

say() { printf 'db: %s\n' "$*" >&2; }
die() { printf 'db: error: %s\n' "$*" >&2; exit 1; }
redact() { sed -E 's#(://[^:/@]*):.*@#\1:***@#' <<<"$1"; }

# Prints the path of a PostgreSQL program: from PATH, else the newest /usr/lib/postgresql/*/bin.
find_bin() {
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return 0; fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/$1" ]; then echo "$dir/$1"; return 0; fi
    done
    return 1
}

psql_bin="$(find_bin psql || true)"

# Runs `$2 … -d URL` for URL $1 with any password in PGPASSWORD, never on the command line
# (libpq reads the rest of the URL itself).
with_url() {
    local url="$1" password=""
    shift
    if [[ "$url" =~ ^([a-z]+://)([^:/@]*):(.*)@([^@]*)$ ]]; then
        password="$(printf '%b' "${BASH_REMATCH[3]//%/\\x}")"
        url="${BASH_REMATCH[1]}${BASH_REMATCH[2]}@${BASH_REMATCH[4]}"
    fi
    if [ -n "$password" ]; then
        PGPASSWORD="$password" "$@" -d "$url"
    else
        "$@" -d "$url"
    fi
}

# Runs psql on URL $1.
pg() {
    local url="$1"
    shift
    with_url "$url" "$psql_bin" "$@"
}

# Whether something accepts TCP connections at the host and port of URL $1 (no psql needed).
port_open() {
    local rest="${1#*://}" hostport host port
    rest="${rest##*@}"
    hostport="${rest%%/*}"
    hostport="${hostport%%\?*}"
    host="${hostport%:*}"
    port="${hostport##*:}"
    [ "$host" != "$hostport" ] || port=5432
    timeout 3 bash -c "exec 3<>/dev/tcp/${host:-127.0.0.1}/$port" 2>/dev/null
}

answers() { # url
    if [ -n "$psql_bin" ]; then
        PGCONNECT_TIMEOUT=3 pg "$1" -Atqc 'select 1' >/dev/null 2>&1
    else
        port_open "$1"
    fi
}

# Creates database $db_name through the maintenance URL $1 unless it exists.
ensure_db() {
    local exists
    [ -n "$psql_bin" ] || die "psql is needed to create database $db_name: install postgresql-client (Debian/Ubuntu), or set DATABASE_URL"
    exists="$(pg "$1" -Atqc "select 1 from pg_database where datname = '$db_name'")"
    if [ "$exists" != 1 ]; then
        pg "$1" -qc "create database \"$db_name\"" >/dev/null
        say "created database $db_name"
    fi
}

# database.url as strata-config resolves it (strata.toml or $STRATA_CONFIG, STRATA_DATABASE__URL,
# DATABASE_URL), asked of the runner itself, so that this script and the binaries never
# disagree; nothing when none of them is there (no build needed then).
config_url() {
    if [ -z "${DATABASE_URL:-}${STRATA_DATABASE__URL:-}" ] && [ ! -f "${STRATA_CONFIG:-$root/strata.toml}" ]; then
        return 0
    fi
    if [ ! -x "$root/target/debug/strata-migrate" ]; then
        say "reading the configuration with strata-migrate config (building it first)"
    fi
    (cd "$root" && SQLX_OFFLINE=true cargo run --quiet --locked -p strata-migrate-cli -- config --get database.url)
}

# Runs a server program as the postgres user when we are root (the server refuses root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

start_local() {
    local initdb pg_ctl data log
    initdb="$(find_bin initdb || true)"
    pg_ctl="$(find_bin pg_ctl || true)"
    if [ -z "$initdb" ] || [ -z "$pg_ctl" ] || [ -z "$psql_bin" ]; then
        die "no PostgreSQL server answers and the PostgreSQL programs (initdb, pg_ctl, psql) are not installed.
  Install them (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL to a server's URL."
    fi
    if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
        die "running as root, but there is no 'postgres' system user to run the server as (the server refuses root).
  Install the postgresql package (it creates the user), run as a normal user, or set DATABASE_URL."
    fi
    mkdir -p "$pg_dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$pg_dir"
        if ! runuser -u postgres -- test -w "$pg_dir"; then
            local outside
            outside="/var/tmp/strata-postgres-$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
            say "the postgres user cannot reach $pg_dir; keeping the cluster in $outside"
            mkdir -p "$outside"
            chown postgres: "$outside"
            chmod 700 "$outside"
            pg_dir="$outside"
            mkdir -p "$(dirname "$location_file")"
            printf '%s\n' "$pg_dir" >"$location_file"
        fi
    fi
    data="$pg_dir/data"
    log="$pg_dir/server.log"
    if [ ! -f "$data/PG_VERSION" ]; then
        say "initialising a project-local cluster in $data"
        as_owner "$initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
        touch "$pg_dir/$marker"
    fi
    if ! as_owner "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "starting the project-local cluster on 127.0.0.1:$port"
        if ! as_owner "$pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "the project-local cluster did not start (log: $log); is port $port taken? Set STRATA_PG_PORT to another."
        fi
    fi
    local maintenance="postgres://postgres@127.0.0.1:$port/postgres"
    local tries=0
    until answers "$maintenance"; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || die "the project-local cluster does not accept connections (log: $log)"
        sleep 0.5
    done
    ensure_db "$maintenance"
    echo "postgres://postgres@127.0.0.1:$port/$db_name"
}

up() {
    local local_only="${1:-}"
    if [ "$local_only" != --local ]; then
        local configured
        configured="$(config_url)"
        if [ -n "$configured" ]; then
            if answers "$configured"; then
                echo "$configured"
                return 0
            fi
            say "the configured database ($(redact "$configured")) does not answer; looking for another server"
        fi
        local default="postgres://postgres@127.0.0.1:5432"
        if answers "$default/postgres"; then
            ensure_db "$default/postgres"
            echo "$default/$db_name"
            return 0
        fi
    fi
    start_local
}

# Drops and recreates database $1 on the server of `up`, and prints its URL.
fresh() {
    local name="${1:?usage: db.sh fresh NAME}" url base query=""
    [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || die "database name '$name' must be lowercase letters, digits and _"
    url="$(up)"
    if [[ "$url" == *\?* ]]; then query="?${url#*\?}"; url="${url%%\?*}"; fi
    base="${url%/*}"
    [ -n "$psql_bin" ] || die "psql is needed to create database $name: install postgresql-client (Debian/Ubuntu)"
    PGOPTIONS="-c client_min_messages=warning" pg "$base/postgres$query" -qc "drop database if exists \"$name\" with (force)" >/dev/null
    pg "$base/postgres$query" -qc "create database \"$name\"" >/dev/null
    echo "$base/$name$query"
}

service() {
    local url rest password env_file="$root/target/strata-service.env"
    url="$(up)"
    [ -n "$psql_bin" ] || die "psql is needed to create the service role: install postgresql-client (Debian/Ubuntu)"
    mkdir -p "$root/target"
    if [ -s "$env_file" ]; then
        password="$(sed -nE 's#^STRATA_SERVICE_PASSWORD=(.*)$#\1#p' "$env_file")"
    fi
    if [ -z "${password:-}" ]; then
        # base64url: no quote, no URL-reserved character, so it is safe in SQL and in a URL.
        password="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    fi
    # The password goes in on stdin, never on a command line.
    pg "$url" -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
do \$\$
begin
    if not exists (select from pg_roles where rolname = 'strata_app') then
        raise exception 'role strata_app is missing: apply the migrations first (just migrate)';
    end if;
    if not exists (select from pg_roles where rolname = 'strata_service') then
        create role strata_service login;
    end if;
end
\$\$;
alter role strata_service with login nosuperuser nobypassrls nocreatedb nocreaterole password '$password';
grant strata_app to strata_service;
SQL
    rest="${url#*://}"
    rest="${rest##*@}"
    (
        umask 077
        printf 'STRATA_SERVICE_PASSWORD=%s\nDATABASE_URL=postgres://strata_service:%s@%s\n' \
            "$password" "$password" "$rest" >"$env_file"
    )
    say "service role strata_service (no superuser, no BYPASSRLS, member of strata_app); its URL is in $env_file"
    echo "postgres://strata_service:***@$rest"
}

down() {
    local pg_ctl
    if [ ! -f "$pg_dir/$marker" ] || [ ! -f "$pg_dir/data/postmaster.pid" ]; then
        say "no project-local cluster is running; nothing to stop"
        return 0
    fi
    pg_ctl="$(find_bin pg_ctl)" || die "pg_ctl not found; cannot stop the cluster in $pg_dir/data"
    as_owner "$pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null
    say "stopped the project-local cluster"
}

# A streaming replica of the server `up` finds: `pg_basebackup -R` into target/postgres-replica
# (or beside the cluster's directory when that is outside the clone), started as a hot
# standby on 127.0.0.1:$STRATA_REPLICA_PORT (54330); prints its URL.
replica_up() {
    local url basebackup pg_ctl data log user
    url="$(up "${1:-}")"
    basebackup="$(find_bin pg_basebackup || true)"
    pg_ctl="$(find_bin pg_ctl || true)"
    [ -n "$basebackup" ] && [ -n "$pg_ctl" ] || die "pg_basebackup and pg_ctl are needed for a replica: install postgresql (Debian/Ubuntu)"
    data="$replica_dir/data"
    log="$replica_dir/server.log"
    user="$(pg "$url" -Atqc 'select current_user')"
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$replica_dir"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$replica_dir"
            if ! runuser -u postgres -- test -w "$replica_dir"; then
                replica_dir="/var/tmp/strata-postgres-replica-$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
                data="$replica_dir/data"
                log="$replica_dir/server.log"
                mkdir -p "$replica_dir"
                chown postgres: "$replica_dir"
                chmod 700 "$replica_dir"
            fi
        fi
        say "copying $(redact "$url") into $data (pg_basebackup -R)"
        if ! with_url "$url" as_owner "$basebackup" -D "$data" -R -X stream -c fast --no-sync -U "$user" 2>"$replica_dir/basebackup.err"; then
            cat "$replica_dir/basebackup.err" >&2
            rm -rf "$data"
            die "pg_basebackup from $(redact "$url") failed: the server must accept replication connections from this user (pg_hba.conf: host replication $user 127.0.0.1/32 trust, or with a password) and run with wal_level = replica; the project-local cluster (scripts/db.sh up --local) does"
        fi
        touch "$replica_dir/$marker"
    fi
    if ! as_owner "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "starting the replica on 127.0.0.1:$replica_port"
        as_owner "$pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-p $replica_port -k $replica_dir -c listen_addresses=127.0.0.1 -c hot_standby=on -c fsync=off" start >/dev/null \
            || { tail -n 20 "$log" >&2 || true; die "the replica did not start (log: $log)"; }
    fi
    echo "postgres://$user@127.0.0.1:$replica_port/$db_name"
}

# Stops the replica that replica-up started, and nothing else.
replica_down() {
    local pg_ctl
    if [ ! -f "$replica_dir/$marker" ] || [ ! -f "$replica_dir/data/postmaster.pid" ]; then
        say "no replica of ours is running; nothing to stop"
        return 0
    fi
    pg_ctl="$(find_bin pg_ctl)" || die "pg_ctl not found; cannot stop the replica in $replica_dir/data"
    as_owner "$pg_ctl" -D "$replica_dir/data" -m fast -w stop >/dev/null
    say "stopped the replica"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    up-redacted) shift; redact "$(up "$@")" ;;
    fresh) shift; fresh "$@" ;;
    service) service ;;
    down) down ;;
    replica-up) shift; replica_up "$@" ;;
    replica-down) replica_down ;;
    *) die "usage: db.sh up [--local] | db.sh up-redacted | db.sh fresh NAME | db.sh replica-up [--local] | db.sh replica-down | db.sh service | db.sh down" ;;
esac
