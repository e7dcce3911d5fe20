#!/usr/bin/env bash
# Finds the PgBouncers that the tests and the bench put in front of the server. Its variables
# (PGBOUNCER_SRC) do not start with STRATA_: strata's programs refuse unknown STRATA_* keys.
#
#   pgbouncer.sh installed   print the path of the installed pgbouncer (Debian 12's is 1.18);
#                            with none, install Debian's package when root, else fail saying so.
#   pgbouncer.sh modern      print the path of a PgBouncer of 1.21 or later (protocol-level
#                            prepared statements in transaction mode, `max_prepared_statements`):
#                            1. the installed one, when it is that new;
#                            2. else one built before, kept in ~/.cache/strata
#                               (/var/cache/strata as root, where the tests run it as the
#                               postgres user) so that later clones and CI runs reuse it;
#                            3. else built from $PGBOUNCER_SRC or
#                               ../shared/vendor/pgbouncer/pgbouncer-1.25.2.tar.gz (about 60 s;
#                               the build packages are installed when root);
#                            4. else one line saying what is missing, and exit 1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="1.25.2"
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/strata; else default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/strata"; fi
cache="$default_cache"
prefix="$cache/pgbouncer-$version"
source_tar="${PGBOUNCER_SRC:-$root/../shared/vendor/pgbouncer/pgbouncer-$version.tar.gz}"

say() { printf 'pgbouncer: %s\n' "$*" >&2; }
die() { printf 'pgbouncer: error: %s\n' "$*" >&2; exit 1; }

installed() {
    if command -v pgbouncer >/dev/null 2>&1; then command -v pgbouncer; return 0; fi
    if [ -x /usr/sbin/pgbouncer ]; then echo /usr/sbin/pgbouncer; return 0; fi
    return 1
}

# The version a pgbouncer binary reports, as `1.18.0`.
version_of() {
    "$1" --version 2>/dev/null | sed -nE 's/^(PgBouncer|pgbouncer) ([0-9]+\.[0-9]+(\.[0-9]+)?).*/\2/p' | head -n 1
}

# Whether version $1 is 1.21 or later.
is_modern() {
    local major minor
    IFS=. read -r major minor _ <<<"$1"
    [ -n "$major" ] && [ -n "$minor" ] && { [ "$major" -gt 1 ] || [ "$minor" -ge 21 ]; }
}

case "${1:-}" in
    installed)
        if ! installed >/dev/null; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                say "installing PgBouncer from Debian's packages"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
            else
                die "PgBouncer is not installed (Debian/Ubuntu: sudo apt-get install pgbouncer)"
            fi
        fi
        installed
        ;;
    modern)
        if bin="$(installed)" && is_modern "$(version_of "$bin")"; then
            echo "$bin"
            exit 0
        fi
        if [ -x "$prefix/pgbouncer" ] && is_modern "$(version_of "$prefix/pgbouncer")"; then
            echo "$prefix/pgbouncer"
            exit 0
        fi
        [ -f "$source_tar" ] || die "no PgBouncer 1.21 or later is installed, and its source is not at $source_tar (set PGBOUNCER_SRC to pgbouncer-$version.tar.gz)"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            missing=()
            for pkg in autoconf automake libtool pkg-config libevent-dev libssl-dev make gcc; do
                dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
            done
            if [ ${#missing[@]} -gt 0 ]; then
                say "installing the build packages: ${missing[*]}"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
            fi
        fi
        for tool in autoconf automake libtoolize pkg-config make cc; do
            command -v "$tool" >/dev/null 2>&1 || die "building PgBouncer $version needs $tool (Debian: apt-get install autoconf automake libtool pkg-config libevent-dev libssl-dev)"
        done
        build="$(mktemp -d)"
        trap 'rm -rf "$build"' EXIT
        say "building PgBouncer $version from $source_tar into $prefix (about 60 s, once)"
        tar -xzf "$source_tar" -C "$build"
        (
            cd "$build/pgbouncer-$version"
            ./autogen.sh
            ./configure --without-cares
            make -j"$(nproc)" pgbouncer
        ) >"$build/build.log" 2>&1 || { tail -n 20 "$build/build.log" >&2; die "the build failed (above: the end of its log)"; }
        mkdir -p "$prefix"
        cp "$build/pgbouncer-$version/pgbouncer" "$prefix/pgbouncer.tmp"
        mv "$prefix/pgbouncer.tmp" "$prefix/pgbouncer"
        # The test harness runs it as the postgres user when root.
        chmod 755 "$prefix/pgbouncer"
        echo "$prefix/pgbouncer"
        ;;
    *)
        die "usage: pgbouncer.sh installed|modern"
        ;;
esac
