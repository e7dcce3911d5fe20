//! strata-migrate: a PostgreSQL migration runner on sqlx's migration format and tracking
//! table (`_sqlx_migrations`), so databases stay readable by sqlx-cli, with the safety a
//! runner needs under live traffic: a polled advisory lock shared with sqlx's `Migrator`, a
//! dedicated session, `lock_timeout` per migration, and refusal of a changed or missing history.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_migrate::MigrateError> {
//! let config = strata_config::Config::load()?;
//! let mut session = strata_migrate::Session::from_config(&config).await?;
//! let options = strata_migrate::UpOptions::from_config(&config.migrations);
//! let report = session.up(&strata_migrate::MIGRATOR, &options).await?;
//! session.close().await;
//! # Ok(()) }
//! ```

pub mod cli;
mod error;
mod lock;
pub mod new;
mod runner;
mod status;

pub use error::{MigrateError, exit};
pub use lock::sqlx_lock_key;
pub use runner::{APPLICATION_NAME, AppliedNow, Session, UpOptions, UpReport};
pub use status::{MigrationStatus, State, status};

/// The project's migrations (`migrations/` at the workspace root), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
