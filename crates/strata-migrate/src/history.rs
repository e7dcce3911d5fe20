//! What the database records: sqlx's `_sqlx_migrations` rows and the progress of partial
//! no-transaction migrations, read without a lock.

use std::collections::HashMap;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{FromRow, PgConnection, Row};
use time::OffsetDateTime;

use crate::MigrateError;

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
#[derive(Debug, Clone)]
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

/// The forward migrations by version, for lookups that would otherwise scan the files once
/// per row (quadratic in the history's length).
pub(crate) fn up_by_version(migrator: &Migrator) -> HashMap<i64, &Migration> {
    let mut files = HashMap::new();
    for m in up_migrations(migrator) {
        files.entry(m.version).or_insert(m); // the first, as a scan would find it
    }
    files
}

/// The rows of `_sqlx_migrations`, which must exist, in one round trip (simple protocol, text
/// format). The time is read as microseconds since the epoch, so it decodes the same whatever
/// the session's `TimeZone` or `DateStyle` (a migration may set either).
async fn select_applied(conn: &mut PgConnection) -> Result<Vec<Applied>, MigrateError> {
    let rows = sqlx::raw_sql(
        "select version, description,
                (extract(epoch from installed_on) * 1000000)::bigint as installed_on_us, success,
                checksum, execution_time
           from _sqlx_migrations order by version",
    )
    .fetch_all(conn)
    .await
    .map_err(MigrateError::db("reading _sqlx_migrations"))?;
    rows.iter()
        .map(|row| {
            Ok(Applied {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
                installed_on: micros_to_time(row.try_get("installed_on_us")?)?,
                success: row.try_get("success")?,
                checksum: row.try_get("checksum")?,
                execution_time: row.try_get("execution_time")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(MigrateError::db("reading _sqlx_migrations"))
}

fn micros_to_time(micros: i64) -> Result<OffsetDateTime, sqlx::Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The `.down.sql` half of a reversible migration, if the files have one.
pub(crate) fn down_migration(migrator: &Migrator, version: i64) -> Option<&Migration> {
    migrator
        .iter()
        .find(|m| m.version == version && m.migration_type == MigrationType::ReversibleDown)
}

/// The file name the migration came from, as sqlx names them.
pub(crate) fn file_name(m: &Migration) -> String {
    let suffix = match m.migration_type {
        MigrationType::Simple => ".sql",
        MigrationType::ReversibleUp => ".up.sql",
        MigrationType::ReversibleDown => ".down.sql",
    };
    format!("{}_{}{suffix}", m.version, m.description.replace(' ', "_"))
}

/// How far a partial no-transaction migration got (`_strata_migration_progress`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Progress {
    pub version: i64,
    pub checksum: Vec<u8>,
    pub statements_done: i32,
    pub statements_total: i32,
}

/// What the runner needs to know before it plans: the rows, the progress of partial
/// migrations, and the normalized checksums our side table recorded at apply time.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub applied: Vec<Applied>,
    pub progress: Vec<Progress>,
    pub normalized: HashMap<i64, Vec<u8>>,
}

impl History {
    /// Reads everything; tables that do not exist yet read as empty.
    ///
    /// Queries without parameters go through the simple protocol (one round trip each, where a
    /// prepared statement costs two on a short-lived connection).
    pub(crate) async fn read(conn: &mut PgConnection) -> Result<Self, MigrateError> {
        let exists = sqlx::raw_sql(
            "select to_regclass('_sqlx_migrations') is not null,
                    to_regclass('_strata_migration_progress') is not null,
                    to_regclass('_strata_migration_events') is not null",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(MigrateError::db("looking for the tracking tables"))?;
        let exists = |i: usize| -> Result<bool, MigrateError> {
            exists.try_get(i).map_err(MigrateError::db("looking for the tracking tables"))
        };
        let mut history = Self::default();
        if exists(0)? {
            history.applied = select_applied(conn).await?;
        }
        if exists(1)? {
            let rows = sqlx::raw_sql(
                "select version, checksum, statements_done, statements_total
                   from _strata_migration_progress order by version",
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(MigrateError::db("reading _strata_migration_progress"))?;
            history.progress = rows
                .iter()
                .map(Progress::from_row)
                .collect::<Result<_, _>>()
                .map_err(MigrateError::db("reading _strata_migration_progress"))?;
        }
        if exists(2)? {
            let rows = sqlx::raw_sql(
                "select distinct on (version) version, normalized_checksum
                   from _strata_migration_events
                  where normalized_checksum is not null and kind in ('apply', 'baseline', 'repair')
                  order by version, id desc",
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(MigrateError::db("reading _strata_migration_events"))?;
            history.normalized = rows
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(MigrateError::db("reading _strata_migration_events"))?;
        }
        Ok(history)
    }

    /// The recorded rows by version.
    pub(crate) fn applied_by_version(&self) -> HashMap<i64, &Applied> {
        self.applied.iter().map(|a| (a.version, a)).collect()
    }

    /// The newest successfully applied version.
    pub(crate) fn newest(&self) -> Option<i64> {
        self.applied.iter().filter(|a| a.success).map(|a| a.version).max()
    }

    /// The recorded progress of a partial migration.
    pub(crate) fn progress_of(&self, version: i64) -> Option<&Progress> {
        self.progress.iter().find(|p| p.version == version)
    }
}
