//! Running statements on a pooled connection: every statement and every row of a stream
//! within the connection's response timeout, a failure that leaves the connection unusable
//! noted on its [`Watch`], and, through a transaction-mode pooler, unnamed statements inside a
//! transaction. Written once, for sqlx's `Executor` of the pooled connection and of the tenant
//! handles ([`observed_executor`]).

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgQueryResult, PgRow, PgStatement};
use sqlx::{
    AssertSqlSafe, Connection, Either, Execute, Executor, PgConnection, Postgres, SqlStr,
    Transaction,
};

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
    let statement = watch.as_ref().and_then(|w| w.begin.clone());
    match statement.filter(|_| !conn.is_in_transaction()) {
        Some(statement) => watched(watch, conn.begin_with(AssertSqlSafe(statement))).await,
        None => watched(watch, conn.begin()).await,
    }
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

/// A query sent as an unnamed statement: `persistent` is false, so sqlx parses it into the
/// unnamed statement instead of naming (and caching) one.
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(self) -> SqlStr {
        self.0.sql()
    }

    fn statement(&self) -> Option<&PgStatement> {
        // A prepared statement object names a server-side statement: not through the pooler.
        None
    }

    fn take_arguments(&mut self) -> Result<Option<PgArguments>, BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
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
pub(crate) fn fetch_many<'e, 'q: 'e, E>(
    conn: &'e mut PgConnection,
    watch: Option<&'e mut Watch>,
    query: E,
) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
where
    E: Execute<'q, Postgres> + 'q,
{
    if !watch.as_ref().is_some_and(|w| w.unnamed) {
        return observed_stream(watch, conn.fetch_many(query));
    }
    if conn.is_in_transaction() {
        return observed_stream(watch, conn.fetch_many(Unnamed(query)));
    }
    let begin = watch.as_ref().and_then(|w| w.begin.clone());
    let all = async move {
        let mut tx = begin_unwatched(conn, begin).await?;
        let items: Vec<_> = tx.fetch_many(Unnamed(query)).try_collect().await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(futures_util::stream::iter(items.into_iter().map(Ok)))
    };
    observed_stream(watch, futures_util::stream::once(all).try_flatten().boxed())
}

/// `BEGIN`, or `statement` in its place, for the bare statements above (watched as a whole).
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
    if !watch.as_ref().is_some_and(|w| w.unnamed) {
        return observed(watch, conn.fetch_optional(query));
    }
    if conn.is_in_transaction() {
        return observed(watch, conn.fetch_optional(Unnamed(query)));
    }
    let begin = watch.as_ref().and_then(|w| w.begin.clone());
    let one = async move {
        let mut tx = begin_unwatched(conn, begin).await?;
        let row = tx.fetch_optional(Unnamed(query)).await?;
        tx.commit().await?;
        Ok(row)
    };
    observed(watch, one.boxed())
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
