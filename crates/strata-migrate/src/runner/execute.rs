//! The executor: runs a [`Plan`] on the runner's session, step by step, as the plan says.
//!
//! A transactional step runs its file in one transaction that begins with the plan's
//! `SET LOCAL` timeouts and ends with its bookkeeping and event (one statement), retried whole
//! when its `lock_timeout` expires.
//!
//! A `-- no-transaction` step runs its statements one by one, with progress recorded in
//! `_strata_migration_progress` as they go. While partial, the tracking row has
//! `success = false` (sqlx's `Migrator` then refuses to run over it, as it should); a rerun
//! resumes at the statement that failed. A statement that can run in a transaction block runs
//! in one simple query together with its progress row (one implicit transaction: done exactly
//! once even if the runner dies, and retried like a transactional migration when its
//! `lock_timeout` expires). One that cannot (`CREATE INDEX CONCURRENTLY` …) cannot be atomic
//! with it: a runner killed between the end of such a statement and its progress row runs it
//! again on resume (then `IF NOT EXISTS` is the file author's friend, and an INVALID index is
//! reported before resuming).

use std::time::{Duration, Instant};

use sqlx::migrate::Migration;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::error::MigrateError;
use crate::runner::events::{self, Book, Event, Kind};
use crate::runner::observe::{Progress, tell};
use crate::runner::options::Settings;
use crate::runner::plan::{Direction, How, Plan, Planned, Statements};
use crate::runner::progress::{Watch, watched};
use crate::runner::report::millis;
use crate::runner::retry::{self, SqlFailure, Tried, Try};
use crate::runner::sqlstate;
use crate::tools::files;
use crate::tools::lexer::{self, Statement};

/// What one step took.
#[derive(Debug, Clone)]
pub(crate) struct Outcome<'m> {
    pub migration: &'m Migration,
    pub elapsed: Duration,
    pub retries: u32,
    /// Statements run, for a no-transaction file.
    pub statements: Option<usize>,
    /// A checkpoint recorded, not run.
    pub recorded: bool,
}

/// Runs every step of `plan` in order; a failed step stops the run (those before it stay
/// done). `lock_wait` is how long the runner waited for the migration lock, for the events.
pub(crate) async fn run<'m>(
    conn: &mut PgConnection,
    plan: &Plan<'m>,
    lock_wait: Duration,
    watch: Option<&Watch>,
) -> Result<Vec<Outcome<'m>>, MigrateError> {
    let mut executor =
        Executor { conn, plan, lock_wait_ms: millis(lock_wait), session_set: false, watch };
    let result = executor.steps().await;
    if result.is_err() && executor.session_set {
        // Leave the session as the plan found it: a library caller may go on using it.
        let _ = sqlx::raw_sql("RESET lock_timeout; RESET statement_timeout")
            .execute(&mut *executor.conn)
            .await;
    }
    result
}

struct Executor<'a, 'm> {
    conn: &'a mut PgConnection,
    plan: &'a Plan<'m>,
    lock_wait_ms: f64,
    /// Whether the session's own timeouts are set by the plan (and not yet reset).
    session_set: bool,
    /// How long statements are reported on.
    watch: Option<&'a Watch>,
}

impl<'m> Executor<'_, 'm> {
    async fn steps(&mut self) -> Result<Vec<Outcome<'m>>, MigrateError> {
        let total = self.plan.steps.len();
        let up = self.plan.direction == Direction::Up;
        let mut outcomes = Vec::with_capacity(total);
        let observer = self.plan.settings.observer.as_ref();
        for (index, step) in self.plan.steps.iter().enumerate() {
            let m = step.migration;
            tell(observer, || Progress::Migration {
                index: index + 1,
                total,
                version: m.version,
                description: m.description.to_string(),
                up,
            });
            tracing::info!(
                migration.version = m.version,
                migration.description = %m.description,
                migration.no_transaction = m.no_tx,
                progress = %format!("{}/{total}", index + 1),
                "{}",
                if up { "applying migration" } else { "reverting migration" }
            );
            let outcome = match &step.how {
                How::Transaction { begin, timeouts } => {
                    self.transaction(m, begin, timeouts.lock).await?
                }
                How::Statements(statements) => self.statements(m, statements).await?,
                How::Record { replaced } => self.record(m, *replaced).await?,
            };
            tell(observer, || Progress::Done { version: m.version, elapsed: outcome.elapsed });
            tracing::info!(
                migration.version = m.version,
                duration_ms = millis(outcome.elapsed),
                retries = outcome.retries,
                statements = outcome.statements,
                lock_wait_ms = self.lock_wait_ms,
                "{}",
                if up { "applied migration" } else { "reverted migration" }
            );
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Records a checkpoint whose files this database applied: its row and event, in one
    /// statement; nothing of the file runs.
    async fn record(
        &mut self,
        m: &'m Migration,
        replaced: usize,
    ) -> Result<Outcome<'m>, MigrateError> {
        let start = Instant::now();
        let event = Event::of(Kind::Baseline, m).lock_wait_ms(self.lock_wait_ms).detail(format!(
            "checkpoint recorded, not run: this database applied the {replaced} migration(s) it stands for"
        ));
        events::record(self.conn, Book::Checkpoint, &event).await?;
        Ok(Outcome {
            migration: m,
            elapsed: start.elapsed(),
            retries: 0,
            statements: None,
            recorded: true,
        })
    }

    /// Runs a file in one transaction with its bookkeeping, retried on a lock timeout.
    async fn transaction(
        &mut self,
        m: &'m Migration,
        begin: &str,
        lock_timeout: Duration,
    ) -> Result<Outcome<'m>, MigrateError> {
        let (direction, lock_wait_ms, watch) = (self.plan.direction, self.lock_wait_ms, self.watch);
        let conn = &mut *self.conn;
        let Tried { result, retries } = retry::on_lock_timeout(
            &self.plan.settings,
            async |retries| attempt(conn, m, begin, direction, (lock_wait_ms, retries), watch).await,
            |retry, delay| {
                tell_retry(&self.plan.settings, m.version, retry);
                tracing::warn!(
                    migration.version = m.version,
                    migration.description = %m.description,
                    retry,
                    retries_max = self.plan.settings.lock_retries,
                    retry_in_ms = millis(delay),
                    "lock_timeout expired (another session holds a lock the migration needs); rolled back, retrying"
                );
            },
        )
        .await?;
        let (error, rolled_back) = match result {
            Ok(elapsed) => {
                return Ok(Outcome {
                    migration: m,
                    elapsed,
                    retries,
                    statements: None,
                    recorded: false,
                });
            }
            Err(SqlFailure { error, rolled_back }) => (error, rolled_back),
        };
        if sqlstate::connection_lost(&error) {
            let outcome = if rolled_back {
                "its transaction never committed, so nothing of it is applied"
            } else {
                "its commit was sent but never confirmed, so it is applied or not \
                 (`strata-migrate status` tells)"
            };
            return Err(self.connection_lost(m, outcome.to_owned(), error));
        }
        let mut message = describe_failure(&error, m, None);
        if sqlstate::cannot_run_in_transaction(&error) {
            message.push_str(
                "; this statement cannot run in a transaction: make `-- no-transaction` the file's first line (only if the file is not applied anywhere yet)",
            );
        }
        if sqlstate::is_lock_timeout(&error) {
            message.push_str(&format!(
                "; gave up after {} tries, each waiting lock_timeout ({} ms); nothing of it remains",
                retries + 1,
                lock_timeout.as_millis()
            ));
        }
        let event = Event::of(Kind::Fail, m).lock_wait_ms(lock_wait_ms).retries(retries);
        Err(failed(self.conn, m, event, message, error).await)
    }

    /// Runs a no-transaction file statement by statement, from where a partial run stopped.
    async fn statements(
        &mut self,
        m: &'m Migration,
        plan: &Statements<'m>,
    ) -> Result<Outcome<'m>, MigrateError> {
        let start = Instant::now();
        let total = plan.all.len();
        let up = self.plan.direction == Direction::Up;
        match plan.resume_at {
            None if up => events::started(self.conn, m, total).await?,
            None => {}
            Some(done) => {
                let fixes = invalid_index_fixes(self.conn).await?;
                if !fixes.is_empty() {
                    return Err(MigrateError::InvalidIndexes { fixes });
                }
                tracing::info!(
                    migration.version = m.version,
                    statement = done + 1,
                    statements = total,
                    "resuming a partial no-transaction migration"
                );
            }
        }
        let mut retries = 0;
        for (index, planned) in plan.to_run() {
            if let Some(set) = &planned.set {
                self.session_timeouts(set, true).await?;
            }
            tracing::info!(
                migration.version = m.version,
                statement = %format!("{}/{total}", index + 1),
                line = planned.statement.line,
                "running statement"
            );
            // Progress is recorded with each statement of `up`, except after a last statement
            // run on its own: the bookkeeping that finishes the file follows at once.
            let progress = up.then_some(index + 1).filter(|&done| done < total || !planned.alone);
            let (conn, watch) = (&mut *self.conn, self.watch);
            let what = format!("{} statement {}/{total}", files::file_name(m), index + 1);
            let tried = retry::on_lock_timeout(
                &self.plan.settings,
                async |_| {
                    watched(watch, &what, statement(conn, m.version, planned, progress)).await
                },
                |retry, delay| {
                    tell_retry(&self.plan.settings, m.version, retry);
                    tracing::warn!(
                        migration.version = m.version,
                        statement = index + 1,
                        retry,
                        retries_max = self.plan.settings.lock_retries,
                        retry_in_ms = millis(delay),
                        "lock_timeout expired; the statement was rolled back, retrying"
                    );
                },
            )
            .await?;
            retries += tried.retries;
            if let Err(SqlFailure { error, .. }) = tried.result {
                return Err(self
                    .statement_failed(m, &planned.statement, (index, total), error)
                    .await);
            }
        }
        if let Some(reset) = &plan.reset_after {
            self.session_timeouts(reset, false).await?;
        }
        let elapsed = start.elapsed();
        let kind = if up { Kind::Apply } else { Kind::Revert };
        let mut event = Event::of(kind, m)
            .lock_wait_ms(self.lock_wait_ms)
            .took(elapsed)
            .statements(total, total)
            .retries(retries);
        if let Some(done) = plan.resume_at {
            event = event.detail(format!("resumed at statement {}", done + 1));
        }
        let book = if up { Book::Finished { elapsed } } else { Book::Reverted };
        events::record(self.conn, book, &event).await?;
        let ran = total - plan.resume_at.unwrap_or(0);
        Ok(Outcome { migration: m, elapsed, retries, statements: Some(ran), recorded: false })
    }

    /// Runs the plan's `SET` (`set`) or `RESET` of the session's timeouts.
    async fn session_timeouts(&mut self, sql: &str, set: bool) -> Result<(), MigrateError> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *self.conn)
            .await
            .map_err(MigrateError::db("setting the session's timeouts"))?;
        self.session_set = set;
        Ok(())
    }

    /// The error for a migration whose connection was lost: nothing can be recorded on it.
    fn connection_lost(&self, m: &Migration, outcome: String, source: sqlx::Error) -> MigrateError {
        MigrateError::ConnectionLost {
            doing: match self.plan.direction {
                Direction::Up => "applying",
                Direction::Down => "reverting",
            },
            version: m.version,
            description: m.description.to_string(),
            outcome,
            source,
        }
    }

    /// The error for a failed statement, with the invalid indexes it left and how to go on;
    /// records a `fail` event.
    async fn statement_failed(
        &mut self,
        m: &'m Migration,
        statement: &Statement<'_>,
        (index, total): (usize, usize),
        source: sqlx::Error,
    ) -> MigrateError {
        let done = match index {
            0 => "no statement of it ran".to_owned(),
            1 => "statement 1 stays done".to_owned(),
            n => format!("statements 1-{n} stay done"),
        };
        let next = if self.plan.direction == Direction::Down {
            "the migration is still recorded as applied, and a rerun of down starts this file over"
                .to_owned()
        } else {
            format!("a rerun resumes at statement {}", index + 1)
        };
        if sqlstate::connection_lost(&source) {
            let outcome = format!(
                "no-transaction file: {done}, statement {}/{total} did not finish; {next}",
                index + 1
            );
            return self.connection_lost(m, outcome, source);
        }
        let label = format!("{}/{total}", index + 1);
        let mut message = format!(
            "{} (no-transaction file: {done}; {next})",
            describe_failure(&source, m, Some((statement, &label))),
        );
        if let Ok(fixes) = invalid_index_fixes(self.conn).await
            && !fixes.is_empty()
        {
            message.push_str(&format!(
                "; it left an INVALID index behind: run {} then run strata-migrate again",
                fixes.join(" ")
            ));
        }
        let event =
            Event::of(Kind::Fail, m).lock_wait_ms(self.lock_wait_ms).statements(index, total);
        failed(self.conn, m, event, message, source).await
    }
}

/// One try of a transactional file: the plan's `BEGIN` batch, the file, the bookkeeping with
/// Tells the observer that a migration's lock timeout expired and it is tried again
/// (`retry` of `lock_retries`).
fn tell_retry(settings: &Settings, version: i64, retry: u32) {
    let of = settings.lock_retries;
    tell(settings.observer.as_ref(), || Progress::Retry { version, retry, of });
}

/// its event, `COMMIT`. Returns how long the try took.
async fn attempt(
    conn: &mut PgConnection,
    m: &Migration,
    begin: &str,
    direction: Direction,
    (lock_wait_ms, retries): (f64, u32),
    watch: Option<&Watch>,
) -> Try<Duration> {
    let start = Instant::now();
    let mut tx = conn
        .begin_with(AssertSqlSafe(begin.to_owned()))
        .await
        .map_err(MigrateError::db("beginning a transaction"))?;
    let file = files::file_name(m);
    let ran = watched(
        watch,
        &file,
        sqlx::raw_sql(AssertSqlSafe(m.sql.as_str().to_owned())).execute(&mut *tx),
    );
    if let Err(error) = ran.await {
        return Ok(Err(SqlFailure { error, rolled_back: true }));
    }
    let (kind, book) = match direction {
        Direction::Up => (Kind::Apply, Book::Applied { elapsed: start.elapsed() }),
        Direction::Down => (Kind::Revert, Book::Reverted),
    };
    let event =
        Event::of(kind, m).lock_wait_ms(lock_wait_ms).took(start.elapsed()).retries(retries);
    events::record(&mut tx, book, &event).await?;
    match tx.commit().await {
        Ok(()) => Ok(Ok(start.elapsed())),
        // A commit that failed on the server rolled back; one whose answer was lost may not.
        Err(error) => {
            let rolled_back = !strata_config::is_outcome_unknown(&error);
            Ok(Err(SqlFailure { error, rolled_back }))
        }
    }
}

/// Runs one statement of a no-transaction file, with its progress row (`progress`: the
/// statements done after it) when there is one.
async fn statement(
    conn: &mut PgConnection,
    version: i64,
    planned: &Planned<'_>,
    progress: Option<usize>,
) -> Try<()> {
    let text = planned.statement.text;
    if !planned.alone {
        // One simple query is one implicit transaction: the statement and its progress row
        // commit together. The newline ends a trailing line comment of the statement.
        let sql = match progress {
            Some(done) => format!("{text}\n;\n{}", events::progress_sql(version, done)),
            None => text.to_owned(),
        };
        match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await {
            Ok(_) => return Ok(Ok(())),
            Err(error) if !sqlstate::needs_no_transaction(&error) => {
                return Ok(Err(SqlFailure { error, rolled_back: true }));
            }
            // Refused before it changed anything: it must run on its own.
            Err(_) => {}
        }
    }
    if let Err(error) = sqlx::raw_sql(AssertSqlSafe(text.to_owned())).execute(&mut *conn).await {
        return Ok(Err(SqlFailure { error, rolled_back: false }));
    }
    if let Some(done) = progress {
        sqlx::raw_sql(AssertSqlSafe(events::progress_sql(version, done)))
            .execute(conn)
            .await
            .map_err(MigrateError::db("recording progress"))?;
    }
    Ok(Ok(()))
}

/// Records the failure's event and returns the error.
async fn failed(
    conn: &mut PgConnection,
    m: &Migration,
    event: Event<'_>,
    message: String,
    source: sqlx::Error,
) -> MigrateError {
    events::record_failure(conn, &event.detail(message.clone())).await;
    MigrateError::Migration {
        version: m.version,
        description: m.description.to_string(),
        message,
        source,
    }
}

/// `DROP INDEX CONCURRENTLY IF EXISTS` for every invalid index outside the system schemas
/// (left by a failed or interrupted `CREATE INDEX CONCURRENTLY`; `IF NOT EXISTS` would skip
/// it forever). `IF EXISTS`: on Citus the drop goes to every shard, and a shard whose build
/// never started has no index to drop.
async fn invalid_index_fixes(conn: &mut PgConnection) -> Result<Vec<String>, MigrateError> {
    sqlx::query_scalar(
        "select format('DROP INDEX CONCURRENTLY IF EXISTS %s;', c.oid::regclass)
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
    let file = files::file_name(migration);
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
    if let Some(node) = worker(db) {
        message.push_str(&format!(" on worker {node}"));
    }
    match line {
        Some(line) => message.push_str(&format!(" at line {line} of {file}")),
        None => message.push_str(&format!(" in {file}")),
    }
    if let Some(failing) = failing {
        message.push_str(&format!("; failing statement{label}: {}", abbreviate(failing.text)));
    }
    message
}

/// The Citus worker that raised the error, when it came from one: Citus relays a worker's
/// error with the context `while executing command on HOST:PORT`.
fn worker(db: &dyn sqlx::error::DatabaseError) -> Option<&str> {
    let context = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?.r#where()?;
    let after = context.split("while executing command on ").nth(1)?;
    after.split_whitespace().next()
}

/// A statement on one line, at most about 200 characters.
fn abbreviate(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((at, _)) => format!("{} …", &one_line[..at]),
        None => one_line,
    }
}
