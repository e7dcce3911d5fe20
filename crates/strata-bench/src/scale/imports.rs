//! Imports (workload 10 of the table): tasks imported into the largest table against into an
//! empty one.

use std::sync::Arc;
use std::time::Instant;

use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask};

use super::data_set::{DataSet, vacuum};
use crate::database::{fresh_database, strata_pool};
use crate::stats::{Sample, Summary};

/// `n` tasks to import.
fn import_rows(n: u64) -> impl Iterator<Item = ImportTask> {
    (0..n).map(|i| ImportTask {
        title: format!("imported task {i}"),
        priority: (i % 5) as i16,
        ..ImportTask::default()
    })
}

/// Imports `n` tasks into a new project of the data set, timed, then rolls back: the table
/// keeps its size for the next run.
pub(super) async fn import(set: &DataSet, n: u64) -> anyhow::Result<Summary> {
    let pool = strata_pool(&set.url, 1)?;
    let mut conn = pool.acquire().await?;
    let mut tx = set.scope.begin(&mut conn).await?;
    let key = "IMPORT";
    let project =
        projects::create(&mut tx, &NewProject { key, name: "Import", description: "" }).await?;
    let started = Instant::now();
    let report = tasks::import(&mut tx, project.id, import_rows(n)).await?;
    let took = started.elapsed();
    tx.rollback().await?;
    drop(conn);
    pool.close().await;
    // The rolled-back rows are dead tuples: vacuum them now, untimed, or autovacuum does it
    // during the next run's lookups (seen: p99 at 5M 1.48× that at 10k, against 0.93×).
    vacuum(&set.url).await?;
    anyhow::ensure!(report.count == n, "imported {}", report.count);
    Ok(Sample { latencies: vec![took], elapsed: took, units_per_op: n as f64 }.summary())
}

/// Imports `n` tasks into a fresh, empty database.
pub(super) async fn import_into_empty(server: &str, n: u64) -> anyhow::Result<Summary> {
    let url = fresh_database(server, "strata_bench_scale_empty", true).await?;
    let pool = strata_pool(&url, 1)?;
    let mut conn = pool.acquire().await?;
    let scope = strata_test_support::fixture::tenant(&mut conn, "empty").await?.scope;
    drop(conn);
    pool.close().await;
    let set = DataSet { url, tasks: 0, scope, projects: Vec::new(), ids: Arc::default() };
    import(&set, n).await
}
