//! tracker-service: the work tracker's HTTP API, and the reference for a service on strata.
//! It uses strata's public API only: strata-config for settings, `strata_migrate::run` at
//! start-up, `strata_db::Pool` for connections and `strata_db::TenantTx` for every tenant
//! request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = strata_config::Config::load()?;
//! let app = tracker_service::App::start(&config).await?; // migrations, then the pool
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tracker_service::serve(listener, app, tracker_service::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! The caller is the `X-User-Id` header ([`caller`]): where a real authentication layer plugs
//! in. Errors are `application/problem+json` ([`problem`]). `/healthz` answers while the
//! process runs, `/readyz` while the pool reaches the database.

pub mod caller;
mod observe;
pub mod problem;
mod routes;
pub mod version;

use std::future::Future;

use axum::Router;
use strata_config::Config;
use strata_db::Pool;

/// What every request needs: the pool. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pool: Pool,
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
}

impl App {
    /// Applies the pending migrations (on a session of their own, under the runner's lock,
    /// so that replicas of the service starting together apply them once), then builds the
    /// pool.
    ///
    /// # Errors
    ///
    /// [`StartError`] when either fails.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let report = strata_migrate::run(config, &strata_migrate::MIGRATOR).await?;
        tracing::info!(applied = report.applied.len(), "migrations applied");
        Ok(Self::with_pool(Pool::from_config(&config.database)?))
    }

    /// The service on a pool built elsewhere (tests, a service that migrates separately).
    pub fn with_pool(pool: Pool) -> Self {
        Self { pool }
    }

    /// The pool, for metrics or work outside requests.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Every route, with the request log.
    pub fn router(&self) -> Router {
        routes::routes().layer(axum::middleware::from_fn(observe::log)).with_state(self.clone())
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
