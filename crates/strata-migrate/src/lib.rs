//! strata-migrate: a PostgreSQL migration runner on sqlx's migration format and tracking
//! table (`_sqlx_migrations`), so databases stay readable by sqlx-cli, with the safety a
//! runner needs under live traffic: a polled advisory lock shared with sqlx's `Migrator`, a
//! dedicated session, `lock_timeout` per migration with retries, no-transaction files run
//! statement by statement with resumable progress, and refusal of a changed or missing history.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_migrate::MigrateError> {
//! // A service's migrations, embedded at build time (`sqlx::migrate!()` of its `migrations/`);
//! // this project's own are `strata_db::MIGRATOR`, beside the statements written for them.
//! let migrator = &strata_db::MIGRATOR;
//! let config = strata_config::Config::load()?;
//! let report = strata_migrate::run(&config, migrator).await?;
//! println!("{} migration(s) applied", report.applied.len());
//! # Ok(()) }
//! ```
//!
//! The library is what a service or another tool calls; the schema tools (catalog snapshots,
//! `diff`, `verify`, `lint`, `generate`) are the crate strata-schema, and the `strata-migrate`
//! binary (its flags, output, exit codes and signals) is strata-migrate-cli: a service that
//! imports this crate builds neither clap nor squawk.
//!
//! # One shape
//!
//! - [`run`] at start-up: connect, apply what is pending, close.
//! - Everything else is a method on a [`Session`] (one dedicated connection): the commands
//!   take the migrations and their options struct, `session.up(&MIGRATOR, &UpOptions)`,
//!   likewise [`DownOptions`], [`RedoOptions`], [`BaselineOptions`], [`RepairOptions`], each
//!   with the [`Settings`] of `[migrations]`; the reads take the migrations,
//!   `session.status(&MIGRATOR)`, and [`check::check`] judges what `status` returned.
//! - What opens sessions of its own takes the [`strata_config::Config`]:
//!   [`targets::on_targets`] (one command on many databases, [`targets::TargetOptions`]),
//!   [`targets::query_targets`] and [`scratch::with_scratch`].
//! - The file tools take a directory or a [`sqlx::migrate::Migrator`] ([`files`]).
//!
//! The root exports what a caller names every day; the rest is in the modules named for it:
//! [`report`], [`status`], [`check`], [`targets`], [`cancel`], [`observe`], [`files`],
//! [`checkpoint`], [`lexer`] and [`scratch`].
//!
//! # Layout
//!
//! `src/runner/` is the runner: the session and its lock, the history, the plan, the
//! executor and the `--dry-run` renderer, retries, events and progress, and the reports.
//! `src/tools/` holds the tools on migration files and scratch databases that the runner and
//! strata-schema share: reading a directory, checksums, directives, the statement splitter,
//! checkpoints' headers, scratch databases. `error.rs` is the one error type of both.

mod error;
mod runner;
mod tools;

pub use error::MigrateError;
pub use runner::options::{
    BaselineOptions, DownOptions, DownTarget, RedoOptions, RepairOptions, Settings, UpOptions,
};
pub use runner::session::{Session, run};
pub use runner::{cancel, check, observe, report, status, targets};
pub use tools::{checkpoint, files, lexer, scratch};
