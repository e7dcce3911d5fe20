//! What the database records: sqlx's `_sqlx_migrations` rows, the progress of partial
//! no-transaction migrations and the normalized checksums of our events, read without a lock;
//! and the tables themselves.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, PgConnection, Row};
use time::OffsetDateTime;

use crate::error::MigrateError;
use crate::runner::sqlstate;

/// sqlx's tracking table, created exactly as sqlx creates it, and our side tables, for what
/// sqlx's table cannot hold: `_strata_migration_events` (who ran what, from where, how long it
/// waited, statements done) and `_strata_migration_progress` (how far a partial
/// no-transaction migration got). Created by the runner under its lock, never by `migrations/`.
const CREATE_TABLES: &str = "
create table if not exists _sqlx_migrations (
    version bigint primary key,
    description text not null,
    installed_on timestamptz not null default now(),
    success boolean not null,
    checksum bytea not null,
    execution_time bigint not null
);
create table if not exists _strata_migration_events (
    id bigint generated always as identity
        constraint _strata_migration_events_pkey primary key,
    at timestamptz not null default now(),
    kind text not null
        constraint _strata_migration_events_kind_check
        check (kind in ('apply', 'revert', 'baseline', 'repair', 'fail')),
    version bigint not null,
    description text not null,
    -- sqlx's checksum of the file, and ours of its normalized text (LF, no trailing blanks).
    checksum bytea,
    normalized_checksum bytea,
    db_user text not null default current_user,
    os_user text,
    host text,
    app_version text not null,
    lock_wait_ms double precision,
    duration_ms double precision,
    -- For no-transaction files: statements run so far, out of how many.
    statements_done integer,
    statements_total integer,
    retries integer not null default 0,
    detail text
);
create table if not exists _strata_migration_progress (
    version bigint constraint _strata_migration_progress_pkey primary key,
    checksum bytea not null,
    statements_done integer not null,
    statements_total integer not null,
    updated_at timestamptz not null default now()
);";

/// Creates sqlx's tracking table and the side tables if they do not exist yet (under the
/// migration lock), in one round trip (a simple-protocol batch).
pub(crate) async fn create_tables(conn: &mut PgConnection) -> Result<(), MigrateError> {
    sqlx::raw_sql(CREATE_TABLES)
        .execute(conn)
        .await
        .map_err(MigrateError::db("creating _sqlx_migrations and the side tables"))?;
    Ok(())
}

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

/// The three reads. Each row starts with a `kind` column, so the rows of a batch can be told
/// apart. Reads come back as text (simple protocol): the time is read as microseconds since the
/// epoch, so it decodes the same whatever the session's `TimeZone` or `DateStyle` (a
/// migration may set either).
const READS: [&str; 3] = [
    "select 'applied' as kind, version, description,
            (extract(epoch from installed_on) * 1000000)::bigint as installed_on_us, success,
            checksum, execution_time
       from _sqlx_migrations order by version",
    "select 'progress' as kind, version, checksum, statements_done, statements_total
       from _strata_migration_progress order by version",
    "select distinct on (version) 'normalized' as kind, version, normalized_checksum
       from _strata_migration_events
      where normalized_checksum is not null and kind in ('apply', 'baseline', 'repair')
      order by version, id desc",
];

/// The three reads in one simple-protocol batch: one round trip.
static READ_ALL: LazyLock<String> = LazyLock::new(|| READS.join(";\n"));

fn micros_to_time(micros: i64) -> Result<OffsetDateTime, sqlx::Error> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
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
        let doing = "reading the migration history";
        let rows = match sqlx::raw_sql(AssertSqlSafe(READ_ALL.as_str())).fetch_all(&mut *conn).await
        {
            Ok(rows) => rows,
            Err(e) if sqlstate::is_undefined_table(&e) => {
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
        let mut history = Self::default();
        for (exists, sql) in exists.into_iter().zip(READS) {
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
