//! What the database records: sqlx's `_sqlx_migrations` rows and the progress of partial
//! no-transaction migrations, read without a lock.

use std::collections::HashMap;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Row};
use time::OffsetDateTime;

use crate::MigrateError;

/// sqlx's tracking table, created exactly as sqlx creates it; a macro, so that `concat!` can
/// put it in the runner's one creation batch (`events::CREATE_TABLES`).
macro_rules! create_sqlx_migrations {
    () => {
        "
create table if not exists _sqlx_migrations (
    version bigint primary key,
    description text not null,
    installed_on timestamptz not null default now(),
    success boolean not null,
    checksum bytea not null,
    execution_time bigint not null
)"
    };
}
pub(crate) use create_sqlx_migrations;

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

// The three reads, as literals so that `concat!` can batch them. Each row starts with a
// `kind` column, so the rows of a batch can be told apart. Reads come back as text (simple
// protocol): the time is read as microseconds since the epoch, so it decodes the same whatever
// the session's `TimeZone` or `DateStyle` (a migration may set either).
macro_rules! select_applied {
    () => {
        "select 'applied' as kind, version, description,
                (extract(epoch from installed_on) * 1000000)::bigint as installed_on_us, success,
                checksum, execution_time
           from _sqlx_migrations order by version"
    };
}
macro_rules! select_progress {
    () => {
        "select 'progress' as kind, version, checksum, statements_done, statements_total
           from _strata_migration_progress order by version"
    };
}
macro_rules! select_normalized {
    () => {
        "select distinct on (version) 'normalized' as kind, version, normalized_checksum
           from _strata_migration_events
          where normalized_checksum is not null and kind in ('apply', 'baseline', 'repair')
          order by version, id desc"
    };
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
    /// Once any command has written, the three tables exist (they are created together), and
    /// one simple-protocol batch reads them all: one round trip. On a database where they are
    /// missing (SQLSTATE 42P01), it looks first and reads what is there.
    pub(crate) async fn read(conn: &mut PgConnection) -> Result<Self, MigrateError> {
        const ALL: &str =
            concat!(select_applied!(), ";\n", select_progress!(), ";\n", select_normalized!());
        let doing = "reading the migration history";
        let rows = match sqlx::raw_sql(ALL).fetch_all(&mut *conn).await {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Self::read_what_exists(conn).await;
            }
            Err(e) => return Err(MigrateError::db(doing)(e)),
        };
        let mut history = Self::default();
        history.absorb(&rows).map_err(MigrateError::db(doing))?;
        Ok(history)
    }

    async fn read_what_exists(conn: &mut PgConnection) -> Result<Self, MigrateError> {
        let doing = "reading the migration history";
        let exists = sqlx::raw_sql(
            "select to_regclass('_sqlx_migrations') is not null,
                    to_regclass('_strata_migration_progress') is not null,
                    to_regclass('_strata_migration_events') is not null",
        )
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| Ok([row.try_get(0)?, row.try_get(1)?, row.try_get(2)?]))
        .map_err(MigrateError::db("looking for the tracking tables"))?;
        let reads = [select_applied!(), select_progress!(), select_normalized!()];
        let mut history = Self::default();
        for (exists, sql) in exists.into_iter().zip(reads) {
            if exists {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut *conn).await;
                let rows = rows.map_err(MigrateError::db(doing))?;
                history.absorb(&rows).map_err(MigrateError::db(doing))?;
            }
        }
        Ok(history)
    }

    /// Adds rows of the reads above, each to its place by its `kind`.
    fn absorb(&mut self, rows: &[PgRow]) -> Result<(), sqlx::Error> {
        for row in rows {
            match row.try_get::<&str, _>("kind")? {
                "applied" => self.applied.push(Applied {
                    version: row.try_get("version")?,
                    description: row.try_get("description")?,
                    installed_on: micros_to_time(row.try_get("installed_on_us")?)?,
                    success: row.try_get("success")?,
                    checksum: row.try_get("checksum")?,
                    execution_time: row.try_get("execution_time")?,
                }),
                "progress" => self.progress.push(Progress::from_row(row)?),
                _ => {
                    self.normalized
                        .insert(row.try_get("version")?, row.try_get("normalized_checksum")?);
                }
            }
        }
        Ok(())
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
