//! `--scale`: how the cost grows with the data and with the callers, one module a curve (its
//! number in the table in brackets):
//!
//! - (8, `table_size`) get by id and the first page of a list, with 10k, 1M and 5M tasks in
//!   the table (p50, p99), strata against deadpool-postgres running the same statement;
//! - (9, `paging`) the first page and the page at 90% depth of a 1M-task project;
//! - (10, `imports`) importing 1M tasks into an empty table and into the 5M one;
//! - (11, `callers`) callers from 1 to 64 on a pool of 8, strata against deadpool-postgres;
//! - (12, `creates`) creates spread over 1, 8 and 64 projects at 8 callers, against
//!   tokio-postgres running the same transaction.
//!
//! `--quick` uses 10k, 100k and 300k tasks. The data sets are made once, server-side
//! (`INSERT … SELECT generate_series`, in 100k-row batches: no rows cross the socket, about 3×
//! faster than a client `COPY` of the same rows), and reused while their databases hold them.
//!
//! `data_set` makes the data sets; `curves` holds what was measured, `report` turns it into the
//! table's rows and checks the targets, `charts` draws it.

mod callers;
pub(crate) mod charts;
mod creates;
pub(crate) mod curves;
mod data_set;
mod imports;
mod paging;
pub(crate) mod report;
mod table_size;

use std::time::{Duration, Instant};

use crate::plan::Plan;
use callers::sweep;
use creates::creates;
use curves::Scale;
use data_set::{PROJECT_TASKS, data_set};
use imports::{import, import_into_empty};
use paging::paging;
use table_size::size_point;

/// How big the data sets and how long the rounds of a `--scale` run are.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Tasks in each table, smallest first.
    pub tables: &'static [u64],
    /// Tasks per import.
    pub import: u64,
    /// One timed round.
    pub round: Duration,
}

impl Sizes {
    /// The sizes of a full run, or of `--quick`.
    pub fn of(plan: Plan) -> Self {
        if plan.quick {
            Self {
                tables: &[10_000, 100_000, 300_000],
                import: 100_000,
                round: Duration::from_secs(1),
            }
        } else {
            Self {
                tables: &[10_000, 1_000_000, 5_000_000],
                import: 1_000_000,
                round: Duration::from_secs(2),
            }
        }
    }
}

/// Runs every `--scale` workload.
pub async fn run(server: &str, plan: Plan) -> anyhow::Result<Scale> {
    run_with(server, plan, Sizes::of(plan)).await
}

/// Runs every `--scale` workload at `sizes`.
async fn run_with(server: &str, plan: Plan, sizes: Sizes) -> anyhow::Result<Scale> {
    let round = sizes.round;
    let mut points = Vec::new();
    let mut sets = Vec::new();
    for &size in sizes.tables {
        let started = Instant::now();
        let set = data_set(server, size).await?;
        eprintln!("scale: {size} tasks ready in {:.1} s", started.elapsed().as_secs_f64());
        points.push(size_point(&set, plan, round).await?);
        sets.push(set);
    }
    let (small, largest) = (&sets[0], &sets[sets.len() - 1]);
    let paged = sets.iter().find(|s| s.tasks >= PROJECT_TASKS).unwrap_or(largest);
    let paged_project_tasks = paged.tasks.min(PROJECT_TASKS);
    let (first_page, deep_page) = paging(paged, paged_project_tasks, plan, round).await?;
    let import_tasks = sizes.import;
    let import_empty = import_into_empty(server, import_tasks).await?;
    let import_full = import(largest, import_tasks).await?;
    let callers = sweep(small, plan, round).await?;
    let creates = creates(small, plan, round).await?;
    Ok(Scale {
        sizes: points,
        paged_project_tasks,
        first_page,
        deep_page,
        import_tasks,
        import_empty,
        import_full,
        import_full_table: largest.tasks,
        callers,
        creates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CI runs of the sweep: every curve at tiny sizes and short rounds, its targets and
    /// its charts, against the test server (`DATABASE_URL`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_sweep_measures_every_curve_and_draws_it() -> anyhow::Result<()> {
        let server = strata_test_support::runner::server_url();
        let round = Duration::from_millis(100);
        let plan = Plan { quick: true, rounds: 1, round, only: &[] };
        let sizes = Sizes { tables: &[1_000, 3_000], import: 2_000, round };
        let scale = run_with(&server, plan, sizes).await?;
        assert_eq!(scale.sizes.iter().map(|p| p.tasks).collect::<Vec<_>>(), [1_000, 3_000]);
        assert!(scale.sizes.iter().all(|p| p.get.ops > 0 && p.get_peer.ops > 0 && p.list.ops > 0));
        assert_eq!(
            scale.callers.iter().map(|p| p.callers).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64]
        );
        assert!(scale.callers.iter().all(|p| p.strata.ops > 0 && p.deadpool.ops > 0));
        assert_eq!(scale.creates.iter().map(|p| p.projects).collect::<Vec<_>>(), [1, 8, 64]);
        assert!(
            scale.creates.iter().all(|p| p.creates.ops > 0 && p.peer.is_some_and(|s| s.ops > 0))
        );
        assert_eq!((scale.paged_project_tasks, scale.import_full_table), (3_000, 3_000));
        assert!(scale.import_empty.throughput > 0.0 && scale.import_full.throughput > 0.0);
        assert_eq!(report::targets(&scale).len(), 6);
        let dir = std::env::temp_dir().join(format!("strata-bench-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let charts = charts::write(&scale, &dir, "smoke", "a test")?;
        assert_eq!(charts.len(), 5);
        for chart in &charts {
            let svg = std::fs::read_to_string(chart)?;
            assert!(svg.starts_with("<svg") && svg.contains("a test"), "{}", chart.display());
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
