//! strata-migrate: a PostgreSQL migration runner on sqlx's migration format and tracking
//! table (`_sqlx_migrations`), so databases stay readable by sqlx-cli, with the safety a
//! runner needs under live traffic: a polled advisory lock shared with sqlx's `Migrator`, a
//! dedicated session, `lock_timeout` per migration with retries, no-transaction files run
//! statement by statement with resumable progress, and refusal of a changed or missing history.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_migrate::MigrateError> {
//! let config = strata_config::Config::load()?;
//! let report = strata_migrate::run(&config, &strata_migrate::MIGRATOR).await?;
//! println!("{} migration(s) applied", report.applied.len());
//! # Ok(()) }
//! ```

mod admin;
mod apply;
mod check;
mod checksum;
pub mod cli;
mod cli_output;
mod directive;
mod down;
mod dryrun;
mod error;
mod events;
mod history;
pub mod lexer;
mod lock;
pub mod new;
mod notx;
mod plan;
mod session;
pub mod source;
mod sqlstate;
mod status;
mod up;

pub use admin::{BaselineReport, RepairAction, RepairReport};
pub use check::{CheckReport, Finding, Found, check};
pub use down::{DownOptions, DownReport, Reverted};
pub use error::{MigrateError, exit};
pub use lock::sqlx_lock_key;
pub use plan::DownTarget;
pub use session::{APPLICATION_NAME, Session};
pub use status::{MigrationStatus, State, status};
pub use up::{AppliedNow, LOCK_RETRIES, RETRY_BASE, Settings, UpOptions, UpReport, run};

pub(crate) use session::{hex, millis};

/// The project's migrations (`migrations/` at the workspace root), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
