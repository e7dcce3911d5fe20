//! An organization's projects.

use axum::response::Response;
use serde::Deserialize;
use strata_db::PageRequest;
use strata_db::{ProjectId, projects};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DEFAULT_PAGE, InOrg, MAX_PAGE, created, ok};
use crate::App;
use crate::body::{PageView, ProjectView};
use crate::extract::{JsonBody, QueryParams};
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(list_projects, create_project)).routes(routes!(get_project))
}

/// `?include_archived=&after=&limit=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ProjectListQuery {
    /// Archived projects too (default false).
    #[serde(default)]
    include_archived: bool,
    /// Where the page starts: the previous page's `next` (a project key).
    after: Option<String>,
    /// Rows in the page, 1 to 500 (default 50).
    limit: Option<u32>,
}

/// The organization's projects, by key.
#[utoipa::path(get, path = "/organizations/{org}/projects", tag = "projects", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"), ProjectListQuery),
    responses((status = OK, body = PageView<ProjectView>)))]
async fn list_projects(
    r: InOrg,
    QueryParams(query): QueryParams<ProjectListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    let after = query.after.as_deref();
    let page = r
        .run(async |tx, ()| {
            projects::list(tx, query.include_archived, PageRequest { after, limit }).await
        })
        .await?;
    Ok(ok(PageView::<ProjectView>::of(page)))
}

/// A new project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewProjectBody {
    /// 2-10 uppercase letters and digits, starting with a letter; unique in the organization.
    key: String,
    name: String,
    #[serde(default)]
    description: String,
}

/// Creates a project (owners and admins).
#[utoipa::path(post, path = "/organizations/{org}/projects", tag = "projects", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id")),
    request_body = NewProjectBody,
    responses((status = CREATED, body = ProjectView), (status = CONFLICT, description = "The key is taken")))]
async fn create_project(
    r: InOrg,
    JsonBody(body): JsonBody<NewProjectBody>,
) -> Result<Response, ApiError> {
    let new =
        projects::NewProject { key: &body.key, name: &body.name, description: &body.description };
    let project = r.run(async |tx, ()| projects::create(tx, &new).await).await?;
    Ok(created(ProjectView::from(project)))
}

/// A project.
#[utoipa::path(get, path = "/organizations/{org}/projects/{project}", tag = "projects", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("project" = uuid::Uuid, Path, description = "The project's id")),
    responses((status = OK, body = ProjectView)))]
async fn get_project(r: InOrg<ProjectId>) -> Result<Response, ApiError> {
    let project = r.run(async |tx, project| projects::get(tx, project).await).await?;
    Ok(ok(ProjectView::from(project)))
}
