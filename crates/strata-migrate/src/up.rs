//! `up`: applying pending migrations under the lock, or printing what would run.

use std::time::Duration;

use sqlx::migrate::Migrator;
use strata_config::{Config, MigrationsConfig};

use crate::apply::{self, Ctx, Direction};
use crate::history::History;
use crate::plan::{self, UpPlan};
use crate::{MigrateError, Session, dryrun, events, millis, notx};

/// How many times a transactional migration is retried after its `lock_timeout` expired.
pub const LOCK_RETRIES: u32 = 4;
/// The first wait before such a retry; it doubles with each retry (plus jitter).
pub const RETRY_BASE: Duration = Duration::from_millis(500);

/// The settings every writing command runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// How long to wait for another runner's lock.
    pub lock_wait: Duration,
    /// `lock_timeout` inside each migration's transaction (and for each statement of a
    /// no-transaction file).
    pub lock_timeout: Duration,
    /// Retries of a transactional migration whose `lock_timeout` expired.
    pub lock_retries: u32,
    /// The first backoff before such a retry.
    pub retry_base: Duration,
}

impl Settings {
    /// The settings of `[migrations]`, with the default retries.
    pub fn from_config(config: &MigrationsConfig) -> Self {
        Self {
            lock_wait: config.lock_wait,
            lock_timeout: config.lock_timeout,
            lock_retries: LOCK_RETRIES,
            retry_base: RETRY_BASE,
        }
    }
}

/// What `up` is allowed to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// Apply only up to (and including) this version.
    pub target: Option<i64>,
    /// Print the SQL that would run instead of running it; takes no lock.
    pub dry_run: bool,
    /// Run even though the database has applied versions with no file.
    pub ignore_missing: bool,
    /// Apply pending versions older than the newest applied one.
    pub allow_out_of_order: bool,
}

impl UpOptions {
    /// The options of `[migrations]`: everything pending, for real.
    pub fn from_config(config: &MigrationsConfig) -> Self {
        Self {
            settings: Settings::from_config(config),
            target: None,
            dry_run: false,
            ignore_missing: false,
            allow_out_of_order: false,
        }
    }
}

/// One migration that `up` applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedNow {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Lock-timeout retries it needed.
    pub retries: u32,
    /// Statements run, for a no-transaction file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<usize>,
}

/// What `up` did, or with `dry_run` would do.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpReport {
    /// The migrations applied, in order.
    pub applied: Vec<AppliedNow>,
    /// With `dry_run`: the versions that would be applied, in order.
    pub planned: Vec<i64>,
    /// With `dry_run`: the SQL that would run, with transaction boundaries and settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_sql: Option<String>,
    /// Applied files that differ only in line endings or trailing white space.
    pub warnings: Vec<String>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
}

/// Connects with `config`, applies every pending migration of `migrator`, and closes the
/// session: what a service calls at start-up.
///
/// # Errors
///
/// As [`Session::from_config`] and [`Session::up`].
pub async fn run(config: &Config, migrator: &Migrator) -> Result<UpReport, MigrateError> {
    let mut session = Session::from_config(config).await?;
    let result = session.up(migrator, &UpOptions::from_config(&config.migrations)).await;
    session.close().await;
    result
}

impl Session {
    /// Applies every pending migration in version order (up to `options.target`), each in
    /// its own transaction with its tracking row, under the migration lock; a no-transaction
    /// file statement by statement with recorded progress.
    ///
    /// # Errors
    ///
    /// [`MigrateError::LockTimeout`] when another runner keeps the lock, the history errors of
    /// [`MigrateError`] when the files and the database disagree, and
    /// [`MigrateError::Migration`] when a migration fails (those before it stay applied).
    pub async fn up(
        &mut self,
        migrator: &Migrator,
        options: &UpOptions,
    ) -> Result<UpReport, MigrateError> {
        if options.dry_run {
            let history = History::read(&mut self.conn).await?;
            let plan = plan_for(migrator, &history, options)?;
            return Ok(UpReport {
                planned: plan.steps.iter().map(|s| s.migration.version).collect(),
                dry_run_sql: Some(dryrun::up(&plan, &options.settings, self.lock_key())?),
                warnings: plan.warnings,
                ..UpReport::default()
            });
        }
        self.locked(options.settings.lock_wait, async |session, waited| {
            let mut report = session.up_locked(migrator, options, waited).await?;
            report.lock_wait_ms = millis(waited);
            Ok(report)
        })
        .await
    }

    async fn up_locked(
        &mut self,
        migrator: &Migrator,
        options: &UpOptions,
        waited: Duration,
    ) -> Result<UpReport, MigrateError> {
        events::create_tables(&mut self.conn).await?;
        // Re-read under the lock: another runner may have applied some meanwhile.
        let history = History::read(&mut self.conn).await?;
        let plan = plan_for(migrator, &history, options)?;
        let ctx = Ctx { settings: &options.settings, lock_wait_ms: millis(waited) };
        let total = plan.steps.len();
        let mut report = UpReport { warnings: plan.warnings.clone(), ..UpReport::default() };
        for (index, step) in plan.steps.iter().enumerate() {
            let migration = step.migration;
            tracing::info!(
                migration.version = migration.version,
                migration.description = %migration.description,
                migration.no_transaction = migration.no_tx,
                progress = %format!("{}/{total}", index + 1),
                "applying migration"
            );
            let outcome = if migration.no_tx {
                notx::apply(&mut self.conn, migration, step.resume, ctx).await?
            } else {
                apply::run_in_transaction(&mut self.conn, migration, Direction::Up, ctx).await?
            };
            tracing::info!(
                migration.version = migration.version,
                duration_ms = millis(outcome.elapsed),
                retries = outcome.retries,
                statements = outcome.statements,
                lock_wait_ms = ctx.lock_wait_ms,
                "applied migration"
            );
            report.applied.push(AppliedNow {
                version: migration.version,
                description: migration.description.to_string(),
                duration_ms: millis(outcome.elapsed),
                retries: outcome.retries,
                statements: outcome.statements,
            });
        }
        tracing::info!(applied = report.applied.len(), "database is up to date");
        Ok(report)
    }
}

fn plan_for<'m>(
    migrator: &'m Migrator,
    history: &History,
    options: &UpOptions,
) -> Result<UpPlan<'m>, MigrateError> {
    plan::plan_up(
        migrator,
        history,
        options.target,
        options.ignore_missing,
        options.allow_out_of_order,
    )
}
