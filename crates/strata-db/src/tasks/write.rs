//! Changing tasks. Each change is one statement that writes the task, its audit event and
//! (for what other services care about) its outbox event: one round trip, atomic.

use crate::TenantTx;
use crate::audit::audited;
use crate::input;
use crate::tenant::TenantExec;
use time::Date;

use super::{NewTask, Task, TaskMetadata, TaskStatus};
use crate::{AuditEventId, Error, OrganizationId, OutboxEventId, ProjectId, Scope, TaskId, UserId};

/// Creates a task with the next number of its project (assigned atomically: no gaps, no
/// duplicates under concurrency), its audit event and a `task.created` outbox event.
///
/// # Errors
///
/// [`Error::Forbidden`] for viewers, [`Error::NotFound`] when the project is not in this
/// organization, [`Error::BadInput`] when it is archived, [`Error::Invalid`] when the input is malformed,
/// [`Error::Conflict`] on [`crate::constraints::TASKS_PKEY`] when a task with `new.id` exists.
#[tracing::instrument(skip_all, fields(organization.id = %tx.scope().organization_id(), project.id = %new.project_id), err(level = "debug"))]
pub async fn create(tx: &mut TenantTx<'_>, new: &NewTask<'_>) -> Result<Task, Error> {
    input::text("title", new.title, input::TITLE_MAX)?;
    input::text("description", new.description, input::TEXT_MAX)?;
    input::labels(new.labels)?;
    input::metadata(new.metadata)?;
    input::date("due_on", new.due_on)?;
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    let task = audited!(
        as Task,
        r#"with n as (
               update projects set next_task_number = next_task_number + 1
                where organization_id = $1 and id = $2 and not archived
               returning next_task_number - 1 as number
           ), t as (
               insert into tasks (id, organization_id, project_id, number, title, description,
                                  priority, assignee_id, labels, metadata, due_on)
               select $3, $1, $2, n.number, $4, $5, $6, $7, $8, $9, $10 from n
               returning *
           )"#,
        record: r#"select $11, t.organization_id, $12, 'task', t.id, 'create', null::jsonb, to_jsonb(t) from t"#,
        r#", outbox as (
               insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
               select $13, t.organization_id, 'task.created', t.id,
                      jsonb_build_object('task_id', t.id, 'project_id', t.project_id,
                                         'number', t.number, 'status', t.status)
                 from t
               returning id
           )
           select id as "id!: TaskId", organization_id as "organization_id!: OrganizationId",
                  project_id as "project_id!: ProjectId", number as "number!", title as "title!",
                  description as "description!", status as "status!: TaskStatus",
                  priority as "priority!", assignee_id as "assignee_id?: UserId", labels as "labels!",
                  metadata as "metadata!: TaskMetadata", due_on as "due_on?", version as "version!",
                  deleted_at as "deleted_at?", created_at as "created_at!", updated_at as "updated_at!"
             from t"#,
        scope.organization_id().into_uuid(),
        new.project_id.into_uuid(),
        new.id.into_uuid(),
        new.title,
        new.description,
        new.priority,
        new.assignee_id.map(UserId::into_uuid),
        new.labels,
        new.metadata as _,
        new.due_on,
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
        OutboxEventId::new().into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    match task {
        Some(task) => Ok(task),
        None => Err(project_refusal(conn, scope, new.project_id).await?),
    }
}

/// Why a project takes no task: absent from this organization, or archived.
pub(super) async fn project_refusal(
    conn: impl sqlx::PgExecutor<'_>,
    scope: &Scope,
    project: ProjectId,
) -> Result<Error, Error> {
    let archived = sqlx::query_scalar!(
        "select archived from projects where organization_id = $1 and id = $2",
        scope.organization_id().into_uuid(),
        project.into_uuid(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(match archived {
        Some(true) => Error::BadInput { message: "the project is archived" },
        _ => Error::NotFound { entity: "project" },
    })
}

/// Changes to a task's fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New priority.
    pub priority: Option<i16>,
    /// New labels (replacing the old).
    pub labels: Option<Vec<String>>,
    /// New metadata (replacing the old).
    pub metadata: Option<TaskMetadata>,
    /// `Some(None)` clears the due date.
    pub due_on: Option<Option<Date>>,
}

impl TaskPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        let TaskPatch { title, description, priority, labels, metadata, due_on } = self;
        title.is_none()
            && description.is_none()
            && priority.is_none()
            && labels.is_none()
            && metadata.is_none()
            && due_on.is_none()
    }

    /// The values the database could not hold ([`crate::input`]).
    fn check(&self) -> Result<(), Error> {
        let text = |field, value: &Option<String>, max| {
            value.as_deref().map_or(Ok(()), |v| input::text(field, v, max))
        };
        text("title", &self.title, input::TITLE_MAX)?;
        text("description", &self.description, input::TEXT_MAX)?;
        self.labels.as_deref().map_or(Ok(()), input::labels)?;
        self.metadata.as_ref().map_or(Ok(()), input::metadata)?;
        input::date("due_on", self.due_on.flatten())
    }
}

/// Applies `patch` if the task is still at `expected_version`, bumping the version, with its
/// audit event (before and after).
///
/// # Errors
///
/// [`Error::Stale`] when the task changed since it was read (nothing is written),
/// [`Error::NotFound`], [`Error::Forbidden`] for viewers, [`Error::Invalid`] for bad values.
#[tracing::instrument(skip(tx, patch), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn update(
    tx: &mut TenantTx<'_>,
    id: TaskId,
    expected_version: i32,
    patch: &TaskPatch,
) -> Result<Task, Error> {
    patch.check()?;
    if patch.is_empty() {
        // Nothing to change: no new version, no audit event; the version is still checked.
        tx.scope().require_writer()?;
        let task = super::read::get(tx, id).await?;
        return match task.version {
            v if v == expected_version => Ok(task),
            actual => Err(Error::Stale { expected: expected_version, actual }),
        };
    }
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    let task = audited!(
        as Task,
        r#"with old as (
               select * from tasks
                where organization_id = $1 and id = $2 and version = $3 and deleted_at is null
                for update
           ), t as (
               update tasks set title = coalesce($4, title), description = coalesce($5, description),
                      priority = coalesce($6, priority), labels = coalesce($7, labels),
                      metadata = coalesce($8, metadata),
                      due_on = case when $9 then $10 else due_on end,
                      version = version + 1
                where organization_id = $1 and id = (select id from old)
               returning *
           )"#,
        record: r#"select $11, t.organization_id, $12, 'task', t.id, 'update', to_jsonb(old), to_jsonb(t)
                 from t, old"#,
        r#"select id as "id!: TaskId", organization_id as "organization_id!: OrganizationId",
                  project_id as "project_id!: ProjectId", number as "number!", title as "title!",
                  description as "description!", status as "status!: TaskStatus",
                  priority as "priority!", assignee_id as "assignee_id?: UserId", labels as "labels!",
                  metadata as "metadata!: TaskMetadata", due_on as "due_on?", version as "version!",
                  deleted_at as "deleted_at?", created_at as "created_at!", updated_at as "updated_at!"
             from t"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        expected_version,
        patch.title.as_deref(),
        patch.description.as_deref(),
        patch.priority,
        patch.labels.as_deref(),
        patch.metadata.as_ref() as _,
        patch.due_on.is_some(),
        patch.due_on.flatten(),
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?;
    found_or_why(conn, scope, id, expected_version, task, false).await
}

/// The change of one column that other services follow, as one statement: the task, its
/// audit event and its outbox event.
#[derive(Clone, Copy)]
enum Change {
    Status(TaskStatus),
    Assignee(Option<UserId>),
    Deleted(bool),
}

/// Moves a task to `to` if the transition is allowed and the task is at `expected_version`;
/// records the audit event and a `task.status_changed` outbox event.
///
/// # Errors
///
/// [`Error::InvalidTransition`] when the move is not allowed, [`Error::Stale`],
/// [`Error::NotFound`], [`Error::Forbidden`] for viewers.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn transition(
    tx: &mut TenantTx<'_>,
    id: TaskId,
    expected_version: i32,
    to: TaskStatus,
) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    change(conn, scope, id, expected_version, Change::Status(to)).await
}

/// Assigns the task to a member (or to nobody); records the audit event and a
/// `task.assigned` outbox event.
///
/// # Errors
///
/// [`Error::Invalid`] when the assignee is not a member, [`Error::Stale`],
/// [`Error::NotFound`], [`Error::Forbidden`] for viewers.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn assign(
    tx: &mut TenantTx<'_>,
    id: TaskId,
    expected_version: i32,
    assignee: Option<UserId>,
) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    change(conn, scope, id, expected_version, Change::Assignee(assignee)).await
}

/// Soft-deletes a task (it disappears from reads; [`restore`] brings it back); records the
/// audit event and a `task.deleted` outbox event.
///
/// # Errors
///
/// [`Error::Stale`], [`Error::NotFound`], [`Error::Forbidden`] for viewers.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn delete(
    tx: &mut TenantTx<'_>,
    id: TaskId,
    expected_version: i32,
) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    change(conn, scope, id, expected_version, Change::Deleted(true)).await
}

/// Restores a soft-deleted task; records the audit event and a `task.restored` outbox event.
///
/// # Errors
///
/// [`Error::Stale`], [`Error::NotFound`] when there is no deleted task with this ID,
/// [`Error::Forbidden`] for viewers.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn restore(
    tx: &mut TenantTx<'_>,
    id: TaskId,
    expected_version: i32,
) -> Result<Task, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    change(conn, scope, id, expected_version, Change::Deleted(false)).await
}

async fn change(
    conn: &mut TenantExec<'_>,
    scope: &Scope,
    id: TaskId,
    expected_version: i32,
    change: Change,
) -> Result<Task, Error> {
    scope.require_writer()?;
    let (set_status, status, set_assignee, assignee, deleted) = match change {
        Change::Status(s) => (true, Some(s), false, None, None),
        Change::Assignee(a) => (false, None, true, a.map(UserId::into_uuid), None),
        Change::Deleted(d) => (false, None, false, None, Some(d)),
    };
    let (action, topic) = match change {
        Change::Status(_) => ("transition", "task.status_changed"),
        Change::Assignee(_) => ("assign", "task.assigned"),
        Change::Deleted(true) => ("delete", "task.deleted"),
        Change::Deleted(false) => ("restore", "task.restored"),
    };
    let task = audited!(
        as Task,
        r#"with old as (
               select * from tasks
                where organization_id = $1 and id = $2 and version = $3
                  and (deleted_at is not null) = coalesce(not $8::bool, false)
                for update
           ), t as (
               update tasks set
                      status = case when $4 then $5::task_status else status end,
                      assignee_id = case when $6 then $7 else assignee_id end,
                      deleted_at = case when $8 is null then deleted_at
                                        when $8 then now() else null end,
                      version = version + 1
                where organization_id = $1 and id = (select id from old)
               returning *
           )"#,
        record: r#"select $9, t.organization_id, $10, 'task', t.id, $11, to_jsonb(old), to_jsonb(t)
                 from t, old"#,
        r#", outbox as (
               insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
               select $12, t.organization_id, $13, t.id,
                      jsonb_build_object('task_id', t.id, 'project_id', t.project_id, 'number', t.number,
                                         'from', jsonb_build_object('status', old.status, 'assignee_id', old.assignee_id),
                                         'to', jsonb_build_object('status', t.status, 'assignee_id', t.assignee_id))
                 from t, old
               returning id
           )
           select id as "id!: TaskId", organization_id as "organization_id!: OrganizationId",
                  project_id as "project_id!: ProjectId", number as "number!", title as "title!",
                  description as "description!", status as "status!: TaskStatus",
                  priority as "priority!", assignee_id as "assignee_id?: UserId", labels as "labels!",
                  metadata as "metadata!: TaskMetadata", due_on as "due_on?", version as "version!",
                  deleted_at as "deleted_at?", created_at as "created_at!", updated_at as "updated_at!"
             from t"#,
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        expected_version,
        set_status,
        status as Option<TaskStatus>,
        set_assignee,
        assignee,
        deleted,
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
        action,
        OutboxEventId::new().into_uuid(),
        topic,
    )
    .fetch_optional(&mut *conn)
    .await?;
    found_or_why(conn, scope, id, expected_version, task, deleted == Some(false)).await
}

/// The task, or why the write touched nothing: not found, or stale (with the stored version).
async fn found_or_why(
    conn: &mut TenantExec<'_>,
    scope: &Scope,
    id: TaskId,
    expected: i32,
    task: Option<Task>,
    wants_deleted: bool,
) -> Result<Task, Error> {
    if let Some(task) = task {
        return Ok(task);
    }
    let actual = sqlx::query_scalar!(
        "select version from tasks
          where organization_id = $1 and id = $2 and (deleted_at is not null) = $3",
        scope.organization_id().into_uuid(),
        id.into_uuid(),
        wants_deleted,
    )
    .fetch_optional(conn)
    .await?;
    Err(match actual {
        Some(actual) => Error::Stale { expected, actual },
        None => Error::NotFound { entity: "task" },
    })
}
