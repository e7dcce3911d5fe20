//! The tenant scope: proof that the caller acts in one organization as one of its members.

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, Postgres, Transaction};

use crate::{Error, OrganizationId, UserId};

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

/// The organization a caller acts in, and as whom. Obtain it once with [`Scope::resolve`]
/// (which checks the membership), then pass it to every tenant-owned operation.
///
/// Isolation is enforced twice: every query filters on [`Scope::organization_id`], and
/// row-level security keeps each transaction to the organization that [`Scope::begin`] sets
/// transaction-locally. Run tenant operations inside `scope.begin(conn)`: outside it, a
/// connection without `BYPASSRLS` sees no tenant rows at all (it fails closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    organization_id: OrganizationId,
    actor: UserId,
    role: Role,
}

impl Scope {
    /// Checks that `user` is a member of `organization` and returns the scope.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] when the user is not a member.
    #[tracing::instrument(skip(conn), err)]
    pub async fn resolve(
        conn: &mut PgConnection,
        organization_id: OrganizationId,
        user: UserId,
    ) -> Result<Self, Error> {
        let mut tx = set_organization(conn, organization_id).await?;
        let role = sqlx::query_scalar!(
            r#"select role as "role: Role" from memberships
                where organization_id = $1 and user_id = $2"#,
            organization_id.into_uuid(),
            user.into_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let role = role.ok_or(Error::Forbidden { reason: "not a member of the organization" })?;
        Ok(Self { organization_id, actor: user, role })
    }

    /// Begins a transaction (a savepoint when `conn` is in one already) with the scope's
    /// organization set transaction-locally for row-level security. Commit it to keep the work.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the connection fails.
    pub async fn begin<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<Transaction<'c, Postgres>, Error> {
        set_organization(conn, self.organization_id).await
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
        Self { organization_id, actor, role: Role::Owner }
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

async fn set_organization(
    conn: &mut PgConnection,
    organization_id: OrganizationId,
) -> Result<Transaction<'_, Postgres>, Error> {
    let mut tx = conn.begin().await?;
    set_local(&mut tx, organization_id).await?;
    Ok(tx)
}

/// Sets the organization for row-level security until the end of the current transaction.
pub(crate) async fn set_local(
    conn: &mut PgConnection,
    organization_id: OrganizationId,
) -> Result<(), Error> {
    sqlx::query_scalar!(
        "select set_config('strata.organization_id', $1, true)",
        organization_id.to_string(),
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}
