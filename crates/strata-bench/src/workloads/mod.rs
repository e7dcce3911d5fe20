//! The numbered workloads of a run (`--scale` has its own, see `scale`), one module each:
//!
//! | # | module | strata against |
//! |---|---|---|
//! | 1 | `gets` | tokio-postgres, deadpool-postgres: get by ID |
//! | 2 | `lists` | tokio-postgres: listing 10,000 rows |
//! | 3 | `imports` | tokio-postgres binary `COPY`: bulk import |
//! | 4 | `creates` | tokio-postgres: create with audit and outbox |
//! | 5 | `migrations` | sqlx-cli: the migration runner |
//! | 6 | `http` | the same transaction without HTTP |
//! | 7 | `pooler` | the same calls without PgBouncer |
//! | 12 | `load` | the data layer alone, tracker-service under `oha` |
//! | 13 | `citus` | the same calls on one server |
//!
//! Workloads 1–4, 6, 7 and 12 share one fixture; 5 and 13 make databases of their own.

mod citus;
mod creates;
mod gets;
mod http;
mod imports;
mod lists;
mod load;
mod migrations;
mod pooler;

use crate::fixture::fixture;
use crate::plan::Plan;
use crate::table::Row;

/// Runs the workloads that `plan` selects, in the bench's order: 1, 2, 4, 3, 6, 7, 12 on the
/// shared fixture, then 5 and 13.
pub(crate) async fn run(server: &str, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let f = fixture(server).await?;
    let mut rows = Vec::new();
    if plan.runs(1) {
        rows.extend(gets::run(&f, plan).await?);
    }
    if plan.runs(2) {
        rows.extend(lists::run(&f, plan).await?);
    }
    if plan.runs(4) {
        rows.extend(creates::run(&f, plan).await?);
    }
    if plan.runs(3) {
        rows.extend(imports::run(&f, plan).await?);
    }
    if plan.runs(6) {
        rows.extend(http::run(&f, plan).await?);
    }
    if plan.runs(7) {
        rows.extend(pooler::run(&f, plan).await?);
    }
    if plan.runs(12) {
        rows.extend(load::run(&f, plan).await?);
    }
    if plan.runs(5) {
        rows.extend(migrations::run(server, plan).await?);
    }
    if plan.runs(13) {
        rows.extend(citus::run(server, plan).await?);
    }
    Ok(rows)
}
