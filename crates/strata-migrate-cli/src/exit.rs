//! The exit codes of the `strata-migrate` command, documented in its `--help` and `docs/migrations.md`,
//! and [`code`], the one place that maps a library error to one.

use strata_migrate::MigrateError;

/// Success.
pub const OK: u8 = 0;
/// A migration failed, the recorded history does not match the files, or the output could not
/// be written.
pub const MIGRATION: u8 = 1;
/// Bad command-line usage (clap's own code), or a request that does not fit the migrations
/// ([`MigrateError::Invalid`]).
pub const USAGE: u8 = 2;
/// The configuration is invalid, the database could not be reached, or the connection was
/// lost during a migration (running the command again goes on from there).
pub const CONNECT: u8 = 3;
/// The migration lock was not obtained within `migrations.lock_wait`.
pub const LOCK: u8 = 4;
/// `check` found something it was told to fail on.
pub const CHECK: u8 = 5;

/// The exit code the command line ends with for `error`.
pub fn code(error: &MigrateError) -> u8 {
    match error {
        MigrateError::Config(_)
        | MigrateError::Connect { .. }
        | MigrateError::ConnectionLost { .. }
        | MigrateError::ReadOnly { .. }
        | MigrateError::NeedsSession => CONNECT,
        MigrateError::LockTimeout { .. } => LOCK,
        MigrateError::Invalid { .. }
        | MigrateError::MaintenanceDatabase { .. }
        | MigrateError::NotDevelopment { .. } => USAGE,
        _ => MIGRATION,
    }
}
