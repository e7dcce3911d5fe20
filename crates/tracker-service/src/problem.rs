//! Errors as HTTP responses, in one place: every handler returns [`ApiError`], and this module
//! alone decides the status and the `application/problem+json` body (RFC 9457). A body says
//! what is wrong in words the data layer chose for people; it never carries SQL, a driver
//! message or a secret (a database failure is logged with its source and answered in general
//! terms).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A data-layer error; [`ApiError::status`] maps each kind.
    #[error(transparent)]
    Data(#[from] strata_db::Error),
    /// No caller: no credentials, or credentials that were refused. The reason is logged and
    /// counted, never told to the caller: every refusal answers the same.
    #[error("the request needs valid credentials: Authorization: Bearer <token>")]
    Unauthenticated(&'static str),
    /// The request is malformed (a header, a path or query parameter, a JSON body).
    #[error("{0}")]
    BadRequest(String),
    /// The request's JSON has the wrong shape (a missing field, a value of the wrong type).
    #[error("{0}")]
    Unprocessable(String),
    /// A write that needs `If-Match: "<version>"` came without it.
    #[error("this change needs the task's version in If-Match (its ETag)")]
    PreconditionRequired,
    /// No route has this path.
    #[error("no such resource: {0}")]
    NoRoute(String),
    /// The route has no such method.
    #[error("{0} is not allowed on this resource")]
    MethodNotAllowed(String),
    /// The body is larger than the service takes.
    #[error("the request body is too large")]
    TooLarge,
}

/// The class of a data-layer error a response answered, for the error metrics: set as a
/// response extension by [`ApiError`]'s response.
#[derive(Debug, Clone, Copy)]
pub struct ErrorClass(pub &'static str);

/// The class of a data-layer error, or `None` for the service's own refusals.
fn error_class(error: &ApiError) -> Option<&'static str> {
    use strata_db::Error as E;
    let ApiError::Data(e) = error else { return None };
    Some(match e {
        E::NotFound { .. } => "not_found",
        E::Forbidden { .. } => "forbidden",
        E::Conflict { .. } => "conflict",
        E::Stale { .. } => "stale",
        E::Invalid { .. }
        | E::BadInput { .. }
        | E::InvalidValue { .. }
        | E::InvalidTransition { .. } => "invalid",
        E::Unauthenticated(_) => "unauthenticated",
        E::InDoubt(_) => "in_doubt",
        e if e.is_unavailable() || matches!(e, E::ReadOnly) => "unavailable",
        e if e.is_transaction_conflict() => "serialization",
        _ => "internal",
    })
}

/// The body of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    kind: String,
    /// The kind, for people.
    title: &'static str,
    /// The status again, as the RFC asks.
    status: u16,
    /// This occurrence, for people.
    detail: String,
}

impl Problem {
    /// The problem of a status the service answers without an [`ApiError`] (a layer's
    /// refusal: a timeout, a body over the limit, a CORS preflight refused).
    pub(crate) fn of_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let kind = title.to_lowercase().replace(' ', "-");
        Self {
            kind: format!("urn:strata:problem:{kind}"),
            title,
            status: status.as_u16(),
            detail: match status {
                StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
                    "the request took longer than the service allows".to_owned()
                }
                StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                    "the request's headers are too large".to_owned()
                }
                _ => title.to_owned(),
            },
        }
    }

    /// As a response: `application/problem+json`.
    pub(crate) fn into_response_with(self, status: StatusCode) -> Response {
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// The media type of a problem (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

impl ApiError {
    /// The status, the problem's short name and its title.
    fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        use strata_db::Error as E;
        match self {
            Self::Data(E::NotFound { .. }) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::Data(E::Forbidden { .. }) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::Data(E::Conflict { .. }) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Data(E::Stale { .. }) => {
                (StatusCode::PRECONDITION_FAILED, "stale-version", "The version is stale")
            }
            Self::Data(E::Unauthenticated(_)) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated")
            }
            Self::Data(E::Invalid { .. } | E::BadInput { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid input")
            }
            Self::Data(E::InvalidValue { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-value", "Invalid value")
            }
            Self::Data(E::InvalidTransition { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-transition", "Invalid transition")
            }
            // Also a write that reached a read-only server: a failover under way.
            Self::Data(e) if e.is_unavailable() || matches!(e, E::ReadOnly) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The database is unavailable")
            }
            // Not 503: that would tell the client nothing happened. A task created with a
            // client-chosen `id` can be sent again safely (409 if it landed).
            Self::Data(E::InDoubt(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "outcome-unknown",
                "The change may or may not have been saved",
            ),
            Self::Data(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
            Self::Unauthenticated(_) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated")
            }
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Unprocessable(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid input")
            }
            Self::PreconditionRequired => {
                (StatusCode::PRECONDITION_REQUIRED, "version-required", "The version is required")
            }
            Self::NoRoute(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
            }
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Request too large"),
        }
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.classify().0
    }
}

/// How long a client should wait before retrying a 503, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.classify();
        let detail = match &self {
            // The driver's words may name tables, SQL or hosts: they go to the log only.
            Self::Data(strata_db::Error::Database(source)) => {
                if status.is_server_error() {
                    tracing::error!(error = %source, status = status.as_u16(), "database error");
                } else {
                    tracing::info!(error = %source, status = status.as_u16(), "database error");
                }
                title.to_owned()
            }
            // One answer for every refusal; which one it was is the log's and the metrics'.
            Self::Data(strata_db::Error::Unauthenticated(_)) | Self::Unauthenticated(_) => {
                ApiError::Unauthenticated("").to_string()
            }
            Self::Data(strata_db::Error::InDoubt(source)) => {
                tracing::error!(error = %source, "connection lost before a commit was confirmed");
                "the connection to the database was lost before it confirmed the change: read \
                 it back before retrying"
                    .to_owned()
            }
            Self::Data(strata_db::Error::Config(source)) => {
                tracing::error!(error = %source, "configuration error");
                title.to_owned()
            }
            // The data layer's words for people; not its constraint names.
            Self::Data(strata_db::Error::Conflict { message, .. })
            | Self::Data(strata_db::Error::Invalid { message, .. })
            | Self::Data(strata_db::Error::BadInput { message }) => (*message).to_owned(),
            other => {
                if status.is_server_error() {
                    tracing::error!(error = %other, status = status.as_u16(), "request failed");
                }
                other.to_string()
            }
        };
        let class = error_class(&self);
        let problem = Problem {
            kind: format!("urn:strata:problem:{kind}"),
            title,
            status: status.as_u16(),
            detail,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"strata\""),
            );
        }
        if let Some(class) = class {
            response.extensions_mut().insert(ErrorClass(class));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: strata_db::Error) -> StatusCode {
        ApiError::from(error).status()
    }

    #[test]
    fn every_data_error_has_its_status() {
        use strata_db::Error as E;
        assert_eq!(status_of(E::NotFound { entity: "task" }), StatusCode::NOT_FOUND);
        assert_eq!(status_of(E::Forbidden { reason: "no" }), StatusCode::FORBIDDEN);
        let conflict = E::Conflict { constraint: "k", message: "taken" };
        assert_eq!(status_of(conflict), StatusCode::CONFLICT);
        assert_eq!(status_of(E::Stale { expected: 1, actual: 2 }), StatusCode::PRECONDITION_FAILED);
        let invalid = E::Invalid { constraint: "c", message: "bad" };
        assert_eq!(status_of(invalid), StatusCode::UNPROCESSABLE_ENTITY);
        let bad_input = E::BadInput { message: "the page cursor is malformed" };
        assert_eq!(status_of(bad_input), StatusCode::UNPROCESSABLE_ENTITY);
        let value = E::InvalidValue { field: "title", problem: strata_db::ValueProblem::Nul };
        assert_eq!(status_of(value), StatusCode::UNPROCESSABLE_ENTITY);
        let transition = E::InvalidTransition { message: "done to todo".to_owned() };
        assert_eq!(status_of(transition), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status_of(E::Database(sqlx::Error::PoolTimedOut)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(status_of(E::Database(io)), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(E::ReadOnly), StatusCode::SERVICE_UNAVAILABLE);
        let other = E::Database(sqlx::Error::RowNotFound);
        assert_eq!(status_of(other), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_database_error_body_says_nothing_of_the_driver() {
        let secret = "select * from secret_table where password = 'hunter2'";
        let error =
            ApiError::from(strata_db::Error::Database(sqlx::Error::Protocol(secret.to_owned())));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("The database is unavailable"), "{body}");
        assert!(!body.contains("hunter2") && !body.contains("secret_table"), "{body}");
    }
}
