//! The runner's dedicated session: connecting, refusing a standby, and the lock around
//! every command that writes.

use std::time::Duration;

use sqlx::{Connection, PgConnection, Row};
use strata_config::{Config, DatabaseConfig};

use crate::{MigrateError, lock};

/// The `application_name` of the runner's session, visible in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "strata-migrate";

/// A dedicated session to one database (never a pooled connection), closed on every path:
/// dropping it closes the socket, which also releases the advisory lock.
pub struct Session {
    pub(crate) conn: PgConnection,
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
        // One round trip (simple protocol: no parameters, so no separate prepare): the server's
        // state; `client_connection_check_interval` where the server has it (PostgreSQL 14+;
        // CASE keeps older servers from being asked); and `bytea_output = hex`, because the
        // bookkeeping reads come back as text and sqlx decodes text `bytea` only in hex (a
        // database or role set to `escape` would otherwise fail every command).
        let state = sqlx::raw_sql(
            "select pg_is_in_recovery(), current_database(),
                    set_config('bytea_output', 'hex', false),
                    case when current_setting('client_connection_check_interval', true) is not null
                         then set_config('client_connection_check_interval', '1000', false) end",
        )
        .fetch_one(&mut conn)
        .await
        .and_then(|row| Ok((row.try_get::<bool, _>(0)?, row.try_get::<String, _>(1)?)));
        let (in_recovery, database) =
            state.map_err(MigrateError::db("reading the server's state"))?;
        if in_recovery {
            return Err(MigrateError::ReadOnly { target });
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

    /// Runs `work` while holding the migration lock (taken by polling until `lock_wait`), and
    /// releases it on every path; `work` gets the session and how long the lock took.
    pub(crate) async fn locked<T>(
        &mut self,
        lock_wait: Duration,
        work: impl AsyncFnOnce(&mut Self, Duration) -> Result<T, MigrateError>,
    ) -> Result<T, MigrateError> {
        let waited = lock::acquire(&mut self.conn, self.lock_key, lock_wait).await?;
        let result = work(self, waited).await;
        let released = lock::release(&mut self.conn, self.lock_key).await;
        let value = result?;
        released?;
        Ok(value)
    }
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
