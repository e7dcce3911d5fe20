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
//!
//! The library is what a service or another tool calls: [`run`] at start-up, [`Session`]'s
//! commands, [`status`] and [`check`], their options and reports, and [`MigrateError`]. The
//! schema tools (catalog snapshots, `diff`, `verify`, `lint`, `generate`) are the crate
//! strata-schema, and the `strata-migrate` binary is strata-migrate-cli: a service that
//! imports this crate builds neither clap nor squawk.
//!
//! Inside, every writing command goes the same way: [`Session`] takes the lock, the history
//! is read (`history`), a plan is made (`plan`), and the executor runs it (`execute`), or
//! `--dry-run` prints it (`render`). Retries (`retry`), events (`events`) and SQLSTATEs
//! (`sqlstate`) each have one module.

mod admin;
mod check;
mod checkpoint;
mod checksum;
mod directive;
mod error;
mod events;
mod execute;
mod files;
mod history;
pub mod lexer;
#[cfg(test)]
mod lexer_oracle;
mod lock;
mod observe;
mod options;
mod plan;
mod progress;
mod render;
mod report;
mod retry;
mod scratch;
mod session;
mod sqlstate;
mod status;
mod targets;

pub use check::{CheckReport, Finding, Found, check};
pub use checkpoint::{Replaced, header as checkpoint_header, replaced_by};
pub use error::MigrateError;
pub use files::{check_migration_name, file_name, next_version, read_migrations, sum_file};
pub use lexer::LexError;
pub use observe::{Observer, Progress};
pub use options::{APPLICATION_NAME, DownOptions, DownTarget, Settings, UpOptions};
pub use report::{
    AppliedNow, BaselineReport, DownReport, RedoReport, RepairAction, RepairReport, Reverted,
    UpReport,
};
pub use scratch::with_scratch;
pub use session::{Canceller, Session, Settled, run};
pub use status::{MigrationStatus, State, status};
pub use targets::{Outcome, TargetReport, on_targets, parse_targets, query_targets};

/// The project's migrations (`migrations/` at the workspace root), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
