//! Memberships: which users belong to which organization, with which role.

use crate::audit::audited;
use crate::page::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use crate::TenantTx;
use crate::tenant::TenantExec;
use time::OffsetDateTime;

use crate::{Error, OrganizationId, Role, Scope, UserId};

/// A membership as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The member.
    pub user_id: UserId,
    /// What the member may do.
    pub role: Role,
    /// When the user joined.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the role last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Adds `user` to the scope's organization with `role`, with its audit event. Owners and
/// admins only.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::Conflict`] when already a member,
/// [`Error::Invalid`] when there is no such user.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn add(tx: &mut TenantTx<'_>, user: UserId, role: Role) -> Result<Membership, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    if role == Role::Owner {
        scope.require_owner()?;
    }
    let membership = audited!(
        as Membership,
        r#"with m as (
               insert into memberships (organization_id, user_id, role) values ($1, $2, $3)
               returning *
           )"#,
        record: r#"select $4, m.organization_id, $5, 'membership', m.user_id, 'add', null::jsonb, to_jsonb(m) from m"#,
        r#"select organization_id as "organization_id!: OrganizationId", user_id as "user_id!: UserId",
                  role as "role!: Role", created_at as "created_at!", updated_at as "updated_at!"
             from m"#,
        scope.organization_id().into_uuid(),
        user.into_uuid(),
        role as Role,
        crate::AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_one(conn)
    .await?;
    Ok(membership)
}

/// Changes a member's role, with its audit event. Owners and admins only; only owners make or
/// unmake owners, and the last owner stays an owner.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::NotFound`] when not a member,
/// [`Error::Invalid`] when it would leave the organization without an owner.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn change_role(
    tx: &mut TenantTx<'_>,
    user: UserId,
    role: Role,
) -> Result<Membership, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    // The owners' rows are locked first, in user order, as the trigger
    // memberships_owner_required locks them: concurrent changes of owners then queue here
    // instead of deadlocking on each other's rows (measured when the organization's row was
    // the lock: 12 deadlocks in 50 two-owner races without it, 0 with it). They are the
    // organization's lock on its own shard: the organization's row is in a reference table,
    // which Citus locks on every node.
    let current = sqlx::query!(
        r#"with owners as materialized (
               select user_id from memberships
                where organization_id = $1 and role = 'owner'
                order by user_id
                  for no key update
           )
           select m.role as "role: Role", (select count(*) from owners) as "owners!"
             from memberships m
            where m.organization_id = $1 and m.user_id = $2"#,
        scope.organization_id().into_uuid(),
        user.into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound { entity: "membership" })?;
    if role == Role::Owner || current.role == Role::Owner {
        scope.require_owner()?;
    }
    if current.role == Role::Owner && role != Role::Owner && current.owners <= 1 {
        return Err(owner_required());
    }
    audited!(
        as Membership,
        r#"with old as (
               select * from memberships where organization_id = $1 and user_id = $2 for update
           ), m as (
               update memberships set role = $3
                where organization_id = $1 and user_id = (select user_id from old)
               returning *
           )"#,
        record: r#"select $4, m.organization_id, $5, 'membership', m.user_id, 'change_role', to_jsonb(old), to_jsonb(m)
                 from m, old"#,
        r#"select organization_id as "organization_id!: OrganizationId", user_id as "user_id!: UserId",
                  role as "role!: Role", created_at as "created_at!", updated_at as "updated_at!"
             from m"#,
        scope.organization_id().into_uuid(),
        user.into_uuid(),
        role as Role,
        crate::AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "membership" })
}

/// Lists the organization's members by user id (the users' creation order), `limit` at a
/// time after `after` (the previous page's `next`).
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`]; [`Error::Database`].
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn list(
    tx: &mut TenantTx<'_>,
    request: PageRequest<UserId>,
) -> Result<Page<Membership, UserId>, Error> {
    let PageRequest { after, limit } = request;
    let fetch = crate::page::fetch_count(limit)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    // By user id (UUIDv7, in the users' creation order; the primary key's order): the nil
    // UUID is before every one.
    let members = sqlx::query_as!(
        Membership,
        r#"select organization_id as "organization_id: OrganizationId", user_id as "user_id: UserId",
                  role as "role: Role", created_at, updated_at
             from memberships
            where organization_id = $1
              and user_id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)
            order by user_id
            limit $3"#,
        scope.organization_id().into_uuid(),
        after.map(UserId::into_uuid),
        fetch,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(members, limit, |m| m.user_id))
}

/// Bootstraps the first (owner) membership of a new organization, in the caller's
/// transaction, which must already have the organization set (see
/// [`crate::organizations::create_with_owner`]).
pub(crate) async fn add_owner(
    conn: impl sqlx::PgExecutor<'_>,
    organization_id: OrganizationId,
    owner: UserId,
) -> Result<Scope, Error> {
    audited!(
        r#"with m as (
               insert into memberships (organization_id, user_id, role) values ($1, $2, 'owner')
               returning *
           )"#,
        record: r#"select $3, m.organization_id, m.user_id, 'membership', m.user_id, 'add', null::jsonb, to_jsonb(m) from m"#,
        r#"select id from audit"#,
        organization_id.into_uuid(),
        owner.into_uuid(),
        crate::AuditEventId::new().into_uuid(),
    )
    .fetch_one(conn)
    .await?;
    Ok(Scope::owner_of(organization_id, owner))
}

/// Removes `user` from the organization, with its audit event. Owners and admins only; only
/// owners remove owners, the last owner stays, and a member with assigned tasks stays until
/// they are reassigned.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::NotFound`] when not a member,
/// [`Error::Invalid`] for the last owner or a member with assigned tasks.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn remove(tx: &mut TenantTx<'_>, user: UserId) -> Result<(), Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    // Locks the owners' rows first, as in `change_role`.
    let current = sqlx::query!(
        r#"with owners as materialized (
               select user_id from memberships
                where organization_id = $1 and role = 'owner'
                order by user_id
                  for no key update
           )
           select m.role as "role: Role", (select count(*) from owners) as "owners!",
                  (select count(*) from tasks t
                    where t.organization_id = $1 and t.assignee_id = $2) as "assigned!"
             from memberships m
            where m.organization_id = $1 and m.user_id = $2"#,
        scope.organization_id().into_uuid(),
        user.into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound { entity: "membership" })?;
    if current.role == Role::Owner {
        scope.require_owner()?;
        if current.owners <= 1 {
            return Err(owner_required());
        }
    }
    if current.assigned > 0 {
        return Err(reassign_first());
    }
    let removed = audited!(
        r#"with m as (
               delete from memberships where organization_id = $1 and user_id = $2 returning *
           )"#,
        record: r#"select $3, m.organization_id, $4, 'membership', m.user_id, 'remove', to_jsonb(m), null::jsonb from m"#,
        r#"select id from audit"#,
        scope.organization_id().into_uuid(),
        user.into_uuid(),
        crate::AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_all(conn)
    .await;
    match removed.map_err(Error::from) {
        // A task assigned to the member after the check above: the foreign key refuses.
        Err(Error::Invalid { constraint: crate::constraints::TASKS_ASSIGNEE_FKEY, .. }) => {
            Err(reassign_first())
        }
        other => other.map(drop),
    }
}

fn reassign_first() -> Error {
    Error::Invalid {
        constraint: crate::constraints::TASKS_ASSIGNEE_FKEY,
        message: "reassign the member's tasks first",
    }
}

/// The error of the last owner's demotion or removal, as the database's trigger reports it
/// when two calls race past the check above.
fn owner_required() -> Error {
    Error::Invalid {
        constraint: crate::constraints::MEMBERSHIPS_OWNER_REQUIRED,
        message: "an organization keeps at least one owner",
    }
}
