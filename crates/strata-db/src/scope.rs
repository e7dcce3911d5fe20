//! The tenant scope: proof that the caller acts in one organization as one of its members.

use serde::{Deserialize, Serialize};

use crate::{AsConnection, Error, OrganizationId, TenantConn, TenantTx, UserId};

/// A member's role, the PostgreSQL enum `membership_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "membership_role", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including memberships.
    Owner,
    /// Projects and memberships.
    Admin,
    /// Tasks and comments.
    Member,
    /// Read only.
    Viewer,
}

/// The organization a caller acts in, and as whom, as checked against its membership.
///
/// A scope cannot be made without that check. It opens the tenant handles that every
/// tenant-owned operation takes: [`Scope::begin`] (a [`TenantTx`]) for everything, and
/// [`Scope::on`] (a [`TenantConn`]) for the one-statement reads that confine themselves. For
/// one request, [`TenantTx::begin`] checks the membership and opens the transaction at once.
///
/// Isolation is enforced twice: every query filters on [`Scope::organization_id`], and
/// row-level security keeps each transaction to the organization the tenant handle sets
/// transaction-locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    organization_id: OrganizationId,
    actor: UserId,
    role: Role,
}

impl Scope {
    /// Checks that `user` is a member of `organization` and returns the scope, for a caller
    /// that keeps it across transactions (a worker; a request should use [`TenantTx::begin`]).
    /// One round trip, no transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the user is not a member.
    #[tracing::instrument(skip(conn), err(level = "debug"))]
    pub async fn resolve(
        conn: &mut (impl AsConnection + ?Sized),
        organization_id: OrganizationId,
        user: UserId,
    ) -> Result<Self, Error> {
        crate::tenant::resolve(conn, organization_id, user).await
    }

    /// Begins a tenant transaction for this scope, checking the membership again (the role
    /// may have changed since the scope was resolved): as [`TenantTx::begin`].
    ///
    /// # Errors
    ///
    /// As [`TenantTx::begin`].
    pub async fn begin<'c>(
        &self,
        conn: &'c mut (impl AsConnection + ?Sized),
    ) -> Result<TenantTx<'c>, Error> {
        TenantTx::begin(conn, self.organization_id, self.actor).await
    }

    /// The scope on a connection outside any transaction, for [`crate::tasks::get`] and the
    /// other reads that take any [`crate::Tenant`]; no round trip.
    pub fn on<'c>(&self, conn: &'c mut (impl AsConnection + ?Sized)) -> TenantConn<'c> {
        TenantConn::new(conn, *self)
    }

    /// The organization.
    pub fn organization_id(&self) -> OrganizationId {
        self.organization_id
    }

    /// The member acting.
    pub fn actor(&self) -> UserId {
        self.actor
    }

    /// The member's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// A scope for a caller that has just created the organization and is its owner.
    pub(crate) fn owner_of(organization_id: OrganizationId, actor: UserId) -> Self {
        Self::new(organization_id, actor, Role::Owner)
    }

    /// A scope whose membership the caller has just read.
    pub(crate) fn new(organization_id: OrganizationId, actor: UserId, role: Role) -> Self {
        Self { organization_id, actor, role }
    }

    /// Refuses viewers: members and above may write tasks and comments.
    pub(crate) fn require_writer(&self) -> Result<(), Error> {
        match self.role {
            Role::Viewer => Err(Error::Forbidden { reason: "viewers cannot change anything" }),
            _ => Ok(()),
        }
    }

    /// Refuses everyone but owners: only owners make or unmake owners.
    pub(crate) fn require_owner(&self) -> Result<(), Error> {
        match self.role {
            Role::Owner => Ok(()),
            _ => Err(Error::Forbidden { reason: "only owners can make or unmake owners" }),
        }
    }

    /// Refuses members and viewers: only admins and owners manage projects and memberships.
    pub(crate) fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Owner | Role::Admin => Ok(()),
            _ => Err(Error::Forbidden { reason: "only owners and admins can do this" }),
        }
    }
}

/// Sets the tenant for row-level security until the end of the current transaction (an
/// organization's id, or `""` for none, to put back a setting read before), through
/// `strata_set_tenant`: `set_config` on PostgreSQL, `SET LOCAL` on Citus (which sends it on
/// to the workers, where the shards' policies read it).
pub(crate) async fn set_local(conn: impl sqlx::PgExecutor<'_>, tenant: &str) -> Result<(), Error> {
    sqlx::query_scalar!("select strata_set_tenant($1)", tenant).fetch_one(conn).await?;
    Ok(())
}
