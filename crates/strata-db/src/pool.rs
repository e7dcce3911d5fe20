//! The data layer's connection pool: [bb8] over sqlx connections, with a check-out rule that
//! costs no round trip for a connection in steady use and never hands out one known to be
//! broken.
//!
//! sqlx 0.9's `PgPool` pings a connection when it is handed out and again, from a spawned task,
//! every time it is given back (`return_to_pool` in sqlx-core's `pool/connection.rs`): three
//! round trips for a point lookup, 0.38–0.42× of deadpool-postgres in `just bench`. bb8 gives
//! the sizes, the reaper (`idle_timeout`, `max_lifetime`), `min_idle` and the statistics; this
//! module adds only what decides whether a connection may be handed out:
//!
//! - A connection whose statement failed with an I/O, protocol or TLS error, or with a `FATAL`
//!   server error (a restart sends 57P01), is marked broken when the failure passes through a
//!   [`PooledConnection`] or a [`crate::TenantTx`] used as an executor, and bb8 closes it when it
//!   comes back instead of handing it out again.
//! - A connection given back in the middle of something (a transaction dropped without commit
//!   leaves its `ROLLBACK` queued, or a stream dropped half-read) is pinged before its next use;
//!   the ping sends the queued `ROLLBACK` with it, so the check costs no extra round trip.
//! - A connection idle for longer than [`PoolSettings::check_after`] is pinged before use, which
//!   also bounds how long a failure that bypassed both (statements run on
//!   [`PooledConnection::raw_connection`], which the pool cannot see) can keep a dead
//!   connection in circulation.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use strata_config::{Pooler, ServerSetting};

use crate::Error;
use crate::error::{breaks_connection, plan_went_stale, refuses_for_good};
use crate::exec::{StaleStatements, watched, within};
use crate::settings::ServerSettings;

/// Sizes and timings of a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// Connections kept open even when idle (bb8's `min_idle`).
    pub min_connections: u32,
    /// How long [`Pool::acquire`] waits for a connection, opening one included.
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` close after this; `None` keeps them.
    pub idle_timeout: Option<Duration>,
    /// A connection is replaced after this age; `None` keeps it.
    pub max_lifetime: Option<Duration>,
    /// A connection idle for longer than this is pinged before it is handed out.
    pub check_after: Duration,
    /// How long opening one connection may take; `None` waits for ever. Without it, a server
    /// that accepts and never answers holds a pool slot per attempt until it speaks again.
    pub connect_timeout: Option<Duration>,
    /// How long a statement on a pooled connection waits for the server's answer; `None`
    /// waits for ever. When it passes, the call fails with an I/O error of kind `TimedOut`
    /// and the connection is closed (its state is unknown).
    pub response_timeout: Option<Duration>,
    /// What sits between the pool and the server. Through a transaction-mode pooler
    /// (PgBouncer's `pool_mode = transaction`) a statement is never a named prepared statement,
    /// and one run outside a transaction runs inside one of its own
    /// ([`strata_config::Pooler::Transaction`]).
    pub pooler: Pooler,
    /// `statement_timeout` that every connection must have; `None` keeps the server's. Checked
    /// on every new connection: with no pooler it must come in the connect options (as
    /// [`strata_config::DatabaseConfig::connect_options`] puts it); through a pooler the pool
    /// sets it itself (see [`Pooler`]).
    pub statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout`, as `statement_timeout`.
    pub idle_in_transaction_timeout: Option<Duration>,
    /// The transaction-mode pooler keeps protocol-level prepared statements (PgBouncer 1.21
    /// or later with `max_prepared_statements`): statements are named and cached, and a bare
    /// statement runs without a transaction of its own
    /// ([`strata_config::DatabaseConfig::pooler_prepared_statements`]). The connect options
    /// must then keep sqlx's statement cache.
    pub pooler_prepared_statements: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            check_after: Duration::from_secs(1),
            connect_timeout: Some(Duration::from_secs(10)),
            response_timeout: Some(Duration::from_secs(35)),
            pooler: Pooler::None,
            statement_timeout: None,
            idle_in_transaction_timeout: None,
            pooler_prepared_statements: false,
        }
    }
}

impl PoolSettings {
    /// The sizes and timings of `[database]` in strata-config; `0s` means "never" for
    /// `idle_timeout` and `max_lifetime`.
    pub fn from_config(config: &strata_config::DatabaseConfig) -> Self {
        let never_if_zero = |d: Duration| (!d.is_zero()).then_some(d);
        Self {
            max_connections: config.max_connections,
            min_connections: config.min_connections,
            acquire_timeout: config.acquire_timeout,
            idle_timeout: never_if_zero(config.idle_timeout),
            max_lifetime: never_if_zero(config.max_lifetime),
            connect_timeout: never_if_zero(config.connect_timeout),
            response_timeout: never_if_zero(config.response_timeout),
            pooler: config.pooler,
            statement_timeout: never_if_zero(config.statement_timeout),
            idle_in_transaction_timeout: never_if_zero(config.idle_in_transaction_timeout),
            pooler_prepared_statements: config.pooler_prepared_statements,
            ..Self::default()
        }
    }

    /// The server settings the pool holds every connection to.
    fn server_settings(&self) -> ServerSettings {
        let or_zero = |d: Option<Duration>| d.unwrap_or_default();
        let settings = ServerSetting::of(
            or_zero(self.statement_timeout),
            or_zero(self.idle_in_transaction_timeout),
        );
        ServerSettings::new(settings, self.pooler, self.pooler_prepared_statements)
    }

    /// Through a transaction-mode pooler that keeps no prepared statements: statements go
    /// unnamed, and a bare one inside a transaction of its own.
    fn unnamed(&self) -> bool {
        self.pooler == Pooler::Transaction && !self.pooler_prepared_statements
    }

    /// How often bb8's reaper looks for idle and old connections: often enough that neither
    /// timeout is overshot by more than half of itself, at most every 30 s (bb8's default).
    fn reaper_rate(&self) -> Duration {
        [self.idle_timeout, self.max_lifetime]
            .into_iter()
            .flatten()
            .map(|d| d / 2)
            .fold(Duration::from_secs(30), Duration::min)
            .max(Duration::from_millis(50))
    }
}

/// A pooled connection as bb8 keeps it.
#[derive(Debug)]
pub struct Conn {
    raw: PgConnection,
    /// Whether it broke, and how statements are sent on it.
    watch: Watch,
    /// Given back with work unfinished (a queued `ROLLBACK`, an unread result).
    unsettled: bool,
    /// When it was last given back (or opened).
    returned: Instant,
}

impl Conn {
    /// The connection, and the flag that a failure on it sets, borrowed apart.
    pub(crate) fn split(&mut self) -> (&mut PgConnection, &mut Watch) {
        (&mut self.raw, &mut self.watch)
    }
}

/// What travels with a pooled connection into every handle made on it (an implementation
/// detail of [`crate::AsConnection`]).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// A statement on it failed in a way that leaves it unusable.
    pub(crate) broken: bool,
    /// It goes through a transaction-mode pooler that keeps no prepared statements: see
    /// [`PoolSettings::pooler`].
    pub(crate) unnamed: bool,
    /// Through a transaction-mode pooler that keeps prepared statements: the statements whose
    /// server-side plans went stale, shared by the pool's connections.
    pub(crate) stale: Option<Arc<StaleStatements>>,
    /// [`PoolSettings::response_timeout`].
    pub(crate) response_timeout: Option<Duration>,
    /// The `BEGIN` that carries the server settings through a transaction-mode pooler
    /// ([`ServerSettings::begin`]); `None` for a plain `BEGIN`.
    pub(crate) begin: Option<Arc<str>>,
}

impl Watch {
    /// Notes `result`'s failure when it leaves the connection unusable.
    pub(crate) fn observe<T>(watch: Option<&mut Self>, result: &Result<T, sqlx::Error>) {
        if let (Err(error), Some(watch)) = (result, watch) {
            // A cached statement whose plan no longer fits the schema fails every time it is
            // used again on this connection: a new one prepares it afresh.
            watch.broken |= breaks_connection(error) || plan_went_stale(error);
        }
    }
}

/// Opens connections for bb8 and decides which may be handed out.
struct Manager {
    options: PgConnectOptions,
    check_after: Duration,
    connect_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    /// Set by [`Pool::close`]: nothing is opened or handed out any more.
    closed: Arc<AtomicBool>,
    /// Through a transaction-mode pooler ([`PoolSettings::pooler`]).
    transaction_pooler: bool,
    /// [`PoolSettings::unnamed`].
    unnamed: bool,
    /// [`Watch::stale`].
    stale: Option<Arc<StaleStatements>>,
    /// What every new connection is set to and checked for.
    settings: ServerSettings,
    /// [`ServerSettings::begin`], once.
    begin: Option<Arc<str>>,
    /// Where a failed attempt to open a connection is reported to waiting callers.
    failures: Arc<ConnectFailures>,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    // Shared: the failure of an attempt to open a connection goes to the callers waiting for
    // one ([`ConnectFailures`]) as well as to bb8's error sink.
    type Error = Arc<sqlx::Error>;

    async fn connect(&self) -> Result<Conn, Arc<sqlx::Error>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Arc::new(sqlx::Error::PoolClosed));
        }
        let connect = async {
            let mut raw = self.options.connect().await?;
            self.settings.apply(&mut raw).await?;
            if self.transaction_pooler {
                learn_types(&mut raw).await?;
            }
            Ok(raw)
        };
        let raw = within(self.connect_timeout, "database.connect_timeout", connect)
            .await
            .map_err(|error| self.failures.report(error))?;
        let watch = Watch {
            broken: false,
            unnamed: self.unnamed,
            stale: self.stale.clone(),
            response_timeout: self.response_timeout,
            begin: self.begin.clone(),
        };
        Ok(Conn { raw, watch, unsettled: false, returned: Instant::now() })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), Arc<sqlx::Error>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Arc::new(sqlx::Error::PoolClosed));
        }
        if conn.unsettled || conn.returned.elapsed() > self.check_after {
            // Unsettled until the answer comes: bb8 gives the connection back to the idle list
            // when its acquire timeout interrupts this ping, and the next check-out must then
            // ping again rather than trust it.
            conn.unsettled = true;
            conn.raw.ping().await.map_err(Arc::new)?;
            conn.unsettled = false;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        // Bytes waiting to be sent are a queued ROLLBACK or the rest of a cancelled statement.
        conn.unsettled = conn.raw.should_flush();
        conn.returned = Instant::now();
        // Through a transaction-mode pooler, a connection given back inside a transaction (its
        // ROLLBACK still queued, and the settling in `PooledConnection`'s drop not possible or
        // failed) holds one of the pooler's few server connections until it is used again:
        // close it instead, and the pooler rolls back and frees the server.
        conn.watch.broken
            || (self.transaction_pooler && conn.unsettled)
            || self.closed.load(Ordering::Relaxed)
    }
}

/// Makes a new connection learn the schema's own types (enums, domains, ranges, and arrays of
/// them) before it runs an unnamed statement.
///
/// sqlx 0.9 resolves a type it has not seen with a simple query (`resolve.rs`), between the
/// `Parse` of a statement and its `Bind`; a simple query destroys the unnamed statement, so the
/// `Bind` fails (SQLSTATE 26000, "unnamed prepared statement does not exist"). Measured through
/// PgBouncer in transaction mode: the first statement returning an enum failed on every new
/// connection (8 of 8 workers) until this ran. Here the types are learned once per
/// connection, in a transaction that is rolled back, where that failure is expected.
async fn learn_types(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // Simple protocol: one message, whichever server connection the pooler picks.
    let probe: Option<String> = sqlx::raw_sql(
        "select 'select ' || string_agg(format('null::%s', format_type(t.oid, null)), ', ')
           from pg_type t join pg_namespace n on n.oid = t.typnamespace
          where n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
            and (t.typtype in ('e', 'd', 'r', 'm')
                 or exists (select from pg_type e
                             where e.oid = t.typelem and e.typtype in ('e', 'd', 'r')))",
    )
    .fetch_one(&mut *conn)
    .await
    .and_then(|row| sqlx::Row::try_get(&row, 0))?;
    if let Some(probe) = probe {
        let mut tx = conn.begin().await?;
        let _expected_to_fail = sqlx::query(sqlx::AssertSqlSafe(probe))
            .persistent(false)
            .fetch_optional(&mut *tx)
            .await;
        tx.rollback().await?;
    }
    Ok(())
}

/// Logs the connection errors that bb8 retries in the background; the callers waiting meet
/// them through [`ConnectFailures`].
#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl bb8::ErrorSink<Arc<sqlx::Error>> for LogErrors {
    fn sink(&self, error: Arc<sqlx::Error>) {
        if matches!(*error, sqlx::Error::PoolClosed) {
            return;
        }
        tracing::warn!(%error, "could not open a database connection; retrying");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<Arc<sqlx::Error>>> {
        Box::new(*self)
    }
}

/// The last failed attempt to open a connection, for the callers waiting for one.
///
/// bb8 opens connections in the background, retries failed attempts until its timeout, and
/// hands their errors to its error sink, never to the caller that waits: through a PgBouncer
/// that refused `options`, 8 of 8 callers waited the whole acquire timeout and got
/// `PoolTimedOut`, without the pooler's words. Here a waiting caller sees each failure: one
/// that will come again at once ([`crate::error::refuses_for_good`]) ends its wait with that
/// error, and any other is what its timeout returns.
#[derive(Debug)]
struct ConnectFailures(tokio::sync::watch::Sender<Option<Arc<sqlx::Error>>>);

impl ConnectFailures {
    fn new() -> Self {
        Self(tokio::sync::watch::Sender::new(None))
    }

    /// Tells the waiting callers of `error`, and gives it back shared.
    fn report(&self, error: sqlx::Error) -> Arc<sqlx::Error> {
        let error = Arc::new(error);
        self.0.send_replace(Some(error.clone()));
        error
    }

    /// Failures from now on.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Arc<sqlx::Error>>> {
        self.0.subscribe()
    }
}

/// A pool of PostgreSQL connections; cheap to clone (all clones share the connections).
///
/// Callers get connections in the order they asked: a FIFO semaphore of `max_connections`
/// permits stands in front of bb8. bb8 alone lets a caller that just gave a connection back
/// take it again before the waiter it woke (its `Notify` is not a queue of connections): at
/// 64 callers on 8 connections (`just bench --scale`), p50 was 0.24 ms while the mean, by
/// Little's law, was 1.9 ms, so about 1% of calls waited over 100 ms while others barged.
#[derive(Clone)]
pub struct Pool {
    inner: bb8::Pool<Manager>,
    settings: PoolSettings,
    closed: Arc<AtomicBool>,
    /// One permit per connection, handed out first come, first served.
    turns: Arc<tokio::sync::Semaphore>,
    /// Callers waiting for a permit now.
    queued: Arc<std::sync::atomic::AtomicU64>,
    /// Callers that gave up waiting for a permit, or for bb8 after it (bb8 counts its own).
    gave_up: Arc<std::sync::atomic::AtomicU64>,
    /// Failed attempts to open a connection, as they happen.
    failures: Arc<ConnectFailures>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the connect options: their Debug shows the password.
        f.debug_struct("Pool").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool that opens connections on demand, and keeps `min_connections` open from the
    /// start (opened in the background).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] with a configuration error when called outside a Tokio runtime
    /// (the pool's reaper runs as a task).
    pub fn new(options: PgConnectOptions, settings: PoolSettings) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Database(sqlx::Error::Configuration(
                "strata_db::Pool must be created inside a Tokio runtime".into(),
            )));
        }
        let max = settings.max_connections.max(1);
        let closed = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(ConnectFailures::new());
        let server_settings = settings.server_settings();
        let transaction_pooler = settings.pooler == Pooler::Transaction;
        let inner = bb8::Pool::builder()
            .max_size(max)
            .min_idle((settings.min_connections > 0).then_some(settings.min_connections.min(max)))
            .connection_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            .reaper_rate(settings.reaper_rate())
            .test_on_check_out(true)
            // The most recently used connection first: it is warm, and the others stay idle
            // long enough for `idle_timeout` to close them when load drops.
            .queue_strategy(bb8::QueueStrategy::Lifo)
            .error_sink(Box::new(LogErrors))
            .build_unchecked(Manager {
                options,
                check_after: settings.check_after,
                connect_timeout: settings.connect_timeout,
                response_timeout: settings.response_timeout,
                closed: closed.clone(),
                transaction_pooler,
                unnamed: settings.unnamed(),
                stale: (transaction_pooler && settings.pooler_prepared_statements)
                    .then(Arc::default),
                begin: server_settings.begin(),
                settings: server_settings,
                failures: failures.clone(),
            });
        let turns = Arc::new(tokio::sync::Semaphore::new(max as usize));
        Ok(Self {
            inner,
            settings,
            closed,
            turns,
            queued: Arc::default(),
            gave_up: Arc::default(),
            failures,
        })
    }

    /// A pool from strata-config's `[database]` section (URL, TLS, statement timeout, sizes).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is missing or unusable; as [`Pool::new`] otherwise.
    pub fn from_config(config: &strata_config::DatabaseConfig) -> Result<Self, Error> {
        Self::new(config.connect_options()?, PoolSettings::from_config(config))
    }

    /// The sizes and timings the pool was built with.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// A connection, idle or new; it goes back to the pool when dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] with the server's or pooler's own words as soon as an attempt to
    /// open a connection is refused in a way that will not pass (a wrong password, a start-up
    /// parameter the pooler refuses, a setting that did not take), and with the last failure
    /// when none is ready within the acquire timeout after attempts failed (a server
    /// restarting); [`Error::Database`] with `PoolTimedOut` when all connections stayed in use.
    pub async fn acquire(&self) -> Result<PooledConnection, Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Database(sqlx::Error::PoolClosed));
        }
        let deadline = tokio::time::Instant::now() + self.settings.acquire_timeout;
        let waiting = InQueue::join(&self.queued);
        let turn = tokio::time::timeout_at(deadline, self.turns.clone().acquire_owned()).await;
        drop(waiting);
        let turn = match turn {
            Ok(Ok(turn)) => turn,
            Ok(Err(_closed)) => return Err(Error::Database(sqlx::Error::PoolClosed)),
            Err(_elapsed) => {
                self.gave_up.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Database(sqlx::Error::PoolTimedOut));
            }
        };
        let mut failures = self.failures.subscribe();
        let mut last_failure = None;
        let get = tokio::time::timeout_at(deadline, self.inner.get_owned());
        tokio::pin!(get);
        let got = loop {
            tokio::select! {
                got = &mut get => break got,
                Ok(()) = failures.changed() => {
                    last_failure = failures.borrow_and_update().clone();
                    if let Some(error) = last_failure.as_ref().filter(|e| refuses_for_good(e)) {
                        return Err(Error::Connect(error.clone()));
                    }
                }
            }
        };
        let timed_out = || match last_failure {
            Some(error) => Error::Connect(error),
            None => Error::Database(sqlx::Error::PoolTimedOut),
        };
        match got {
            Ok(Ok(inner)) => Ok(PooledConnection { inner: Some(inner), _turn: turn }),
            Ok(Err(bb8::RunError::User(error))) => Err(Error::Connect(error)),
            Ok(Err(bb8::RunError::TimedOut)) => Err(timed_out()),
            Err(_elapsed) => {
                self.gave_up.fetch_add(1, Ordering::Relaxed);
                Err(timed_out())
            }
        }
    }

    /// Connections open now (idle ones plus those handed out).
    pub fn size(&self) -> u32 {
        self.inner.state().connections
    }

    /// Figures a service can export: what is open, idle, in use and waiting now, and counters
    /// since the pool was built.
    pub fn metrics(&self) -> PoolMetrics {
        let state = self.inner.state();
        let stats = &state.statistics;
        PoolMetrics {
            open: state.connections,
            idle: state.idle_connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
            waiting: self.queued.load(Ordering::Relaxed) + stats.pending_gets(),
            acquisitions: stats.get_direct + stats.get_waited,
            timeouts: stats.get_timed_out + self.gave_up.load(Ordering::Relaxed),
            opened: stats.connections_created,
            replaced: stats.connections_closed_broken + stats.connections_closed_invalid,
            closed_idle: stats.connections_closed_idle_timeout,
            closed_lifetime: stats.connections_closed_max_lifetime,
        }
    }

    /// Whether the pool can reach the database now: one connection, checked with a round trip
    /// (for a readiness probe).
    ///
    /// # Errors
    ///
    /// As [`Pool::acquire`], or the ping's error.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.acquire().await?;
        let (raw, watch) = conn.conn().split();
        Ok(watched(Some(watch), raw.ping()).await?)
    }

    /// Closes the pool: later acquisitions fail with `PoolClosed`, idle connections close now,
    /// and connections in use close when they are given back (drain in-flight work first).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.turns.close();
        // bb8 has no close: one check-out with the flag set makes it drop every idle
        // connection (each fails its check), then finds nothing to open and gives up.
        drop(tokio::time::timeout(Duration::from_millis(20), self.inner.get()).await);
    }

    /// Whether [`Pool::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// One caller counted in [`Pool`]'s queue while it waits for its turn; the count drops when
/// this does, also when the caller gives up (its `acquire` future dropped mid-wait).
struct InQueue<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> InQueue<'a> {
    fn join(queue: &'a std::sync::atomic::AtomicU64) -> Self {
        queue.fetch_add(1, Ordering::Relaxed);
        Self(queue)
    }
}

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A snapshot of a [`Pool`]'s state and counters, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Connections open now.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// Of those, handed out.
    pub in_use: u32,
    /// Callers waiting for a connection now.
    pub waiting: u64,
    /// Connections handed out since the pool was built.
    pub acquisitions: u64,
    /// Callers that gave up after the acquire timeout.
    pub timeouts: u64,
    /// Connections opened.
    pub opened: u64,
    /// Connections closed because they broke or failed their check, and replaced.
    pub replaced: u64,
    /// Connections closed by `idle_timeout`.
    pub closed_idle: u64,
    /// Connections closed by `max_lifetime`.
    pub closed_lifetime: u64,
}

/// A connection checked out of a [`Pool`]; it goes back when dropped.
///
/// Use `&mut conn` as an executor (`query.fetch_one(&mut conn)`) and pass it to the data layer
/// (`TenantTx::begin(&mut conn, …)`, `users::create(&mut conn, …)`): failures then reach the
/// pool, which never hands out a broken connection again. It does not dereference to sqlx's
/// [`PgConnection`]: [`PooledConnection::raw_connection`] says what that bypasses.
pub struct PooledConnection {
    // Fields drop in order: the connection goes back to bb8 before the next caller's turn.
    // `None` only once dropped (see `Drop`).
    inner: Option<bb8::PooledConnection<'static, Manager>>,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for PooledConnection {
    /// A transaction dropped without a commit (an error's early return, a request cancelled
    /// mid-work) only queues its ROLLBACK, which sqlx sends with the connection's next
    /// statement: until then the server keeps the transaction's locks, and an idle service
    /// may not use the connection again for a long time. Settle it now, on a task of its own,
    /// then give it back. Found by bench workload 12: creates cancelled when oha stopped held
    /// their project's row lock, and the next writers timed out behind it.
    fn drop(&mut self) {
        let Some(mut conn) = self.inner.take() else { return };
        if conn.watch.broken || !conn.raw.should_flush() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let limit = conn.watch.response_timeout.unwrap_or(Duration::from_secs(30));
        runtime.spawn(async move {
            // The ping flushes the queued ROLLBACK first; a connection that does not answer
            // is closed, which also ends the transaction on the server.
            if !matches!(tokio::time::timeout(limit, conn.raw.ping()).await, Ok(Ok(()))) {
                conn.watch.broken = true;
            }
        });
    }
}

impl fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection").finish_non_exhaustive()
    }
}

impl PooledConnection {
    /// Closes the connection instead of returning it, for a caller that saw it fail.
    pub fn discard(mut self) {
        self.conn().watch.broken = true;
    }

    /// The pooled connection (there until the drop).
    fn conn(&mut self) -> &mut Conn {
        match &mut self.inner {
            Some(conn) => conn,
            None => unreachable!("a PooledConnection is used only before its drop"),
        }
    }

    /// The connection and its broken flag, borrowed apart (for [`crate::TenantTx`]).
    pub(crate) fn split(&mut self) -> (&mut PgConnection, &mut Watch) {
        self.conn().split()
    }

    /// The driver's connection itself, for what the data layer does not offer (sqlx's own
    /// `Connection::begin`, `copy_in_raw`, listening).
    ///
    /// What runs on it bypasses the pool: a failure there does not mark the connection broken
    /// (a later check-out pings it once it has been idle for [`PoolSettings::check_after`]),
    /// [`PoolSettings::response_timeout`] does not apply, and through a transaction-mode pooler
    /// its statements are named and sent outside a transaction, which the pooler breaks. Use
    /// `&mut conn` as the executor instead wherever it will do.
    pub fn raw_connection(&mut self) -> &mut PgConnection {
        &mut self.conn().raw
    }

    /// Whether a statement on it failed in a way that leaves it unusable.
    pub(crate) fn is_broken(&self) -> bool {
        self.inner.as_ref().is_some_and(|conn| conn.watch.broken)
    }
}

crate::exec::observed_executor!(PooledConnection, |this| {
    let (conn, watch) = this.split();
    (conn, Some(watch))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaper_runs_at_half_the_shortest_timeout_within_bounds() {
        let mut s = PoolSettings { idle_timeout: None, max_lifetime: None, ..Default::default() };
        assert_eq!(s.reaper_rate(), Duration::from_secs(30));
        s.idle_timeout = Some(Duration::from_secs(2));
        assert_eq!(s.reaper_rate(), Duration::from_secs(1));
        s.max_lifetime = Some(Duration::from_millis(20));
        assert_eq!(s.reaper_rate(), Duration::from_millis(50));
    }
}
