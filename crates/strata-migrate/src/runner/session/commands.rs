//! The commands on a [`Session`]: `up`, `down`, `redo`, `baseline`, `repair`, each with the
//! migrations and its options struct, and `squashable` and `wait_for_replicas`. Each command
//! that writes runs its plan under [`Session::locked`]; with `dry_run` it reads, plans and
//! renders the plan instead.

use std::time::Duration;

use sqlx::migrate::Migrator;

use super::Session;
use crate::error::MigrateError;
use crate::runner::admin;
use crate::runner::execute;
use crate::runner::history::History;
use crate::runner::lock;
use crate::runner::options::{
    BaselineOptions, DownOptions, DownTarget, RedoOptions, RepairOptions, Settings, UpOptions,
};
use crate::runner::plan::Plan;
use crate::runner::render;
use crate::runner::report::{
    BaselineReport, DownReport, RedoReport, RepairReport, UpReport, millis,
};

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
            let (planned, dry_run_sql, warnings) =
                self.dry_run(|history| Plan::up(migrator, history, options)).await?;
            return Ok(UpReport { planned, dry_run_sql, warnings, ..UpReport::default() });
        }
        let watch = self.watch(&options.settings);
        let (warnings, outcomes, waited) = self
            .locked(&options.settings, async |conn, waited| {
                let plan = Plan::up(migrator, &History::read(conn).await?, options)?;
                let outcomes = execute::run(conn, &plan, waited, Some(&watch)).await?;
                Ok((plan.warnings, outcomes, waited))
            })
            .await?;
        tracing::info!(applied = outcomes.len(), "database is up to date");
        let replicas_caught_up = match options.wait_for_replicas {
            Some(wait) => Some(self.wait_for_replicas(wait).await?),
            None => None,
        };
        Ok(UpReport {
            replicas_caught_up,
            applied: crate::runner::report::applied(&outcomes),
            warnings,
            lock_wait_ms: millis(waited),
            ..UpReport::default()
        })
    }

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
            let (planned, dry_run_sql, warnings) =
                self.dry_run(|history| Plan::down(migrator, history, options)).await?;
            return Ok(DownReport { planned, dry_run_sql, warnings, ..DownReport::default() });
        }
        let watch = self.watch(&options.settings);
        self.locked(&options.settings, async |conn, waited| {
            let plan = Plan::down(migrator, &History::read(conn).await?, options)?;
            let outcomes = execute::run(conn, &plan, waited, Some(&watch)).await?;
            Ok(DownReport {
                reverted: crate::runner::report::reverted(&outcomes),
                warnings: plan.warnings,
                lock_wait_ms: millis(waited),
                ..DownReport::default()
            })
        })
        .await
    }

    /// Reverts the newest `options.count` applied migrations with their `.down.sql` files, then applies
    /// them again, under one hold of the migration lock: the loop of writing a migration.
    /// Refuses, before changing anything, on a database that is not a development one
    /// ([`Session::is_development`]) and when one of them has no `.down.sql`. Migrations
    /// pending above them stay pending.
    ///
    /// # Errors
    ///
    /// [`MigrateError::NotDevelopment`], [`MigrateError::NoDownFile`], and those of
    /// [`Session::down`] and [`Session::up`].
    pub async fn redo(
        &mut self,
        migrator: &Migrator,
        options: &RedoOptions,
    ) -> Result<RedoReport, MigrateError> {
        let (settings, count) = (&options.settings, options.count);
        if !self.is_development(settings) {
            return Err(MigrateError::NotDevelopment {
                target: self.target.clone(),
                host: self.host().to_owned(),
            });
        }
        let watch = self.watch(settings);
        self.locked(settings, async |conn, waited| {
            let down = DownOptions::new(settings.clone(), DownTarget::Steps(count));
            let down = Plan::down(migrator, &History::read(conn).await?, &down)?;
            let Some(top) = down.versions().into_iter().max() else {
                return Ok(RedoReport { lock_wait_ms: millis(waited), ..RedoReport::default() });
            };
            let reverted = execute::run(conn, &down, waited, Some(&watch)).await?;
            let mut up = UpOptions::new(settings.clone());
            up.target = Some(top);
            let up = Plan::up(migrator, &History::read(conn).await?, &up)?;
            let applied = execute::run(conn, &up, waited, Some(&watch)).await?;
            let mut warnings = down.warnings;
            warnings.extend(up.warnings);
            warnings.dedup();
            Ok(RedoReport {
                reverted: crate::runner::report::reverted(&reverted),
                applied: crate::runner::report::applied(&applied),
                warnings,
                lock_wait_ms: millis(waited),
            })
        })
        .await
    }

    /// Marks every migration up to `options.target` applied without running it (for a database
    /// created before the runner), as sqlx's `skip` does: `success = true`, the file's
    /// checksum, `execution_time = -1`; one `baseline` event each.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Invalid`] when `target` is not a migration's version,
    /// [`MigrateError::LockTimeout`], [`MigrateError::Database`].
    pub async fn baseline(
        &mut self,
        migrator: &Migrator,
        options: &BaselineOptions,
    ) -> Result<BaselineReport, MigrateError> {
        let (settings, target) = (&options.settings, options.target);
        admin::check_baseline_target(migrator, target)?;
        self.locked(settings, async |conn, waited| {
            let history = History::read(conn).await?;
            admin::baseline(conn, migrator, &history, target, waited).await
        })
        .await
    }

    /// Accepts the current checksum of every edited applied migration, and settles every
    /// failed (partial) one: with `mark_applied` it is recorded as applied (you finished it
    /// by hand); otherwise its record is removed so the next `up` runs it from the start
    /// (you undid its partial changes). Each change is one `repair` event.
    ///
    /// # Errors
    ///
    /// [`MigrateError::LockTimeout`], [`MigrateError::Database`].
    pub async fn repair(
        &mut self,
        migrator: &Migrator,
        options: &RepairOptions,
    ) -> Result<RepairReport, MigrateError> {
        let (settings, mark_applied) = (&options.settings, options.mark_applied);
        self.locked(settings, async |conn, _| {
            let history = History::read(conn).await?;
            admin::repair(conn, migrator, &history, mark_applied).await
        })
        .await
    }

    /// Whether the files through `through` may be squashed into a checkpoint, as this
    /// database stands: read under the migration lock (so no runner is half-way through), and
    /// refused when one of them failed here, or when this database applied some of them but
    /// not all (it would need the files the squash deletes). Returns how many it applied:
    /// none (a new database) or all. Changes nothing.
    ///
    /// # Errors
    ///
    /// [`MigrateError::LockTimeout`] when another runner keeps the lock, and
    /// [`MigrateError::Checkpoint`] for a failed or pending migration.
    pub async fn squashable(
        &mut self,
        migrator: &Migrator,
        through: i64,
        settings: &Settings,
    ) -> Result<usize, MigrateError> {
        self.lock(settings.lock_wait, settings.observer.as_ref()).await?;
        let history = History::read(&mut self.conn).await;
        let released = lock::release(&mut self.conn, self.lock_key).await;
        let applied = crate::tools::checkpoint::squashable(migrator, &history?, through)?;
        released?;
        Ok(applied)
    }

    /// Reads the history without a lock, plans, and renders the plan: the versions it would
    /// run, its script, and the warnings.
    async fn dry_run<'m>(
        &mut self,
        plan: impl FnOnce(&History) -> Result<Plan<'m>, MigrateError>,
    ) -> Result<(Vec<i64>, Option<String>, Vec<String>), MigrateError> {
        let plan = plan(&History::read(&mut self.conn).await?)?;
        Ok((plan.versions(), Some(render::script(&plan, self.lock_key)), plan.warnings))
    }

    /// Waits up to `wait` until every streaming replica connected to this server has replayed
    /// the write-ahead log up to now; returns how many there are.
    ///
    /// # Errors
    ///
    /// [`MigrateError::ReplicasBehind`] when some have not in time.
    pub async fn wait_for_replicas(&mut self, wait: Duration) -> Result<usize, MigrateError> {
        let start = std::time::Instant::now();
        let now: String = sqlx::query_scalar("select pg_current_wal_lsn()::text")
            .fetch_one(&mut self.conn)
            .await
            .map_err(MigrateError::db("reading the write-ahead log position"))?;
        loop {
            let (behind, replicas): (i64, i64) = sqlx::query_as(
                "select count(*) filter (where replay_lsn is null or replay_lsn < $1::pg_lsn),
                        count(*)
                   from pg_stat_replication",
            )
            .bind(&now)
            .fetch_one(&mut self.conn)
            .await
            .map_err(MigrateError::db("reading pg_stat_replication"))?;
            let (behind, replicas) = (count(behind), count(replicas));
            if behind == 0 {
                tracing::info!(replicas, "every streaming replica has replayed the migrations");
                return Ok(replicas);
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(MigrateError::ReplicasBehind { waited, behind, replicas });
            }
            tokio::time::sleep(Duration::from_millis(50).min(wait - waited)).await;
        }
    }
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}
