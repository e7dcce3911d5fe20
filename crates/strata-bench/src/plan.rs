//! How long and how often the bench measures, and which workloads it runs.

use std::time::Duration;

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `--quick`: under a minute.
    pub quick: bool,
    /// Alternating rounds per workload.
    pub rounds: usize,
    /// Length of one timed round.
    pub round: Duration,
    /// Workloads to run (1–7, 12, 13); all when empty.
    pub only: &'static [u8],
}

impl Plan {
    /// Whether workload `n` runs.
    pub fn runs(&self, n: u8) -> bool {
        self.only.is_empty() || self.only.contains(&n)
    }
}
