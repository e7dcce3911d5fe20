//! The state of every migration, from the files and `_sqlx_migrations`, read without a lock.

use serde::Serialize;
use sqlx::PgConnection;
use sqlx::migrate::{Migration, Migrator};
use time::OffsetDateTime;

use crate::MigrateError;
use crate::runner::{hex, millis};

/// sqlx's tracking table, created exactly as sqlx creates it.
pub(crate) const CREATE_TABLE: &str = "
create table if not exists _sqlx_migrations (
    version bigint primary key,
    description text not null,
    installed_on timestamptz not null default now(),
    success boolean not null,
    checksum bytea not null,
    execution_time bigint not null
)";

/// A row of `_sqlx_migrations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Applied {
    pub version: i64,
    pub description: String,
    pub installed_on: OffsetDateTime,
    pub success: bool,
    pub checksum: Vec<u8>,
    pub execution_time: i64,
}

/// The migrations that move the schema forward (not the `.down.sql` halves).
pub(crate) fn up_migrations(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator.iter().filter(|m| !m.migration_type.is_down_migration())
}

/// Every row of the tracking table, or none when it does not exist yet.
pub(crate) async fn read_applied(conn: &mut PgConnection) -> Result<Vec<Applied>, MigrateError> {
    let exists: bool = sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
        .fetch_one(&mut *conn)
        .await
        .map_err(MigrateError::db("looking for _sqlx_migrations"))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "select version, description, installed_on, success, checksum, execution_time
           from _sqlx_migrations order by version",
    )
    .fetch_all(conn)
    .await
    .map_err(MigrateError::db("reading _sqlx_migrations"))
}

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
}

/// Every migration known to the files or the database, in version order.
///
/// # Errors
///
/// [`MigrateError::Database`] when the tracking table cannot be read.
pub async fn status(
    conn: &mut PgConnection,
    migrator: &Migrator,
) -> Result<Vec<MigrationStatus>, MigrateError> {
    let applied = read_applied(conn).await?;
    let mut lines: Vec<MigrationStatus> = up_migrations(migrator)
        .map(|file| {
            let row = applied.iter().find(|a| a.version == file.version);
            let state = match row {
                None => State::Pending,
                Some(a) if !a.success => State::Failed,
                Some(a) if *a.checksum != *file.checksum => State::ChecksumChanged,
                Some(_) => State::Applied,
            };
            line(file.version, file.description.to_string(), state, row)
        })
        .collect();
    for row in &applied {
        if !lines.iter().any(|l| l.version == row.version) {
            lines.push(line(row.version, row.description.clone(), State::FileMissing, Some(row)));
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
        applied_checksum: row.filter(|_| state == State::ChecksumChanged).map(|r| hex(&r.checksum)),
    }
}
