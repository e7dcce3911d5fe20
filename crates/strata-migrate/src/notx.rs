//! `-- no-transaction` files: split into statements by the lexer and run one by one (so
//! several `CREATE INDEX CONCURRENTLY` work in one file), with progress recorded after each
//! statement in `_strata_migration_progress`. While partial, the tracking row has
//! `success = false` (sqlx's `Migrator` then refuses to run over it, as it should); a rerun
//! resumes at the statement that failed. A statement that can run in a transaction block
//! commits together with its progress row (and is retried like a transactional migration
//! when its `lock_timeout` expires); one that cannot (`CREATE INDEX CONCURRENTLY` …)
//! cannot be atomic with it: a runner killed between the end of such a statement and its
//! progress row runs it again on resume (then `IF NOT EXISTS` is the file author's friend,
//! and an INVALID index is reported before resuming).

use std::time::{Duration, Instant};

use sqlx::migrate::Migration;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::apply::{self, Ctx, Outcome, describe_failure};
use crate::events::{self, Event, Kind};
use crate::lexer::{self, Statement};
use crate::{MigrateError, checksum, directive, millis, sqlstate};

/// `DROP INDEX CONCURRENTLY` for every invalid index outside the system schemas (left by a
/// failed or interrupted `CREATE INDEX CONCURRENTLY`; `IF NOT EXISTS` would skip it forever).
pub(crate) async fn invalid_index_fixes(
    conn: &mut PgConnection,
) -> Result<Vec<String>, MigrateError> {
    sqlx::query_scalar(
        "select format('DROP INDEX CONCURRENTLY %s;', c.oid::regclass)
           from pg_index i
           join pg_class c on c.oid = i.indexrelid
           join pg_namespace n on n.oid = c.relnamespace
          where not i.indisvalid
            and n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname not like 'pg_toast%'
          order by 1",
    )
    .fetch_all(conn)
    .await
    .map_err(MigrateError::db("looking for invalid indexes"))
}

/// The statements of a no-transaction file.
pub(crate) fn statements(migration: &Migration) -> Result<Vec<Statement<'_>>, MigrateError> {
    lexer::split(migration.sql.as_str())
        .map_err(|source| MigrateError::Lex { version: migration.version, source })
}

/// Applies a no-transaction migration: from its start (`resume` is `None`), or resuming a
/// partial run after the given number of statements.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    migration: &Migration,
    resume: Option<usize>,
    ctx: Ctx<'_>,
) -> Result<Outcome, MigrateError> {
    let start = Instant::now();
    let statements = statements(migration)?;
    let total = statements.len();
    let resume_at = resume.unwrap_or(0);
    if resume.is_none() {
        let mut tx = conn.begin().await.map_err(MigrateError::db("beginning a transaction"))?;
        apply::record_applied(&mut tx, migration, start.elapsed(), false).await?;
        sqlx::query(
            "insert into _strata_migration_progress (version, checksum, statements_done, statements_total)
             values ($1, $2, 0, $3)
             on conflict (version) do update set checksum = excluded.checksum,
                 statements_done = 0, statements_total = excluded.statements_total, updated_at = now()",
        )
        .bind(migration.version)
        .bind(&*migration.checksum)
        .bind(count(total))
        .execute(&mut *tx)
        .await
        .map_err(MigrateError::db("recording progress"))?;
        tx.commit().await.map_err(MigrateError::db("recording the start of a migration"))?;
    } else {
        let fixes = invalid_index_fixes(conn).await?;
        if !fixes.is_empty() {
            return Err(MigrateError::InvalidIndexes { fixes });
        }
        tracing::info!(
            migration.version = migration.version,
            statement = resume_at + 1,
            statements = total,
            "resuming a partial no-transaction migration"
        );
    }
    let timeouts = StatementTimeouts::of(migration, ctx)?;
    let mut retries = 0;
    for (index, statement) in statements.iter().enumerate().skip(resume_at) {
        set_lock_timeout(conn, Some(timeouts.of_statement(statement))).await?;
        tracing::info!(
            migration.version = migration.version,
            statement = %format!("{}/{total}", index + 1),
            line = statement.line,
            "running statement"
        );
        let mut tries = 0;
        loop {
            match run_statement(conn, migration.version, index, statement).await? {
                Ok(()) => break,
                Err((e, in_transaction))
                    if in_transaction
                        && sqlstate::is_lock_timeout(&e)
                        && tries < ctx.settings.lock_retries =>
                {
                    let delay = apply::backoff(ctx.settings.retry_base, tries);
                    tries += 1;
                    retries += 1;
                    tracing::warn!(
                        migration.version = migration.version,
                        statement = index + 1,
                        retry = tries,
                        retries_max = ctx.settings.lock_retries,
                        retry_in_ms = millis(delay),
                        "lock_timeout expired; the statement was rolled back, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err((source, _)) => {
                    let _ = set_lock_timeout(conn, None).await;
                    return Err(
                        failed(conn, migration, statement, (index, total), source, ctx).await
                    );
                }
            }
        }
    }
    set_lock_timeout(conn, None).await?;
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning a transaction"))?;
    sqlx::query(
        "update _sqlx_migrations set success = true, execution_time = $2 where version = $1",
    )
    .bind(migration.version)
    .bind(apply::nanos(start.elapsed()))
    .execute(&mut *tx)
    .await
    .map_err(MigrateError::db("marking the migration applied"))?;
    sqlx::query("delete from _strata_migration_progress where version = $1")
        .bind(migration.version)
        .execute(&mut *tx)
        .await
        .map_err(MigrateError::db("clearing progress"))?;
    let mut event = Event::new(Kind::Apply, migration.version, &migration.description);
    event.checksum = Some(&migration.checksum);
    event.normalized_checksum = Some(checksum::normalized_checksum(migration.sql.as_str()));
    event.lock_wait_ms = Some(ctx.lock_wait_ms);
    event.duration_ms = Some(millis(start.elapsed()));
    event.statements = Some((total, total));
    event.retries = retries;
    event.detail = resume.map(|done| format!("resumed at statement {}", done + 1));
    events::record(&mut tx, &event).await?;
    tx.commit().await.map_err(MigrateError::db("marking the migration applied"))?;
    Ok(Outcome { elapsed: start.elapsed(), retries, statements: Some(total - resume_at) })
}

/// Runs one statement and records it as done. A statement that may run in a transaction
/// block runs in one together with its progress row, so it is done exactly once even if the
/// runner dies; one that may not (`CREATE INDEX CONCURRENTLY`, `VACUUM`, a procedure that
/// commits: SQLSTATE 25001 or 2D000, raised before it changes anything) runs on its own, and
/// its progress is recorded right after. The outer error is bookkeeping, the inner the
/// statement's, with whether it ran in a (rolled back) transaction.
async fn run_statement(
    conn: &mut PgConnection,
    version: i64,
    index: usize,
    statement: &Statement<'_>,
) -> Result<Result<(), (sqlx::Error, bool)>, MigrateError> {
    let sql = || sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned()));
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning a transaction"))?;
    match sql().execute(&mut *tx).await {
        Ok(_) => {
            record_progress(&mut tx, version, index + 1).await?;
            return Ok(tx.commit().await.map_err(|e| (e, true)));
        }
        Err(e) if !sqlstate::needs_no_transaction(&e) => {
            tx.rollback().await.map_err(MigrateError::db("rolling back"))?;
            return Ok(Err((e, true)));
        }
        Err(_) => tx.rollback().await.map_err(MigrateError::db("rolling back"))?,
    }
    if let Err(e) = sql().execute(&mut *conn).await {
        return Ok(Err((e, false)));
    }
    record_progress(conn, version, index + 1).await?;
    Ok(Ok(()))
}

async fn record_progress(
    conn: &mut PgConnection,
    version: i64,
    done: usize,
) -> Result<(), MigrateError> {
    sqlx::query(
        "update _strata_migration_progress set statements_done = $2, updated_at = now()
          where version = $1",
    )
    .bind(version)
    .bind(count(done))
    .execute(conn)
    .await
    .map_err(MigrateError::db("recording progress"))?;
    Ok(())
}

/// Reverts with a no-transaction `.down.sql`, statement by statement, then deletes the row.
pub(crate) async fn revert(
    conn: &mut PgConnection,
    down: &Migration,
    ctx: Ctx<'_>,
) -> Result<Outcome, MigrateError> {
    let start = Instant::now();
    let statements = statements(down)?;
    let total = statements.len();
    let timeouts = StatementTimeouts::of(down, ctx)?;
    for (index, statement) in statements.iter().enumerate() {
        set_lock_timeout(conn, Some(timeouts.of_statement(statement))).await?;
        let ran = sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned())).execute(&mut *conn).await;
        if let Err(source) = ran {
            let _ = set_lock_timeout(conn, None).await;
            return Err(failed(conn, down, statement, (index, total), source, ctx).await);
        }
    }
    set_lock_timeout(conn, None).await?;
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning a transaction"))?;
    apply::delete_applied(&mut tx, down.version).await?;
    let mut event = Event::new(Kind::Revert, down.version, &down.description);
    event.lock_wait_ms = Some(ctx.lock_wait_ms);
    event.duration_ms = Some(millis(start.elapsed()));
    event.statements = Some((total, total));
    events::record(&mut tx, &event).await?;
    tx.commit().await.map_err(MigrateError::db("recording the revert"))?;
    Ok(Outcome { elapsed: start.elapsed(), retries: 0, statements: Some(total) })
}

/// The error for a failed statement, with the invalid indexes it left and how to go on;
/// records a `fail` event.
async fn failed(
    conn: &mut PgConnection,
    migration: &Migration,
    statement: &Statement<'_>,
    (index, total): (usize, usize),
    source: sqlx::Error,
    ctx: Ctx<'_>,
) -> MigrateError {
    let done = match index {
        0 => "no statement of it ran".to_owned(),
        1 => "statement 1 stays done".to_owned(),
        n => format!("statements 1-{n} stay done"),
    };
    let next = if migration.migration_type.is_down_migration() {
        "the migration is still recorded as applied, and a rerun of down starts this file over"
            .to_owned()
    } else {
        format!("a rerun resumes at statement {}", index + 1)
    };
    let label = format!("{}/{total}", index + 1);
    let mut message = format!(
        "{} (no-transaction file: {done}; {next})",
        describe_failure(&source, migration, Some((statement, &label))),
    );
    if let Ok(fixes) = invalid_index_fixes(conn).await
        && !fixes.is_empty()
    {
        message.push_str(&format!(
            "; it left an INVALID index behind: run {} then run strata-migrate again",
            fixes.join(" ")
        ));
    }
    let mut event = Event::new(Kind::Fail, migration.version, &migration.description);
    event.lock_wait_ms = Some(ctx.lock_wait_ms);
    event.statements = Some((index, total));
    event.detail = Some(message.clone());
    if let Err(e) = events::record(conn, &event).await {
        tracing::warn!(error = %e, "could not record the failure in _strata_migration_events");
    }
    MigrateError::Migration {
        version: migration.version,
        description: migration.description.to_string(),
        message,
        source,
    }
}

/// The `lock_timeout` of each statement of a no-transaction file: the configured one, except
/// that a `CONCURRENTLY` statement gets none (0) unless the file sets one with a directive.
/// A concurrent build waits for every older transaction (without blocking traffic: its
/// SHARE UPDATE EXCLUSIVE lock does not conflict with reads and writes); cancelled by
/// `lock_timeout` while it waits, it would leave an INVALID index behind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementTimeouts {
    configured: Duration,
    explicit: bool,
}

impl StatementTimeouts {
    pub(crate) fn of(migration: &Migration, ctx: Ctx<'_>) -> Result<Self, MigrateError> {
        Self::with_default(migration, ctx.settings.lock_timeout)
    }

    pub(crate) fn with_default(
        migration: &Migration,
        default: Duration,
    ) -> Result<Self, MigrateError> {
        let directive = directive::lock_timeout(migration)?;
        Ok(Self { configured: directive.unwrap_or(default), explicit: directive.is_some() })
    }

    pub(crate) fn of_statement(&self, statement: &Statement<'_>) -> Duration {
        if statement.concurrently && !self.explicit { Duration::ZERO } else { self.configured }
    }
}

/// Sets the session's `lock_timeout` for the statements of a no-transaction file, or resets it.
async fn set_lock_timeout(
    conn: &mut PgConnection,
    timeout: Option<Duration>,
) -> Result<(), MigrateError> {
    let query = match timeout {
        Some(timeout) => sqlx::query("select set_config('lock_timeout', $1, false)")
            .bind(format!("{}ms", timeout.as_millis())),
        None => sqlx::query("reset lock_timeout"),
    };
    query.execute(conn).await.map_err(MigrateError::db("setting lock_timeout"))?;
    Ok(())
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
