//! Comments on tasks.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_db::PageRequest;
use strata_db::{CommentId, TaskId, comments};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{InOrg, PageQuery, created, ok};
use crate::App;
use crate::body::{CommentView, PageView};
use crate::extract::{JsonBody, QueryParams};
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(edit_comment, delete_comment))
}

/// A task's comments, oldest first.
#[utoipa::path(get, path = "/organizations/{org}/tasks/{task}/comments", tag = "comments", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("task" = uuid::Uuid, Path, description = "The task's id"), PageQuery),
    responses((status = OK, body = PageView<CommentView>)))]
async fn list_comments(
    r: InOrg<TaskId>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let (after, limit) = (query.after.map(CommentId::from_uuid), query.limit());
    let page = r
        .run(async |tx, task| comments::list(tx, task, PageRequest { after, limit }).await)
        .await?;
    Ok(ok(PageView::<CommentView>::of(page)))
}

/// A comment's text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    body: String,
}

/// Comments on a task as the caller.
#[utoipa::path(post, path = "/organizations/{org}/tasks/{task}/comments", tag = "comments", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("task" = uuid::Uuid, Path, description = "The task's id")),
    request_body = CommentBody, responses((status = CREATED, body = CommentView)))]
async fn add_comment(
    r: InOrg<TaskId>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Response, ApiError> {
    let comment = r.run(async |tx, task| comments::create(tx, task, &body.body).await).await?;
    Ok(created(CommentView::from(comment)))
}

/// Edits a comment (its author only).
#[utoipa::path(patch, path = "/organizations/{org}/comments/{comment}", tag = "comments", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("comment" = uuid::Uuid, Path, description = "The comment's id")),
    request_body = CommentBody, responses((status = OK, body = CommentView)))]
async fn edit_comment(
    r: InOrg<CommentId>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Response, ApiError> {
    let comment = r.run(async |tx, id| comments::update(tx, id, &body.body).await).await?;
    Ok(ok(CommentView::from(comment)))
}

/// Deletes a comment (its author, or an admin).
#[utoipa::path(delete, path = "/organizations/{org}/comments/{comment}", tag = "comments", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("comment" = uuid::Uuid, Path, description = "The comment's id")),
    responses((status = NO_CONTENT, description = "Deleted")))]
async fn delete_comment(r: InOrg<CommentId>) -> Result<Response, ApiError> {
    r.run(async |tx, id| comments::delete(tx, id).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
