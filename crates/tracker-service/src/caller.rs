//! Who is calling. This service trusts an `X-User-Id` header holding a user's id: that is the
//! place where a real authentication layer plugs in (a middleware that checks a session or a
//! token and sets the header, or an extractor that replaces this one). Everything after it
//! goes through [`strata_db::TenantTx::begin`], which checks that the caller is a member of the
//! organization before any tenant data is read.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use strata_db::UserId;

use crate::problem::ApiError;

/// The header that names the caller.
pub const USER_HEADER: &str = "x-user-id";

/// The calling user, from [`USER_HEADER`].
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(USER_HEADER)
            .ok_or(ApiError::Unauthenticated("the X-User-Id header names the caller"))?;
        let id = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<uuid::Uuid>().ok())
            .ok_or(ApiError::Unauthenticated("X-User-Id is not a user id"))?;
        Ok(Self(UserId::from_uuid(id)))
    }
}
