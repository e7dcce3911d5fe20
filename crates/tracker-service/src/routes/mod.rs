//! The endpoints, by resource. Each tenant request is one [`TenantTx`]: the membership check
//! and the tenant are set when it begins, the work runs, and it commits; an error drops it,
//! which rolls it back. Handlers map nothing themselves: errors go to [`crate::problem`].
//! Every handler carries its OpenAPI description (`#[utoipa::path]`), and the router is
//! built from those descriptions (`utoipa_axum::routes!`): a route cannot be served without
//! being in the contract.

mod comments;
mod health;
mod members;
mod meta;
mod organizations;
mod projects;
mod tasks;
mod users;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use strata_db::{CommentId, OrganizationId, ProjectId, TaskId, TenantTx, UserId};
use utoipa_axum::router::OpenApiRouter;

use crate::App;
use crate::auth::Caller;
use crate::extract::PathParams;
use crate::problem::ApiError;

/// Every route of the API, with its OpenAPI description.
pub(crate) fn api() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(health::routes())
        .merge(meta::routes())
        .merge(users::routes())
        .merge(organizations::routes())
        .merge(members::routes())
        .merge(projects::routes())
        .merge(tasks::routes())
        .merge(comments::routes())
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
        let PathParams(org) = PathParams::<OrganizationId>::from_request_parts(parts, app).await?;
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
        let PathParams((org, item)) =
            PathParams::<(OrganizationId, I)>::from_request_parts(parts, app).await?;
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
        let mut conn = self.app.acquire().await?;
        let mut tx = TenantTx::begin(&mut conn, self.org, self.caller).await?;
        let value = work(&mut tx, self.item).await?;
        tx.commit().await?;
        Ok(value)
    }
}

/// `201 Created` with a JSON body.
fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

/// `200 OK` with a JSON body.
fn ok<T: serde::Serialize>(value: T) -> Response {
    axum::Json(value).into_response()
}

/// The most rows one page holds.
const MAX_PAGE: u32 = strata_db::page::MAX_LIMIT;
/// Rows in a page when `limit` is not given.
const DEFAULT_PAGE: u32 = 50;

/// `?after=…&limit=…` of the lists that page by a key (members, comments, tokens).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Where the page starts: the previous page's `next`.
    after: Option<uuid::Uuid>,
    /// Rows in the page, 1 to 500 (default 50).
    limit: Option<u32>,
}

impl PageQuery {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE)
    }
}
