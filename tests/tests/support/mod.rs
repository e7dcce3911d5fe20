//! The runner's binary for these tests, on top of the shared helpers of strata-test-support.

use std::process::Output;

pub use strata_test_support::runner::{text, url_of};

/// Runs `strata-migrate` with `args` and extra environment, in an empty working directory
/// and with no inherited configuration.
pub fn migrate(args: &[&str], env: &[(&str, &str)]) -> Output {
    strata_test_support::runner::command(env!("CARGO_BIN_EXE_strata-migrate-e2e"), args, env)
        .output()
        .expect("run strata-migrate")
}
