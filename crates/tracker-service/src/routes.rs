//! The endpoints. Each tenant request is one [`TenantTx`]: the membership check and the
//! tenant are set when it begins, the work runs, and it commits; an error drops it, which
//! rolls it back. Handlers map nothing themselves: errors go to [`crate::problem`].

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use strata_db::tasks::{
    self, Cursor, NewTask, Task, TaskFilter, TaskMetadata, TaskOrder, TaskPatch, TaskStatus,
};
use strata_db::{
    CommentId, OrganizationId, ProjectId, Role, TaskId, TenantTx, UserId, comments, memberships,
    organizations, projects, users,
};
use time::Date;

use crate::App;
use crate::caller::Caller;
use crate::problem::ApiError;
use crate::version::{IfMatch, etag};

/// Every route of the service.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/users", post(create_user))
        .route("/users/{user}", get(get_user))
        .route("/organizations", post(create_organization))
        .route("/organizations/{org}", get(get_organization))
        .route("/organizations/{org}/members", get(list_members).post(add_member))
        .route(
            "/organizations/{org}/members/{user}",
            patch(change_member_role).delete(remove_member),
        )
        .route("/organizations/{org}/projects", get(list_projects).post(create_project))
        .route("/organizations/{org}/projects/{project}", get(get_project))
        .route("/organizations/{org}/projects/{project}/tasks", get(list_tasks).post(create_task))
        .route(
            "/organizations/{org}/tasks/{task}",
            get(get_task).patch(update_task).delete(delete_task),
        )
        .route("/organizations/{org}/tasks/{task}/transition", post(transition_task))
        .route("/organizations/{org}/tasks/{task}/assign", post(assign_task))
        .route("/organizations/{org}/tasks/{task}/restore", post(restore_task))
        .route("/organizations/{org}/tasks/{task}/comments", get(list_comments).post(add_comment))
        .route(
            "/organizations/{org}/comments/{comment}",
            patch(edit_comment).delete(delete_comment),
        )
        // Last: it applies to the routes registered before it.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
}

/// A JSON body; a malformed one is 400, one of the wrong shape 422, both as problems.
pub(crate) struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Path parameters; one that is not an id is 400, as a problem.
pub(crate) struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Query parameters; one that does not parse (`limit=-1`, `order=random()`) is 400, as a
/// problem, naming the parameter.
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// What a path no route has gets: 404, as a problem.
pub(crate) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

/// What a method a route does not have gets: 405, as a problem.
pub(crate) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// A request in one organization (`/organizations/{org}/…`), by a caller, about `item` (the
/// path's second id, or `()`): runs its work in one tenant transaction.
pub(crate) struct InOrg<I = ()> {
    app: App,
    caller: UserId,
    org: OrganizationId,
    item: I,
}

impl FromRequestParts<App> for InOrg<()> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Caller(caller) = Caller::from_request_parts(parts, app).await?;
        let Path(org) = Path::<OrganizationId>::from_request_parts(parts, app).await?;
        Ok(Self { app: app.clone(), caller, org, item: () })
    }
}

/// The ids that may follow the organization in a path.
pub(crate) trait Item: DeserializeOwned + Send {}
impl Item for UserId {}
impl Item for ProjectId {}
impl Item for TaskId {}
impl Item for CommentId {}

impl<I: Item> FromRequestParts<App> for InOrg<I> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Caller(caller) = Caller::from_request_parts(parts, app).await?;
        let Path((org, item)) = Path::<(OrganizationId, I)>::from_request_parts(parts, app).await?;
        Ok(Self { app: app.clone(), caller, org, item })
    }
}

impl<I: Copy> InOrg<I> {
    /// Runs `work` (given the item) in one tenant transaction of the organization as the
    /// caller, and commits: the membership check and the tenant come first, in `begin`.
    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut TenantTx<'_>, I) -> Result<T, strata_db::Error>,
    ) -> Result<T, ApiError> {
        let mut conn = self.app.pool.acquire().await?;
        let mut tx = TenantTx::begin(&mut conn, self.org, self.caller).await?;
        let value = work(&mut tx, self.item).await?;
        tx.commit().await?;
        Ok(value)
    }
}

/// A task with its version as the ETag.
fn task_response(status: StatusCode, task: Task) -> Response {
    let tag = etag(task.version);
    (status, [(header::ETAG, tag)], axum::Json(task)).into_response()
}

/// `201 Created` with a JSON body.
fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

/// `200 OK` with a JSON body.
fn ok<T: serde::Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

async fn healthz() -> Response {
    ok(serde_json::json!({ "status": "ok" }))
}

/// Ready when the pool can reach the database.
async fn readyz(State(app): State<App>) -> Result<Response, ApiError> {
    app.pool.ping().await?;
    Ok(ok(serde_json::json!({ "status": "ready" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    display_name: String,
}

/// Sign-up: anyone may create a user (a real service puts its identity provider here).
async fn create_user(
    State(app): State<App>,
    Json(body): Json<NewUserBody>,
) -> Result<Response, ApiError> {
    let mut conn = app.pool.acquire().await?;
    let new = users::NewUser { email: &body.email, display_name: &body.display_name };
    Ok(created(users::create(&mut conn, &new).await?))
}

/// A user, to themselves only.
async fn get_user(
    State(app): State<App>,
    Caller(caller): Caller,
    Path(user): Path<UserId>,
) -> Result<Response, ApiError> {
    if user != caller {
        return Err(strata_db::Error::NotFound { entity: "user" }.into());
    }
    let mut conn = app.pool.acquire().await?;
    Ok(ok(users::get(&mut conn, user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrganizationBody {
    slug: String,
    name: String,
}

/// Creates an organization with the caller as its owner.
async fn create_organization(
    State(app): State<App>,
    Caller(caller): Caller,
    Json(body): Json<NewOrganizationBody>,
) -> Result<Response, ApiError> {
    let mut conn = app.pool.acquire().await?;
    let new = organizations::NewOrganization { slug: &body.slug, name: &body.name };
    let (organization, _) = organizations::create_with_owner(&mut conn, &new, caller).await?;
    Ok(created(organization))
}

async fn get_organization(r: InOrg) -> Result<Response, ApiError> {
    let org = r.org;
    Ok(ok(r.run(async |tx, ()| organizations::get(&mut *tx, org).await).await?))
}

/// `?after=…&limit=…` of the lists that page by a key (members, comments).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery<K> {
    after: Option<K>,
    limit: Option<u32>,
}

async fn list_members(
    r: InOrg,
    Query(query): Query<PageQuery<UserId>>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_PAGE);
    let page = r.run(async |tx, ()| memberships::list(tx, query.after, limit).await).await?;
    Ok(ok(PageBody { items: page.items, next: page.next.map(|id| id.to_string()) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMemberBody {
    user_id: UserId,
    role: Role,
}

async fn add_member(r: InOrg, Json(body): Json<NewMemberBody>) -> Result<Response, ApiError> {
    let member = r.run(async |tx, ()| memberships::add(tx, body.user_id, body.role).await).await?;
    Ok(created(member))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: Role,
}

async fn change_member_role(
    r: InOrg<UserId>,
    Json(body): Json<RoleBody>,
) -> Result<Response, ApiError> {
    Ok(ok(r.run(async |tx, user| memberships::change_role(tx, user, body.role).await).await?))
}

async fn remove_member(r: InOrg<UserId>) -> Result<Response, ApiError> {
    r.run(async |tx, user| memberships::remove(tx, user).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectListQuery {
    #[serde(default)]
    include_archived: bool,
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_projects(
    r: InOrg,
    Query(query): Query<ProjectListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_PAGE);
    let after = query.after.as_deref();
    let page = r
        .run(async |tx, ()| projects::list(tx, query.include_archived, after, limit).await)
        .await?;
    Ok(ok(PageBody { items: page.items, next: page.next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProjectBody {
    key: String,
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_project(r: InOrg, Json(body): Json<NewProjectBody>) -> Result<Response, ApiError> {
    let new =
        projects::NewProject { key: &body.key, name: &body.name, description: &body.description };
    Ok(created(r.run(async |tx, ()| projects::create(tx, &new).await).await?))
}

async fn get_project(r: InOrg<ProjectId>) -> Result<Response, ApiError> {
    Ok(ok(r.run(async |tx, project| projects::get(tx, project).await).await?))
}

/// The query of a task listing: `?limit=&after=&order=number|priority&status=todo,done&
/// assignee=&label=&q=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskListQuery {
    after: Option<String>,
    limit: Option<u32>,
    #[serde(default)]
    order: Order,
    status: Option<String>,
    assignee: Option<UserId>,
    label: Option<String>,
    q: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "snake_case")]
enum Order {
    #[default]
    Number,
    Priority,
}

/// The most rows one page holds.
const MAX_PAGE: u32 = strata_db::page::MAX_LIMIT;

/// A page of a list and where the next one starts (`?after=` of the next request).
#[derive(serde::Serialize)]
struct PageBody<T> {
    items: Vec<T>,
    next: Option<String>,
}

async fn list_tasks(
    r: InOrg<ProjectId>,
    Query(query): Query<TaskListQuery>,
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
        assignee: query.assignee,
        label: query.label.as_deref(),
        title_search: query.q.as_deref(),
        ..TaskFilter::default()
    };
    let order = match query.order {
        Order::Number => TaskOrder::Number,
        Order::Priority => TaskOrder::Priority,
    };
    let limit = query.limit.unwrap_or(50).min(MAX_PAGE);
    let page = r
        .run(async |tx, project| {
            tasks::list(tx, project, &filter, order, after.as_ref(), limit).await
        })
        .await?;
    Ok(ok(PageBody { items: page.items, next: page.next.map(|c| c.to_string()) }))
}

/// `todo,in_progress` into statuses.
fn parse_statuses(text: Option<&str>) -> Result<Vec<TaskStatus>, ApiError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            serde_json::from_value(serde_json::Value::String(s.trim().to_owned()))
                .map_err(|_| ApiError::BadRequest(format!("status={s:?} is not a task status")))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTaskBody {
    /// Chosen by the client to make the create idempotent: a POST retried with the same ID
    /// after a lost answer gets 409 when the first one landed. A new one when absent.
    id: Option<TaskId>,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_priority")]
    priority: i16,
    assignee_id: Option<UserId>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    metadata: TaskMetadata,
    due_on: Option<Date>,
}

fn default_priority() -> i16 {
    2
}

async fn create_task(
    r: InOrg<ProjectId>,
    Json(body): Json<NewTaskBody>,
) -> Result<Response, ApiError> {
    let task = r
        .run(async |tx, project_id| {
            let new = NewTask {
                id: body.id.unwrap_or_else(TaskId::new),
                project_id,
                title: &body.title,
                description: &body.description,
                priority: body.priority,
                assignee_id: body.assignee_id,
                labels: &body.labels,
                metadata: &body.metadata,
                due_on: body.due_on,
            };
            tasks::create(tx, &new).await
        })
        .await?;
    Ok(task_response(StatusCode::CREATED, task))
}

async fn get_task(r: InOrg<TaskId>) -> Result<Response, ApiError> {
    Ok(task_response(StatusCode::OK, r.run(async |tx, id| tasks::get(tx, id).await).await?))
}

/// The fields a PATCH may change; absent ones stay. `due_on: null` clears the date.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskPatchBody {
    title: Option<String>,
    description: Option<String>,
    priority: Option<i16>,
    labels: Option<Vec<String>>,
    metadata: Option<TaskMetadata>,
    #[serde(default, deserialize_with = "present")]
    due_on: Option<Option<Date>>,
}

/// A field that is present (maybe `null`) is `Some`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Date>>, D::Error> {
    Option::<Date>::deserialize(d).map(Some)
}

async fn update_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    Json(body): Json<TaskPatchBody>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    status: TaskStatus,
}

async fn transition_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    Json(body): Json<TransitionBody>,
) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::transition(tx, id, version, body.status).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee_id: Option<UserId>,
}

async fn assign_task(
    r: InOrg<TaskId>,
    IfMatch(version): IfMatch,
    Json(body): Json<AssignBody>,
) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::assign(tx, id, version, body.assignee_id).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

async fn delete_task(r: InOrg<TaskId>, IfMatch(version): IfMatch) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::delete(tx, id, version).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

async fn restore_task(r: InOrg<TaskId>, IfMatch(version): IfMatch) -> Result<Response, ApiError> {
    let task = r.run(async |tx, id| tasks::restore(tx, id, version).await).await?;
    Ok(task_response(StatusCode::OK, task))
}

async fn list_comments(
    r: InOrg<TaskId>,
    Query(query): Query<PageQuery<CommentId>>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_PAGE);
    let page = r.run(async |tx, task| comments::list(tx, task, query.after, limit).await).await?;
    Ok(ok(PageBody { items: page.items, next: page.next.map(|id| id.to_string()) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    body: String,
}

async fn add_comment(
    r: InOrg<TaskId>,
    Json(body): Json<CommentBody>,
) -> Result<Response, ApiError> {
    Ok(created(r.run(async |tx, task| comments::create(tx, task, &body.body).await).await?))
}

async fn edit_comment(
    r: InOrg<CommentId>,
    Json(body): Json<CommentBody>,
) -> Result<Response, ApiError> {
    Ok(ok(r.run(async |tx, id| comments::edit(tx, id, &body.body).await).await?))
}

async fn delete_comment(r: InOrg<CommentId>) -> Result<Response, ApiError> {
    r.run(async |tx, id| comments::delete(tx, id).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
