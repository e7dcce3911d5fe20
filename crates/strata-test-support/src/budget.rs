//! Wall-clock budgets: how long a recovery, a failover or a refused connection may take.
//!
//! A loaded machine can miss a budget without any bug, so `just test` checks behaviour and
//! writes a missed budget to `target/tmp/budgets.txt` (which it shows at its end), and
//! `just soak` (which sets `STRATA_SOAK_FACTOR`) fails on it.

use std::fmt::Display;
use std::io::Write as _;

/// Whether this run fails on a missed budget: under `just soak`, not in `just test`.
pub fn checked() -> bool {
    std::env::var_os("STRATA_SOAK_FACTOR").is_some()
}

/// A budget: `within` says whether it was met, `what` the figure against the budget.
///
/// Under `just soak` a missed budget fails the test; otherwise it is appended to
/// `target/tmp/budgets.txt`, which `just test` prints at its end, and the test goes on.
///
/// # Panics
///
/// When the budget is missed and budgets are [`checked`].
#[track_caller]
pub fn within(within: bool, what: impl Display) {
    if within {
        return;
    }
    let at = std::panic::Location::caller();
    if checked() {
        panic!("over budget at {at}: {what}");
    }
    let dir = crate::location::target_dir().join("tmp");
    let noted = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(dir.join("budgets.txt"))?;
        writeln!(file, "over budget at {at}: {what}")
    });
    if let Err(error) = noted {
        println!("over budget at {at}: {what} (not noted in target/tmp/budgets.txt: {error})");
    }
}
