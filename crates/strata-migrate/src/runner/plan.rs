//! The plan of a command, computed once from the files, the recorded history and the settings:
//! which migrations run, in which order, each in one transaction or statement by statement,
//! with the `lock_timeout` and `statement_timeout` in force for each piece, and what the runner
//! records. The executor ([`crate::runner::execute`]) runs a plan; `--dry-run` ([`crate::runner::render`])
//! prints the same plan. Neither decides anything the plan does not say.
//!
//! Planning also refuses a history that does not match the files: a changed applied file, a
//! missing file, a failed migration that cannot resume, a pending version older than the
//! newest applied one.

use std::time::Duration;

use sqlx::migrate::{Migration, Migrator};

use crate::error::MigrateError;
use crate::runner::history::History;
use crate::runner::options::{DownOptions, DownTarget, Settings, UpOptions};
use crate::tools::checkpoint::Checkpoints;
use crate::tools::checksum::{self, Match};
use crate::tools::directive;
use crate::tools::files;
use crate::tools::lexer::Statement;

/// Whether a plan moves the schema forward or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `up`: apply files and record them.
    Up,
    /// `down`: run `.down.sql` files and delete their records.
    Down,
}

/// The session settings a piece of SQL runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// `lock_timeout` (0: none).
    pub lock: Duration,
    /// `statement_timeout`; `None` leaves the server's.
    pub statement: Option<Duration>,
}

/// A command's plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'m> {
    pub direction: Direction,
    pub steps: Vec<Step<'m>>,
    /// Cosmetic checksum differences of applied files, to be reported.
    pub warnings: Vec<String>,
    /// The settings it was planned with (the lock wait and the retries).
    pub settings: Settings,
}

/// One file the plan runs: an up file, or a `.down.sql`.
#[derive(Debug, Clone)]
pub(crate) struct Step<'m> {
    pub migration: &'m Migration,
    pub how: How<'m>,
}

/// How a step runs.
#[derive(Debug, Clone)]
pub(crate) enum How<'m> {
    /// The whole file in one transaction, `SET LOCAL` timeouts first, the bookkeeping and the
    /// event last; rolled back and retried whole when its `lock_timeout` expires.
    Transaction {
        timeouts: Timeouts,
        /// `BEGIN` and the `SET LOCAL` of the timeouts, sent as one batch.
        begin: String,
    },
    /// A `-- no-transaction` file, statement by statement.
    Statements(Statements<'m>),
    /// A checkpoint on a database that applied every file it stands for: nothing runs; its
    /// row takes the checkpoint's checksum and description (so sqlx reads it as applied),
    /// with a `baseline` event.
    Record {
        /// How many files it stands for.
        replaced: usize,
    },
}

/// The statements of a no-transaction file.
#[derive(Debug, Clone)]
pub(crate) struct Statements<'m> {
    /// Every statement of the file, in order.
    pub all: Vec<Planned<'m>>,
    /// How many are already done: a partial run resumes after them (`None`: a fresh start,
    /// which records the file as started, `success = false`, for `up`).
    pub resume_at: Option<usize>,
    /// What sets the session's timeouts back to the server's after this file's statements:
    /// on the last no-transaction file of the plan only (a transactional step sets its own
    /// with `SET LOCAL`, so the session's may stay as they are until the end).
    pub reset_after: Option<String>,
}

/// One statement of a no-transaction file.
#[derive(Debug, Clone)]
pub(crate) struct Planned<'m> {
    pub statement: Statement<'m>,
    /// Its timeouts: the file's, except that `CONCURRENTLY` gets no `lock_timeout` unless the
    /// file sets one. A concurrent build waits for every older transaction (without blocking
    /// traffic: its SHARE UPDATE EXCLUSIVE lock does not conflict with reads and writes);
    /// cancelled by `lock_timeout` while it waits, it would leave an INVALID index behind.
    pub timeouts: Timeouts,
    /// What sets the session's timeouts before it, when they differ from what the statement
    /// before it in this plan ran under (`SET lock_timeout …`, as one batch).
    pub set: Option<String>,
    /// Whether it runs on its own: `CONCURRENTLY` cannot run in a transaction block, so it
    /// is not tried in one, and its progress is recorded right after it. Any other statement
    /// runs in one implicit transaction with its progress row (exactly once, even if the
    /// runner dies), and is run on its own only if the server refuses that (SQLSTATE 25001 or
    /// 2D000: `VACUUM`, a procedure that commits).
    pub alone: bool,
}

impl<'m> Plan<'m> {
    /// The plan of `up`.
    pub(crate) fn up(
        migrator: &'m Migrator,
        history: &History,
        options: &UpOptions,
    ) -> Result<Self, MigrateError> {
        if let Some(target) = options.target
            && !files::up_migrations(migrator).any(|m| m.version == target)
            && !history.applied.iter().any(|a| a.version == target)
        {
            return Err(MigrateError::Invalid {
                message: format!("there is no migration with that version ({target})"),
            });
        }
        let mut chosen = Vec::new();
        for row in history.applied.iter().filter(|a| !a.success) {
            chosen.push(resume_point(migrator, history, row.version)?);
        }
        let warnings = check_applied(migrator, history, options.ignore_missing)?;
        let checkpoints = Checkpoints::of(migrator)?;
        let newest = history.newest();
        let applied = history.applied_by_version();
        let mut out_of_order = Vec::new();
        let mut records = Vec::new();
        for migration in files::up_migrations(migrator) {
            if options.target.is_some_and(|t| migration.version > t) {
                continue;
            }
            // A checkpoint is recorded where its files were applied, refused where only some
            // were, and applied where none were.
            if let Some(replaced) = checkpoints.to_record(migration.version, history)? {
                records.push(Step { migration, how: How::Record { replaced } });
                continue;
            }
            if applied.contains_key(&migration.version) {
                continue;
            }
            if newest.is_some_and(|n| migration.version < n) {
                out_of_order.push(migration.version);
            }
            chosen.push((migration, None));
        }
        if let Some(newest) = newest
            && !out_of_order.is_empty()
            && !options.allow_out_of_order
        {
            return Err(MigrateError::OutOfOrder { versions: out_of_order, newest });
        }
        chosen.sort_by_key(|(m, _)| m.version);
        let mut plan = Self::of(Direction::Up, chosen, warnings, &options.settings)?;
        plan.steps.extend(records);
        plan.steps.sort_by_key(|s| s.migration.version);
        Ok(plan)
    }

    /// The plan of `down`: the applied migrations it reverts, newest first, each with its
    /// `.down.sql`.
    pub(crate) fn down(
        migrator: &'m Migrator,
        history: &History,
        options: &DownOptions,
    ) -> Result<Self, MigrateError> {
        if let Some(row) = history.applied.iter().find(|a| !a.success) {
            return Err(MigrateError::Dirty {
                version: row.version,
                why: "finish it with `up` or settle it with `repair` before reverting".to_owned(),
            });
        }
        let warnings = check_applied(migrator, history, true)?;
        let mut applied: Vec<i64> = history.applied.iter().map(|a| a.version).collect();
        applied.sort_unstable_by(|a, b| b.cmp(a));
        let chosen: Vec<i64> = match options.target {
            DownTarget::To(to) => {
                if to != 0 && !applied.contains(&to) {
                    return Err(MigrateError::Invalid {
                        message: format!(
                            "that version is not applied ({to}); the target 0 reverts everything"
                        ),
                    });
                }
                applied.into_iter().filter(|&v| v > to).collect()
            }
            DownTarget::Steps(n) => applied.into_iter().take(n).collect(),
        };
        Checkpoints::of(migrator)?.refuse_down(&chosen)?;
        let mut downs = Vec::new();
        let mut missing = Vec::new();
        for version in chosen {
            match files::down_migration(migrator, version) {
                Some(down) => downs.push((down, None)),
                None => missing.push(version),
            }
        }
        if !missing.is_empty() {
            return Err(MigrateError::NoDownFile { versions: missing });
        }
        Self::of(Direction::Down, downs, warnings, &options.settings)
    }

    /// The steps of the chosen files, with their statements and timeouts worked out.
    fn of(
        direction: Direction,
        chosen: Vec<(&'m Migration, Option<usize>)>,
        warnings: Vec<String>,
        settings: &Settings,
    ) -> Result<Self, MigrateError> {
        let mut steps = Vec::with_capacity(chosen.len());
        // What the session's own settings are when the next no-transaction statement runs:
        // `None` until the plan first sets them (a transaction's `SET LOCAL` ends with it).
        let mut session: Option<Timeouts> = None;
        let mut statement_timeout_set = false;
        // The whole plan, every file checked, is made before the first one runs.
        for (migration, resume_at) in chosen {
            let statements = files::check_content(migration)?;
            let file = Timeouts {
                lock: directive::lock_timeout(migration)?.unwrap_or(settings.lock_timeout),
                statement: directive::statement_timeout(migration)?.or(settings.statement_timeout),
            };
            let how = if migration.no_tx {
                let explicit_lock = directive::lock_timeout(migration)?.is_some();
                let all = statements
                    .into_iter()
                    .enumerate()
                    .map(|(index, statement)| {
                        let concurrently = statement.concurrently;
                        let timeouts = Timeouts {
                            lock: if concurrently && !explicit_lock {
                                Duration::ZERO
                            } else {
                                file.lock
                            },
                            ..file
                        };
                        let mut set = None;
                        if index >= resume_at.unwrap_or(0) {
                            set = set_session(session, timeouts);
                            statement_timeout_set |= timeouts.statement.is_some();
                            session = Some(timeouts);
                        }
                        Planned { statement, timeouts, set, alone: concurrently }
                    })
                    .collect();
                How::Statements(Statements { all, resume_at, reset_after: None })
            } else {
                How::Transaction { timeouts: file, begin: begin(file) }
            };
            steps.push(Step { migration, how });
        }
        if session.is_some()
            && let Some(How::Statements(last)) =
                steps.iter_mut().rev().map(|s| &mut s.how).find(|h| matches!(h, How::Statements(_)))
        {
            last.reset_after = Some(if statement_timeout_set {
                "RESET lock_timeout; RESET statement_timeout".to_owned()
            } else {
                "RESET lock_timeout".to_owned()
            });
        }
        Ok(Self { direction, steps, warnings, settings: settings.clone() })
    }

    /// The versions of its steps, in order.
    pub(crate) fn versions(&self) -> Vec<i64> {
        self.steps.iter().map(|s| s.migration.version).collect()
    }
}

/// `BEGIN` and the `SET LOCAL` of a transaction's timeouts.
fn begin(timeouts: Timeouts) -> String {
    let mut sql = format!("BEGIN; SET LOCAL lock_timeout = '{}ms'", timeouts.lock.as_millis());
    if let Some(statement) = timeouts.statement {
        sql.push_str(&format!("; SET LOCAL statement_timeout = '{}ms'", statement.as_millis()));
    }
    sql
}

/// What changes the session's timeouts from `before` (`None`: not set by this plan yet) to
/// `after`, if anything; a `statement_timeout` of `None` is the server's own.
fn set_session(before: Option<Timeouts>, after: Timeouts) -> Option<String> {
    let mut parts = Vec::new();
    if before.map(|b| b.lock) != Some(after.lock) {
        parts.push(format!("SET lock_timeout = '{}ms'", after.lock.as_millis()));
    }
    let statement_before = before.and_then(|b| b.statement);
    match after.statement {
        Some(d) if statement_before != Some(d) => {
            parts.push(format!("SET statement_timeout = '{}ms'", d.as_millis()));
        }
        None if statement_before.is_some() => parts.push("RESET statement_timeout".to_owned()),
        _ => {}
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

impl Statements<'_> {
    /// The statements that run: those after the ones already done.
    pub(crate) fn to_run(&self) -> impl Iterator<Item = (usize, &Planned<'_>)> {
        self.all.iter().enumerate().skip(self.resume_at.unwrap_or(0))
    }
}

/// Checks every applied row against its file; returns the cosmetic differences as warnings.
pub(crate) fn check_applied(
    migrator: &Migrator,
    history: &History,
    ignore_missing: bool,
) -> Result<Vec<String>, MigrateError> {
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    let files = files::up_by_version(migrator);
    let checkpoints = Checkpoints::of(migrator)?;
    for row in history.applied.iter().filter(|a| a.success) {
        // The record of a file a checkpoint stands for: what the checkpoint lists for it.
        if let Some((owner, matches)) =
            checkpoints.replaced_record(row, files.get(&row.version).copied())
        {
            if matches {
                continue;
            }
            return Err(MigrateError::Checkpoint {
                version: owner,
                message: format!(
                    "migration {} ({}) was applied here with checksum {}, which is not the one the checkpoint lists for it: this database ran another file than the history that was squashed",
                    row.version,
                    row.description,
                    hex::encode(&row.checksum)
                ),
            });
        }
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
                    applied: hex::encode(&row.checksum),
                    file: hex::encode(&*file.checksum),
                });
            }
        }
    }
    if !missing.is_empty() && !ignore_missing {
        return Err(MigrateError::Missing { versions: missing });
    }
    Ok(warnings)
}

/// A failed (partial) migration can resume only when it is a no-transaction file, unchanged
/// since it started, with recorded progress; returns it with the statements already done.
fn resume_point<'m>(
    migrator: &'m Migrator,
    history: &History,
    version: i64,
) -> Result<(&'m Migration, Option<usize>), MigrateError> {
    let dirty = |why: &str| MigrateError::Dirty { version, why: why.to_owned() };
    let file = files::up_migrations(migrator)
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
    Ok((file, Some(usize::try_from(progress.statements_done).unwrap_or(0))))
}
