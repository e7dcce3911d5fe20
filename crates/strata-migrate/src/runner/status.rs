//! The state of every migration, from the files and `_sqlx_migrations`, read without a lock:
//! what [`Session::status`](crate::Session::status) returns.

use serde::Serialize;
use sqlx::PgConnection;
use sqlx::migrate::Migrator;
use time::OffsetDateTime;

use crate::error::MigrateError;
use crate::runner::history::{Applied, History};
use crate::runner::lock;
use crate::runner::report::millis;
use crate::tools::checkpoint::Checkpoints;
use crate::tools::checksum::{self, Match};
use crate::tools::files;

/// The state of one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Applied, and the file is unchanged.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file has changed since.
    ChecksumChanged,
    /// Applied, but there is no file for it.
    FileMissing,
    /// Recorded with `success = false` (a partial no-transaction migration).
    Failed,
    /// Applied as one of the files a checkpoint stands for (its file is gone); the note names
    /// the checkpoint.
    InCheckpoint,
}

impl State {
    /// The word shown in text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::ChecksumChanged => "checksum changed",
            Self::FileMissing => "file missing",
            Self::Failed => "failed",
            Self::InCheckpoint => "in checkpoint",
        }
    }
}

/// One line of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// Its state.
    pub state: State,
    /// When it was applied.
    #[serde(with = "time::serde::rfc3339::option")]
    pub applied_at: Option<OffsetDateTime>,
    /// How long it took, in milliseconds, when recorded.
    pub duration_ms: Option<f64>,
    /// Recorded checksum, when it differs from the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_checksum: Option<String>,
    /// Pending, but older than the newest applied version (`up` refuses it unless told).
    pub out_of_order: bool,
    /// A remark: a cosmetic checksum difference, or how far a failed migration got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Every migration known to the files or the database, in version order:
/// [`Session::status`](crate::Session::status).
pub(crate) async fn status(
    conn: &mut PgConnection,
    migrator: &Migrator,
) -> Result<Vec<MigrationStatus>, MigrateError> {
    let history = History::read(conn).await?;
    let running = if history.applied.iter().any(|a| !a.success) {
        lock::held_by_another_session(conn).await?
    } else {
        false
    };
    let checkpoints = Checkpoints::of(migrator)?;
    let applied = history.applied_by_version();
    let newest = history.newest();
    let mut lines: Vec<MigrationStatus> = files::up_migrations(migrator)
        .map(|file| {
            let row = applied.get(&file.version).copied();
            let mut note = None;
            let state = match row {
                None => State::Pending,
                Some(a) if !a.success => {
                    let done = history.progress_of(a.version).map(|p| {
                        format!("{}/{} statements done", p.statements_done, p.statements_total)
                    });
                    note = match (running, done) {
                        (true, Some(done)) => {
                            Some(format!("{done}; a runner holds the lock: probably still running"))
                        }
                        (true, None) => {
                            Some("a runner holds the lock: probably still running".to_owned())
                        }
                        (false, done) => done,
                    };
                    State::Failed
                }
                Some(a) if checkpoints.replaced_record(a, Some(file)) == Some((a.version, true)) => {
                    note = Some(
                        "a checkpoint: this database applied the files it stands for; the next `up` records it"
                            .to_owned(),
                    );
                    State::Applied
                }
                Some(a) => {
                    let normalized = history.normalized.get(&a.version).map(Vec::as_slice);
                    match checksum::compare(&a.checksum, normalized, file) {
                        Match::Exact => State::Applied,
                        Match::Cosmetic(what) => {
                            note = Some(format!("file differs only in {what}"));
                            State::Applied
                        }
                        Match::Changed => State::ChecksumChanged,
                    }
                }
            };
            let mut line = line(file.version, file.description.to_string(), state, row);
            line.out_of_order = state == State::Pending && newest.is_some_and(|n| file.version < n);
            line.note = note;
            line
        })
        .collect();
    let files = files::up_by_version(migrator);
    for row in &history.applied {
        if files.contains_key(&row.version) {
            continue;
        }
        match checkpoints.replaced_record(row, None) {
            Some((owner, true)) => {
                let mut line =
                    line(row.version, row.description.clone(), State::InCheckpoint, Some(row));
                line.note = Some(format!("checkpoint {owner} stands for it"));
                lines.push(line);
            }
            _ => {
                lines.push(line(
                    row.version,
                    row.description.clone(),
                    State::FileMissing,
                    Some(row),
                ));
            }
        }
    }
    lines.sort_by_key(|l| l.version);
    Ok(lines)
}

fn line(version: i64, description: String, state: State, row: Option<&Applied>) -> MigrationStatus {
    MigrationStatus {
        version,
        description,
        state,
        applied_at: row.map(|r| r.installed_on),
        duration_ms: row
            .filter(|r| r.execution_time >= 0)
            .map(|r| millis(std::time::Duration::from_nanos(r.execution_time.unsigned_abs()))),
        applied_checksum: row
            .filter(|_| state == State::ChecksumChanged)
            .map(|r| hex::encode(&r.checksum)),
        out_of_order: false,
        note: None,
    }
}
