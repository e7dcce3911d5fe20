//! tracker-service: the work tracker's HTTP API, and the reference for a service on strata.
//! It uses strata's public API only: strata-config for settings, `strata_migrate::run` at
//! start-up, `strata_db::Pool` for connections and `strata_db::TenantTx` for every tenant
//! request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = strata_config::Config::load()?;
//! let app = tracker_service::App::start(&config).await?; // migrations, then the pool
//! let listener = tokio::net::TcpListener::bind(config.http.listen).await?;
//! tracker_service::serve(listener, app, tracker_service::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Callers authenticate with `Authorization: Bearer` ([`auth`]). Errors are
//! `application/problem+json` ([`problem`]). `/healthz` answers while the process runs,
//! `/readyz` while the pool reaches the database, `/metrics` in Prometheus' format
//! ([`metrics`]) and `/openapi.json` with the contract, generated from the handlers.

pub mod auth;
mod body;
mod extract;
mod layers;
pub mod metrics;
mod openapi;
pub mod problem;
mod routes;
pub mod version;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use strata_config::Config;
use strata_db::{Pool, PooledConnection};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::metrics::Metrics;

/// The header that carries the request id, in and out.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// What every request needs: the pool, the authenticator, the metrics and the HTTP settings.
/// Cheap to clone.
#[derive(Clone)]
pub struct App {
    pool: Pool,
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
    http: Arc<strata_config::HttpConfig>,
    token_lifetime: Duration,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The migrations could not be applied.
    #[error("applying the migrations: {0}")]
    Migrate(#[from] strata_migrate::MigrateError),
    /// The pool could not be built.
    #[error("building the pool: {0}")]
    Pool(#[from] strata_db::Error),
    /// `[auth]` could not be used.
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
}

impl App {
    /// Applies the pending migrations (on a session of their own, under the runner's lock,
    /// so that replicas of the service starting together apply them once), then builds the
    /// pool and the service.
    ///
    /// # Errors
    ///
    /// [`StartError`] when either fails.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let report = strata_migrate::run(config, &strata_db::MIGRATOR).await?;
        tracing::info!(applied = report.applied.len(), "migrations applied");
        Self::new(Pool::from_config(&config.database)?, config)
    }

    /// The service on a pool built elsewhere (tests, a service that migrates separately),
    /// with `[http]` and `[auth]` of `config`. Says loudly when `auth.trust_user_header` is
    /// on.
    ///
    /// # Errors
    ///
    /// [`StartError::Auth`] when the JWT key cannot be read.
    pub fn new(pool: Pool, config: &Config) -> Result<Self, StartError> {
        let auth = Authenticator::from_config(&config.auth)?;
        if auth.trusts_user_header() {
            tracing::warn!(
                "auth.trust_user_header is on: any client can act as any user by sending \
                 X-User-Id. This is a development setting; never use it in production"
            );
        }
        Ok(Self {
            metrics: Arc::new(Metrics::new(pool.clone())),
            pool,
            auth: Arc::new(auth),
            http: Arc::new(config.http.clone()),
            token_lifetime: config.auth.token_lifetime,
        })
    }

    /// The pool, for work outside requests.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A connection, its wait recorded in the metrics.
    pub(crate) async fn acquire(&self) -> Result<PooledConnection, strata_db::Error> {
        let start = Instant::now();
        let conn = self.pool.acquire().await;
        self.metrics.acquired(start.elapsed());
        conn
    }

    /// The API's OpenAPI contract (what `/openapi.json` serves).
    pub fn openapi() -> utoipa::openapi::OpenApi {
        let (_, paths) = routes::api().split_for_parts();
        openapi::document(paths)
    }

    /// Every route, with the layers: request id, tracing, metrics, header and body limits,
    /// timeout, CORS, compression, and problems for every refusal.
    pub fn router(&self) -> Router {
        let (api, _) = routes::api().split_for_parts();
        let http = &self.http;
        let cors = (!http.cors_allowed_origins.is_empty()).then(|| {
            let origins = http
                .cors_allowed_origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok());
            let request_id = HeaderName::from_static(REQUEST_ID);
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_MATCH,
                    request_id.clone(),
                ])
                .expose_headers([header::ETAG, request_id])
                .max_age(Duration::from_secs(600))
        });
        // `layer` wraps each route, so the route's pattern (MatchedPath) is known to the
        // span and the metrics; the first layer listed is the outermost.
        let layers = tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(HeaderName::from_static(REQUEST_ID), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(layers::RequestSpan)
                    .on_request(())
                    .on_response(layers::LogByClass)
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(HeaderName::from_static(REQUEST_ID)))
            .layer(axum::middleware::from_fn_with_state(self.metrics.clone(), metrics::record))
            .layer(axum::middleware::from_fn(layers::limit_headers))
            .layer(CompressionLayer::new())
            .layer(axum::middleware::from_fn(layers::problems_only))
            .option_layer(cors)
            .option_layer((!http.request_timeout.is_zero()).then(|| {
                TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    http.request_timeout,
                )
            }))
            .layer(RequestBodyLimitLayer::new(http.max_body_bytes));
        api
            // Last: they apply to the routes registered before them.
            .method_not_allowed_fallback(routes::method_not_allowed)
            .fallback(routes::no_route)
            .layer(layers)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(self.clone())
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish, and closes the pool.
///
/// # Errors
///
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let served = axum::serve(listener, app.router()).with_graceful_shutdown(shutdown).await;
    app.pool.close().await;
    tracing::info!("stopped; the pool is closed");
    served
}

/// Completes on Ctrl-C or SIGTERM (what a container runtime sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
}
