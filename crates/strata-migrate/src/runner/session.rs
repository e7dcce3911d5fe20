//! The runner's dedicated session, and the commands run on it. Each command that writes takes
//! the lock, creates the tracking tables if missing, reads the history under the lock, plans,
//! and runs the plan; with `--dry-run` it reads, plans and prints the plan instead.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, Row};
use strata_config::{Config, DatabaseConfig};

use crate::error::MigrateError;
use crate::runner::admin;
use crate::runner::cancel::Canceller;
use crate::runner::execute;
use crate::runner::history::{self, History};
use crate::runner::lock;
use crate::runner::options::{
    APPLICATION_NAME, BaselineOptions, DownOptions, DownTarget, RedoOptions, RepairOptions,
    Settings, UpOptions,
};
use crate::runner::plan::Plan;
use crate::runner::render;
use crate::runner::report::{
    BaselineReport, DownReport, RedoReport, RepairReport, UpReport, millis,
};
use crate::runner::status::{self, MigrationStatus};

/// A dedicated session to one database (never a pooled connection), closed on every path:
/// dropping it closes the socket, which also releases the advisory lock.
pub struct Session {
    conn: PgConnection,
    lock_key: i64,
    /// How it connected and its backend, for the progress reports' own connection.
    options: sqlx::postgres::PgConnectOptions,
    pid: i32,
    /// Set on a read-only standby (the URL, password hidden): the commands that write refuse.
    standby: Option<String>,
    /// The URL, password hidden, for messages.
    target: String,
    /// The database's name, as the server says.
    database: String,
}

/// The databases a writing command refuses unless allowed
/// ([`Settings::allow_maintenance_database`]).
const MAINTENANCE_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

impl Session {
    /// The `application_name` of the runner's session, visible in `pg_stat_activity`.
    pub const APPLICATION_NAME: &str = APPLICATION_NAME;

    /// Connects, notes whether the server is a read-only standby, and makes the server stop
    /// this session's work soon after the runner dies (`client_connection_check_interval`,
    /// PostgreSQL 14+).
    ///
    /// # Errors
    ///
    /// [`MigrateError::Config`] without a URL, [`MigrateError::Connect`] when the server
    /// cannot be reached or refuses. On a read-only standby the session connects for the
    /// commands that only read (`status`, `check`, `--dry-run`); those that write return
    /// [`MigrateError::ReadOnly`].
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, MigrateError> {
        let options = config.connect_options_without_timeout(APPLICATION_NAME)?;
        let target = config.url.as_ref().map(|u| u.redacted()).unwrap_or_default();
        Self::open(options, target).await
    }

    /// Connects with `options` to `target` (the URL, password hidden, for messages) and reads
    /// the server's state: [`Session::connect`] without the configuration.
    async fn open(
        options: sqlx::postgres::PgConnectOptions,
        target: String,
    ) -> Result<Self, MigrateError> {
        let mut conn =
            PgConnection::connect_with(&options).await.map_err(|source| MigrateError::Connect {
                reason: connect_reason(&source),
                target: target.clone(),
                source,
            })?;
        // One round trip (simple protocol: no parameters, so no separate prepare): the server's
        // state; `client_connection_check_interval` where the server has it (PostgreSQL 14+;
        // CASE keeps older servers from being asked); and `bytea_output = hex`, because the
        // bookkeeping reads come back as text and sqlx decodes text `bytea` only in hex (a
        // database or role set to `escape` would otherwise fail every command).
        let state = sqlx::raw_sql(
            "select pg_is_in_recovery(), current_database(), pg_backend_pid(),
                    set_config('bytea_output', 'hex', false),
                    case when current_setting('client_connection_check_interval', true) is not null
                         then set_config('client_connection_check_interval', '1000', false) end",
        )
        .fetch_one(&mut conn)
        .await
        .and_then(|row| {
            Ok((row.try_get::<bool, _>(0)?, row.try_get::<String, _>(1)?, row.try_get(2)?))
        });
        let (in_recovery, database, pid) =
            state.map_err(MigrateError::db("reading the server's state"))?;
        let standby = in_recovery.then_some(target.clone());
        let lock_key = lock::sqlx_lock_key(&database);
        Ok(Self { conn, lock_key, options, pid, standby, target, database })
    }

    /// Takes the migration lock within `lock_wait`. A connection lost meanwhile (a server
    /// restart, a cut network) is opened again, and the wait goes on with what is left of it:
    /// a runner waiting at deploy time outlives a restart of the server.
    async fn lock(
        &mut self,
        lock_wait: Duration,
        observer: Option<&crate::runner::observe::Observer>,
    ) -> Result<Duration, MigrateError> {
        let start = std::time::Instant::now();
        loop {
            let left = lock_wait.saturating_sub(start.elapsed());
            match lock::acquire(&mut self.conn, self.lock_key, left, observer).await {
                Err(MigrateError::Database { source, .. })
                    if crate::runner::sqlstate::connection_lost(&source) && !left.is_zero() =>
                {
                    tracing::warn!(
                        error = %source,
                        "the connection was lost while waiting for the migration lock; connecting again"
                    );
                    self.reconnect(lock_wait.saturating_sub(start.elapsed())).await?;
                }
                Ok(_) => return Ok(start.elapsed()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Replaces the session's connection with a new one, trying for at most `within` with
    /// a growing pause; the last failure when it runs out.
    async fn reconnect(&mut self, within: Duration) -> Result<(), MigrateError> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match Self::open(self.options.clone(), self.target.clone()).await {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(e) if start.elapsed() + pause >= within => return Err(e),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Connects with a loaded configuration: `migrations.url` when it is set (a role that
    /// owns the schema, or the server behind a pooler), else `database.url`; the other
    /// connection settings of `[database]` either way.
    ///
    /// # Errors
    ///
    /// [`MigrateError::NeedsSession`] when `database.pooler` is `"transaction"` and there is no
    /// `migrations.url`; otherwise as [`Session::connect`].
    pub async fn from_config(config: &Config) -> Result<Self, MigrateError> {
        if config.migrations.url.is_none()
            && config.database.pooler == strata_config::Pooler::Transaction
        {
            return Err(MigrateError::NeedsSession);
        }
        Self::connect(&runner_database(config)).await
    }

    /// How the progress of this session's statements is watched.
    fn watch(&self, settings: &Settings) -> crate::runner::progress::Watch {
        crate::runner::progress::Watch {
            options: self.options.clone(),
            pid: self.pid,
            after: settings.progress_after,
            observer: settings.observer.clone(),
        }
    }

    /// The database's name, as the server says.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The host connected to (a directory for a Unix socket).
    pub fn host(&self) -> &str {
        self.options.get_host()
    }

    /// Whether this is a development database, where `redo` may run: as
    /// [`Settings::development`] says, else when the host is a loopback address or a Unix
    /// socket.
    pub fn is_development(&self, settings: &Settings) -> bool {
        settings.development.unwrap_or_else(|| strata_config::is_loopback(self.host()))
    }

    /// What can stop this session's running statement from another connection: for a
    /// command line's Ctrl-C.
    pub fn canceller(&self) -> Canceller {
        Canceller::new(self.options.clone(), self.pid, self.lock_key)
    }

    /// The advisory lock key this session uses (sqlx's, for this database).
    pub fn lock_key(&self) -> i64 {
        self.lock_key
    }

    /// The session's connection itself, for tools that read the catalog or build a scratch
    /// database between commands (strata-schema's snapshots, lint's table sizes).
    ///
    /// It bypasses the runner: no lock is taken or checked and no history is read, and nothing
    /// stops a statement on it from taking or releasing the migration lock
    /// ([`Session::lock_key`]), changing the session's settings, or leaving a transaction open
    /// for the next command. The commands never lend it out while they hold the lock.
    pub fn raw_connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Every migration known to the files or the database, in version order, with its state;
    /// read without a lock (also on a standby).
    ///
    /// # Errors
    ///
    /// [`MigrateError::Database`] when the tracking table cannot be read.
    pub async fn status(
        &mut self,
        migrator: &Migrator,
    ) -> Result<Vec<MigrationStatus>, MigrateError> {
        status::status(&mut self.conn, migrator).await
    }

    /// Closes the session cleanly.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

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

    /// Runs `work` while holding the migration lock (taken by polling until
    /// `settings.lock_wait`), on a database whose tracking tables exist and that is neither a
    /// standby nor a maintenance database (unless allowed), and releases the lock on every
    /// path; `work` gets the connection and how long the lock took.
    async fn locked<T>(
        &mut self,
        settings: &Settings,
        work: impl AsyncFnOnce(&mut PgConnection, Duration) -> Result<T, MigrateError>,
    ) -> Result<T, MigrateError> {
        if let Some(target) = &self.standby {
            return Err(MigrateError::ReadOnly { target: target.clone() });
        }
        if !settings.allow_maintenance_database
            && MAINTENANCE_DATABASES.contains(&self.database.as_str())
        {
            return Err(MigrateError::MaintenanceDatabase {
                database: self.database.clone(),
                target: self.target.clone(),
            });
        }
        let waited = self.lock(settings.lock_wait, settings.observer.as_ref()).await?;
        let result = match history::create_tables(&mut self.conn).await {
            Ok(()) => work(&mut self.conn, waited).await,
            Err(e) => Err(e),
        };
        let released = lock::release(&mut self.conn, self.lock_key).await;
        let value = result?;
        released?;
        Ok(value)
    }
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

/// The `[database]` settings the runner connects with: `migrations.url` in place of
/// `database.url` when it is set (then without `database.password`, which belongs to the
/// service's role, not to that URL's).
pub(crate) fn runner_database(config: &Config) -> DatabaseConfig {
    let mut database = config.database.clone();
    if let Some(url) = &config.migrations.url {
        database.url = Some(url.clone());
        database.password = None;
    }
    database
}

/// One sentence for a failed connection, from the driver's error (which holds no password).
pub(crate) fn connect_reason(error: &sqlx::Error) -> String {
    if let Some(refusal) = strata_config::tls_refusal(error) {
        return refusal;
    }
    match error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => format!("{io}; is the server running and the address right?"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        other => other.to_string(),
    }
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}
