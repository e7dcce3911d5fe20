//! Reads from streaming replicas, chosen by the caller: [`ReadPool::acquire`] for reads that
//! tolerate lag, [`ReadPool::acquire_after`] for a read that must see a write the caller made
//! (read-your-writes), and the primary whenever no replica can serve in time.
//!
//! ```no_run
//! # async fn demo(config: strata_config::Config, org: strata_db::OrganizationId,
//! #               user: strata_db::UserId) -> Result<(), strata_db::Error> {
//! use std::time::Duration;
//! use strata_db::{Pool, ReadPool, TenantTx, projects, replicas};
//! let primary = Pool::from_config(&config.database)?;
//! let reads = ReadPool::from_config(&config.database, primary.clone())?;
//! // A write on the primary, and the position of the log after it.
//! let mut conn = primary.acquire().await?;
//! let mut tx = TenantTx::begin(&mut conn, org, user).await?;
//! let new = projects::NewProject { key: "OPS", name: "Operations", description: "" };
//! let project = projects::create(&mut tx, &new).await?;
//! tx.commit().await?;
//! let written = replicas::position(&mut conn).await?;
//! // A read that sees it: on a replica that has replayed it within 100 ms, else the primary.
//! let mut read = reads.acquire_after(&written, Duration::from_millis(100)).await?;
//! let mut tx = TenantTx::begin(&mut read, org, user).await?;
//! let same = projects::get(&mut tx, project.id).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgExecutor;

use crate::{Error, Pool, PooledConnection};

/// How long a replica that could not give a connection is left out before it is tried again.
const REST: Duration = Duration::from_secs(1);
/// How long a read waits for a replica's connection before it goes to the primary.
const REPLICA_ACQUIRE: Duration = Duration::from_millis(500);
/// How often a read-your-writes read asks a replica how far it has replayed.
const POLL: Duration = Duration::from_millis(5);

/// A position in the primary's write-ahead log (`pg_lsn`), from [`position`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalPosition(String);

/// The primary's current write-ahead log position: take it after a write commits, and hand it
/// to [`ReadPool::acquire_after`].
///
/// # Errors
///
/// [`Error::Database`] when the statement fails (on a replica: there is no current position).
pub async fn position(conn: impl PgExecutor<'_>) -> Result<WalPosition, Error> {
    let lsn = sqlx::query_scalar!(r#"select pg_current_wal_lsn()::text as "lsn!""#)
        .fetch_one(conn)
        .await?;
    Ok(WalPosition(lsn))
}

/// Where a read connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The replica at this index of `database.replica_urls`.
    Replica(usize),
    /// The primary: no replica could serve in time.
    Primary,
}

/// A connection for reads, and where it came from; use it as a [`PooledConnection`].
///
/// A replica's connection that breaks while in use (the replica stopped) leaves that replica
/// out for a second when it is dropped, so that the next reads go to the primary at once.
#[derive(Debug)]
pub struct ReadConnection {
    conn: PooledConnection,
    source: Source,
    replica: Option<Arc<Replica>>,
}

impl crate::AsConnection for ReadConnection {
    fn split_connection(&mut self) -> (&mut sqlx::PgConnection, Option<&mut crate::pool::Watch>) {
        self.conn.split_connection()
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        if let Some(replica) = &self.replica
            && self.conn.is_broken()
        {
            replica.rest();
        }
    }
}

impl ReadConnection {
    /// Where it came from.
    pub fn source(&self) -> Source {
        self.source
    }
}

impl Deref for ReadConnection {
    type Target = PooledConnection;

    fn deref(&self) -> &PooledConnection {
        &self.conn
    }
}

impl DerefMut for ReadConnection {
    fn deref_mut(&mut self) -> &mut PooledConnection {
        &mut self.conn
    }
}

/// One replica's pool, and until when it is left out after it failed.
#[derive(Debug)]
pub(crate) struct Replica {
    pool: Pool,
    resting_until: Mutex<Option<Instant>>,
}

impl Replica {
    fn resting(&self) -> bool {
        let until = self.resting_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_some_and(|until| Instant::now() < until)
    }

    fn rest(&self) {
        let mut until =
            self.resting_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *until = Some(Instant::now() + REST);
    }

    /// A connection, or nothing when the replica cannot give one soon.
    async fn acquire(&self) -> Option<PooledConnection> {
        if self.resting() {
            return None;
        }
        match tokio::time::timeout(REPLICA_ACQUIRE, self.pool.acquire()).await {
            Ok(Ok(conn)) => Some(conn),
            Ok(Err(error)) => {
                tracing::warn!(%error, "a replica could not give a connection; reading from the primary");
                self.rest();
                None
            }
            Err(_) => {
                tracing::warn!("a replica gave no connection in time; reading from the primary");
                self.rest();
                None
            }
        }
    }
}

/// Pools of the primary and of its replicas, for reads; build one per service and share it
/// (`Arc`).
#[derive(Debug)]
pub struct ReadPool {
    primary: Pool,
    replicas: Vec<Arc<Replica>>,
    next: AtomicUsize,
}

impl ReadPool {
    /// Reads spread over `replicas` (round robin), falling back to `primary`.
    pub fn new(primary: Pool, replicas: Vec<Pool>) -> Self {
        let replicas = replicas
            .into_iter()
            .map(|pool| Arc::new(Replica { pool, resting_until: Mutex::new(None) }));
        Self { primary, replicas: replicas.collect(), next: AtomicUsize::new(0) }
    }

    /// One pool per `database.replica_urls` entry, with the rest of `[database]`.
    ///
    /// # Errors
    ///
    /// As [`Pool::from_config`].
    pub fn from_config(
        config: &strata_config::DatabaseConfig,
        primary: Pool,
    ) -> Result<Self, Error> {
        let mut replicas = Vec::new();
        for url in &config.replica_urls {
            let mut replica = config.clone();
            replica.url = Some(url.clone());
            replicas.push(Pool::from_config(&replica)?);
        }
        Ok(Self::new(primary, replicas))
    }

    /// A connection for reads that tolerate lag: the next replica that can give one within
    /// half a second, else the primary. A replica that failed is left out for a second. A
    /// connection that was open when its replica went away fails at its first statement
    /// ([`Error::is_unavailable`]); the replica is then left out.
    ///
    /// # Errors
    ///
    /// As [`Pool::acquire`], when the primary cannot give one either.
    pub async fn acquire(&self) -> Result<ReadConnection, Error> {
        let count = self.replicas.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let index = (first + offset) % count;
            if let Some(conn) = self.replicas[index].acquire().await {
                let replica = Some(self.replicas[index].clone());
                return Ok(ReadConnection { conn, source: Source::Replica(index), replica });
            }
        }
        self.on_primary().await
    }

    /// A connection that sees everything up to `written`: a replica that has replayed it, if
    /// one does within `wait`, else the primary.
    ///
    /// # Errors
    ///
    /// As [`ReadPool::acquire`].
    pub async fn acquire_after(
        &self,
        written: &WalPosition,
        wait: Duration,
    ) -> Result<ReadConnection, Error> {
        let deadline = Instant::now() + wait;
        let mut read = self.acquire().await?;
        let Source::Replica(index) = read.source else { return Ok(read) };
        loop {
            let replayed = sqlx::query_scalar!(
                r#"select coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false) as "replayed!""#,
                written.0,
            )
            .fetch_one(&mut read.conn)
            .await;
            match replayed {
                Ok(true) => return Ok(read),
                Ok(false) if Instant::now() + POLL < deadline => tokio::time::sleep(POLL).await,
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not ask a replica how far it has replayed");
                    self.replicas[index].rest();
                    break;
                }
            }
        }
        drop(read);
        self.on_primary().await
    }

    async fn on_primary(&self) -> Result<ReadConnection, Error> {
        let conn = self.primary.acquire().await?;
        Ok(ReadConnection { conn, source: Source::Primary, replica: None })
    }

    /// The primary's pool.
    pub fn primary(&self) -> &Pool {
        &self.primary
    }

    /// Closes every pool.
    pub async fn close(&self) {
        self.primary.close().await;
        for replica in &self.replicas {
            replica.pool.close().await;
        }
    }
}
