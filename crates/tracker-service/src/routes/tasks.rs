//! Tasks: created in a project, then read and changed by id. A change names the version it
//! read in `If-Match` (the task's `ETag`).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_db::PageRequest;
use strata_db::tasks::{
    self, Cursor, NewTask, Task, TaskFilter, TaskMetadata, TaskOrder, TaskPatch,
};
use strata_db::{ProjectId, TaskId, UserId};
use time::Date;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DEFAULT_PAGE, InOrg, MAX_PAGE, ok};
use crate::App;
use crate::body::{PageView, StatusName, TaskView};
use crate::extract::{JsonBody, QueryParams};
use crate::problem::ApiError;
use crate::version::{IfMatch, etag};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(transition_task))
        .routes(routes!(assign_task))
        .routes(routes!(restore_task))
}

/// The path of a task.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by `InOrg`; here for the contract
struct TaskPath {
    /// The organization's id.
    org: uuid::Uuid,
    /// The task's id.
    task: uuid::Uuid,
}

/// The answers of a change to a task.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, clippy::large_enum_variant)] // never built: `task_response` and `ApiError` answer
enum ChangedTask {
    /// The task as changed; its new version is the ETag.
    #[response(status = 200, headers(("ETag" = String, description = "The task's version")))]
    Changed(TaskView),
    /// The version is stale: read the task again.
    #[response(status = 412)]
    Stale,
    /// If-Match is missing.
    #[response(status = 428)]
    VersionRequired,
}

/// A task with its version as the ETag.
fn task_response(status: StatusCode, task: Task) -> Response {
    let tag = etag(task.version);
    (status, [(header::ETAG, tag)], axum::Json(TaskView::from(task))).into_response()
}

/// The query of a task listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TaskListQuery {
    /// Where the page starts: the previous page's `next`.
    after: Option<String>,
    /// Rows in the page, 1 to 500 (default 50).
    limit: Option<u32>,
    /// `number` (default) or `priority`.
    #[serde(default)]
    #[param(inline)]
    order: Order,
    /// Statuses, comma-separated (`todo,in_progress`).
    status: Option<String>,
    /// Only tasks assigned to this user.
    assignee: Option<uuid::Uuid>,
    /// Only tasks with this label.
    label: Option<String>,
    /// Words of the title.
    q: Option<String>,
}

/// The order of a listing.
#[derive(Deserialize, Default, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Order {
    /// By number.
    #[default]
    Number,
    /// By priority, then number.
    Priority,
}

/// A project's tasks, a page at a time, filtered.
#[utoipa::path(get, path = "/organizations/{org}/projects/{project}/tasks", tag = "tasks", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("project" = uuid::Uuid, Path, description = "The project's id"), TaskListQuery),
    responses((status = OK, body = PageView<TaskView>)))]
async fn list_tasks(
    r: InOrg<ProjectId>,
    QueryParams(query): QueryParams<TaskListQuery>,
) -> Result<Response, ApiError> {
    let statuses = parse_statuses(query.status.as_deref())?;
    let after = match query.after.as_deref() {
        Some(text) => Some(
            text.parse::<Cursor>()
                .map_err(|_| ApiError::BadRequest(format!("after={text:?} is not a cursor")))?,
        ),
        None => None,
    };
    let filter = TaskFilter {
        statuses: &statuses,
        assignee: query.assignee.map(UserId::from_uuid),
        label: query.label.as_deref(),
        title_search: query.q.as_deref(),
        order: match query.order {
            Order::Number => TaskOrder::Number,
            Order::Priority => TaskOrder::Priority,
        },
        ..TaskFilter::default()
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let page = r
        .run(async |tx, project| {
            tasks::list(tx, project, &filter, PageRequest { after: after.as_ref(), limit }).await
        })
        .await?;
    Ok(ok(PageView::<TaskView>::of(page)))
}

/// `todo,in_progress` into statuses.
fn parse_statuses(text: Option<&str>) -> Result<Vec<tasks::TaskStatus>, ApiError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            serde_json::from_value::<StatusName>(serde_json::Value::String(s.trim().to_owned()))
                .map(Into::into)
                .map_err(|_| ApiError::BadRequest(format!("status={s:?} is not a task status")))
        })
        .collect()
}

/// A new task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTaskBody {
    /// Chosen by the client to make the create idempotent: a POST retried with the same id
    /// after a lost answer gets 409 when the first one landed. Ids are per organization:
    /// another organization's ids are neither visible nor in the way. A new one when absent.
    id: Option<uuid::Uuid>,
    title: String,
    #[serde(default)]
    description: String,
    /// 0 (highest) to 4 (lowest); 2 when absent.
    #[serde(default = "default_priority")]
    priority: i16,
    assignee_id: Option<uuid::Uuid>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: TaskMetadata,
    due_on: Option<Date>,
}

fn default_priority() -> i16 {
    2
}

/// Creates a task in a project.
#[utoipa::path(post, path = "/organizations/{org}/projects/{project}/tasks", tag = "tasks", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("project" = uuid::Uuid, Path, description = "The project's id")),
    request_body = NewTaskBody,
    responses((status = CREATED, body = TaskView, headers(("ETag" = String, description = "The task's version"))),
              (status = CONFLICT, description = "A task with this id exists in the organization")))]
async fn create_task(
    r: InOrg<ProjectId>,
    JsonBody(body): JsonBody<NewTaskBody>,
) -> Result<Response, ApiError> {
    let task = r
        .run(async |tx, project_id| {
            let new = NewTask {
                id: body.id.map_or_else(TaskId::new, TaskId::from_uuid),
                project_id,
                title: &body.title,
                description: &body.description,
                priority: body.priority,
                assignee_id: body.assignee_id.map(UserId::from_uuid),
                labels: &body.labels,
                metadata: &body.metadata,
                due_on: body.due_on,
            };
            tasks::create(tx, &new).await
        })
        .await?;
    Ok(task_response(StatusCode::CREATED, task))
}

/// A task.
#[utoipa::path(get, path = "/organizations/{org}/tasks/{task}", tag = "tasks", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("task" = uuid::Uuid, Path, description = "The task's id")),
    responses((status = OK, body = TaskView, headers(("ETag" = String, description = "The task's version")))))]
async fn get_task(r: InOrg<TaskId>) -> Result<Response, ApiError> {
    Ok(task_response(StatusCode::OK, r.run(async |tx, id| tasks::get(tx, id).await).await?))
}

/// The fields a PATCH may change; absent ones stay. `due_on: null` clears the date.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TaskPatchBody {
    title: Option<String>,
    description: Option<String>,
    priority: Option<i16>,
    labels: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<TaskMetadata>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Date>)]
    due_on: Option<Option<Date>>,
}

/// A field that is present (maybe `null`) is `Some`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Date>>, D::Error> {
    Option::<Date>::deserialize(d).map(Some)
}

/// Changes a task's fields; a patch that changes nothing changes nothing (no new version).
#[utoipa::path(patch, path = "/organizations/{org}/tasks/{task}", tag = "tasks", security(("bearer" = [])),
    params(TaskPath, ("If-Match" = String, Header, description = "The version read (its ETag)")),
    request_body = TaskPatchBody,
    responses(ChangedTask))]
async fn update_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<TaskPatchBody>,
) -> Result<Response, ApiError> {
    let patch = TaskPatch {
        title: body.title,
        description: body.description,
        priority: body.priority,
        labels: body.labels,
        metadata: body.metadata,
        due_on: body.due_on,
    };
    let task = r.run(async |tx, id| tasks::update(tx, id, version, &patch).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

/// A status to move to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    status: StatusName,
}

/// Moves a task to another status, if the workflow allows it.
#[utoipa::path(post, path = "/organizations/{org}/tasks/{task}/transition", tag = "tasks", security(("bearer" = [])),
    params(TaskPath, ("If-Match" = String, Header, description = "The version read (its ETag)")),
    request_body = TransitionBody,
    responses(ChangedTask))]
async fn transition_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<TransitionBody>,
) -> Result<Response, ApiError> {
    let status = body.status.into();
    let task = r.run(async |tx, id| tasks::transition(tx, id, version, status).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

/// The new assignee, or `null`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee_id: Option<uuid::Uuid>,
}

/// Assigns a task to a member, or unassigns it.
#[utoipa::path(post, path = "/organizations/{org}/tasks/{task}/assign", tag = "tasks", security(("bearer" = [])),
    params(TaskPath, ("If-Match" = String, Header, description = "The version read (its ETag)")),
    request_body = AssignBody,
    responses(ChangedTask))]
async fn assign_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Response, ApiError> {
    let assignee = body.assignee_id.map(UserId::from_uuid);
    let task = r.run(async |tx, id| tasks::assign(tx, id, version, assignee).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

/// Deletes a task (softly: `restore` brings it back).
#[utoipa::path(delete, path = "/organizations/{org}/tasks/{task}", tag = "tasks", security(("bearer" = [])),
    params(TaskPath, ("If-Match" = String, Header, description = "The version read (its ETag)")),
    responses(ChangedTask))]
async fn delete_task(r: InOrg<TaskId>, IfMatch(version): IfMatch) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::delete(tx, id, version).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

/// Restores a deleted task.
#[utoipa::path(post, path = "/organizations/{org}/tasks/{task}/restore", tag = "tasks", security(("bearer" = [])),
    params(TaskPath, ("If-Match" = String, Header, description = "The version read (its ETag)")),
    responses(ChangedTask))]
async fn restore_task(r: InOrg<TaskId>, IfMatch(version): IfMatch) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::restore(tx, id, version).await).await?;
    Ok(task_response(StatusCode::OK, task))
}
