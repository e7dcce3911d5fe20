//! `/healthz` (the process runs) and `/readyz` (the pool reaches the database).

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ok;
use crate::App;
use crate::body::Health;
use crate::problem::ApiError;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Whether the process runs.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = OK, body = Health)))]
async fn healthz() -> Response {
    ok(Health::of("ok"))
}

/// Whether the pool can reach the database.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = OK, body = Health)))]
async fn readyz(State(app): State<App>) -> Result<Response, ApiError> {
    app.pool.ping().await?;
    Ok(ok(Health::of("ready")))
}
