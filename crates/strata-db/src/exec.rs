//! Running statements on a pooled connection: every statement and every row of a stream
//! within the connection's response timeout, a failure that leaves the connection unusable
//! noted on its [`Watch`], and, through a transaction-mode pooler, unnamed statements inside a
//! transaction. Written once, for sqlx's `Executor` of the pooled connection and of the tenant
//! handles ([`observed_executor`]).

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement};
use sqlx::{
    AssertSqlSafe, Connection, Either, Execute, Executor, PgConnection, Postgres, SqlStr,
    Transaction,
};

use crate::error::plan_went_stale;
use crate::pool::Watch;

/// Awaits `future` for at most `limit` (`None`: for ever); past it, an I/O error of kind
/// `TimedOut` that names `setting`.
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    setting: &'static str,
    future: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let Some(limit) = limit else { return future.await };
    tokio::time::timeout(limit, future).await.unwrap_or_else(|_| {
        Err(sqlx::Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer from the server within {setting} ({limit:?})"),
        )))
    })
}

/// Awaits `future` within the connection's response timeout, and marks the connection broken
/// when it fails in a way that leaves the connection unusable (a timeout included).
pub(crate) async fn watched<T>(
    watch: Option<&mut Watch>,
    future: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let limit = watch.as_ref().and_then(|w| w.response_timeout);
    let result = within(limit, "database.response_timeout", future).await;
    Watch::observe(watch, &result);
    result
}

/// Begins a transaction on `conn`, or a savepoint when one is open, watched as [`watched`].
/// Through a transaction-mode pooler the `BEGIN` carries the server settings as `SET LOCAL`
/// ([`Watch::begin`]), in the same message.
pub(crate) async fn begin<'c>(
    conn: &'c mut PgConnection,
    watch: Option<&mut Watch>,
) -> Result<Transaction<'c, Postgres>, sqlx::Error> {
    // A savepoint takes no `BEGIN` statement of its own (sqlx refuses one).
    let statement =
        watch.as_ref().and_then(|w| w.begin.clone()).filter(|_| !conn.is_in_transaction());
    watched(watch, begin_unwatched(conn, statement)).await
}

/// [`watched`], boxed for an executor.
pub(crate) fn observed<'e, T: Send + 'e>(
    watch: Option<&'e mut Watch>,
    future: BoxFuture<'e, Result<T, sqlx::Error>>,
) -> BoxFuture<'e, Result<T, sqlx::Error>> {
    watched(watch, future).boxed()
}

/// [`observed`] for a stream of results: the response timeout applies to each item.
pub(crate) fn observed_stream<'e, T: Send + 'e>(
    watch: Option<&'e mut Watch>,
    stream: BoxStream<'e, Result<T, sqlx::Error>>,
) -> BoxStream<'e, Result<T, sqlx::Error>> {
    futures_util::stream::unfold(Some((stream, watch)), |state| async move {
        let (mut stream, mut watch) = state?;
        let item = watched(watch.as_deref_mut(), async { stream.next().await.transpose() });
        match item.await {
            Ok(None) => None,
            Ok(Some(item)) => Some((Ok(item), Some((stream, watch)))),
            // sqlx ends a stream after its first error; so does this.
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

/// A query taken apart, so that its text can be read before it is sent, and sent named
/// (`persistent`: sqlx prepares and caches it) or unnamed.
struct Sent {
    sql: SqlStr,
    arguments: Option<PgArguments>,
    persistent: bool,
}

impl Sent {
    /// `query`, named only if it asks to be and `named` allows it.
    fn of<'q, E: Execute<'q, Postgres>>(mut query: E, named: bool) -> Result<Self, sqlx::Error> {
        let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
        let persistent = named && query.persistent();
        Ok(Self { sql: query.sql(), arguments, persistent })
    }
}

impl Execute<'_, Postgres> for Sent {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&PgStatement> {
        // A prepared statement object names a server-side statement: not through the pooler.
        None
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// The statements whose plans went stale on the server connections behind a pooler that keeps
/// prepared statements (`cached plan must not change result type`, after a migration changed
/// a column they return), shared by a pool's connections: sent unnamed from then on.
///
/// PgBouncer 1.21 and later keep one server-side statement per text on each server connection
/// and give it to every client that prepares the same text: a client that reconnects still
/// meets the stale plan, until PgBouncer's `RECONNECT` (admin console) replaces the server
/// connections.
#[derive(Debug, Default)]
pub(crate) struct StaleStatements {
    /// Whether any is stale, read before taking the lock.
    any: AtomicBool,
    texts: RwLock<HashSet<String>>,
}

impl StaleStatements {
    fn contains(&self, sql: &str) -> bool {
        self.any.load(Ordering::Relaxed) && self.texts.read().is_ok_and(|texts| texts.contains(sql))
    }

    /// Notes `sql` when `error` says its plan went stale.
    fn note(&self, sql: &str, error: &sqlx::Error) {
        if plan_went_stale(error)
            && let Ok(mut texts) = self.texts.write()
        {
            texts.insert(sql.to_owned());
            self.any.store(true, Ordering::Relaxed);
        }
    }
}

/// How a query goes out on a watched connection: as the caller made it, or taken apart
/// ([`Sent`]) when a transaction-mode pooler decides whether it is named.
enum Route<E> {
    AsIs(E),
    Sent(Sent),
}

fn route<'q, E: Execute<'q, Postgres>>(
    watch: Option<&Watch>,
    query: E,
) -> Result<Route<E>, sqlx::Error> {
    match watch {
        Some(watch) if watch.unnamed => Ok(Route::Sent(Sent::of(query, false)?)),
        Some(Watch { stale: Some(stale), .. }) => {
            let mut sent = Sent::of(query, true)?;
            sent.persistent &= !stale.contains(sent.sql.as_str());
            Ok(Route::Sent(sent))
        }
        _ => Ok(Route::AsIs(query)),
    }
}

/// What notes a stale plan for the statement `sql` ([`StaleStatements::note`]).
fn noting(watch: Option<&Watch>, sql: &SqlStr) -> impl Fn(&sqlx::Error) + Send + 'static {
    let (stale, sql) = (watch.and_then(|w| w.stale.clone()), sql.clone());
    move |error| {
        if let Some(stale) = &stale {
            stale.note(sql.as_str(), error);
        }
    }
}

/// The results of a query, for an executor over `conn`.
///
/// Through a transaction-mode pooler ([`Watch::unnamed`]) the statement is unnamed, and one
/// sent outside a transaction runs inside one of its own (results buffered): sqlx sends
/// `Parse`/`Describe`/`Sync` and then `Bind`/`Execute`/`Sync`, and a pooler in transaction
/// mode may give the second half to another server connection, where the unnamed statement is
/// another client's. Measured in `crates/strata-db/tests/pgbouncer.rs`: 130 of 320 such
/// statements failed without it (a `Bind` meeting another client's statement), none with it.
/// Through one that keeps prepared statements ([`Watch::stale`]) statements are named and
/// bare ones need no transaction, except a statement whose plan went stale there: it goes
/// unnamed, as above.
pub(crate) fn fetch_many<'e, 'q: 'e, E>(
    conn: &'e mut PgConnection,
    watch: Option<&'e mut Watch>,
    query: E,
) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
where
    E: Execute<'q, Postgres> + 'q,
{
    let sent = match route(watch.as_deref(), query) {
        Ok(Route::AsIs(query)) => return observed_stream(watch, conn.fetch_many(query)),
        Ok(Route::Sent(sent)) => sent,
        Err(error) => return futures_util::stream::once(async { Err(error) }).boxed(),
    };
    let note = noting(watch.as_deref(), &sent.sql);
    if sent.persistent || conn.is_in_transaction() {
        return observed_stream(watch, conn.fetch_many(sent).inspect_err(note).boxed());
    }
    let begin = watch.as_ref().and_then(|w| w.begin.clone());
    let all = async move {
        let mut tx = begin_unwatched(conn, begin).await?;
        let items: Vec<_> = tx.fetch_many(sent).try_collect().await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(futures_util::stream::iter(items.into_iter().map(Ok)))
    };
    let all = all.inspect_err(note);
    observed_stream(watch, futures_util::stream::once(all).try_flatten().boxed())
}

/// `BEGIN`, or `statement` in its place (for [`begin`], and for the bare statements above,
/// which are watched as a whole).
async fn begin_unwatched(
    conn: &mut PgConnection,
    statement: Option<std::sync::Arc<str>>,
) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
    match statement {
        Some(statement) => conn.begin_with(AssertSqlSafe(statement)).await,
        None => conn.begin().await,
    }
}

/// [`fetch_many`] for at most one row.
pub(crate) fn fetch_optional<'e, 'q: 'e, E>(
    conn: &'e mut PgConnection,
    watch: Option<&'e mut Watch>,
    query: E,
) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
where
    E: Execute<'q, Postgres> + 'q,
{
    let sent = match route(watch.as_deref(), query) {
        Ok(Route::AsIs(query)) => return observed(watch, conn.fetch_optional(query)),
        Ok(Route::Sent(sent)) => sent,
        Err(error) => return async { Err(error) }.boxed(),
    };
    let note = noting(watch.as_deref(), &sent.sql);
    if sent.persistent || conn.is_in_transaction() {
        return observed(watch, conn.fetch_optional(sent).inspect_err(note).boxed());
    }
    let begin = watch.as_ref().and_then(|w| w.begin.clone());
    let one = async move {
        let mut tx = begin_unwatched(conn, begin).await?;
        let row = tx.fetch_optional(sent).await?;
        tx.commit().await?;
        Ok(row)
    };
    observed(watch, one.inspect_err(note).boxed())
}

/// Implements sqlx's `Executor` for a handle by delegating to the `PgConnection` that
/// `$split` borrows from it, through [`observed`]. Written once for the pooled connection
/// and the tenant handles.
macro_rules! observed_executor {
    ($ty:ty, |$this:ident| $split:expr) => {
        impl<'c> ::sqlx::Executor<'c> for &'c mut $ty {
            type Database = ::sqlx::Postgres;

            fn fetch_many<'e, 'q, E>(
                self,
                query: E,
            ) -> ::futures_util::stream::BoxStream<
                'e,
                Result<
                    ::sqlx::Either<::sqlx::postgres::PgQueryResult, ::sqlx::postgres::PgRow>,
                    ::sqlx::Error,
                >,
            >
            where
                'c: 'e,
                E: ::sqlx::Execute<'q, Self::Database>,
                'q: 'e,
                E: 'q,
            {
                let $this = self;
                let (conn, watch) = $split;
                $crate::exec::fetch_many(conn, watch, query)
            }

            fn fetch_optional<'e, 'q, E>(
                self,
                query: E,
            ) -> ::futures_util::future::BoxFuture<
                'e,
                Result<Option<::sqlx::postgres::PgRow>, ::sqlx::Error>,
            >
            where
                'c: 'e,
                E: ::sqlx::Execute<'q, Self::Database>,
                'q: 'e,
                E: 'q,
            {
                let $this = self;
                let (conn, watch) = $split;
                $crate::exec::fetch_optional(conn, watch, query)
            }

            fn prepare_with<'e>(
                self,
                sql: ::sqlx::SqlStr,
                parameters: &'e [::sqlx::postgres::PgTypeInfo],
            ) -> ::futures_util::future::BoxFuture<
                'e,
                Result<::sqlx::postgres::PgStatement, ::sqlx::Error>,
            >
            where
                'c: 'e,
            {
                let $this = self;
                let (conn, watch) = $split;
                $crate::exec::observed(watch, conn.prepare_with(sql, parameters))
            }

            fn describe<'e>(
                self,
                sql: ::sqlx::SqlStr,
            ) -> ::futures_util::future::BoxFuture<
                'e,
                Result<::sqlx::Describe<Self::Database>, ::sqlx::Error>,
            >
            where
                'c: 'e,
            {
                let $this = self;
                let (conn, watch) = $split;
                $crate::exec::observed(watch, conn.describe(sql))
            }
        }
    };
}
pub(crate) use observed_executor;
