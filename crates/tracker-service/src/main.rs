//! `tracker-service`: loads strata-config, applies the migrations, builds the pool and serves
//! the work tracker's API on `TRACKER_LISTEN` (default `127.0.0.1:8080`) until Ctrl-C or
//! SIGTERM, then drains the requests in flight and closes the pool.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = strata_config::Config::load()?;
    strata_config::init_tracing(&config.log)?;
    let app = tracker_service::App::start(&config).await?;
    let address = std::env::var("TRACKER_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    tracker_service::serve(listener, app, tracker_service::shutdown_signal()).await?;
    Ok(())
}
