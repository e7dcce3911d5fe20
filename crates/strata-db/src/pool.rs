//! The data layer's own connection pool: sqlx connections, without the stock `PgPool`'s
//! per-use round trips.
//!
//! sqlx 0.9's `PgPool` pings a connection when it is handed out (`test_before_acquire`, on by
//! default) and pings it again, from a spawned task, every time it is given back (always; see
//! `return_to_pool` in sqlx-core's `pool/connection.rs`). On a point lookup that is three round
//! trips instead of one, which is most of why the stock pool reached 0.3–0.55× of
//! deadpool-postgres in our measurements. This pool hands out idle connections with no round
//! trip: a connection idle for less than [`PoolSettings::check_after`] is trusted (a broken one
//! fails its next statement, as it would after a ping), one idle for longer is pinged first, and
//! one older than [`PoolSettings::max_lifetime`] is replaced. Work a caller left unfinished (a
//! transaction dropped without commit, a cancelled query) is settled by sqlx itself before the
//! connection's next statement.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// Sizes and timings of a [`Pool`].
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// How long [`Pool::acquire`] waits for a free connection.
    pub acquire_timeout: Duration,
    /// A connection is replaced after this age; `None` keeps it.
    pub max_lifetime: Option<Duration>,
    /// A connection idle for longer than this is pinged before it is handed out.
    pub check_after: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(1800)),
            check_after: Duration::from_secs(1),
        }
    }
}

impl PoolSettings {
    /// The sizes and timings of `[database]` in strata-config.
    pub fn from_config(config: &strata_config::DatabaseConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            acquire_timeout: config.acquire_timeout,
            max_lifetime: (!config.max_lifetime.is_zero()).then_some(config.max_lifetime),
            ..Self::default()
        }
    }
}

struct Idle {
    conn: PgConnection,
    created: Instant,
    since: Instant,
}

struct Inner {
    options: PgConnectOptions,
    settings: PoolSettings,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
}

/// A pool of PostgreSQL connections; cheap to clone (all clones share the connections).
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the connect options: their Debug shows the password.
        f.debug_struct("Pool").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool that opens connections on demand.
    pub fn new(options: PgConnectOptions, settings: PoolSettings) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_connections.max(1) as usize));
        Self { inner: Arc::new(Inner { options, settings, idle: Mutex::new(Vec::new()), permits }) }
    }

    /// A pool from strata-config's `[database]` section (URL, TLS, statement timeout, sizes).
    ///
    /// # Errors
    ///
    /// The configuration's error when the URL is missing or unusable.
    pub fn from_config(
        config: &strata_config::DatabaseConfig,
    ) -> Result<Self, strata_config::ConfigError> {
        Ok(Self::new(config.connect_options()?, PoolSettings::from_config(config)))
    }

    /// A connection, idle or new; it goes back to the pool when dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] with `PoolTimedOut` when none frees up within the acquire timeout,
    /// or the connection error when a new one cannot be opened.
    pub async fn acquire(&self) -> Result<PooledConnection, Error> {
        let inner = &self.inner;
        let permit = tokio::time::timeout(
            inner.settings.acquire_timeout,
            inner.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| Error::Database(sqlx::Error::PoolTimedOut))?
        .map_err(|_| Error::Database(sqlx::Error::PoolClosed))?;
        loop {
            let idle = inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(mut idle) = idle else { break };
            if inner.settings.max_lifetime.is_some_and(|max| idle.created.elapsed() > max) {
                drop(idle.conn.close().await);
                continue;
            }
            if idle.since.elapsed() > inner.settings.check_after && idle.conn.ping().await.is_err()
            {
                drop(idle.conn.close_hard().await);
                continue;
            }
            return Ok(PooledConnection {
                conn: Some(idle.conn),
                created: idle.created,
                pool: inner.clone(),
                _permit: permit,
            });
        }
        let conn = inner.options.connect().await?;
        Ok(PooledConnection {
            conn: Some(conn),
            created: Instant::now(),
            pool: inner.clone(),
            _permit: permit,
        })
    }

    /// Connections open now (idle ones plus those handed out).
    pub fn size(&self) -> usize {
        let idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
        let in_use = self.inner.settings.max_connections.max(1) as usize
            - self.inner.permits.available_permits();
        idle + in_use
    }

    /// Closes the idle connections and refuses new acquisitions; connections in use close
    /// when they are dropped.
    pub async fn close(&self) {
        self.inner.permits.close();
        let idle: Vec<Idle> =
            std::mem::take(&mut *self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for idle in idle {
            drop(idle.conn.close().await);
        }
    }
}

/// A connection checked out of a [`Pool`]; dereferences to [`PgConnection`], so it goes
/// wherever the data layer takes `&mut PgConnection` (`&mut conn`).
pub struct PooledConnection {
    conn: Option<PgConnection>,
    created: Instant,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection").finish_non_exhaustive()
    }
}

impl PooledConnection {
    /// Closes the connection instead of returning it, for a caller that saw it fail.
    pub async fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.close_hard().await);
        }
    }
}

impl Deref for PooledConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().unwrap_or_else(|| unreachable!("the connection is only taken on drop"))
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("the connection is only taken on drop"))
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.pool.permits.is_closed() {
            return; // dropping the connection closes its socket
        }
        let idle = Idle { conn, created: self.created, since: Instant::now() };
        self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
    }
}
