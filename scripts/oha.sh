#!/usr/bin/env bash
# Prints the path of oha, the HTTP load generator of the bench's workload 12, at the pinned
# version: the one on PATH when it is that version, else one installed before into the cache
# (/var/cache/strata as root, ~/.cache/strata otherwise), else `cargo install`s it there
# (a few minutes, once). Says in one line what is missing when it cannot.
set -euo pipefail

version="1.16.0"
if [ "$(id -u)" = 0 ]; then cache=/var/cache/strata; else cache="${XDG_CACHE_HOME:-$HOME/.cache}/strata"; fi
prefix="$cache/oha-$version"

say() { printf 'oha: %s\n' "$*" >&2; }

if command -v oha >/dev/null 2>&1 && oha --version 2>/dev/null | grep -q " $version\$"; then
    command -v oha
    exit 0
fi
if [ -x "$prefix/bin/oha" ]; then
    echo "$prefix/bin/oha"
    exit 0
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "error: no oha $version and no cargo to install it; workload 12 will be skipped"
    exit 1
fi
say "installing oha $version into $prefix (once; a few minutes)"
mkdir -p "$cache"
if ! cargo install oha --version "$version" --locked --root "$prefix" >&2; then
    say "error: cargo install oha $version failed; workload 12 will be skipped"
    exit 1
fi
echo "$prefix/bin/oha"
