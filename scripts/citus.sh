#!/usr/bin/env bash
# A local Citus cluster: a coordinator and two workers, for trying strata on a distributed
# PostgreSQL by hand (the tests start clusters of their own, through strata-test-support).
# Its variables (CITUS_SRC, CITUS_PORT) do not start with STRATA_: strata's programs refuse
# unknown STRATA_* keys, and these are read in the same shells.
#
#   citus.sh installed   make sure the PostgreSQL server has Citus (citus.so, citus.control):
#                        1. installed already (a vendor's package, or an earlier run);
#                        2. else installed from a build kept in ~/.cache/strata
#                           (/var/cache/strata as root) by an earlier run;
#                        3. else built from $CITUS_SRC or
#                           ../shared/vendor/citus/citus-13.2.2.tar.gz (about 2 minutes on
#                           2 cores; the build packages are installed when root), kept there,
#                           and installed (which needs root: PostgreSQL's directories);
#                        4. else one line saying what is missing, and exit 1.
#                        Prints the version of the extension available.
#   citus.sh up          start a coordinator on 127.0.0.1:$CITUS_PORT (default 54340) and
#                        workers on the next two ports, each with database `strata` and the
#                        extension, the workers added to the coordinator; print the
#                        coordinator's URL. Idempotent.
#   citus.sh down        stop the three nodes (their data stays, under target/citus).
#   citus.sh url         print the coordinator's URL.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="13.2.2"
if [ "$(id -u)" = 0 ]; then cache=/var/cache/strata; else cache="${XDG_CACHE_HOME:-$HOME/.cache}/strata"; fi
vendor="$root/../shared/vendor/citus"
source_tar="${CITUS_SRC:-$vendor/citus-$version.tar.gz}"
patch_file="$(dirname "$source_tar")/pg15-minor-compat.patch"
base_port="${CITUS_PORT:-54340}"
db_name="strata"
dir="$root/target/citus"
location_file="$root/target/citus.location"
if [ -f "$location_file" ]; then dir="$(cat "$location_file")"; fi

say() { printf 'citus: %s\n' "$*" >&2; }
die() { printf 'citus: error: %s\n' "$*" >&2; exit 1; }

# The pg_config of the installed server (Debian keeps the server's under /usr/lib/postgresql).
find_pg_config() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_config" ] && [ -x "$d/postgres" ]; then echo "$d/pg_config"; return 0; fi
    done
    command -v pg_config 2>/dev/null || return 1
}

pg_config="$(find_pg_config || true)"
[ -n "$pg_config" ] || die "no PostgreSQL server is installed (Debian/Ubuntu: apt-get install postgresql)"
bindir="$("$pg_config" --bindir)"
pkglibdir="$("$pg_config" --pkglibdir)"
sharedir="$("$pg_config" --sharedir)"
pg_major="$("$pg_config" --version | sed -nE 's/^PostgreSQL ([0-9]+).*/\1/p')"
stage="$cache/citus-$version-pg$pg_major"

is_installed() { [ -f "$pkglibdir/citus.so" ] && [ -f "$sharedir/extension/citus.control" ]; }

available_version() { sed -nE "s/^default_version = '([^']+)'.*/\1/p" "$sharedir/extension/citus.control"; }

# Copies the kept build into PostgreSQL's directories.
install_stage() {
    [ "$(id -u)" = 0 ] || die "Citus $version is built in $stage but installing it into $pkglibdir needs root (or install your vendor's citus package)"
    cp -a "$stage/root/." /
    is_installed || die "installing $stage did not give $pkglibdir/citus.so"
}

build() {
    [ -f "$source_tar" ] || die "Citus is not installed and its source is not at $source_tar (set CITUS_SRC to citus-$version.tar.gz, or install your vendor's citus package for PostgreSQL $pg_major)"
    [ "$pg_major" = 15 ] || die "the Citus source here ($version) is for PostgreSQL 15; this server is $pg_major: install your vendor's citus package"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        local missing=() pkg
        for pkg in postgresql-server-dev-15 liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev \
            libxslt1-dev libpam0g-dev libreadline-dev make gcc; do
            dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing the build packages: ${missing[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
        pg_config="$(find_pg_config)"
    fi
    "$pg_config" --pgxs >/dev/null 2>&1 && [ -f "$("$pg_config" --includedir-server)/postgres.h" ] ||
        die "building Citus needs PostgreSQL's server headers (Debian: apt-get install postgresql-server-dev-$pg_major)"
    work="$(mktemp -d)"
    trap 'rm -rf "${work:-}"' EXIT
    say "building Citus $version from $source_tar into $stage (about 2 minutes, once)"
    tar -xzf "$source_tar" -C "$work"
    (
        cd "$work/citus-$version"
        if [ -f "$patch_file" ]; then patch -p1 <"$patch_file"; fi
        PG_CONFIG="$pg_config" ./configure --without-libcurl
        make -j"$(nproc)"
        rm -rf "$stage.tmp"
        make install DESTDIR="$stage.tmp/root"
    ) >"$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; die "the Citus build failed (above: the end of its log)"; }
    rm -rf "$stage"
    mkdir -p "$(dirname "$stage")"
    mv "$stage.tmp" "$stage"
}

ensure_installed() {
    if ! is_installed; then
        [ -f "$stage/root$pkglibdir/citus.so" ] || build
        install_stage
    fi
}

# Runs a server program as the postgres user when we are root (the server refuses root).
as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The directory that holds the nodes, where the server's user can write.
node_dir() {
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            dir="/var/tmp/strata-citus-$(printf '%s' "$root" | cksum | cut -d' ' -f1)"
            say "the postgres user cannot reach $root/target; keeping the nodes in $dir"
            mkdir -p "$dir" "$(dirname "$location_file")"
            chown postgres: "$dir"
            chmod 700 "$dir"
            printf '%s\n' "$dir" >"$location_file"
        fi
    fi
}

psql_on() {
    local port="$1" db="$2"
    shift 2
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

start_node() {
    local name="$1" port="$2" data="$dir/$1"
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
        cat >>"$data/postgresql.conf" <<EOF
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
max_connections = 200
max_prepared_transactions = 200
EOF
    fi
    if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        say "starting $name on 127.0.0.1:$port"
        as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/$name.log" -w -t 60 start >/dev/null ||
            { tail -n 20 "$dir/$name.log" >&2; die "$name did not start (log: $dir/$name.log); is port $port taken? Set CITUS_PORT."; }
    fi
    if [ -z "$(psql_on "$port" postgres -tAc "select 1 from pg_database where datname = '$db_name'")" ]; then
        psql_on "$port" postgres -c "create database $db_name"
    fi
    psql_on "$port" "$db_name" -c "set client_min_messages = warning; create extension if not exists citus"
}

url() { echo "postgres://postgres@127.0.0.1:$base_port/$db_name?sslmode=disable"; }

case "${1:-}" in
    installed)
        ensure_installed
        available_version
        ;;
    up)
        ensure_installed
        node_dir
        start_node coordinator "$base_port"
        start_node worker1 "$((base_port + 1))"
        start_node worker2 "$((base_port + 2))"
        psql_on "$base_port" "$db_name" -tAc "select citus_set_coordinator_host('127.0.0.1', $base_port)" >/dev/null
        for p in $((base_port + 1)) $((base_port + 2)); do
            psql_on "$base_port" "$db_name" -tAc \
                "select citus_add_node('127.0.0.1', $p) where not exists (select 1 from pg_dist_node where nodeport = $p)" >/dev/null
        done
        say "coordinator and 2 workers up ($(psql_on "$base_port" "$db_name" -tAc "select count(*) from citus_get_active_worker_nodes()") active workers)"
        url
        ;;
    down)
        for name in worker2 worker1 coordinator; do
            if [ -f "$dir/$name/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$dir/$name" status >/dev/null 2>&1; then
                as_owner "$bindir/pg_ctl" -D "$dir/$name" -w -m fast stop >/dev/null
                say "stopped $name"
            fi
        done
        ;;
    url)
        url
        ;;
    *)
        die "usage: citus.sh installed|up|down|url"
        ;;
esac
