//! Organizations: the tenants.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use strata_db::organizations;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{InOrg, created, ok};
use crate::App;
use crate::auth::Caller;
use crate::body::OrganizationView;
use crate::extract::JsonBody;
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(create_organization)).routes(routes!(get_organization))
}

/// A new organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrganizationBody {
    /// 1-63 lowercase letters, digits and hyphens; unique.
    slug: String,
    name: String,
}

/// Creates an organization with the caller as its owner.
#[utoipa::path(post, path = "/organizations", tag = "organizations", security(("bearer" = [])),
    request_body = NewOrganizationBody,
    responses((status = CREATED, body = OrganizationView), (status = CONFLICT, description = "The slug is taken")))]
async fn create_organization(
    State(app): State<App>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewOrganizationBody>,
) -> Result<Response, ApiError> {
    let mut conn = app.acquire().await?;
    let new = organizations::NewOrganization { slug: &body.slug, name: &body.name };
    let (organization, _) = organizations::create_with_owner(&mut conn, &new, caller).await?;
    Ok(created(OrganizationView::from(organization)))
}

/// An organization, to its members.
#[utoipa::path(get, path = "/organizations/{org}", tag = "organizations", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id")),
    responses((status = OK, body = OrganizationView)))]
async fn get_organization(r: InOrg) -> Result<Response, ApiError> {
    let org = r.org;
    let organization = r.run(async |tx, ()| organizations::get(&mut *tx, org).await).await?;
    Ok(ok(OrganizationView::from(organization)))
}
