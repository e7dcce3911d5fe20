//! `tracker-service`: serves the work tracker's API, or issues the first API token.
//!
//! - `tracker-service` (or `serve`): loads strata-config, applies the migrations, builds the
//!   pool and serves on `http.listen` until Ctrl-C or SIGTERM, then drains the requests in
//!   flight and closes the pool.
//! - `tracker-service issue-token --user ID`: issues an API token for a user and prints it
//!   on standard output, alone (the way to the first token; later ones come from
//!   `POST /tokens`).
//! - `tracker-service openapi`: prints the OpenAPI contract.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The work tracker's HTTP API, the reference service of strata.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the migrations and serve the API on http.listen (the default).
    Serve,
    /// Issue an API token for a user and print it, alone, on standard output.
    IssueToken {
        /// The user's id.
        #[arg(long)]
        user: uuid::Uuid,
        /// What the user knows it by.
        #[arg(long, default_value = "issued by an operator")]
        name: String,
        /// How long it lasts (`30d`, `12h`); auth.token_lifetime when absent.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// Print the OpenAPI contract (JSON).
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::IssueToken { user, name, expires_in } => {
            issue_token(user, &name, expires_in).await
        }
        Command::Openapi => {
            println!("{}", tracker_service::App::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let config = strata_config::Config::load()?;
    strata_config::init_tracing(&config.log)?;
    let app = tracker_service::App::start(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.http.listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving");
    tracker_service::serve(listener, app, tracker_service::shutdown_signal()).await?;
    Ok(())
}

async fn issue_token(
    user: uuid::Uuid,
    name: &str,
    expires_in: Option<std::time::Duration>,
) -> Result<(), Box<dyn std::error::Error>> {
    use secrecy::ExposeSecret as _;
    let config = strata_config::Config::load()?;
    let lifetime = time::Duration::try_from(expires_in.unwrap_or(config.auth.token_lifetime))?;
    let pool = strata_db::Pool::from_config(&config.database)?;
    let mut conn = pool.acquire().await?;
    let new = strata_db::tokens::NewApiToken {
        user: strata_db::UserId::from_uuid(user),
        name,
        expires_at: time::OffsetDateTime::now_utc() + lifetime,
    };
    let issued = strata_db::tokens::issue(&mut conn, &new).await?;
    eprintln!(
        "issued token {} for user {user}, expiring {}",
        issued.token.id, issued.token.expires_at
    );
    println!("{}", issued.secret.expose_secret());
    Ok(())
}
