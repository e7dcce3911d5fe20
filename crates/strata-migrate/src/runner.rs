//! Connecting, reading the history, and applying pending migrations.

use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use strata_config::{Config, DatabaseConfig, MigrationsConfig};

use crate::status::{self, Applied};
use crate::{MigrateError, lock};

/// The `application_name` of the runner's session, visible in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "strata-migrate";

/// What `up` is allowed to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpOptions {
    /// How long to wait for another runner's lock.
    pub lock_wait: Duration,
    /// `lock_timeout` inside each migration's transaction.
    pub lock_timeout: Duration,
    /// Run even though the database has applied versions with no file.
    pub ignore_missing: bool,
}

impl UpOptions {
    /// The options of `[migrations]`.
    pub fn from_config(config: &MigrationsConfig) -> Self {
        Self {
            lock_wait: config.lock_wait,
            lock_timeout: config.lock_timeout,
            ignore_missing: false,
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
}

/// What `up` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpReport {
    /// The migrations applied, in order.
    pub applied: Vec<AppliedNow>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
}

/// A dedicated session to one database (never a pooled connection), closed on every path:
/// dropping it closes the socket, which also releases the advisory lock.
pub struct Session {
    conn: PgConnection,
    lock_key: i64,
}

impl Session {
    /// Connects, refuses a read-only standby, and makes the server stop this session's work
    /// soon after the runner dies (`client_connection_check_interval`, PostgreSQL 14+).
    ///
    /// # Errors
    ///
    /// [`MigrateError::Config`] without a URL, [`MigrateError::Connect`] when the server
    /// cannot be reached or refuses, [`MigrateError::ReadOnly`] on a standby.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, MigrateError> {
        let options = config.connect_options_without_timeout(APPLICATION_NAME)?;
        let target = config.url.as_ref().map(|u| u.redacted()).unwrap_or_default();
        let mut conn =
            PgConnection::connect_with(&options).await.map_err(|source| MigrateError::Connect {
                reason: connect_reason(&source),
                target: target.clone(),
                source,
            })?;
        let (in_recovery, version, database): (bool, i32, String) = sqlx::query_as(
            "select pg_is_in_recovery(), current_setting('server_version_num')::int, current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(MigrateError::db("reading the server's state"))?;
        if in_recovery {
            return Err(MigrateError::ReadOnly { target });
        }
        if version >= 140_000 {
            sqlx::query("select set_config('client_connection_check_interval', '1000', false)")
                .execute(&mut conn)
                .await
                .map_err(MigrateError::db("setting client_connection_check_interval"))?;
        }
        Ok(Self { conn, lock_key: lock::sqlx_lock_key(&database) })
    }

    /// Connects with the database section of a loaded configuration.
    ///
    /// # Errors
    ///
    /// As [`Session::connect`].
    pub async fn from_config(config: &Config) -> Result<Self, MigrateError> {
        Self::connect(&config.database).await
    }

    /// The advisory lock key this session uses (sqlx's, for this database).
    pub fn lock_key(&self) -> i64 {
        self.lock_key
    }

    /// The underlying connection, for callers that inspect the database.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Closes the session cleanly.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// Applies every pending migration in version order, each in its own transaction with its
    /// tracking row, under the migration lock.
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
        let waited = lock::acquire(&mut self.conn, self.lock_key, options.lock_wait).await?;
        let result = self.up_locked(migrator, options).await;
        let released = lock::release(&mut self.conn, self.lock_key).await;
        let mut report = result?;
        released?;
        report.lock_wait_ms = millis(waited);
        Ok(report)
    }

    async fn up_locked(
        &mut self,
        migrator: &Migrator,
        options: &UpOptions,
    ) -> Result<UpReport, MigrateError> {
        sqlx::query(status::CREATE_TABLE)
            .execute(&mut self.conn)
            .await
            .map_err(MigrateError::db("creating _sqlx_migrations"))?;
        // Re-read under the lock: another runner may have applied some meanwhile.
        let applied = status::read_applied(&mut self.conn).await?;
        check_history(migrator, &applied, options)?;
        let pending: Vec<&Migration> = status::up_migrations(migrator)
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .collect();
        let total = pending.len();
        let mut report = UpReport::default();
        for (index, migration) in pending.into_iter().enumerate() {
            tracing::info!(
                migration.version = migration.version,
                migration.description = %migration.description,
                progress = %format!("{}/{total}", index + 1),
                "applying migration"
            );
            let elapsed = apply(&mut self.conn, migration, options.lock_timeout).await?;
            tracing::info!(
                migration.version = migration.version,
                duration_ms = millis(elapsed),
                "applied migration"
            );
            report.applied.push(AppliedNow {
                version: migration.version,
                description: migration.description.to_string(),
                duration_ms: millis(elapsed),
            });
        }
        Ok(report)
    }
}

/// Refuses to run over a failed migration, a changed applied file, or (unless told) an
/// applied version whose file is gone.
fn check_history(
    migrator: &Migrator,
    applied: &[Applied],
    options: &UpOptions,
) -> Result<(), MigrateError> {
    if let Some(dirty) = applied.iter().find(|a| !a.success) {
        return Err(MigrateError::Dirty { version: dirty.version });
    }
    let mut missing = Vec::new();
    for row in applied {
        match status::up_migrations(migrator).find(|m| m.version == row.version) {
            None => missing.push(row.version),
            Some(file) if *file.checksum != *row.checksum => {
                return Err(MigrateError::ChecksumChanged {
                    version: row.version,
                    description: row.description.clone(),
                    applied: hex(&row.checksum),
                    file: hex(&file.checksum),
                });
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() && !options.ignore_missing {
        return Err(MigrateError::Missing { versions: missing });
    }
    Ok(())
}

/// Runs one migration and records it as sqlx does (same row, checksum and nanosecond
/// `execution_time`), in one transaction unless the file says `-- no-transaction`.
async fn apply(
    conn: &mut PgConnection,
    migration: &Migration,
    lock_timeout: Duration,
) -> Result<Duration, MigrateError> {
    let start = Instant::now();
    let failed = |source: sqlx::Error| MigrateError::Migration {
        version: migration.version,
        description: migration.description.to_string(),
        message: describe_failure(&source, migration.sql.as_str()),
        source,
    };
    if migration.no_tx {
        sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str().to_owned()))
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        record(&mut *conn, migration, start.elapsed()).await?;
        return Ok(start.elapsed());
    }
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning a transaction"))?;
    sqlx::query("select set_config('lock_timeout', $1, true)")
        .bind(lock_timeout.as_millis().to_string())
        .execute(&mut *tx)
        .await
        .map_err(MigrateError::db("setting lock_timeout"))?;
    sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str().to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    record(&mut tx, migration, start.elapsed()).await?;
    tx.commit().await.map_err(failed)?;
    Ok(start.elapsed())
}

async fn record(
    conn: &mut PgConnection,
    migration: &Migration,
    elapsed: Duration,
) -> Result<(), MigrateError> {
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values ($1, $2, true, $3, $4)",
    )
    .bind(migration.version)
    .bind(&*migration.description)
    .bind(&*migration.checksum)
    .bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
    .execute(conn)
    .await
    .map_err(MigrateError::db("recording the migration in _sqlx_migrations"))?;
    Ok(())
}

/// The server's message with its SQLSTATE and the line of the file it points at.
fn describe_failure(error: &sqlx::Error, sql: &str) -> String {
    let Some(db) = error.as_database_error() else {
        return error.to_string();
    };
    let code = db.code().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default();
    let line = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| match pg.position()? {
            sqlx::postgres::PgErrorPosition::Original(chars) => Some(chars),
            sqlx::postgres::PgErrorPosition::Internal { .. } => None,
        })
        .map(|chars| {
            let before: String = sql.chars().take(chars.saturating_sub(1)).collect();
            format!(" at line {}", before.matches('\n').count() + 1)
        })
        .unwrap_or_default();
    format!("{}{code}{line}", db.message())
}

/// One sentence for a failed connection, from the driver's error (which holds no password).
fn connect_reason(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => format!("{io}; is the server running and the address right?"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        other => other.to_string(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
