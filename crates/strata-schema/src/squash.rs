//! `squash`: the files of a history through one version become one checkpoint migration,
//! proven before it is written.
//!
//! The checkpoint is the generator's output from an empty database to the schema those files
//! give (dependency order, not a dump), then the rows the files inserted, then the sequences
//! they moved. It takes the version of the last file it replaces and lists every replaced
//! file's version and checksum in its header, which the runner reads (see
//! `strata_migrate::checkpoint::replaced_by`): a new database runs the checkpoint; one that applied the
//! files records it without running it.
//!
//! Proof, on scratch databases of the configured server:
//! 1. the files are applied to one (A), the checkpoint to another (B): the catalogs (the
//!    snapshot and the generator's model) and every table's rows and every sequence must be
//!    the same;
//! 2. the runner is run with the checkpoint on A, which applied the files: it must record
//!    the checkpoint and run nothing.
//!
//! Rows are carried, not refused: seed data and enum-like tables are part of the schema's
//! meaning, and a checkpoint that dropped them would give new databases less than old ones.
//! A table with more than [`MAX_ROWS`] rows is refused: that is data, not seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use strata_config::Config;
use strata_migrate::checkpoint::Replaced;
use strata_migrate::scratch::with_scratch;
use strata_migrate::{Session, Settings, UpOptions};

use crate::error::SchemaError;
use crate::generate::{Scratch, State, differing, read_state};
use crate::model;
use crate::plan::plan;

/// The most rows a table may hold for a checkpoint to carry them.
pub const MAX_ROWS: i64 = 10_000;

/// What to squash.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SquashOptions {
    /// The history's directory: the checkpoint is written there and the files it replaces
    /// are deleted from it.
    pub source: PathBuf,
    /// The last version the checkpoint stands for (an up file's version).
    pub through: i64,
    /// The checkpoint's name (`checkpoint`).
    pub name: String,
    /// Check the configured database under the migration lock first (no failed migration
    /// through `through`, and none of them pending when some are applied).
    pub check_database: bool,
}

impl SquashOptions {
    /// Options to squash the files of `source` through `through` into `<through>_checkpoint`,
    /// checking the configured database first.
    pub fn new(source: impl Into<PathBuf>, through: i64) -> Self {
        Self { source: source.into(), through, name: "checkpoint".to_owned(), check_database: true }
    }
}

/// What `squash` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SquashReport {
    /// The checkpoint's up file.
    pub checkpoint: PathBuf,
    /// Its down file, which refuses (down past a checkpoint is refused).
    pub down: PathBuf,
    /// The versions it stands for.
    pub replaced: Vec<i64>,
    /// The files deleted from the directory.
    pub deleted: Vec<PathBuf>,
    /// Its schema statements.
    pub statements: usize,
    /// Rows carried, by table.
    pub rows: BTreeMap<String, i64>,
    /// Sequences set to where the files left them.
    pub sequences: usize,
    /// How many of the files the configured database applied (none or all), when checked.
    pub database_applied: Option<usize>,
}

/// Squashes, proves and writes the checkpoint of `options.source` through `options.through`.
///
/// # Errors
///
/// [`SchemaError::Refused`] when there is nothing to squash, a version is not an up file's, a
/// table holds more than [`MAX_ROWS`] rows, or the files make what the generator does not
/// cover; [`SchemaError::NotProven`] when the checkpoint does not give the files' schema and
/// rows; the runner's errors, among them [`strata_migrate::MigrateError::Checkpoint`] when
/// the configured database has a failed or pending migration through that version, and
/// [`strata_migrate::MigrateError::LockTimeout`] when another runner keeps the lock.
pub async fn squash(config: &Config, options: &SquashOptions) -> Result<SquashReport, SchemaError> {
    strata_migrate::files::check_migration_name(&options.name).map_err(SchemaError::Refused)?;
    let migrator = strata_migrate::files::read_migrations(&options.source).await?;
    let squashed: Vec<&Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && m.version <= options.through)
        .collect();
    if !squashed.iter().any(|m| m.version == options.through) {
        return Err(SchemaError::Refused(format!(
            "there is no up migration with version {} in {}",
            options.through,
            options.source.display()
        )));
    }
    if squashed.len() < 2 {
        return Err(SchemaError::Refused(format!(
            "nothing to squash: {} is the only migration through {}",
            strata_migrate::files::file_name(squashed[0]),
            options.through
        )));
    }
    let settings = Settings::from_config(&config.migrations);
    let database_applied = if options.check_database {
        let mut session = Session::from_config(config).await?;
        let result = session.squashable(&migrator, options.through, &settings).await;
        session.close().await;
        Some(result?)
    } else {
        None
    };
    let replaced = replaced_list(&squashed)?;
    let files = Migrator::with_migrations(squashed.iter().map(|m| (*m).clone()).collect());
    let dir = Scratch::new()?;
    let (text, data, statements) = with_scratch(config, "squash_files", async |a| {
        let mut files_db = Session::from_config(a).await?;
        let result =
            prove(config, &mut files_db, &files, &settings, options, &replaced, &dir).await;
        files_db.close().await;
        result
    })
    .await?;
    let (checkpoint, down, deleted) = write(options, &migrator, &text)?;
    let sum = options.source.join("strata.sum");
    if sum.exists() {
        let now = strata_migrate::files::read_migrations(&options.source).await?;
        std::fs::write(&sum, strata_migrate::files::sum_file(&now))
            .map_err(|source| SchemaError::Write { path: sum.clone(), source })?;
    }
    Ok(SquashReport {
        checkpoint,
        down,
        replaced: replaced.iter().map(|r| r.version).collect::<BTreeSet<_>>().into_iter().collect(),
        deleted,
        statements,
        rows: data.rows,
        sequences: data.sequences.len(),
        database_applied,
    })
}

/// What the checkpoint stands for: every squashed file, and what an older checkpoint among
/// them stood for.
fn replaced_list(squashed: &[&Migration]) -> Result<Vec<Replaced>, SchemaError> {
    let mut replaced = Vec::new();
    for m in squashed {
        if let Some(older) = strata_migrate::checkpoint::replaced_by(m)? {
            replaced.extend(older);
        }
        replaced.push(Replaced {
            version: m.version,
            checksum: m.checksum.to_vec(),
            description: m.description.to_string(),
        });
    }
    replaced.sort_by_key(|r| r.version);
    Ok(replaced)
}

/// The rows and sequences a checkpoint carries, as statements.
#[derive(Debug, Default)]
struct Data {
    /// Inserts (with their trigger switches), tables in foreign-key order.
    inserts: Vec<String>,
    /// Rows by table.
    rows: BTreeMap<String, i64>,
    /// `setval` of each sequence the files moved.
    sequences: Vec<String>,
}

/// Applies the files on `files_db`, builds the checkpoint, applies it on a second scratch
/// database and compares; then runs the runner with it where the files were applied.
/// Returns the checkpoint's text, the rows and sequences it carries, and its statements.
async fn prove(
    config: &Config,
    files_db: &mut Session,
    files: &Migrator,
    settings: &Settings,
    options: &SquashOptions,
    replaced: &[Replaced],
    dir: &Scratch,
) -> Result<(String, Data, usize), SchemaError> {
    files_db.up(files, &UpOptions::new(settings.clone())).await?;
    let conn = files_db.raw_connection();
    let want = read_state(conn).await?;
    let data = carried_data(conn).await?;
    let want_rows = digests(conn).await?;
    let (text, statements, checkpoint) = with_scratch(config, "squash_checkpoint", async |fresh| {
        let mut fresh = Session::from_config(fresh).await?;
        let result = async {
            let empty = model::read(fresh.raw_connection()).await?;
            let plan = plan(&empty, &want.0, false)?;
            let statements: Vec<String> = plan.atomic.into_iter().chain(plan.online).collect();
            let text = checkpoint_text(options.through, replaced, &statements, &data);
            let [up, down] = file_names(options);
            for (name, text) in [(up, text.clone()), (down, down_text(options.through))] {
                let path = dir.path().join(name);
                std::fs::write(&path, text)
                    .map_err(|source| SchemaError::Write { path, source })?;
            }
            let checkpoint = strata_migrate::files::read_migrations(dir.path()).await?;
            fresh.up(&checkpoint, &UpOptions::new(settings.clone())).await?;
            let differences = compare(fresh.raw_connection(), &want, &want_rows).await?;
            if differences.is_empty() {
                Ok((text, statements.len(), checkpoint))
            } else {
                Err(SchemaError::NotProven { stage: "checkpoint", expected: "files'", differences })
            }
        }
        .await;
        fresh.close().await;
        result
    })
    .await?;
    // Where the files were applied, the runner records the checkpoint and runs nothing.
    let report = files_db.up(&checkpoint, &UpOptions::new(settings.clone())).await?;
    let conn = files_db.raw_connection();
    let recorded: Vec<u8> =
        sqlx::query_scalar("select checksum from _sqlx_migrations where version = $1")
            .bind(options.through)
            .fetch_one(&mut *conn)
            .await
            .map_err(SchemaError::db("reading the checkpoint's record"))?;
    let expected =
        checkpoint.iter().find(|m| m.version == options.through).map(|m| m.checksum.to_vec());
    let mut differences = compare(conn, &want, &want_rows).await?;
    if report.applied.len() != 1 || Some(recorded) != expected {
        differences.push(format!(
            "the runner did not record the checkpoint where its files were applied ({} step(s))",
            report.applied.len()
        ));
    }
    if !differences.is_empty() {
        return Err(SchemaError::NotProven {
            stage: "checkpoint",
            expected: "files' (recorded, not run)",
            differences,
        });
    }
    Ok((text, data, statements))
}

/// The lines in which the database `conn` is on differs from the files' schema `want` and
/// rows `want_rows`.
async fn compare(
    conn: &mut PgConnection,
    want: &State,
    want_rows: &BTreeMap<String, String>,
) -> Result<Vec<String>, SchemaError> {
    let mut differences = differing(want, &read_state(&mut *conn).await?);
    differences.extend(row_differences(want_rows, &digests(conn).await?));
    Ok(differences)
}

/// The checkpoint's file names: `<through>_<name>.up.sql` and `.down.sql`.
fn file_names(options: &SquashOptions) -> [String; 2] {
    [
        format!("{}_{}.up.sql", options.through, options.name),
        format!("{}_{}.down.sql", options.through, options.name),
    ]
}

/// The checkpoint: its header, the schema's statements, the rows, the sequences.
fn checkpoint_text(
    through: i64,
    replaced: &[Replaced],
    statements: &[String],
    data: &Data,
) -> String {
    let mut text = strata_migrate::checkpoint::header(through, replaced);
    text.push_str(&format!(
        "\n-- The schema: {} statement(s), in dependency order.\n",
        statements.len()
    ));
    for statement in statements {
        text.push_str(statement.trim_end());
        text.push('\n');
    }
    if !data.inserts.is_empty() {
        text.push_str(&format!(
            "\n-- The rows the migrations inserted ({} table(s)), their triggers off meanwhile.\n",
            data.rows.len()
        ));
        for insert in &data.inserts {
            text.push_str(insert);
            text.push('\n');
        }
    }
    if !data.sequences.is_empty() {
        text.push_str("\n-- The sequences, where the migrations left them.\n");
        for setval in &data.sequences {
            text.push_str(setval);
            text.push('\n');
        }
    }
    text
}

/// The checkpoint's down file: it refuses, for sqlx-cli's `migrate revert` too (the runner
/// refuses before it runs).
fn down_text(through: i64) -> String {
    format!(
        "-- Checkpoint {through} (down): a checkpoint cannot be reverted; it stands for migrations\n\
         -- squashed into one file, with no down file for them.\n\
         do $$ begin raise exception 'checkpoint {through} cannot be reverted: restore a backup, or write a new migration that undoes what you need'; end $$;\n"
    )
}

/// The user tables outside extensions, not the runner's own: `(oid, qualified name, whether
/// it is a partition)`.
const TABLES: &str = "
    select c.oid::bigint, c.oid::regclass::text, c.relispartition
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = any($1)
       and n.nspname not in ('pg_catalog', 'information_schema')
       and n.nspname not like 'pg\\_toast%'
       and c.relname <> '_sqlx_migrations'
       and c.relname not like '\\_strata\\_migration\\_%'
       and not exists (select from pg_depend d
                        where d.classid = 'pg_class'::regclass and d.objid = c.oid
                          and d.deptype = 'e')
     order by 2";

/// `(oid, qualified name, partition)` of the tables of the kinds `kinds` (`pg_class.relkind`).
async fn tables(
    conn: &mut PgConnection,
    kinds: &[&str],
) -> Result<Vec<(i64, String, bool)>, SchemaError> {
    sqlx::query_as(TABLES)
        .bind(kinds)
        .fetch_all(conn)
        .await
        .map_err(SchemaError::db("listing the tables"))
}

/// A text literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The rows and sequences the files left, as statements: an insert per table with rows (from
/// its rows as JSON, generated columns left out, identity values kept), parents before the
/// tables whose foreign keys point at them; a `setval` per sequence that moved.
async fn carried_data(conn: &mut PgConnection) -> Result<Data, SchemaError> {
    let mut data = Data::default();
    // Partitioned tables take their partitions' rows; partitions are not listed apart.
    let mut with_rows = Vec::new();
    for (oid, name, partition) in tables(conn, &["r", "p"]).await? {
        if partition {
            continue;
        }
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from {name}")))
            .fetch_one(&mut *conn)
            .await
            .map_err(SchemaError::db("counting a table's rows"))?;
        if rows > MAX_ROWS {
            return Err(SchemaError::Refused(format!(
                "{name} holds {rows} rows after the migrations: that is data, not seed; a checkpoint carries up to {MAX_ROWS} rows a table. Move the data load out of the migrations, or squash through an earlier version"
            )));
        }
        if rows > 0 {
            with_rows.push((oid, name, rows));
        }
    }
    let references: Vec<(i64, i64)> = sqlx::query_as(
        "select conrelid::bigint, confrelid::bigint from pg_constraint
          where contype = 'f' and conrelid <> confrelid",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(SchemaError::db("reading foreign keys"))?;
    for (oid, name, rows) in foreign_key_order(with_rows, &references) {
        let row = sqlx::query(
            "select string_agg(quote_ident(attname), ', ' order by attnum),
                    bool_or(attidentity = 'a'),
                    exists (select from pg_trigger where tgrelid = $1::oid and not tgisinternal)
               from pg_attribute
              where attrelid = $1::oid and attnum > 0 and not attisdropped and attgenerated = ''",
        )
        .bind(oid)
        .fetch_one(&mut *conn)
        .await
        .map_err(SchemaError::db("reading a table's columns"))?;
        let columns: String =
            row.try_get(0).map_err(SchemaError::db("reading a table's columns"))?;
        let identity: bool =
            row.try_get(1).map_err(SchemaError::db("reading a table's columns"))?;
        let triggers: bool =
            row.try_get(2).map_err(SchemaError::db("reading a table's columns"))?;
        let json: String =
            sqlx::query_scalar(AssertSqlSafe(format!("select json_agg(t)::text from {name} t")))
                .fetch_one(&mut *conn)
                .await
                .map_err(SchemaError::db("reading a table's rows"))?;
        let overriding = if identity { "overriding system value " } else { "" };
        let insert = format!(
            "insert into {name} ({columns}) {overriding}select {columns} from json_populate_recordset(null::{name}, {});",
            literal(&json)
        );
        if triggers {
            data.inserts.push(format!("alter table {name} disable trigger user;"));
            data.inserts.push(insert);
            data.inserts.push(format!("alter table {name} enable trigger user;"));
        } else {
            data.inserts.push(insert);
        }
        data.rows.insert(name, rows);
    }
    for (_, name, _) in tables(conn, &["S"]).await? {
        let (last, called): (i64, bool) =
            sqlx::query_as(AssertSqlSafe(format!("select last_value, is_called from {name}")))
                .fetch_one(&mut *conn)
                .await
                .map_err(SchemaError::db("reading a sequence"))?;
        if called {
            data.sequences.push(format!("select setval({}, {last}, true);", literal(&name)));
        }
    }
    Ok(data)
}

/// Tables with rows, ordered so that a table comes after those its foreign keys reference
/// (a cycle keeps the rest in name order; the proof then tells whether that works).
fn foreign_key_order(
    mut tables: Vec<(i64, String, i64)>,
    references: &[(i64, i64)],
) -> Vec<(i64, String, i64)> {
    let mut ordered = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let waiting: BTreeSet<i64> = tables.iter().map(|t| t.0).collect();
        let ready = tables.iter().position(|(oid, ..)| {
            !references.iter().any(|(from, to)| from == oid && waiting.contains(to))
        });
        ordered.push(tables.remove(ready.unwrap_or(0)));
    }
    ordered
}

/// Each table's row count and digest, and each sequence's position, by name.
async fn digests(conn: &mut PgConnection) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = BTreeMap::new();
    for (_, name, _) in tables(conn, &["r"]).await? {
        let digest: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "select count(*) || ' rows, md5 ' || coalesce(md5(string_agg(t::text, e'\\n' order by t::text)), '-') from {name} t"
        )))
        .fetch_one(&mut *conn)
        .await
        .map_err(SchemaError::db("reading a table's rows"))?;
        out.insert(format!("table {name}"), digest);
    }
    for (_, name, _) in tables(conn, &["S"]).await? {
        let position: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "select last_value || case when is_called then ' (called)' else '' end from {name}"
        )))
        .fetch_one(&mut *conn)
        .await
        .map_err(SchemaError::db("reading a sequence"))?;
        out.insert(format!("sequence {name}"), position);
    }
    Ok(out)
}

/// The lines in which the rows differ (`-` the files', `+` the checkpoint's).
fn row_differences(
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for key in want.keys().chain(have.keys()).collect::<BTreeSet<_>>() {
        let (w, h) = (want.get(key), have.get(key));
        if w != h {
            out.push(format!(
                "{key}: the files give {}, the checkpoint {}",
                w.map_or("nothing", String::as_str),
                h.map_or("nothing", String::as_str)
            ));
        }
    }
    out
}

/// Writes the checkpoint into the history's directory and deletes the files it replaces (the
/// new files go in under temporary names first, so a failure loses no file), then the sum
/// file when the directory has one. Returns the up file, the down file and what was deleted.
fn write(
    options: &SquashOptions,
    migrator: &Migrator,
    text: &str,
) -> Result<(PathBuf, PathBuf, Vec<PathBuf>), SchemaError> {
    let dir = &options.source;
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SchemaError::Write { path, source }
    };
    let [up, down] = file_names(options);
    let staged: Vec<(PathBuf, PathBuf)> =
        [(up, text.to_owned()), (down, down_text(options.through))]
            .into_iter()
            .map(|(name, text)| {
                let temporary = dir.join(format!(".{name}.tmp"));
                std::fs::write(&temporary, text).map_err(error(&temporary))?;
                Ok((temporary, dir.join(name)))
            })
            .collect::<Result<_, SchemaError>>()?;
    // By the version in the name as written (`00000000000000_init.sql` is version 0).
    let versions: BTreeSet<i64> =
        migrator.iter().map(|m| m.version).filter(|v| *v <= options.through).collect();
    let mut replaced: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(error(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|path| {
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.ends_with(".sql")
                && name
                    .split_once('_')
                    .and_then(|(v, _)| v.parse::<i64>().ok())
                    .is_some_and(|v| versions.contains(&v))
        })
        .collect();
    replaced.sort();
    let mut deleted = Vec::new();
    for path in replaced {
        std::fs::remove_file(&path).map_err(error(&path))?;
        deleted.push(path);
    }
    for (temporary, path) in &staged {
        std::fs::rename(temporary, path).map_err(error(path))?;
    }
    Ok((staged[0].1.clone(), staged[1].1.clone(), deleted))
}
