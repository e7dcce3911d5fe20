//! Wall-clock budgets: how long a recovery, a failover or a refused connection may take.
//!
//! A loaded machine can break a budget without any bug, so `just test` checks behaviour and
//! prints the figure, and `just soak` (which sets `STRATA_SOAK_FACTOR`) fails on it.

use std::fmt::Display;

/// Whether this run fails on a missed budget: under `just soak`, not in `just test`.
pub fn checked() -> bool {
    std::env::var_os("STRATA_SOAK_FACTOR").is_some()
}

/// A budget: `within` says whether it was met, `what` the figure against the budget.
///
/// Under `just soak` a missed budget fails the test; otherwise it is printed (to the test's
/// output, which `just test` keeps in `target/test-output.log`) and the test goes on.
///
/// # Panics
///
/// When the budget is missed and budgets are [`checked`].
#[track_caller]
pub fn within(within: bool, what: impl Display) {
    if within {
        return;
    }
    if checked() {
        panic!("over budget: {what}");
    }
    println!("over budget (failed only under `just soak`): {what}");
}
