//! `_strata_migration_events`: one row for everything the runner does to the history, built
//! in one place ([`Event`]) and written together with the bookkeeping it belongs to, in one
//! statement (a data-modifying `WITH`), so that an apply or a revert costs one round trip of
//! bookkeeping and both commit or neither.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migration;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, Postgres};

use crate::error::MigrateError;
use crate::runner::report::millis;
use crate::tools::checksum;

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

/// One row of `_strata_migration_events`, built with the methods below.
#[derive(Debug, Clone)]
#[must_use]
pub(crate) struct Event<'a> {
    kind: Kind,
    version: i64,
    description: &'a str,
    checksum: Option<&'a [u8]>,
    normalized_checksum: Option<Vec<u8>>,
    lock_wait_ms: Option<f64>,
    duration_ms: Option<f64>,
    statements: Option<(usize, usize)>,
    retries: u32,
    detail: Option<String>,
}

impl<'a> Event<'a> {
    /// An event about `migration`; one that records a file as applied (apply, baseline,
    /// repair) carries the file's checksums.
    pub(crate) fn of(kind: Kind, migration: &'a Migration) -> Self {
        let mut event = Self::about(kind, migration.version, &migration.description);
        if matches!(kind, Kind::Apply | Kind::Baseline | Kind::Repair) {
            event.checksum = Some(&migration.checksum);
            event.normalized_checksum = Some(checksum::normalized_checksum(migration.sql.as_str()));
        }
        event
    }

    /// An event about a version that may have no file.
    pub(crate) fn about(kind: Kind, version: i64, description: &'a str) -> Self {
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

    /// How long the runner waited for the migration lock.
    pub(crate) fn lock_wait_ms(mut self, ms: f64) -> Self {
        self.lock_wait_ms = Some(ms);
        self
    }

    /// How long the work took.
    pub(crate) fn took(mut self, elapsed: Duration) -> Self {
        self.duration_ms = Some(millis(elapsed));
        self
    }

    /// Statements done, out of how many (no-transaction files).
    pub(crate) fn statements(mut self, done: usize, total: usize) -> Self {
        self.statements = Some((done, total));
        self
    }

    /// Lock-timeout retries it needed.
    pub(crate) fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// A sentence about it.
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The bookkeeping an event is written with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Book {
    /// The event alone.
    Nothing,
    /// sqlx's row for a migration applied in one transaction (same columns, checksum and
    /// nanosecond `execution_time` as sqlx's `Migrator` writes).
    Applied { elapsed: Duration },
    /// A partial no-transaction migration finished: its row becomes `success = true` and
    /// its progress goes.
    Finished { elapsed: Duration },
    /// A reverted migration's row goes, as sqlx's `undo` deletes it.
    Reverted,
    /// sqlx's row for a migration marked applied without running it, as sqlx's `skip` does.
    Baseline,
    /// A checkpoint recorded where the files it stands for were applied: the row of its
    /// version takes its checksum and description.
    Checkpoint,
}

/// The event's insert; parameters $1–$14, the bookkeeping's own from $15.
const INSERT_EVENT: &str = "insert into _strata_migration_events
        (kind, version, description, checksum, normalized_checksum, os_user, host,
         app_version, lock_wait_ms, duration_ms, statements_done, statements_total,
         retries, detail)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// The statement for each kind of bookkeeping, built once.
static STATEMENTS: LazyLock<[String; 6]> = LazyLock::new(|| {
    [
        INSERT_EVENT.to_owned(),
        format!(
            "with row as (insert into _sqlx_migrations
                              (version, description, success, checksum, execution_time)
                          values ($2, $3, true, $4, $15))
             {INSERT_EVENT}"
        ),
        format!(
            "with row as (update _sqlx_migrations set success = true, execution_time = $15
                           where version = $2),
                  progress as (delete from _strata_migration_progress where version = $2)
             {INSERT_EVENT}"
        ),
        format!("with row as (delete from _sqlx_migrations where version = $2) {INSERT_EVENT}"),
        format!(
            "with row as (insert into _sqlx_migrations
                              (version, description, success, checksum, execution_time)
                          values ($2, $3, true, $4, -1))
             {INSERT_EVENT}"
        ),
        format!(
            "with row as (update _sqlx_migrations set checksum = $4, description = $3
                           where version = $2)
             {INSERT_EVENT}"
        ),
    ]
});

/// Writes `event` together with its bookkeeping, in one statement; inside the migration's
/// transaction when there is one, so that both commit together.
pub(crate) async fn record(
    conn: &mut PgConnection,
    book: Book,
    event: &Event<'_>,
) -> Result<(), MigrateError> {
    let (index, elapsed) = match book {
        Book::Nothing => (0, None),
        Book::Applied { elapsed } => (1, Some(elapsed)),
        Book::Finished { elapsed } => (2, Some(elapsed)),
        Book::Reverted => (3, None),
        Book::Baseline => (4, None),
        Book::Checkpoint => (5, None),
    };
    let query = bind_event(sqlx::query(AssertSqlSafe(STATEMENTS[index].as_str())), event);
    let query = match elapsed {
        Some(elapsed) => query.bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)),
        None => query,
    };
    query
        .execute(conn)
        .await
        .map_err(MigrateError::db("recording the migration in the tracking tables"))?;
    Ok(())
}

/// Records a no-transaction migration as started: sqlx's row with `success = false` (sqlx's
/// `Migrator` then refuses to run over it) and its progress at 0, in one statement.
pub(crate) async fn started(
    conn: &mut PgConnection,
    migration: &Migration,
    total: usize,
) -> Result<(), MigrateError> {
    sqlx::query(
        "with row as (insert into _sqlx_migrations
                          (version, description, success, checksum, execution_time)
                      values ($1, $2, false, $3, -1))
         insert into _strata_migration_progress (version, checksum, statements_done, statements_total)
         values ($1, $3, 0, $4)
         on conflict (version) do update set checksum = excluded.checksum,
             statements_done = 0, statements_total = excluded.statements_total, updated_at = now()",
    )
    .bind(migration.version)
    .bind(&*migration.description)
    .bind(&*migration.checksum)
    .bind(i32::try_from(total).unwrap_or(i32::MAX))
    .execute(conn)
    .await
    .map_err(MigrateError::db("recording the start of a migration"))?;
    Ok(())
}

/// The progress row's update after `done` statements, as SQL text (two integers), so that it
/// goes in the same simple query as the statement it follows.
pub(crate) fn progress_sql(version: i64, done: usize) -> String {
    format!(
        "update _strata_migration_progress set statements_done = {done}, updated_at = now() where version = {version}"
    )
}

/// Writes a failure's event, on its own (the migration's transaction is rolled back); a
/// failure to write it is logged, not raised over the migration's own error.
pub(crate) async fn record_failure(conn: &mut PgConnection, event: &Event<'_>) {
    if let Err(e) = record(conn, Book::Nothing, event).await {
        tracing::warn!(error = %e, "could not record the failure in _strata_migration_events");
    }
}

fn bind_event<'q>(
    query: Query<'q, Postgres, PgArguments>,
    event: &Event<'q>,
) -> Query<'q, Postgres, PgArguments> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    query
        .bind(event.kind.as_str())
        .bind(event.version)
        .bind(event.description)
        .bind(event.checksum)
        .bind(event.normalized_checksum.clone())
        .bind(os_user())
        .bind(host())
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(event.lock_wait_ms)
        .bind(event.duration_ms)
        .bind(event.statements.map(|(done, _)| count(done)))
        .bind(event.statements.map(|(_, total)| count(total)))
        .bind(i32::try_from(event.retries).unwrap_or(i32::MAX))
        .bind(event.detail.clone())
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
