//! What each command reports: returned by the library, printed by the command line.

use std::time::Duration;

/// One migration that `up` applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedNow {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Lock-timeout retries it needed.
    pub retries: u32,
    /// Statements run, for a no-transaction file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<usize>,
    /// A checkpoint recorded, not run: this database had applied the files it stands for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recorded: bool,
}

/// What `up` did, or with `dry_run` would do.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpReport {
    /// The migrations applied, in order.
    pub applied: Vec<AppliedNow>,
    /// With `dry_run`: the versions that would be applied, in order.
    pub planned: Vec<i64>,
    /// With `dry_run`: the SQL that would run, with transaction boundaries and settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_sql: Option<String>,
    /// Applied files that differ only in line endings or trailing white space.
    pub warnings: Vec<String>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
    /// With `wait_for_replicas`: how many streaming replicas replayed the changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_caught_up: Option<usize>,
}

/// One migration that `down` reverted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reverted {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
}

/// What `down` did, or with `dry_run` would do.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DownReport {
    /// The migrations reverted, newest first.
    pub reverted: Vec<Reverted>,
    /// With `dry_run`: the versions that would be reverted, in order.
    pub planned: Vec<i64>,
    /// With `dry_run`: the SQL that would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run_sql: Option<String>,
    /// Applied files that differ only in line endings or trailing white space.
    pub warnings: Vec<String>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
}

/// What `redo` did: the migrations reverted, newest first, then applied again.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RedoReport {
    /// Reverted, newest first.
    pub reverted: Vec<Reverted>,
    /// Applied again, oldest first.
    pub applied: Vec<AppliedNow>,
    /// Applied files that differ only in line endings or trailing white space.
    pub warnings: Vec<String>,
    /// How long the runner waited for the lock, in milliseconds.
    pub lock_wait_ms: f64,
}

/// What `baseline` recorded.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BaselineReport {
    /// The versions marked applied without running them.
    pub marked: Vec<i64>,
}

/// One change `repair` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairAction {
    /// The version.
    pub version: i64,
    /// What was done.
    pub action: String,
}

/// What `repair` changed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// The changes, in version order.
    pub actions: Vec<RepairAction>,
}

/// A duration in milliseconds, as reports and events give them.
/// The migrations `outcomes` applied, as reported.
pub(crate) fn applied(outcomes: &[crate::runner::execute::Outcome<'_>]) -> Vec<AppliedNow> {
    outcomes
        .iter()
        .map(|o| AppliedNow {
            version: o.migration.version,
            description: o.migration.description.to_string(),
            duration_ms: millis(o.elapsed),
            retries: o.retries,
            statements: o.statements,
            recorded: o.recorded,
        })
        .collect()
}

/// The migrations `outcomes` reverted, as reported.
pub(crate) fn reverted(outcomes: &[crate::runner::execute::Outcome<'_>]) -> Vec<Reverted> {
    outcomes
        .iter()
        .map(|o| Reverted {
            version: o.migration.version,
            description: o.migration.description.to_string(),
            duration_ms: millis(o.elapsed),
        })
        .collect()
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
