//! Comments on tasks, by members.

use crate::TenantTx;
use crate::audit::audited;
use crate::input;
use crate::page::{Page, PageRequest};
use crate::tenant::TenantExec;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AuditEventId, CommentId, Error, OrganizationId, Scope, TaskId, UserId};

/// A comment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Its ID.
    pub id: CommentId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// The task it is on.
    pub task_id: TaskId,
    /// The member who wrote it.
    pub author_id: UserId,
    /// The text.
    pub body: String,
    /// When the author last edited it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Comments on a task as the acting member, with its audit event.
///
/// # Errors
///
/// [`Error::Forbidden`] for viewers, [`Error::NotFound`] when the task is not in this
/// organization, [`Error::Invalid`] for a blank body.
#[tracing::instrument(skip(tx, body), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn create(tx: &mut TenantTx<'_>, task: TaskId, body: &str) -> Result<Comment, Error> {
    input::text("body", body, input::TEXT_MAX)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    audited!(
        as Comment,
        r#"with task as (
               select id from tasks where organization_id = $2 and id = $3 and deleted_at is null
           ), c as (
               insert into comments (id, organization_id, task_id, author_id, body)
               select $1, $2, task.id, $4, $5 from task
               returning *
           )"#,
        record: r#"select $6, c.organization_id, c.author_id, 'comment', c.id, 'create', null::jsonb, to_jsonb(c) from c"#,
        r#"select id as "id!: CommentId", organization_id as "organization_id!: OrganizationId",
                  task_id as "task_id!: TaskId", author_id as "author_id!: UserId", body as "body!",
                  edited_at as "edited_at?", created_at as "created_at!"
             from c"#,
        CommentId::new().into_uuid(),
        scope.organization_id().into_uuid(),
        task.into_uuid(),
        scope.actor().into_uuid(),
        body,
        AuditEventId::new().into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "task" })
}

/// Changes a comment's body (its one field, so no patch type); only its author may. Records the audit event (before and after).
///
/// # Errors
///
/// [`Error::Forbidden`] for anyone but the author, [`Error::NotFound`], [`Error::Invalid`].
#[tracing::instrument(skip(tx, body), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn update(tx: &mut TenantTx<'_>, id: CommentId, body: &str) -> Result<Comment, Error> {
    input::text("body", body, input::TEXT_MAX)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    let edited = audited!(
        as Comment,
        r#"with old as (
               select * from comments where organization_id = $1 and id = $2 and author_id = $3
               for update
           ), c as (
               update comments set body = $4, edited_at = now()
                where organization_id = $1 and id = (select id from old)
               returning *
           )"#,
        record: r#"select $5, c.organization_id, c.author_id, 'comment', c.id, 'edit', to_jsonb(old), to_jsonb(c)
                 from c, old"#,
        r#"select id as "id!: CommentId", organization_id as "organization_id!: OrganizationId",
                  task_id as "task_id!: TaskId", author_id as "author_id!: UserId", body as "body!",
                  edited_at as "edited_at?", created_at as "created_at!"
             from c"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        scope.actor().into_uuid(),
        body,
        AuditEventId::new().into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(comment) = edited {
        return Ok(comment);
    }
    Err(refusal(conn, scope, id, "only its author can edit a comment").await?)
}

/// Lists a task's comments, oldest first, `limit` at a time after `after` (the previous
/// page's `next`).
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`]; [`Error::Database`].
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn list(
    tx: &mut TenantTx<'_>,
    task: TaskId,
    request: PageRequest<CommentId>,
) -> Result<Page<Comment, CommentId>, Error> {
    let PageRequest { after, limit } = request;
    let fetch = crate::page::fetch_count(limit)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    // Ids are UUIDv7, in time order; the nil UUID is before every one.
    let comments = sqlx::query_as!(
        Comment,
        r#"select id as "id: CommentId", organization_id as "organization_id: OrganizationId",
                  task_id as "task_id: TaskId", author_id as "author_id: UserId", body, edited_at,
                  created_at
             from comments
            where organization_id = $1 and task_id = $2
              and id > coalesce($3, '00000000-0000-0000-0000-000000000000'::uuid)
            order by id
            limit $4"#,
        scope.organization_id().into_uuid(),
        task.into_uuid(),
        after.map(CommentId::into_uuid),
        fetch,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(comments, limit, |c| c.id))
}

/// Deletes a comment; its author, owners and admins may. Records the audit event (before).
///
/// # Errors
///
/// [`Error::Forbidden`] for anyone else, [`Error::NotFound`] when there is no such comment.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn delete(tx: &mut TenantTx<'_>, id: CommentId) -> Result<(), Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    let moderator = scope.require_admin().is_ok();
    let deleted = audited!(
        scalar,
        r#"with c as (
               delete from comments
                where organization_id = $1 and id = $2 and (author_id = $3 or $4)
               returning *
           )"#,
        record: r#"select $5, c.organization_id, $3, 'comment', c.id, 'delete', to_jsonb(c), null::jsonb from c"#,
        r#"select count(*) as "deleted!" from c"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        scope.actor().into_uuid(),
        moderator,
        AuditEventId::new().into_uuid(),
    )
    .fetch_one(&mut *conn)
    .await?;
    if deleted > 0 {
        return Ok(());
    }
    Err(refusal(conn, scope, id, "only its author or an admin can delete a comment").await?)
}

/// Why a write by the acting member touched no comment: it exists but is not theirs to
/// change (`forbidden`), or there is no such comment in the organization.
async fn refusal(
    conn: &mut TenantExec<'_>,
    scope: &Scope,
    id: CommentId,
    forbidden: &'static str,
) -> Result<Error, Error> {
    let exists = sqlx::query_scalar!(
        r#"select 1 as "one!" from comments where organization_id = $1 and id = $2"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(match exists {
        Some(_) => Error::Forbidden { reason: forbidden },
        None => Error::NotFound { entity: "comment" },
    })
}
