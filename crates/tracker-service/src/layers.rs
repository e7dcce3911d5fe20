//! What the ecosystem's layers leave to the service: their refusals as problems, a limit on
//! the headers' size answered as a problem, and the request log's level by status class.
//! Everything else (request ids, tracing, timeout, body limit, CORS, compression) is
//! tower-http's, assembled in [`crate::App::router`].

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::Span;

use crate::problem::{PROBLEM_JSON, Problem};

/// The most header bytes (names and values) a request may carry.
///
/// hyper answers 431 itself, with an empty body, only past its read buffer (about 400 KB) or
/// 100 headers, and axum does not expose those settings: this limit answers first, as a
/// problem.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most headers a request may carry (hyper's own limit is 100).
pub(crate) const MAX_HEADERS: usize = 64;

/// Refuses a request whose headers are too large: 431, as a problem.
pub(crate) async fn limit_headers(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return Problem::of_status(status).into_response_with(status);
    }
    next.run(request).await
}

/// Makes every refusal a problem: an answer of 400 or more that is not one already (tower-http's
/// timeout and body limit, a CORS refusal) gets a problem body of its status.
pub(crate) async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if status.as_u16() < 400 || is_problem {
        return response;
    }
    // The layer's own headers (CORS, the request id) stay; the body becomes the problem.
    let (mut parts, _) = response.into_parts();
    let body = Problem::of_status(status).into_response_with(status).into_body();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, body)
}

/// The span of a request: its id (the client's `X-Request-Id` or a new one), method, route
/// pattern and organization.
#[derive(Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let id = request
            .headers()
            .get(crate::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or("unmatched", axum::extract::MatchedPath::as_str);
        tracing::info_span!(
            "request",
            request.id = %id,
            method = %request.method(),
            route = %route,
        )
    }
}

/// The answer's log line: INFO for 1xx-4xx (a client's refusal is no fault of the service's),
/// ERROR for 5xx.
#[derive(Clone, Copy)]
pub(crate) struct LogByClass;

impl<B> OnResponse<B> for LogByClass {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::error!(status, latency_ms, "answered");
        } else {
            tracing::info!(status, latency_ms, "answered");
        }
    }
}
