//! Our side tables, next to sqlx's `_sqlx_migrations`, for what sqlx's table cannot hold:
//! `_strata_migration_events` (who ran what, from where, how long it waited, statements done)
//! and `_strata_migration_progress` (how far a partial no-transaction migration got).
//! Created by the runner under its lock, never by `migrations/`.

use sqlx::PgConnection;

use crate::{MigrateError, history};

/// Creates sqlx's tracking table and both side tables if they do not exist yet.
pub(crate) const CREATE_TABLES: &str = concat!(
    history::create_sqlx_migrations!(),
    ";
create table if not exists _strata_migration_events (
    id bigint generated always as identity
        constraint _strata_migration_events_pkey primary key,
    at timestamptz not null default now(),
    kind text not null
        constraint _strata_migration_events_kind_check
        check (kind in ('apply', 'revert', 'baseline', 'repair', 'fail')),
    version bigint not null,
    description text not null,
    -- sqlx's checksum of the file, and ours of its normalized text (LF, no trailing blanks).
    checksum bytea,
    normalized_checksum bytea,
    db_user text not null default current_user,
    os_user text,
    host text,
    app_version text not null,
    lock_wait_ms double precision,
    duration_ms double precision,
    -- For no-transaction files: statements run so far, out of how many.
    statements_done integer,
    statements_total integer,
    retries integer not null default 0,
    detail text
);
create table if not exists _strata_migration_progress (
    version bigint constraint _strata_migration_progress_pkey primary key,
    checksum bytea not null,
    statements_done integer not null,
    statements_total integer not null,
    updated_at timestamptz not null default now()
);"
);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Apply,
    Revert,
    Baseline,
    Repair,
    Fail,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Revert => "revert",
            Self::Baseline => "baseline",
            Self::Repair => "repair",
            Self::Fail => "fail",
        }
    }
}

/// One row of `_strata_migration_events`.
#[derive(Debug, Clone)]
pub(crate) struct Event<'a> {
    pub kind: Kind,
    pub version: i64,
    pub description: &'a str,
    pub checksum: Option<&'a [u8]>,
    pub normalized_checksum: Option<Vec<u8>>,
    pub lock_wait_ms: Option<f64>,
    pub duration_ms: Option<f64>,
    pub statements: Option<(usize, usize)>,
    pub retries: u32,
    pub detail: Option<String>,
}

impl<'a> Event<'a> {
    /// An event with only the required fields.
    pub(crate) fn new(kind: Kind, version: i64, description: &'a str) -> Self {
        Self {
            kind,
            version,
            description,
            checksum: None,
            normalized_checksum: None,
            lock_wait_ms: None,
            duration_ms: None,
            statements: None,
            retries: 0,
            detail: None,
        }
    }
}

/// Creates sqlx's tracking table and the side tables (under the migration lock), in one
/// round trip (a simple-protocol batch).
pub(crate) async fn create_tables(conn: &mut PgConnection) -> Result<(), MigrateError> {
    sqlx::raw_sql(CREATE_TABLES)
        .execute(conn)
        .await
        .map_err(MigrateError::db("creating _sqlx_migrations and the side tables"))?;
    Ok(())
}

/// Inserts one event; pass the migration's transaction so both commit together.
pub(crate) async fn record(conn: &mut PgConnection, event: &Event<'_>) -> Result<(), MigrateError> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "insert into _strata_migration_events
             (kind, version, description, checksum, normalized_checksum, os_user, host,
              app_version, lock_wait_ms, duration_ms, statements_done, statements_total,
              retries, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(event.kind.as_str())
    .bind(event.version)
    .bind(event.description)
    .bind(event.checksum)
    .bind(event.normalized_checksum.as_deref())
    .bind(os_user())
    .bind(host())
    .bind(env!("CARGO_PKG_VERSION"))
    .bind(event.lock_wait_ms)
    .bind(event.duration_ms)
    .bind(event.statements.map(|(done, _)| count(done)))
    .bind(event.statements.map(|(_, total)| count(total)))
    .bind(i32::try_from(event.retries).unwrap_or(i32::MAX))
    .bind(event.detail.as_deref())
    .execute(conn)
    .await
    .map_err(MigrateError::db("recording an event in _strata_migration_events"))?;
    Ok(())
}

/// The machine's name: the kernel's, else `$HOSTNAME`.
fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
}

/// The operating-system user running the runner.
fn os_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
}
