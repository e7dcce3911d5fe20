//! The `strata-migrate` command's contract with the scripts that run it: its exit codes
//! ([`exit`]), and the one mapping from the library's errors to them. The command itself is
//! `src/main.rs`; the library strata-migrate knows nothing of exit codes.
//!
//! ```
//! use strata_migrate_cli::exit;
//! let error = strata_migrate::MigrateError::NeedsSession;
//! assert_eq!(exit::code(&error), exit::CONNECT);
//! ```

pub mod exit;
