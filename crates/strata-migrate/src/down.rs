//! `down`: reverting applied migrations with their `.down.sql` files, newest first.

use sqlx::migrate::Migrator;

use crate::apply::{self, Ctx, Direction};
use crate::history::History;
use crate::plan::{self, DownTarget};
use crate::{MigrateError, Session, Settings, dryrun, events, millis, notx};

/// What `down` is allowed to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// Which migrations to revert.
    pub target: DownTarget,
    /// Print the SQL that would run instead of running it; takes no lock.
    pub dry_run: bool,
}

impl DownOptions {
    /// Options to revert down to `target`.
    pub fn new(settings: Settings, target: DownTarget) -> Self {
        Self { settings, target, dry_run: false }
    }
}

/// One migration that `down` reverted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reverted {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
}

/// What `down` did, or with `dry_run` would do.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DownReport {
    /// The migrations reverted, newest first.
    pub reverted: Vec<Reverted>,
    /// With `dry_run`: the versions that would be reverted, in order.
    pub planned: Vec<i64>,
    /// With `dry_run`: the SQL that would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_sql: Option<String>,
    /// Applied files that differ only in line endings or trailing white space.
    pub warnings: Vec<String>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
}

impl Session {
    /// Reverts applied migrations, newest first, each with its `.down.sql` in a transaction
    /// that also deletes its tracking row. Refuses before changing anything when one of them
    /// has no `.down.sql`.
    ///
    /// # Errors
    ///
    /// [`MigrateError::NoDownFile`], [`MigrateError::LockTimeout`], the history errors, and
    /// [`MigrateError::Migration`] when a down file fails (those before it stay reverted).
    pub async fn down(
        &mut self,
        migrator: &Migrator,
        options: &DownOptions,
    ) -> Result<DownReport, MigrateError> {
        if options.dry_run {
            let history = History::read(&mut self.conn).await?;
            let (downs, warnings) = plan::plan_down(migrator, &history, options.target)?;
            return Ok(DownReport {
                planned: downs.iter().map(|m| m.version).collect(),
                dry_run_sql: Some(dryrun::down(&downs, &options.settings, self.lock_key())?),
                warnings,
                ..DownReport::default()
            });
        }
        self.locked(options.settings.lock_wait, async |session, waited| {
            events::create_tables(&mut session.conn).await?;
            let history = History::read(&mut session.conn).await?;
            let (downs, warnings) = plan::plan_down(migrator, &history, options.target)?;
            let ctx = Ctx { settings: &options.settings, lock_wait_ms: millis(waited) };
            let mut report =
                DownReport { warnings, lock_wait_ms: millis(waited), ..DownReport::default() };
            let total = downs.len();
            for (index, down) in downs.into_iter().enumerate() {
                tracing::info!(
                    migration.version = down.version,
                    migration.description = %down.description,
                    progress = %format!("{}/{total}", index + 1),
                    "reverting migration"
                );
                let outcome = if down.no_tx {
                    notx::revert(&mut session.conn, down, ctx).await?
                } else {
                    apply::run_in_transaction(&mut session.conn, down, Direction::Down, ctx).await?
                };
                tracing::info!(
                    migration.version = down.version,
                    duration_ms = millis(outcome.elapsed),
                    retries = outcome.retries,
                    "reverted migration"
                );
                report.reverted.push(Reverted {
                    version: down.version,
                    description: down.description.to_string(),
                    duration_ms: millis(outcome.elapsed),
                });
            }
            Ok(report)
        })
        .await
    }
}
