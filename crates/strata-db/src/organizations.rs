//! Organizations: the tenants.

use crate::input;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgExecutor};
use time::OffsetDateTime;

use crate::error::of_write;
use crate::page::{self, Page, PageRequest};
use crate::tenant::TenantExec;
use crate::{AsConnection, Error, OrganizationId, Scope, UserId};

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Its ID.
    pub id: OrganizationId,
    /// URL-safe short name, unique across the service.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last changed (kept by the database).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The fields of a new organization.
#[derive(Debug, Clone, Copy)]
pub struct NewOrganization<'a> {
    /// URL-safe short name: 1-63 lowercase letters, digits and hyphens.
    pub slug: &'a str,
    /// Display name, not blank.
    pub name: &'a str,
}

/// Creates an organization with a new UUIDv7.
///
/// # Errors
///
/// [`Error::Conflict`] when the slug is taken, [`Error::Invalid`] when the slug or name is
/// malformed.
#[tracing::instrument(skip_all, fields(organization.slug = new.slug), err(level = "debug"))]
pub async fn create(
    conn: impl PgExecutor<'_>,
    new: &NewOrganization<'_>,
) -> Result<Organization, Error> {
    check(new)?;
    insert(conn, new).await.map_err(of_write)
}

/// The values of `new` that the database could not hold.
fn check(new: &NewOrganization<'_>) -> Result<(), Error> {
    input::text("slug", new.slug, input::NAME_MAX)?;
    input::text("name", new.name, input::NAME_MAX)
}

/// The insert behind [`create`], for callers that run it inside a transaction of their own.
async fn insert(
    conn: impl PgExecutor<'_>,
    new: &NewOrganization<'_>,
) -> Result<Organization, sqlx::Error> {
    sqlx::query_as!(
        Organization,
        r#"insert into organizations (id, slug, name)
           values ($1, $2, $3)
           returning id as "id: OrganizationId", slug, name, created_at, updated_at"#,
        OrganizationId::new().into_uuid(),
        new.slug,
        new.name,
    )
    .fetch_one(conn)
    .await
}

/// Reads an organization by ID.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn get(conn: impl PgExecutor<'_>, id: OrganizationId) -> Result<Organization, Error> {
    sqlx::query_as!(
        Organization,
        r#"select id as "id: OrganizationId", slug, name, created_at, updated_at
             from organizations where id = $1"#,
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "organization" })
}

/// Reads an organization by slug.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn get_by_slug(conn: impl PgExecutor<'_>, slug: &str) -> Result<Organization, Error> {
    sqlx::query_as!(
        Organization,
        r#"select id as "id: OrganizationId", slug, name, created_at, updated_at
             from organizations where slug = $1"#,
        slug,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "organization" })
}

/// Lists organizations in ID (creation) order, `limit` at a time after `after` (the previous
/// page's `next`): a keyset [`Page`].
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`]; [`Error::Database`].
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn list(
    conn: impl PgExecutor<'_>,
    request: PageRequest<OrganizationId>,
) -> Result<Page<Organization, OrganizationId>, Error> {
    let PageRequest { after, limit } = request;
    let organizations = sqlx::query_as!(
        Organization,
        r#"select id as "id: OrganizationId", slug, name, created_at, updated_at
             from organizations
            where $1::uuid is null or id > $1
            order by id
            limit $2"#,
        after.map(OrganizationId::into_uuid),
        page::fetch_count(limit)?,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(organizations, limit, |organization| organization.id))
}

/// Creates an organization with `owner` as its first member (role owner), with the audit
/// event, atomically (a savepoint when `conn` is in a transaction already, whose tenant
/// setting is left as it was). Returns the owner's scope.
///
/// # Errors
///
/// As [`create`], and [`Error::Invalid`] when there is no such user.
#[tracing::instrument(skip_all, fields(organization.slug = new.slug, user.id = %owner), err(level = "debug"))]
pub async fn create_with_owner(
    conn: &mut (impl AsConnection + ?Sized),
    new: &NewOrganization<'_>,
    owner: UserId,
) -> Result<(Organization, Scope), Error> {
    check(new)?;
    let (raw, mut watch) = conn.split_connection();
    let nested = raw.is_in_transaction();
    let mut tx = crate::exec::begin(raw, watch.as_deref_mut()).await?;
    let mut exec = TenantExec::on(&mut tx, watch.as_deref_mut());
    // A caller's transaction may be scoped to another organization: put its setting back.
    let previous = sqlx::query_scalar!(
        r#"select coalesce(current_setting('strata.organization_id', true), '') as "previous!""#
    )
    .fetch_one(&mut exec)
    .await?;
    let organization = insert(&mut exec, new).await?;
    crate::scope::set_local(&mut exec, &organization.id.to_string()).await?;
    let scope = crate::memberships::add_owner(&mut exec, organization.id, owner).await?;
    crate::scope::set_local(&mut exec, &previous).await?;
    crate::tenant::commit(tx, watch, nested).await?;
    Ok((organization, scope))
}
