//! Reading tasks: by ID, by key, and listed with filters in keyset pages.

use crate::input;
use crate::tenant::TenantExec;
use crate::{Tenant, TenantTx};
use time::Date;

use super::cursor::{Cursor, Position};
use super::{Task, TaskMetadata, TaskStatus};
use crate::{Error, OrganizationId, Page, PageRequest, ProjectId, TaskId, UserId};

/// Reads a task (not soft-deleted) of the scope's organization, in one round trip. It takes
/// any [`Tenant`]: a [`TenantTx`], or `scope.on(conn)` outside a transaction (the function
/// `strata_task_by_id` sets the tenant for its own statement, under row-level security, and
/// restores the previous setting).
///
/// # Errors
///
/// [`Error::NotFound`] when there is none in this organization.
#[tracing::instrument(skip(tenant), fields(organization.id = %tenant.scope().organization_id()), err(level = "debug"))]
pub async fn get(tenant: &mut (impl Tenant + ?Sized), id: TaskId) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tenant);
    let (conn, scope) = (&mut exec, &scope);
    sqlx::query_as!(
        Task,
        r#"select id as "id!: TaskId", organization_id as "organization_id!: OrganizationId",
                  project_id as "project_id!: ProjectId", number as "number!", title as "title!",
                  description as "description!", status as "status!: TaskStatus",
                  priority as "priority!", assignee_id as "assignee_id?: UserId", labels as "labels!",
                  metadata as "metadata!: TaskMetadata", due_on as "due_on?", version as "version!",
                  deleted_at as "deleted_at?", created_at as "created_at!", updated_at as "updated_at!"
             from strata_task_by_id($1, $2)"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "task" })
}

/// Reads a task by its human key, such as `OPS-42`.
///
/// # Errors
///
/// [`Error::BadInput`] for a malformed key, [`Error::NotFound`] when there is no such task.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn get_by_key(tx: &mut TenantTx<'_>, key: &str) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    let (project_key, number) = key
        .rsplit_once('-')
        .and_then(|(p, n)| Some((p, n.parse::<i32>().ok()?)))
        .ok_or(Error::BadInput { message: "a task key looks like OPS-42" })?;
    sqlx::query_as!(
        Task,
        r#"select t.id as "id: TaskId", t.organization_id as "organization_id: OrganizationId",
                  t.project_id as "project_id: ProjectId", t.number, t.title, t.description,
                  t.status as "status: TaskStatus", t.priority, t.assignee_id as "assignee_id: UserId",
                  t.labels, t.metadata as "metadata: TaskMetadata", t.due_on, t.version,
                  t.deleted_at, t.created_at, t.updated_at
             from tasks t
             join projects p on p.id = t.project_id and p.organization_id = t.organization_id
            where t.organization_id = $1 and p.key = $2 and t.number = $3 and t.deleted_at is null"#,
        scope.organization_id().into_uuid(),
        project_key,
        number,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "task" })
}

/// Filters for [`list`], and its sort order; every filter is optional (empty or `None` means
/// "any").
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskFilter<'a> {
    /// Any of these statuses.
    pub statuses: &'a [TaskStatus],
    /// Assigned to this member.
    pub assignee: Option<UserId>,
    /// Carrying this label.
    pub label: Option<&'a str>,
    /// Words in the title (full-text, `simple` configuration).
    pub title_search: Option<&'a str>,
    /// Due strictly before this date.
    pub due_before: Option<Date>,
    /// The sort order; a cursor works only with the order that made it.
    pub order: TaskOrder,
}

/// Sort orders of [`list`]; each has its own static query and cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOrder {
    /// By number, oldest first.
    #[default]
    Number,
    /// By priority (0 first), then number.
    Priority,
}

/// Lists a project's tasks (not soft-deleted) matching `filter`, in its order, one page of
/// `request` (at most `limit` tasks after `after`, the `next` of the previous page). Keyset pagination: no OFFSET, every row exactly
/// once even while rows are inserted.
///
/// The keyset condition is never optional (`number > coalesce($n, 0)`; numbers start at 1,
/// priorities at 0): an optional one would leave PostgreSQL's generic plan for the prepared
/// statement scanning and sorting the whole project on every page.
///
/// # Errors
///
/// [`Error::BadInput`] for a malformed cursor, one from the other sort order or another
/// project, or a `limit` of 0; [`Error::InvalidValue`] for a filter the database cannot hold.
#[tracing::instrument(skip(tx, filter), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn list(
    tx: &mut TenantTx<'_>,
    project: ProjectId,
    filter: &TaskFilter<'_>,
    request: PageRequest<&Cursor>,
) -> Result<Page<Task, Cursor>, Error> {
    let PageRequest { after, limit } = request;
    filter.label.map_or(Ok(()), |label| input::text("label", label, input::LABEL_MAX))?;
    filter.title_search.map_or(Ok(()), |q| input::text("q", q, input::TITLE_MAX))?;
    input::date("due_before", filter.due_before)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    let statuses: Option<Vec<String>> = (!filter.statuses.is_empty())
        .then(|| filter.statuses.iter().map(|s| s.as_str().to_owned()).collect());
    if limit == 0 {
        return Err(Error::BadInput { message: "a page holds at least one row" });
    }
    let position = after.map(|c| c.decode_for(project.into_uuid())).transpose()?;
    let fetch = i64::from(limit) + 1;
    let org = scope.organization_id().into_uuid();
    let assignee = filter.assignee.map(UserId::into_uuid);
    let mut items = match (filter.order, position) {
        (TaskOrder::Number, None | Some(Position::Number(_))) => {
            let after_number = match position {
                Some(Position::Number(n)) => Some(n),
                _ => None,
            };
            sqlx::query_as!(
                Task,
                r#"select id as "id: TaskId", organization_id as "organization_id: OrganizationId",
                          project_id as "project_id: ProjectId", number, title, description,
                          status as "status: TaskStatus", priority, assignee_id as "assignee_id: UserId",
                          labels, metadata as "metadata: TaskMetadata", due_on, version, deleted_at,
                          created_at, updated_at
                     from tasks
                    where organization_id = $1 and project_id = $2 and deleted_at is null
                      and ($3::text[] is null or status::text = any($3))
                      and ($4::uuid is null or assignee_id = $4)
                      and ($5::text is null or labels @> array[$5])
                      and ($6::text is null or to_tsvector('simple', title) @@ plainto_tsquery('simple', $6))
                      and ($7::date is null or due_on < $7)
                      and number > coalesce($8::int, 0)
                    order by number
                    limit $9"#,
                org,
                project.into_uuid(),
                statuses.as_deref(),
                assignee,
                filter.label,
                filter.title_search,
                filter.due_before,
                after_number,
                fetch,
            )
            .fetch_all(conn)
            .await?
        }
        (TaskOrder::Priority, None | Some(Position::Priority(..))) => {
            let (after_priority, after_number) = match position {
                Some(Position::Priority(p, n)) => (Some(p), Some(n)),
                _ => (None, None),
            };
            sqlx::query_as!(
                Task,
                r#"select id as "id: TaskId", organization_id as "organization_id: OrganizationId",
                          project_id as "project_id: ProjectId", number, title, description,
                          status as "status: TaskStatus", priority, assignee_id as "assignee_id: UserId",
                          labels, metadata as "metadata: TaskMetadata", due_on, version, deleted_at,
                          created_at, updated_at
                     from tasks
                    where organization_id = $1 and project_id = $2 and deleted_at is null
                      and ($3::text[] is null or status::text = any($3))
                      and ($4::uuid is null or assignee_id = $4)
                      and ($5::text is null or labels @> array[$5])
                      and ($6::text is null or to_tsvector('simple', title) @@ plainto_tsquery('simple', $6))
                      and ($7::date is null or due_on < $7)
                      and (priority, number) > (coalesce($8::smallint, -1), coalesce($9::int, 0))
                    order by priority, number
                    limit $10"#,
                org,
                project.into_uuid(),
                statuses.as_deref(),
                assignee,
                filter.label,
                filter.title_search,
                filter.due_before,
                after_priority,
                after_number,
                fetch,
            )
            .fetch_all(conn)
            .await?
        }
        _ => {
            return Err(Error::BadInput {
                message: "the page cursor belongs to another sort order",
            });
        }
    };
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|t| match filter.order {
            TaskOrder::Number => Cursor::encode(project.into_uuid(), Position::Number(t.number)),
            TaskOrder::Priority => {
                Cursor::encode(project.into_uuid(), Position::Priority(t.priority, t.number))
            }
        })
    } else {
        None
    };
    Ok(Page { items, next })
}
