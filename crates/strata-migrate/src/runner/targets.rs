//! One command on many databases (tenants spread over shards): each target gets its own
//! session, its own lock and its own report, with a bounded number at once. A failure on one
//! target leaves the others alone, unless the caller asks to stop at the first.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt as _;
use strata_config::{Config, DatabaseUrl};

use crate::error::MigrateError;
use crate::runner::session::Session;

/// The URLs of a targets file: one per line; blank lines and lines starting with `#` are
/// skipped.
///
/// # Errors
///
/// [`MigrateError::Invalid`] for a line that is not a `postgres://` URL (named by its line
/// number, never by its text, which may hold a password), or a file with no target.
pub fn parse_targets(text: &str) -> Result<Vec<DatabaseUrl>, MigrateError> {
    let mut targets = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !(line.starts_with("postgres://") || line.starts_with("postgresql://")) {
            return Err(MigrateError::Invalid {
                message: format!("targets line {}: not a postgres:// URL", number + 1),
            });
        }
        targets.push(DatabaseUrl::new(line));
    }
    if targets.is_empty() {
        return Err(MigrateError::Invalid { message: "the targets list names no database".into() });
    }
    Ok(targets)
}

/// The URLs a catalog query lists (its first column, as text), on the database `config`
/// names: the `--targets-query` form of a targets file.
///
/// # Errors
///
/// As [`Session::from_config`]; [`MigrateError::Database`] when the query fails; as
/// [`parse_targets`] for what it returns.
pub async fn query_targets(config: &Config, sql: &str) -> Result<Vec<DatabaseUrl>, MigrateError> {
    let mut session = Session::from_config(config).await?;
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(session.raw_connection())
        .await
        .map_err(MigrateError::db("running the targets query"));
    session.close().await;
    let mut urls = Vec::new();
    for row in rows? {
        let url: Option<String> = sqlx::Row::try_get(&row, 0)
            .map_err(MigrateError::db("reading the targets query's first column as text"))?;
        urls.extend(url);
    }
    parse_targets(&urls.join("\n"))
}

/// What happened on one target.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The command completed; its report.
    Done {
        /// The command's report.
        report: T,
    },
    /// The command failed there.
    Failed {
        /// The error (its message holds no secret).
        error: MigrateError,
    },
    /// Not run: an earlier target failed and the caller asked to stop at the first failure.
    Skipped,
}

/// One target's report.
#[derive(Debug)]
pub struct TargetReport<T> {
    /// The target's URL, password hidden.
    pub target: String,
    /// What happened there.
    pub outcome: Outcome<T>,
}

impl<T> TargetReport<T> {
    /// Whether the command failed on this target.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// Which databases [`on_targets`] runs on, and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TargetOptions {
    /// The databases, in the order of the reports.
    pub targets: Vec<DatabaseUrl>,
    /// How many at once (at least one).
    pub parallel: usize,
    /// Start no other target once one failed (those not started are skipped).
    pub fail_fast: bool,
}

impl TargetOptions {
    /// Every one of `targets`, four at once, all of them whatever fails.
    pub fn new(targets: Vec<DatabaseUrl>) -> Self {
        Self { targets, parallel: 4, fail_fast: false }
    }
}

/// Runs `work` on every target of `options`, at most `options.parallel` at once, each on a
/// session of its own (connected as `config` says, with the target as `migrations.url`), and
/// returns the reports in the targets' order. With `options.fail_fast`, targets not yet
/// started when one fails are skipped.
pub async fn on_targets<T>(
    config: &Config,
    options: &TargetOptions,
    work: impl AsyncFn(&mut Session) -> Result<T, MigrateError>,
) -> Vec<TargetReport<T>> {
    let TargetOptions { targets, parallel, fail_fast } = options;
    let (parallel, fail_fast) = (*parallel, *fail_fast);
    let stop = AtomicBool::new(false);
    let (work, stop) = (&work, &stop);
    let runs = targets.iter().map(|url| async move {
        let target = url.redacted();
        if stop.load(Ordering::Relaxed) {
            return TargetReport { target, outcome: Outcome::Skipped };
        }
        let mut config = config.clone();
        config.migrations.url = Some(url.clone());
        let result = match Session::from_config(&config).await {
            Ok(mut session) => {
                let result = work(&mut session).await;
                session.close().await;
                result
            }
            Err(error) => Err(error),
        };
        let outcome = match result {
            Ok(report) => Outcome::Done { report },
            Err(error) => {
                tracing::warn!(target = %target, %error, "the command failed on this target");
                if fail_fast {
                    stop.store(true, Ordering::Relaxed);
                }
                Outcome::Failed { error }
            }
        };
        TargetReport { target, outcome }
    });
    futures_util::stream::iter(runs).buffered(parallel.max(1)).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_file_is_urls_comments_and_blank_lines() {
        let text = "# shard list\npostgres://a@h1/db\n\n  postgresql://b:secret@h2/db  \n";
        let targets = parse_targets(text).unwrap_or_default();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].redacted(), "postgresql://b:***@h2/db");
        let err = parse_targets("postgres://a@h/db\nmysql://root:pw@h/db\n").expect_err("line 2");
        assert!(err.to_string().contains("line 2") && !err.to_string().contains("pw"), "{err}");
        assert!(parse_targets("# nothing\n").is_err());
    }
}
