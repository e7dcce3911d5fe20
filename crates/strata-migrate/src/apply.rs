//! Running one migration (or its `.down.sql`) in a transaction together with its tracking
//! row and event, under `SET LOCAL lock_timeout`, retried with backoff when the lock timeout
//! fires (SQLSTATE 55P03).

use std::time::{Duration, Instant};

use sqlx::migrate::Migration;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::events::{self, Event, Kind};
use crate::history;
use crate::lexer::{self, Statement};
use crate::{MigrateError, Settings, checksum, directive, millis, sqlstate};

/// Whether a migration moves the schema forward or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Insert the tracking row.
    Up,
    /// Delete the tracking row.
    Down,
}

/// What one run of a migration took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub elapsed: Duration,
    pub retries: u32,
    pub statements: Option<usize>,
}

/// The settings and the lock wait that events record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub settings: &'a Settings,
    pub lock_wait_ms: f64,
}

enum Failure {
    Sql(sqlx::Error),
    Bookkeeping(MigrateError),
}

/// Runs `migration` in one transaction with its bookkeeping; on a lock timeout, rolls back,
/// waits (exponential backoff with jitter) and tries again, up to `settings.lock_retries`
/// more times.
pub(crate) async fn run_in_transaction(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    ctx: Ctx<'_>,
) -> Result<Outcome, MigrateError> {
    let lock_timeout = directive::effective_lock_timeout(migration, ctx.settings.lock_timeout)?;
    let mut retries = 0;
    loop {
        let start = Instant::now();
        match attempt(conn, migration, direction, (ctx, lock_timeout), retries, start).await {
            Ok(()) => return Ok(Outcome { elapsed: start.elapsed(), retries, statements: None }),
            Err(Failure::Sql(e))
                if sqlstate::is_lock_timeout(&e) && retries < ctx.settings.lock_retries =>
            {
                let delay = backoff(ctx.settings.retry_base, retries);
                retries += 1;
                tracing::warn!(
                    migration.version = migration.version,
                    migration.description = %migration.description,
                    retry = retries,
                    retries_max = ctx.settings.lock_retries,
                    retry_in_ms = millis(delay),
                    "lock_timeout expired (another session holds a lock the migration needs); rolled back, retrying"
                );
                tokio::time::sleep(delay).await;
            }
            Err(Failure::Sql(source)) => {
                let mut message = describe_failure(&source, migration, None);
                if sqlstate::cannot_run_in_transaction(&source) {
                    message.push_str(
                        "; this statement cannot run in a transaction: make `-- no-transaction` the file's first line (only if the file is not applied anywhere yet)",
                    );
                }
                if sqlstate::is_lock_timeout(&source) {
                    message.push_str(&format!(
                        "; gave up after {} tries, each waiting lock_timeout ({} ms); nothing of it remains",
                        retries + 1,
                        lock_timeout.as_millis()
                    ));
                }
                // The transaction is rolled back; the failure is recorded on its own.
                let mut event = Event::new(Kind::Fail, migration.version, &migration.description);
                event.lock_wait_ms = Some(ctx.lock_wait_ms);
                event.retries = retries;
                event.detail = Some(message.clone());
                if let Err(e) = events::record(conn, &event).await {
                    tracing::warn!(error = %e, "could not record the failure in _strata_migration_events");
                }
                return Err(MigrateError::Migration {
                    version: migration.version,
                    description: migration.description.to_string(),
                    message,
                    source,
                });
            }
            Err(Failure::Bookkeeping(e)) => return Err(e),
        }
    }
}

async fn attempt(
    conn: &mut PgConnection,
    migration: &Migration,
    direction: Direction,
    (ctx, lock_timeout): (Ctx<'_>, Duration),
    retries: u32,
    start: Instant,
) -> Result<(), Failure> {
    let book = |doing| move |e| Failure::Bookkeeping(MigrateError::db(doing)(e));
    let mut tx = conn.begin().await.map_err(book("beginning a transaction"))?;
    sqlx::query("select set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", lock_timeout.as_millis()))
        .execute(&mut *tx)
        .await
        .map_err(book("setting lock_timeout"))?;
    sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str().to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(Failure::Sql)?;
    match direction {
        Direction::Up => record_applied(&mut tx, migration, start.elapsed(), true).await,
        Direction::Down => delete_applied(&mut tx, migration.version).await,
    }
    .map_err(Failure::Bookkeeping)?;
    let mut event = Event::new(
        if direction == Direction::Up { Kind::Apply } else { Kind::Revert },
        migration.version,
        &migration.description,
    );
    if direction == Direction::Up {
        event.checksum = Some(&migration.checksum);
        event.normalized_checksum = Some(checksum::normalized_checksum(migration.sql.as_str()));
    }
    event.lock_wait_ms = Some(ctx.lock_wait_ms);
    event.duration_ms = Some(millis(start.elapsed()));
    event.retries = retries;
    events::record(&mut tx, &event).await.map_err(Failure::Bookkeeping)?;
    tx.commit().await.map_err(Failure::Sql)
}

/// Inserts the row sqlx's `Migrator` would (same columns, checksum and nanosecond
/// `execution_time`); `success = false` marks a no-transaction migration still in progress.
pub(crate) async fn record_applied(
    conn: &mut PgConnection,
    migration: &Migration,
    elapsed: Duration,
    success: bool,
) -> Result<(), MigrateError> {
    let nanos = if success { nanos(elapsed) } else { -1 };
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(migration.version)
    .bind(&*migration.description)
    .bind(success)
    .bind(&*migration.checksum)
    .bind(nanos)
    .execute(conn)
    .await
    .map_err(MigrateError::db("recording the migration in _sqlx_migrations"))?;
    Ok(())
}

/// Deletes a reverted migration's row, as sqlx's `undo` does.
pub(crate) async fn delete_applied(
    conn: &mut PgConnection,
    version: i64,
) -> Result<(), MigrateError> {
    sqlx::query("delete from _sqlx_migrations where version = $1")
        .bind(version)
        .execute(conn)
        .await
        .map_err(MigrateError::db("deleting the migration from _sqlx_migrations"))?;
    Ok(())
}

pub(crate) fn nanos(elapsed: Duration) -> i64 {
    i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
}

/// `base * 2^retry`, at most 30 s, plus up to half of that again as jitter, so replicas that
/// collided do not collide again.
pub(crate) fn backoff(base: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.min(16)).min(Duration::from_secs(30));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let jitter = exp.mul_f64(f64::from(seed % 1000) / 2000.0);
    exp + jitter
}

/// The server's message with its SQLSTATE, the file, the line it points at and the failing
/// statement. `statement` is the one that ran, for a file run statement by statement;
/// otherwise the whole file ran and the statement is found from the error position.
pub(crate) fn describe_failure(
    error: &sqlx::Error,
    migration: &Migration,
    statement: Option<(&Statement<'_>, &str)>,
) -> String {
    let label = statement.map_or(String::new(), |(_, label)| format!(" {label}"));
    let statement = statement.map(|(s, _)| s);
    let file = history::file_name(migration);
    let Some(db) = error.as_database_error() else {
        return format!("{error} (in {file})");
    };
    let code = db.code().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default();
    let ran = statement.map_or(migration.sql.as_str(), |s| s.text);
    let position = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| match pg.position()? {
            sqlx::postgres::PgErrorPosition::Original(chars) => Some(chars),
            sqlx::postgres::PgErrorPosition::Internal { .. } => None,
        })
        .and_then(|chars| ran.char_indices().nth(chars.saturating_sub(1)).map(|(at, _)| at));
    let first_line = statement.map_or(1, |s| s.line);
    let line = position
        .map(|at| first_line + ran[..at].matches('\n').count())
        .or(statement.map(|s| s.line));
    let failing = statement.cloned().or_else(|| {
        let at = position?;
        lexer::split(ran).ok()?.into_iter().find(|s| {
            let start = s.text.as_ptr() as usize - ran.as_ptr() as usize;
            (start..=start + s.text.len()).contains(&at)
        })
    });
    let mut message = format!("{}{code}", db.message());
    match line {
        Some(line) => message.push_str(&format!(" at line {line} of {file}")),
        None => message.push_str(&format!(" in {file}")),
    }
    if let Some(failing) = failing {
        message.push_str(&format!("; failing statement{label}: {}", abbreviate(failing.text)));
    }
    message
}

/// A statement on one line, at most about 200 characters.
fn abbreviate(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((at, _)) => format!("{} …", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let base = Duration::from_millis(100);
        for retry in 0..20 {
            let d = backoff(base, retry);
            let exp = base.saturating_mul(1 << retry.min(16)).min(Duration::from_secs(30));
            assert!(d >= exp && d <= exp.mul_f64(1.5), "{retry}: {d:?}");
        }
    }
}
