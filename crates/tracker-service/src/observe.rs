//! The request log: one event per request through tracing, with its request id (the client's
//! `X-Request-Id`, else a new one, echoed in the response), the organization, the status and
//! the latency. Subscribers are the binary's business.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header that carries the request id.
const REQUEST_ID: &str = "x-request-id";

/// Logs the request once it is answered.
pub(crate) async fn log(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let path = request.uri().path();
    let organization = path
        .strip_prefix("/organizations/")
        .and_then(|rest| rest.split('/').next())
        .filter(|org| org.parse::<uuid::Uuid>().is_ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        method = %request.method(),
        path = %path,
        organization.id = %organization,
    );
    let start = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = start.elapsed().as_secs_f64() * 1000.0,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
