//! The runner's dedicated session: connecting (and again after a lost connection), the lock,
//! and [`Session::locked`], under which every writing command runs (the commands are in
//! `commands`). Each command that writes takes the lock, creates the tracking tables if
//! missing, reads the history under the lock, plans, and runs the plan.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, Row};
use strata_config::{Config, DatabaseConfig};

mod commands;

use crate::error::MigrateError;
use crate::runner::cancel::Canceller;
use crate::runner::history;
use crate::runner::lock;
use crate::runner::options::{APPLICATION_NAME, Settings, UpOptions};
use crate::runner::report::UpReport;
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
