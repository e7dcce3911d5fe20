//! Users and their API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_db::PageRequest;
use strata_db::{ApiTokenId, UserId, tokens, users};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{PageQuery, created, ok};
use crate::App;
use crate::auth::Caller;
use crate::body::{IssuedTokenView, PageView, TokenView, UserView};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(get_user))
        .routes(routes!(list_tokens, issue_token))
        .routes(routes!(revoke_token))
}

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    display_name: String,
}

/// Sign-up: anyone may create a user; its first token comes from `tracker-service
/// issue-token` (an operator) or, with JWTs, from the identity provider whose `sub` is the id.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserBody,
    responses((status = CREATED, body = UserView), (status = CONFLICT, description = "The email is taken")))]
async fn create_user(
    State(app): State<App>,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<Response, ApiError> {
    let mut conn = app.acquire().await?;
    let new = users::NewUser { email: &body.email, display_name: &body.display_name };
    Ok(created(UserView::from(users::create(&mut conn, &new).await?)))
}

/// A user, to themselves only.
#[utoipa::path(get, path = "/users/{user}", tag = "users", security(("bearer" = [])),
    params(("user" = uuid::Uuid, Path, description = "The user's id")),
    responses((status = OK, body = UserView)))]
async fn get_user(
    State(app): State<App>,
    Caller(caller): Caller,
    PathParams(user): PathParams<UserId>,
) -> Result<Response, ApiError> {
    if user != caller {
        return Err(strata_db::Error::NotFound { entity: "user" }.into());
    }
    let mut conn = app.acquire().await?;
    Ok(ok(UserView::from(users::get(&mut conn, user).await?)))
}

/// A new API token for the caller.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    /// What to call it (`"laptop"`, `"ci"`).
    name: String,
    /// Days until it expires, 1 to 3650; `auth.token_lifetime` when absent.
    expires_in_days: Option<u16>,
}

/// Issues an API token for the caller; the whole token is in the answer, this once.
#[utoipa::path(post, path = "/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = NewTokenBody, responses((status = CREATED, body = IssuedTokenView)))]
async fn issue_token(
    State(app): State<App>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<Response, ApiError> {
    let lifetime = match body.expires_in_days {
        Some(days @ 1..=3650) => time::Duration::days(i64::from(days)),
        Some(_) => return Err(ApiError::Unprocessable("expires_in_days is 1 to 3650".into())),
        None => time::Duration::try_from(app.token_lifetime).unwrap_or(time::Duration::DAY),
    };
    let new = tokens::NewApiToken {
        user: caller,
        name: &body.name,
        expires_at: OffsetDateTime::now_utc() + lifetime,
    };
    let mut conn = app.acquire().await?;
    Ok(created(IssuedTokenView::from(tokens::issue(&mut conn, &new).await?)))
}

/// The caller's API tokens, oldest first, without their secrets.
#[utoipa::path(get, path = "/tokens", tag = "tokens", security(("bearer" = [])),
    params(PageQuery), responses((status = OK, body = PageView<TokenView>)))]
async fn list_tokens(
    State(app): State<App>,
    Caller(caller): Caller,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let after = query.after.map(ApiTokenId::from_uuid);
    let mut conn = app.acquire().await?;
    let page = tokens::list(&mut conn, caller, PageRequest { after, limit: query.limit() }).await?;
    Ok(ok(PageView::<TokenView>::of(page)))
}

/// Revokes one of the caller's API tokens, for good.
#[utoipa::path(delete, path = "/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = uuid::Uuid, Path, description = "The token's id")),
    responses((status = OK, body = TokenView)))]
async fn revoke_token(
    State(app): State<App>,
    Caller(caller): Caller,
    PathParams(id): PathParams<ApiTokenId>,
) -> Result<Response, ApiError> {
    let mut conn = app.acquire().await?;
    let token = tokens::revoke(&mut conn, caller, id).await?;
    Ok((StatusCode::OK, axum::Json(TokenView::from(token))).into_response())
}
