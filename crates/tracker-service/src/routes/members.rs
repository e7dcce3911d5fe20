//! An organization's members.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_db::PageRequest;
use strata_db::{UserId, memberships};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{InOrg, PageQuery, created, ok};
use crate::App;
use crate::body::{MemberView, PageView, RoleName};
use crate::extract::{JsonBody, QueryParams};
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_members, add_member))
        .routes(routes!(change_member_role, remove_member))
}

/// The organization's members, by user id.
#[utoipa::path(get, path = "/organizations/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"), PageQuery),
    responses((status = OK, body = PageView<MemberView>)))]
async fn list_members(
    r: InOrg,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let (after, limit) = (query.after.map(UserId::from_uuid), query.limit());
    let page =
        r.run(async |tx, ()| memberships::list(tx, PageRequest { after, limit }).await).await?;
    Ok(ok(PageView::<MemberView>::of(page)))
}

/// A new member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMemberBody {
    user_id: uuid::Uuid,
    role: RoleName,
}

/// Adds a member (owners and admins).
#[utoipa::path(post, path = "/organizations/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id")),
    request_body = NewMemberBody,
    responses((status = CREATED, body = MemberView), (status = CONFLICT, description = "Already a member")))]
async fn add_member(
    r: InOrg,
    JsonBody(body): JsonBody<NewMemberBody>,
) -> Result<Response, ApiError> {
    let (user, role) = (UserId::from_uuid(body.user_id), body.role.into());
    let member = r.run(async |tx, ()| memberships::add(tx, user, role).await).await?;
    Ok(created(MemberView::from(member)))
}

/// A member's new role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: RoleName,
}

/// Changes a member's role; the organization keeps at least one owner.
#[utoipa::path(patch, path = "/organizations/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("user" = uuid::Uuid, Path, description = "The member's user id")),
    request_body = RoleBody, responses((status = OK, body = MemberView)))]
async fn change_member_role(
    r: InOrg<UserId>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Response, ApiError> {
    let role = body.role.into();
    let member = r.run(async |tx, user| memberships::change_role(tx, user, role).await).await?;
    Ok(ok(MemberView::from(member)))
}

/// Removes a member; the organization keeps at least one owner.
#[utoipa::path(delete, path = "/organizations/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = uuid::Uuid, Path, description = "The organization's id"),
           ("user" = uuid::Uuid, Path, description = "The member's user id")),
    responses((status = NO_CONTENT, description = "Removed")))]
async fn remove_member(r: InOrg<UserId>) -> Result<Response, ApiError> {
    r.run(async |tx, user| memberships::remove(tx, user).await).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
