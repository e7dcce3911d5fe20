//! Tenant handles: the only way into tenant-owned operations.
//!
//! Every function that reads or writes an organization's rows takes a [`TenantTx`] (a
//! transaction with the organization set for row-level security, made only by checking the
//! caller's membership), or, for the few single-statement reads that set the tenant themselves,
//! any [`Tenant`]. Calling one with a bare connection does not compile:
//!
//! ```compile_fail,E0308
//! # async fn handler(conn: &mut sqlx::PgConnection, id: strata_db::ProjectId) {
//! // A connection is not a tenant transaction: this does not compile.
//! let project = strata_db::projects::get(conn, id).await;
//! # }
//! ```
//!
//! ```compile_fail,E0308
//! # async fn handler(conn: &mut sqlx::PgConnection, scope: strata_db::Scope, id: strata_db::ProjectId) {
//! // Nor does a scope with a connection outside its transaction.
//! let project = strata_db::projects::get(&mut scope.on(conn), id).await;
//! # }
//! ```
//!
//! The same calls with the handle a scope makes:
//!
//! ```no_run
//! # async fn handler(conn: &mut sqlx::PgConnection, scope: strata_db::Scope,
//! #                  project: strata_db::ProjectId, task: strata_db::TaskId) -> Result<(), strata_db::Error> {
//! let mut tx = scope.begin(conn).await?;
//! let project = strata_db::projects::get(&mut tx, project).await?;
//! tx.commit().await?;
//! // One-statement reads that confine themselves also take a scope on a bare connection.
//! let task = strata_db::tasks::get(&mut scope.on(conn), task).await?;
//! # Ok(()) }
//! ```

use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::exec::{begin, observed_executor, watched};
use crate::pool::Watch;
use crate::{Error, OrganizationId, PooledConnection, Role, Scope, UserId};

/// Seals [`AsConnection`] and [`Tenant`]: only this crate's types implement them, so that the
/// data layer's own statements always know the connection's pool (its health, its timeout,
/// its pooler mode).
mod sealed {
    /// Implemented by this crate's connection and tenant types only.
    pub trait Sealed {}
}

impl sealed::Sealed for PgConnection {}
impl sealed::Sealed for PooledConnection {}
impl sealed::Sealed for sqlx::pool::PoolConnection<Postgres> {}
impl sealed::Sealed for Transaction<'_, Postgres> {}
impl sealed::Sealed for crate::ReadConnection {}
impl sealed::Sealed for TenantTx<'_> {}
impl sealed::Sealed for TenantConn<'_> {}

/// What a tenant handle can be made on: a [`PooledConnection`] (whose failures its pool then
/// sees), a bare `PgConnection`, a connection of sqlx's own pool (as `#[sqlx::test]` hands
/// out), or a sqlx `Transaction` (the tenant transaction becomes a savepoint in it). Sealed:
/// implemented by these types only.
pub trait AsConnection: sealed::Sealed + Send {
    /// The connection, and the pool's watch on it when there is one.
    #[doc(hidden)]
    fn split_connection(&mut self) -> (&mut PgConnection, Option<&mut Watch>);
}

impl AsConnection for PgConnection {
    fn split_connection(&mut self) -> (&mut PgConnection, Option<&mut Watch>) {
        (self, None)
    }
}

impl AsConnection for PooledConnection {
    fn split_connection(&mut self) -> (&mut PgConnection, Option<&mut Watch>) {
        let (conn, broken) = self.split();
        (conn, Some(broken))
    }
}

impl AsConnection for sqlx::pool::PoolConnection<Postgres> {
    fn split_connection(&mut self) -> (&mut PgConnection, Option<&mut Watch>) {
        (&mut **self, None)
    }
}

impl AsConnection for Transaction<'_, Postgres> {
    fn split_connection(&mut self) -> (&mut PgConnection, Option<&mut Watch>) {
        (&mut **self, None)
    }
}

/// A handle on one organization's data, as one member: a [`TenantTx`] or a [`TenantConn`].
/// Functions that take any `Tenant` run a single statement that sets the organization itself.
/// Sealed: implemented by these two types only.
pub trait Tenant: sealed::Sealed + Send {
    /// The organization and member this handle acts for.
    fn scope(&self) -> &Scope;

    /// The connection and the pool's watch on it, for the data layer's own statements.
    #[doc(hidden)]
    fn parts(&mut self) -> (&mut PgConnection, Option<&mut Watch>, &Scope);
}

/// A transaction scoped to one organization as one member: row-level security sees the
/// organization, and the member's role is the one read when the transaction began.
///
/// Made by [`TenantTx::begin`] or [`Scope::begin`]; commit it to keep the work (dropping it
/// rolls back). Use `&mut tx` as an executor for statements of your own in the same
/// transaction.
pub struct TenantTx<'c> {
    tx: Transaction<'c, Postgres>,
    broken: Option<&'c mut Watch>,
    scope: Scope,
    /// A savepoint in the caller's transaction: its commit decides nothing yet.
    nested: bool,
}

impl std::fmt::Debug for TenantTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantTx").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl<'c> TenantTx<'c> {
    /// Begins a transaction (a savepoint inside a sqlx `Transaction`), checks that `user` is a
    /// member of `organization` and sets the organization for row-level security: two round
    /// trips (`BEGIN`, then one statement for both).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the user is not a member (the transaction is rolled back), or
    /// when the connection's transaction is already scoped to another organization.
    #[tracing::instrument(skip(conn), err(level = "debug"))]
    pub async fn begin(
        conn: &'c mut (impl AsConnection + ?Sized),
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Self, Error> {
        let (conn, mut broken) = conn.split_connection();
        let nested = conn.is_in_transaction();
        let tx = begin(conn, broken.as_deref_mut()).await?;
        let mut handle = Self { tx, broken, scope: Scope::owner_of(organization, user), nested };
        handle.scope = enter(&mut handle, organization, user).await?;
        Ok(handle)
    }

    /// Commits the transaction.
    ///
    /// # Errors
    ///
    /// [`Error::InDoubt`] when the connection is lost or stops answering before the server
    /// confirms the commit (the work may or may not be kept); [`Error::Database`] when the
    /// commit fails (nothing is kept).
    pub async fn commit(self) -> Result<(), Error> {
        let Self { tx, broken, nested, .. } = self;
        commit(tx, broken, nested).await
    }

    /// Rolls the transaction back (dropping it does the same on the connection's next use).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the connection fails.
    pub async fn rollback(self) -> Result<(), Error> {
        let Self { tx, broken, .. } = self;
        Ok(watched(broken, tx.rollback()).await?)
    }

    /// The organization and member this transaction acts for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    fn split(&mut self) -> (&mut PgConnection, Option<&mut Watch>) {
        (&mut *self.tx, self.broken.as_deref_mut())
    }
}

/// Commits `tx`, begun on a connection that was in a transaction already (`nested`: a
/// savepoint is released, which decides nothing yet) or not: then a connection lost before
/// the answer leaves the outcome unknown.
pub(crate) async fn commit(
    tx: Transaction<'_, Postgres>,
    watch: Option<&mut Watch>,
    nested: bool,
) -> Result<(), Error> {
    match watched(watch, tx.commit()).await {
        Err(error) if !nested => Err(crate::error::of_write(error)),
        result => Ok(result?),
    }
}

impl Tenant for TenantTx<'_> {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn parts(&mut self) -> (&mut PgConnection, Option<&mut Watch>, &Scope) {
        (&mut *self.tx, self.broken.as_deref_mut(), &self.scope)
    }
}

observed_executor!(TenantTx<'_>, |this| this.split());

/// A scope on a connection outside any transaction, for the single-statement reads that set
/// the organization themselves ([`crate::tasks::get`]): one round trip, no `BEGIN`.
///
/// Made by [`Scope::on`]. Anything else needs a [`TenantTx`].
pub struct TenantConn<'c> {
    conn: &'c mut PgConnection,
    broken: Option<&'c mut Watch>,
    scope: Scope,
}

impl std::fmt::Debug for TenantConn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConn").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl<'c> TenantConn<'c> {
    pub(crate) fn new(conn: &'c mut (impl AsConnection + ?Sized), scope: Scope) -> Self {
        let (conn, broken) = conn.split_connection();
        Self { conn, broken, scope }
    }
}

impl Tenant for TenantConn<'_> {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn parts(&mut self) -> (&mut PgConnection, Option<&mut Watch>, &Scope) {
        (&mut *self.conn, self.broken.as_deref_mut(), &self.scope)
    }
}

/// Runs a statement on a tenant's connection: the data layer's executor for [`Tenant`]
/// handles, which tells the pool about a connection that broke.
pub(crate) struct TenantExec<'t> {
    conn: &'t mut PgConnection,
    broken: Option<&'t mut Watch>,
}

impl std::fmt::Debug for TenantExec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantExec").finish_non_exhaustive()
    }
}

impl<'t> TenantExec<'t> {
    /// The executor of `tenant`, and its scope.
    pub(crate) fn of(tenant: &'t mut (impl Tenant + ?Sized)) -> (Self, Scope) {
        let (conn, broken, scope) = tenant.parts();
        let scope = *scope;
        (Self { conn, broken }, scope)
    }

    /// An executor over `conn` (a transaction the data layer opened itself), watched as the
    /// connection it came from.
    pub(crate) fn on(conn: &'t mut PgConnection, watch: Option<&'t mut Watch>) -> Self {
        Self { conn, broken: watch }
    }

    /// A savepoint in this handle's transaction, and the watch to make its executor with.
    pub(crate) async fn savepoint(
        &mut self,
    ) -> Result<(Transaction<'_, Postgres>, Option<&mut Watch>), Error> {
        let savepoint = begin(self.conn, self.broken.as_deref_mut()).await?;
        Ok((savepoint, self.broken.as_deref_mut()))
    }
}

observed_executor!(TenantExec<'_>, |this| (&mut *this.conn, this.broken.as_deref_mut()));

/// Resolves membership without a transaction; see [`Scope::resolve`].
pub(crate) async fn resolve(
    conn: &mut (impl AsConnection + ?Sized),
    organization: OrganizationId,
    user: UserId,
) -> Result<Scope, Error> {
    let (conn, broken) = conn.split_connection();
    // Outside a transaction the setting lasts for this one statement.
    enter(&mut TenantExec { conn, broken }, organization, user).await
}

/// Checks that `user` is a member of `organization`, sets the organization for the rest of
/// the transaction, and returns the scope: the one statement behind every tenant handle.
async fn enter(
    conn: impl sqlx::PgExecutor<'_>,
    organization: OrganizationId,
    user: UserId,
) -> Result<Scope, Error> {
    let role = sqlx::query_scalar!(
        r#"select strata_enter_organization($1, $2) as "role: Role""#,
        organization.into_uuid(),
        user.into_uuid(),
    )
    .fetch_one(conn)
    .await?;
    let role = role.ok_or(Error::Forbidden { reason: "not a member of the organization" })?;
    Ok(Scope::new(organization, user, role))
}
