//! Test harness for tests that must restart, stop or cut a PostgreSQL server.
//!
//! Such tests never touch the shared server at 127.0.0.1:5432: each starts a
//! [`PrivateCluster`] of its own from the installed PostgreSQL binaries (found on PATH, else in
//! the newest `/usr/lib/postgresql/*/bin`), with its own directory under
//! `target/test-clusters` (or `/var/tmp/strata-test-clusters` when the `postgres` user cannot
//! reach the workspace) and its own port. As root, the server runs as the `postgres` user.
//! Dropping the cluster stops it and deletes its directory, also when the test panics.
//! Add it with `strata-test-support.workspace = true` under `[dev-dependencies]`.
//!
//! It also makes the least-privilege login roles that tests read and write tenant data as
//! ([`login_role_options`]): the superuser is for setup only.
//!
//! ```no_run
//! # fn demo() -> Result<(), strata_test_support::HarnessError> {
//! let cluster = strata_test_support::PrivateCluster::start()?; // own directory, own port
//! cluster.psql("postgres", "create database app")?; // setup, as the superuser
//! let url = cluster.url("app"); // hand this to the code under test
//! cluster.restart()?; // every connection is cut; returns once it accepts connections again
//! # Ok(()) }
//! ```

pub mod budget;
pub mod citus;
mod cluster;
mod error;
pub mod fixture;
mod location;
mod pgbouncer;
mod proxy;
mod roles;
pub mod runner;
mod toolchain;

#[cfg(test)]
mod tests;

pub use citus::CitusCluster;
pub use cluster::PrivateCluster;
pub use error::HarnessError;
pub use pgbouncer::{PgBouncer, PgBouncerBuilder, PoolMode, find_modern};
pub use proxy::FaultProxy;
pub use roles::{APP_ROLE, RELAY_ROLE, login_role_options, login_role_url};
pub use toolchain::client_program;

/// Any error, sendable between threads: what test helpers return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a test returns: `?` works on any error the crates under test return.
pub type TestResult = Result<(), BoxError>;
