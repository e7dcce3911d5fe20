//! The service's own description: `/metrics` and `/openapi.json`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(metrics)).routes(routes!(openapi))
}

/// The service's metrics, in the OpenMetrics text format (what Prometheus scrapes).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = OK, description = "The metrics", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(app): State<App>) -> Response {
    let content_type =
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], app.metrics.render()).into_response()
}

/// This contract.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = OK, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi() -> Response {
    static CONTRACT: OnceLock<String> = OnceLock::new();
    let contract = CONTRACT.get_or_init(|| App::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], contract.as_str()).into_response()
}
