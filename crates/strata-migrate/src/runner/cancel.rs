//! Stopping a runner's session from outside it: the running statement cancelled from a second
//! connection, and what the session left behind once it is gone (for a command line's Ctrl-C;
//! the library listens to no signal itself).

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::error::MigrateError;
#[cfg(doc)]
use crate::runner::session::Session;
use crate::runner::session::connect_reason;

/// Stops a [`Session`]'s running statement from a second connection, and says what the
/// session left behind: [`Session::canceller`].
#[derive(Debug, Clone)]
pub struct Canceller {
    options: PgConnectOptions,
    pid: i32,
    lock_key: i64,
}

/// What a cancelled session left on the server: [`Canceller::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The session's backend has ended (its transaction rolled back, its statement stopped).
    pub ended: bool,
    /// No session holds the migration lock.
    pub lock_free: bool,
}

impl Canceller {
    /// The canceller of the session `pid`, connected with `options`, whose lock is `lock_key`.
    pub(crate) fn new(options: PgConnectOptions, pid: i32, lock_key: i64) -> Self {
        Self { options, pid, lock_key }
    }

    /// The session's backend pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Asks the server to cancel the session's running statement (`pg_cancel_backend`, from a
    /// connection of its own); whether a signal was sent.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Connect`] or [`MigrateError::Database`].
    pub async fn cancel(&self) -> Result<bool, MigrateError> {
        let mut conn = self.connect().await?;
        let sent = sqlx::query_scalar("select pg_cancel_backend($1)")
            .bind(self.pid)
            .fetch_one(&mut conn)
            .await
            .map_err(MigrateError::db("cancelling the running statement"));
        let _ = conn.close().await;
        sent
    }

    /// Waits up to `within` for the session's backend to end (after the session was closed),
    /// then reads whether the migration lock is free.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Connect`] or [`MigrateError::Database`].
    pub async fn settle(&self, within: Duration) -> Result<Settled, MigrateError> {
        let mut conn = self.connect().await?;
        let start = std::time::Instant::now();
        let state = async {
            loop {
                let (ended, lock_free): (bool, bool) = sqlx::query_as(
                    "select not exists (select from pg_stat_activity where pid = $1),
                            not exists (
                              select from pg_locks l
                               where l.locktype = 'advisory' and l.granted
                                 and l.classid = (($2::bigint >> 32) & 4294967295)::oid
                                 and l.objid = ($2::bigint & 4294967295)::oid
                                 and l.objsubid = 1
                                 and l.database = (select oid from pg_database
                                                    where datname = current_database()))",
                )
                .bind(self.pid)
                .bind(self.lock_key)
                .fetch_one(&mut conn)
                .await?;
                if (ended && lock_free) || start.elapsed() >= within {
                    return Ok::<_, sqlx::Error>(Settled { ended, lock_free });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let settled = state.await.map_err(MigrateError::db("reading what the session left"));
        let _ = conn.close().await;
        settled
    }

    async fn connect(&self) -> Result<PgConnection, MigrateError> {
        let options = self.options.clone().application_name("strata-migrate cancel");
        PgConnection::connect_with(&options).await.map_err(|source| MigrateError::Connect {
            reason: connect_reason(&source),
            target: String::new(),
            source,
        })
    }
}
