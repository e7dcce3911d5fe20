//! Deciding what `up` and `down` will run, from the files and the recorded history, and
//! refusing a history that does not match: a changed applied file, a missing file, a failed
//! migration that cannot resume, a pending version older than the newest applied one.

use sqlx::migrate::{Migration, Migrator};

use crate::checksum::{self, Match};
use crate::history::{self, History};
use crate::{MigrateError, hex};

/// One migration `up` will run.
#[derive(Debug, Clone)]
pub(crate) struct Step<'m> {
    pub migration: &'m Migration,
    /// For a partial no-transaction migration (recorded with `success = false`): the number
    /// of statements already done, possibly 0.
    pub resume: Option<usize>,
}

/// What `up` will do.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpPlan<'m> {
    pub steps: Vec<Step<'m>>,
    /// Cosmetic checksum differences, to be reported.
    pub warnings: Vec<String>,
}

/// Which applied migrations `down` reverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// Every applied version above this one.
    To(i64),
    /// The newest N applied versions.
    Steps(usize),
}

/// Checks every applied row against its file; returns the cosmetic differences as warnings.
pub(crate) fn check_applied(
    migrator: &Migrator,
    history: &History,
    ignore_missing: bool,
) -> Result<Vec<String>, MigrateError> {
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    let files = history::up_by_version(migrator);
    for row in history.applied.iter().filter(|a| a.success) {
        let Some(&file) = files.get(&row.version) else {
            missing.push(row.version);
            continue;
        };
        let normalized = history.normalized.get(&row.version).map(Vec::as_slice);
        match checksum::compare(&row.checksum, normalized, file) {
            Match::Exact => {}
            Match::Cosmetic(what) => {
                let warning = format!(
                    "migration {} ({}) differs from what was applied only in {what}; going on (`strata-migrate repair` records the new checksum)",
                    row.version, row.description
                );
                tracing::warn!(migration.version = row.version, "{warning}");
                warnings.push(warning);
            }
            Match::Changed => {
                return Err(MigrateError::ChecksumChanged {
                    version: row.version,
                    description: row.description.clone(),
                    applied: hex(&row.checksum),
                    file: hex(&file.checksum),
                });
            }
        }
    }
    if !missing.is_empty() && !ignore_missing {
        return Err(MigrateError::Missing { versions: missing });
    }
    Ok(warnings)
}

/// The migrations `up` applies, in order, up to `target` if given.
pub(crate) fn plan_up<'m>(
    migrator: &'m Migrator,
    history: &History,
    target: Option<i64>,
    ignore_missing: bool,
    allow_out_of_order: bool,
) -> Result<UpPlan<'m>, MigrateError> {
    if let Some(target) = target
        && !history::up_migrations(migrator).any(|m| m.version == target)
        && !history.applied.iter().any(|a| a.version == target)
    {
        return Err(MigrateError::Usage {
            message: format!("--to {target}: there is no migration with that version"),
        });
    }
    let mut steps = Vec::new();
    for row in history.applied.iter().filter(|a| !a.success) {
        steps.push(resume_step(migrator, history, row.version)?);
    }
    let warnings = check_applied(migrator, history, ignore_missing)?;
    let newest = history.newest();
    let applied = history.applied_by_version();
    let mut out_of_order = Vec::new();
    for migration in history::up_migrations(migrator) {
        let recorded = applied.contains_key(&migration.version);
        if recorded || target.is_some_and(|t| migration.version > t) {
            continue;
        }
        if newest.is_some_and(|n| migration.version < n) {
            out_of_order.push(migration.version);
        }
        steps.push(Step { migration, resume: None });
    }
    if let Some(newest) = newest
        && !out_of_order.is_empty()
        && !allow_out_of_order
    {
        return Err(MigrateError::OutOfOrder { versions: out_of_order, newest });
    }
    steps.sort_by_key(|s| s.migration.version);
    Ok(UpPlan { steps, warnings })
}

/// A failed (partial) migration can resume only when it is a no-transaction file, unchanged
/// since it started, with recorded progress.
fn resume_step<'m>(
    migrator: &'m Migrator,
    history: &History,
    version: i64,
) -> Result<Step<'m>, MigrateError> {
    let dirty = |why: &str| MigrateError::Dirty { version, why: why.to_owned() };
    let file = history::up_migrations(migrator)
        .find(|m| m.version == version)
        .ok_or_else(|| dirty("its file is gone"))?;
    let progress =
        history.progress_of(version).ok_or_else(|| dirty("no progress was recorded for it"))?;
    if !file.no_tx {
        return Err(dirty("its file is no longer a -- no-transaction file"));
    }
    if *progress.checksum != *file.checksum {
        return Err(dirty("its file changed since it started"));
    }
    let resume_at = usize::try_from(progress.statements_done).unwrap_or(0);
    Ok(Step { migration: file, resume: Some(resume_at) })
}

/// The applied migrations `down` reverts, newest first, each with its `.down.sql`.
pub(crate) fn plan_down<'m>(
    migrator: &'m Migrator,
    history: &History,
    target: DownTarget,
) -> Result<(Vec<&'m Migration>, Vec<String>), MigrateError> {
    if let Some(row) = history.applied.iter().find(|a| !a.success) {
        return Err(MigrateError::Dirty {
            version: row.version,
            why: "finish it with `up` or settle it with `repair` before reverting".to_owned(),
        });
    }
    let warnings = check_applied(migrator, history, true)?;
    let mut applied: Vec<i64> = history.applied.iter().map(|a| a.version).collect();
    applied.sort_unstable_by(|a, b| b.cmp(a));
    let chosen: Vec<i64> = match target {
        DownTarget::To(to) => {
            if to != 0 && !applied.contains(&to) {
                return Err(MigrateError::Usage {
                    message: format!(
                        "down --to {to}: that version is not applied (use 0 to revert everything)"
                    ),
                });
            }
            applied.into_iter().filter(|&v| v > to).collect()
        }
        DownTarget::Steps(n) => applied.into_iter().take(n).collect(),
    };
    let mut downs = Vec::new();
    let mut missing = Vec::new();
    for version in chosen {
        match history::down_migration(migrator, version) {
            Some(down) => downs.push(down),
            None => missing.push(version),
        }
    }
    if !missing.is_empty() {
        return Err(MigrateError::NoDownFile { versions: missing });
    }
    Ok((downs, warnings))
}
