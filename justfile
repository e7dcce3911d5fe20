# strata: every workflow is a recipe here; CI (.ci/run) calls `just test`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Builds never need a database: queries are checked against the committed .sqlx/ data.
export SQLX_OFFLINE := "true"

sqlx_cli_version := "0.9.0"
secret_sentinel := "strata-test-secret-pw"

# List the recipes.
default:
    @just --list --unsorted

# The main job: bring up a database, apply the migrations, show their status, and print the URL services use (a login role without superuser or BYPASSRLS).
[group('main')]
up: db-up migrate status service-url

# Everything CI checks: the static checks, .sqlx/ against a fresh database, every test.
[group('main')]
test: check verify-sqlx verify-schema (generate-sweep "--own")
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    mkdir -p target
    # Wall-clock budgets missed on this run (failed on by `just soak` only; shown at the end).
    budgets="${CARGO_TARGET_DIR:-target}/tmp/budgets.txt"
    rm -f "$budgets"
    # PgBouncer 1.18 (Debian's) and 1.21+ (built once from ../shared/vendor when none is
    # installed) for the pooler tests; a missing one fails those tests with the reason.
    scripts/pgbouncer.sh installed >/dev/null || true
    if modern="$(scripts/pgbouncer.sh modern)"; then export PGBOUNCER_MODERN="$modern"; fi
    # Citus for the tests on a coordinator and two workers (built once from ../shared/vendor
    # and installed when root); a missing one fails those tests with the reason.
    scripts/citus.sh installed >/dev/null || true
    DATABASE_URL="$url" cargo test --workspace --all-targets 2>&1 | tee target/test-output.log
    DATABASE_URL="$url" cargo test --workspace --doc 2>&1 | tee -a target/test-output.log
    if grep -q "{{ secret_sentinel }}" target/test-output.log; then
        echo "error: a test printed the sentinel password (see target/test-output.log)" >&2
        exit 1
    fi
    if [ -s "$budgets" ]; then
        echo "note: wall-clock budgets missed on this run (behaviour passed; \`just soak\` fails on these):"
        cat "$budgets"
    fi

# The static part of `test`: formatting, clippy and the docs, offline.
[group('main')]
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

# The fault scenarios of `just test` (connections cut every second, restarts, a blackhole), FACTOR times longer, and the wall-clock budgets `just test` only prints (recovery, failover, refused connections); prints each scenario's figures.
[group('main')]
soak FACTOR="6":
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    STRATA_SOAK_FACTOR="{{ FACTOR }}" DATABASE_URL="$url" \
        cargo test --locked -p strata-db --test faults --test replicas --test pool -- --test-threads 1
    cat target/tmp/faults/*.txt

# Make a database available and print its URL, password hidden (DATABASE_URL, else 127.0.0.1:5432, else a local cluster).
[group('database')]
db-up:
    @scripts/db.sh up-redacted

# Start a local Citus cluster (a coordinator and two workers on ports 54340-54342, database `strata`), building Citus from ../shared/vendor first when it is not installed; prints the coordinator's URL.
[group('database')]
citus-up:
    @scripts/citus.sh up

# Stop the local Citus cluster (its data stays under target/citus).
[group('database')]
citus-down:
    @scripts/citus.sh down

# Create or update the service's login role (member of strata_app, no superuser, no BYPASSRLS) and print its URL; the full URL is in target/strata-service.env.
[group('database')]
service-url:
    @scripts/db.sh service

# Start a streaming replica of the db-up server on 127.0.0.1:54330 (STRATA_REPLICA_PORT) and print its URL; the server must allow replication connections (the local cluster does).
[group('database')]
replica-up *ARGS:
    @scripts/db.sh replica-up {{ ARGS }}

# Stop the replica that replica-up started; never touches another server.
[group('database')]
replica-down:
    @scripts/db.sh replica-down

# Stop the project-local cluster that db-up started; never touches another server.
[group('database')]
db-down:
    @scripts/db.sh down

# Apply the pending migrations to the database of db-up.
[group('database')]
migrate *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- up {{ ARGS }}

# Print the runner's effective settings (strata.toml, STRATA_* variables, DATABASE_URL), passwords hidden.
[group('database')]
config *ARGS:
    cargo run --quiet --locked -p strata-migrate-cli -- config {{ ARGS }}

# Show the state of every migration in the database of db-up.
[group('database')]
status *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- status {{ ARGS }}

# Serve the work tracker's HTTP API (crates/tracker-service) on 127.0.0.1:8080 (http.listen, STRATA_HTTP__LISTEN) against the database of `just up`: migrations as its owner, requests as the service role; callers need a token (`just token USER`).
[group('main')]
serve:
    #!/usr/bin/env bash
    set -euo pipefail
    owner="$(scripts/db.sh up)"
    DATABASE_URL="$owner" cargo run --quiet --locked -p strata-migrate-cli -- up >&2
    scripts/db.sh service >/dev/null
    DATABASE_URL="$(sed -n 's/^DATABASE_URL=//p' target/strata-service.env)" \
        STRATA_MIGRATIONS__URL="$owner" cargo run --quiet --locked -p tracker-service

# Issue an API token for user USER (a UUID) on the database of `just up`, as the service role, and print it alone (the first token; later ones come from POST /tokens).
[group('main')]
token USER *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/db.sh service >/dev/null
    DATABASE_URL="$(sed -n 's/^DATABASE_URL=//p' target/strata-service.env)" \
        cargo run --quiet --locked -p tracker-service -- issue-token --user {{ quote(USER) }} {{ ARGS }}

# Run the data layer's example service flow against the database of db-up.
[group('database')]
demo:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-db --example service_flow

# Measure strata-db and strata-migrate against their peers in one run (release build), and tracker-service under oha; `--quick` takes about a minute; `--scale` measures the growth curves (10k-5M tasks, 1-64 callers) and draws them as SVG charts.
[group('bench')]
bench *ARGS: _sqlx-cli
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    # Workload 7's PgBouncers: Debian's 1.18, and 1.21+ (built once from ../shared/vendor).
    scripts/pgbouncer.sh installed >/dev/null || true
    if modern="$(scripts/pgbouncer.sh modern)"; then export PGBOUNCER_MODERN="$modern"; fi
    # Workload 12's load generator, pinned, built once into /var/cache/strata (or target/tools).
    if oha="$(scripts/oha.sh)"; then export OHA="$oha"; fi
    # Workload 13's Citus (built once from ../shared/vendor when missing).
    scripts/citus.sh installed >/dev/null || true
    cargo build --release --locked -p strata-bench -p strata-migrate-cli -p tracker-service
    DATABASE_URL="$url" target/release/strata-bench {{ ARGS }}

# Revert the newest N applied migrations of the db-up database and apply them again (development databases only): the loop of writing a migration.
[group('database')]
redo N="1":
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- redo --count {{ N }}

# Write strata-migrate's shell completions (bash, zsh, fish) and man page into target/shell, from its clap definitions.
[group('database')]
completions:
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/shell
    cargo build --quiet --locked -p strata-migrate-cli
    bin=target/debug/strata-migrate
    "$bin" completions bash > target/shell/strata-migrate.bash
    "$bin" completions zsh > target/shell/_strata-migrate
    "$bin" completions fish > target/shell/strata-migrate.fish
    "$bin" man > target/shell/strata-migrate.1
    echo "wrote target/shell: strata-migrate.bash (source it), _strata-migrate (zsh fpath), strata-migrate.fish, strata-migrate.1 (man -l)"

# Create a timestamped reversible migration pair in migrations/.
[group('database')]
new NAME *ARGS:
    cargo run --quiet --locked -p strata-migrate-cli -- new {{ quote(NAME) }} {{ ARGS }}

# Write the migration that takes migrations/ to schema/ (the desired schema, in SQL), proven on scratch databases first; `--rename T.COL=NEW` for a rename; see `strata-migrate generate --help`.
[group('database')]
generate NAME *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- --source migrations generate {{ quote(NAME) }} --to schema {{ ARGS }}

# Squash each public history of `generate-sweep` through its last step (proven on both kinds of database) and time a new database from the files and from the checkpoint; figures to docs/bench/.
[group('main')]
squash-sweep *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    scripts/histories.py target/histories
    DATABASE_URL="$url" cargo run --quiet --release --locked -p strata-schema --example generate_sweep -- --squash --out "docs/bench/squash-sweep-$(date +%F).json" {{ ARGS }} target/histories/*/

# Squash migrations/ through VERSION into one checkpoint (proven on scratch databases first; the files it replaces are deleted, git keeps them); see `strata-migrate squash --help`.
[group('database')]
squash VERSION *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- --source migrations squash --through {{ quote(VERSION) }} {{ ARGS }}

# Measure `generate` on migration histories others wrote: each step regenerated from the state before it to the state after it, proven, counted; the public histories are fetched once into target/histories (scripts/histories.py, pinned commits), the figures go to docs/bench/. `--speed N`: generate of each history's last step against up of all of it, N times each. `--own`: this project's history only, every step required exact (what `just test` runs).
[group('main')]
generate-sweep *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh up)"
    if [ "{{ ARGS }}" = "--own" ]; then
        dir=target/sweep/own
        rm -rf "$dir" && mkdir -p "$dir"
        for f in migrations/*.up.sql; do cp "$f" "$dir/$(basename "$f" .up.sql).sql"; done
        DATABASE_URL="$url" cargo run --quiet --locked -p strata-schema --example generate_sweep -- \
            --require-exact --out target/sweep/own.json "$dir"
        exit 0
    fi
    scripts/histories.py target/histories
    out="docs/bench/generate-sweep-$(date +%F).json"
    # `--speed N`: only the last step of each history, N times, against `up` of all of it.
    case " {{ ARGS }} " in *" --speed "*) out="docs/bench/generate-speed-$(date +%F).json" ;; esac
    DATABASE_URL="$url" cargo run --quiet --release --locked -p strata-schema --example generate_sweep -- --out "$out" {{ ARGS }} target/histories/*/

# Regenerate .sqlx/, schema.sql and migrations/strata.sum against a freshly migrated database (commit them with the query or migration change).
[group('sqlx')]
prepare: _sqlx-cli
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(just _fresh-migrated strata_prepare)"
    DATABASE_URL="$url" SQLX_OFFLINE=false cargo sqlx prepare --workspace -- --all-targets --locked
    cargo run --quiet --locked -p strata-migrate-cli -- --database-url "$url" schema > schema.sql
    cargo run --quiet --locked -p strata-migrate-cli -- --source migrations sum > migrations/strata.sum

# Verify that .sqlx/ matches the queries and a freshly migrated database.
[group('sqlx')]
verify-sqlx: _sqlx-cli
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(just _fresh-migrated strata_prepare)"
    if ! DATABASE_URL="$url" SQLX_OFFLINE=false cargo sqlx prepare --workspace --check -- --all-targets --locked; then
        echo "error: .sqlx/ is stale: run 'just prepare' and commit .sqlx/" >&2
        exit 1
    fi

# Check that schema.sql and schema/ are what migrations/ produce, that every .down.sql undoes its .up.sql, that migrations/ lint clean, and that migrations/strata.sum is current.
[group('sqlx')]
verify-schema:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(just _fresh-migrated strata_schema)"
    if ! cargo run --quiet --locked -p strata-migrate-cli -- --database-url "$url" schema --check schema.sql; then
        echo "error: schema.sql is stale: run 'just prepare' and commit schema.sql" >&2
        exit 1
    fi
    cargo run --quiet --locked -p strata-migrate-cli -- --database-url "$url" verify --require-down
    cargo run --quiet --locked -p strata-migrate-cli -- --source migrations lint --all
    if ! cargo run --quiet --locked -p strata-migrate-cli -- --database-url "$url" --source migrations generate --check --to schema; then
        echo "error: migrations/ do not give schema/: change schema/, then 'just generate NAME' (or write the migration by hand)" >&2
        exit 1
    fi
    if ! cargo run --quiet --locked -p strata-migrate-cli -- --source migrations sum --check migrations/strata.sum; then
        echo "error: migrations/strata.sum is stale: run 'just prepare' and commit it (a merge conflict there means two branches added migrations: rebase, renumber, regenerate)" >&2
        exit 1
    fi

# Print the URL of database NAME, recreated empty and migrated by strata-migrate.
_fresh-migrated NAME:
    #!/usr/bin/env bash
    set -euo pipefail
    url="$(scripts/db.sh fresh {{ NAME }})"
    DATABASE_URL="$url" cargo run --quiet --locked -p strata-migrate-cli -- up >&2
    echo "$url"

# Install sqlx-cli at the pinned version unless it is there.
_sqlx-cli:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo sqlx --version 2>/dev/null | grep -qx ".* {{ sqlx_cli_version }}"; then
        echo "installing sqlx-cli {{ sqlx_cli_version }} (about 80 s, once)" >&2
        cargo install sqlx-cli --version {{ sqlx_cli_version }} --no-default-features \
            --features postgres,rustls --locked --quiet
    fi
