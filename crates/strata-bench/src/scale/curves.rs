//! What a `--scale` run measured, point by point: the JSON holds it, the charts draw it, the
//! table's rows and the targets read it.

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Everything `--scale` measured, for the JSON, the charts and the targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scale {
    /// One point per table size.
    pub sizes: Vec<SizePoint>,
    /// Tasks in the project paged through.
    pub paged_project_tasks: u64,
    /// The first page of 50.
    pub first_page: Summary,
    /// The page of 50 at 90% depth.
    pub deep_page: Summary,
    /// Tasks imported in each import.
    pub import_tasks: u64,
    /// The import into an empty table (rows/s in `throughput`).
    pub import_empty: Summary,
    /// The import into the largest table.
    pub import_full: Summary,
    /// Tasks in the largest table.
    pub import_full_table: u64,
    /// One point per number of callers.
    pub callers: Vec<CallersPoint>,
    /// One point per number of projects the creates go to.
    pub creates: Vec<CreatesPoint>,
}

/// Get and list at one table size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizePoint {
    /// Tasks in the table.
    pub tasks: u64,
    /// `tasks::get`, 4 callers on a pool of 4.
    pub get: Summary,
    /// deadpool-postgres (4) on the same statement.
    pub get_peer: Summary,
    /// The first page of 50 of a project, 4 callers.
    pub list: Summary,
}

/// Gets at one number of callers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallersPoint {
    /// Concurrent callers.
    pub callers: usize,
    /// strata's pool of 8.
    pub strata: Summary,
    /// deadpool-postgres's pool of 8, same statement.
    pub deadpool: Summary,
}

/// Creates spread over some projects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatesPoint {
    /// Projects the 8 callers spread their creates over.
    pub projects: usize,
    /// Throughput and latency.
    pub creates: Summary,
    /// tokio-postgres running the same transaction over the same projects, 8 connections
    /// (absent in runs from before it was measured).
    #[serde(default)]
    pub peer: Option<Summary>,
}
