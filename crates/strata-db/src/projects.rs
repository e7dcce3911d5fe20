//! Projects: per organization, with a short key (`OPS`) that prefixes task keys.

use crate::TenantTx;
use crate::audit::audited;
use crate::input;
use crate::page::{Page, PageRequest};
use crate::tenant::TenantExec;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AuditEventId, Error, OrganizationId, ProjectId};

/// A project as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its ID.
    pub id: ProjectId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Short uppercase key, unique in the organization.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Archived projects take no new tasks.
    pub archived: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The fields of a new project.
#[derive(Debug, Clone, Copy)]
pub struct NewProject<'a> {
    /// 2-10 uppercase letters and digits, starting with a letter.
    pub key: &'a str,
    /// Display name, not blank.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
}

/// Creates a project with its audit event. Owners and admins only.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::Conflict`] when the key is taken,
/// [`Error::Invalid`] for a malformed key or blank name.
#[tracing::instrument(skip_all, fields(organization.id = %tx.scope().organization_id(), project.key = new.key), err(level = "debug"))]
pub async fn create(tx: &mut TenantTx<'_>, new: &NewProject<'_>) -> Result<Project, Error> {
    input::text("key", new.key, input::NAME_MAX)?;
    input::text("name", new.name, input::NAME_MAX)?;
    input::text("description", new.description, input::TEXT_MAX)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    let project = audited!(
        as Project,
        r#"with p as (
               insert into projects (id, organization_id, key, name, description)
               values ($1, $2, $3, $4, $5)
               returning *
           )"#,
        record: r#"select $6, p.organization_id, $7, 'project', p.id, 'create', null::jsonb, to_jsonb(p) from p"#,
        r#"select id as "id!: ProjectId", organization_id as "organization_id!: OrganizationId",
                  key as "key!", name as "name!", description as "description!",
                  archived as "archived!", created_at as "created_at!", updated_at as "updated_at!"
             from p"#,
        ProjectId::new().into_uuid(),
        scope.organization_id().into_uuid(),
        new.key,
        new.name,
        new.description,
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_one(conn)
    .await?;
    Ok(project)
}

/// Reads a project of the scope's organization.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none in this organization.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn get(tx: &mut TenantTx<'_>, id: ProjectId) -> Result<Project, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    sqlx::query_as!(
        Project,
        r#"select id as "id: ProjectId", organization_id as "organization_id: OrganizationId",
                  key, name, description, archived, created_at, updated_at
             from projects where organization_id = $1 and id = $2"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "project" })
}

/// Reads a project by its key (`OPS`).
///
/// # Errors
///
/// [`Error::NotFound`] when there is none in this organization.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn get_by_key(tx: &mut TenantTx<'_>, key: &str) -> Result<Project, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    sqlx::query_as!(
        Project,
        r#"select id as "id: ProjectId", organization_id as "organization_id: OrganizationId",
                  key, name, description, archived, created_at, updated_at
             from projects where organization_id = $1 and key = $2"#,
        scope.organization_id().into_uuid(),
        key,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "project" })
}

/// Lists the organization's projects by key, `limit` at a time after the key `after` (the
/// previous page's `next`); archived ones only when asked.
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`]; [`Error::Database`].
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn list(
    tx: &mut TenantTx<'_>,
    include_archived: bool,
    request: PageRequest<&str>,
) -> Result<Page<Project, String>, Error> {
    let PageRequest { after, limit } = request;
    let fetch = crate::page::fetch_count(limit)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    // Keys are non-empty: '' is before every one (the condition is never optional, so the
    // prepared statement's generic plan walks the key index).
    let projects = sqlx::query_as!(
        Project,
        r#"select id as "id: ProjectId", organization_id as "organization_id: OrganizationId",
                  key, name, description, archived, created_at, updated_at
             from projects
            where organization_id = $1 and ($2 or not archived) and key > coalesce($3, '')
            order by key
            limit $4"#,
        scope.organization_id().into_uuid(),
        include_archived,
        after,
        fetch,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(projects, limit, |p| p.key.clone()))
}

/// Archives or unarchives a project, with its audit event. Owners and admins only.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::NotFound`] when there is no such project.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn set_archived(
    tx: &mut TenantTx<'_>,
    id: ProjectId,
    archived: bool,
) -> Result<Project, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    audited!(
        as Project,
        r#"with old as (
               select * from projects where organization_id = $1 and id = $2 for update
           ), p as (
               update projects set archived = $3
                where organization_id = $1 and id = (select id from old)
               returning *
           )"#,
        record: r#"select $4, p.organization_id, $5, 'project', p.id,
                      case when $3 then 'archive' else 'unarchive' end, to_jsonb(old), to_jsonb(p)
                 from p, old"#,
        r#"select id as "id!: ProjectId", organization_id as "organization_id!: OrganizationId",
                  key as "key!", name as "name!", description as "description!",
                  archived as "archived!", created_at as "created_at!", updated_at as "updated_at!"
             from p"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        archived,
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "project" })
}

/// A project with counts of its open tasks, for overviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    /// The project.
    pub id: ProjectId,
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Tasks not done, cancelled or deleted.
    pub open_tasks: i64,
    /// When one of its tasks last changed; none for a project without tasks.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
}

/// The organization's unarchived projects with their open-task counts, by key.
///
/// The outer join's nullable side and the aggregates are overridden explicitly (`!`, `?`):
/// sqlx's inference there depends on the plan and can be wrong (sqlx issue #367).
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn summaries(tx: &mut TenantTx<'_>) -> Result<Vec<ProjectSummary>, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    let summaries = sqlx::query_as!(
        ProjectSummary,
        r#"select p.id as "id!: ProjectId", p.key as "key!", p.name as "name!",
                  count(t.id) filter (where t.status not in ('done', 'cancelled')) as "open_tasks!",
                  max(t.updated_at) as "last_activity?"
             from projects p
             left join tasks t
               on t.project_id = p.id and t.organization_id = p.organization_id and t.deleted_at is null
            where p.organization_id = $1 and not p.archived
            group by p.organization_id, p.id
            order by p.key"#,
        scope.organization_id().into_uuid(),
    )
    .fetch_all(conn)
    .await?;
    Ok(summaries)
}

/// What [`update`] changes: each field that is `Some`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjectPatch<'a> {
    /// The new name.
    pub name: Option<&'a str>,
    /// The new description.
    pub description: Option<&'a str>,
}

/// Changes a project's fields that `patch` sets, with its audit event. Owners and admins only.
///
/// # Errors
///
/// [`Error::Forbidden`] for a weaker role, [`Error::NotFound`], [`Error::Invalid`] for a blank
/// name.
#[tracing::instrument(skip(tx, patch), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn update(
    tx: &mut TenantTx<'_>,
    id: ProjectId,
    patch: &ProjectPatch<'_>,
) -> Result<Project, Error> {
    let ProjectPatch { name, description } = *patch;
    name.map_or(Ok(()), |name| input::text("name", name, input::NAME_MAX))?;
    description.map_or(Ok(()), |d| input::text("description", d, input::TEXT_MAX))?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_admin()?;
    audited!(
        as Project,
        r#"with old as (
               select * from projects where organization_id = $1 and id = $2 for update
           ), p as (
               update projects set name = coalesce($3, name), description = coalesce($4, description)
                where organization_id = $1 and id = (select id from old)
               returning *
           )"#,
        record: r#"select $5, p.organization_id, $6, 'project', p.id, 'update', to_jsonb(old), to_jsonb(p)
                 from p, old"#,
        r#"select id as "id!: ProjectId", organization_id as "organization_id!: OrganizationId",
                  key as "key!", name as "name!", description as "description!",
                  archived as "archived!", created_at as "created_at!", updated_at as "updated_at!"
             from p"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        name,
        description,
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "project" })
}
