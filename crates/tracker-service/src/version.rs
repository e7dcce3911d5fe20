//! Optimistic concurrency over HTTP: a task's `version` is its ETag (`"7"`), and a change
//! sends it back in `If-Match`. A stale one is answered 412 by the data layer's
//! [`strata_db::Error::Stale`]; a missing one 428.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};

use crate::problem::ApiError;

/// The version named by `If-Match`.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub i32);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::IF_MATCH).ok_or(ApiError::PreconditionRequired)?;
        let text = value.to_str().unwrap_or_default().trim();
        let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        tag.parse().map(Self).map_err(|_| {
            ApiError::BadRequest(format!(
                "If-Match {text:?} is not a version (an ETag such as \"3\")"
            ))
        })
    }
}

/// The ETag of a version.
pub fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}
