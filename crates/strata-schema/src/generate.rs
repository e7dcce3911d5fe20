//! `generate`: the migration that takes a history to a desired schema, written only once it
//! is proven on a scratch database: its up gives exactly the desired schema, and its down
//! gives back exactly the previous one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection};
use strata_config::{Config, DatabaseUrl};
use strata_migrate::scratch::with_scratch;
use strata_migrate::{DownOptions, DownTarget, Session, Settings, UpOptions};

use crate::catalog::{self, Schema};
use crate::error::SchemaError;
use crate::lint::{LintOptions, LintReport, lint};
use crate::model::{self, Model};
use crate::plan::{Plan, plan};

/// Where the desired schema comes from.
#[derive(Debug, Clone)]
pub enum Desired {
    /// A `.sql` file, or a directory of them (applied in path order, psql's `\` lines
    /// skipped, so `pg_dump --schema-only` output works).
    Files(PathBuf),
    /// A live database, read only (to adopt an existing one).
    Url(DatabaseUrl),
}

/// What to generate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// The migrations' name (`add_due_dates`): lowercase letters, digits and `_`.
    pub name: String,
    /// The history's directory, where the files are written.
    pub source: PathBuf,
    /// The desired schema.
    pub desired: Desired,
    /// Renames the caller vouches for: `table=new_name`, `table.column=new_name` (a schema
    /// may lead: `app.tasks.title=name`). Each must name a table or column of the history.
    /// The desired schema's files may carry the same hints as comments,
    /// `-- strata: rename tasks.title=name`; those apply only while the history still has the
    /// old name and not the new one, so they can stay in `schema/` once applied.
    pub renames: Vec<String>,
    /// Only compare: report [`Generation::Differs`] when the history does not give the
    /// desired schema, and write nothing (for CI).
    pub check: bool,
}

impl GenerateOptions {
    /// Options for `name`, from the history in `source` to `desired`.
    pub fn new(name: impl Into<String>, source: impl Into<PathBuf>, desired: Desired) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            desired,
            renames: Vec::new(),
            check: false,
        }
    }
}

/// One file written.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenFile {
    /// Its path.
    pub path: PathBuf,
    /// Its statements (without the header comments).
    pub statements: usize,
}

/// What `generate` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Generation {
    /// The history already gives the desired schema: nothing was written.
    Equal,
    /// With `check`: the history does not give the desired schema. Nothing was written.
    Differs {
        /// `-` in the desired schema only, `+` in the history's only.
        differences: Vec<String>,
    },
    /// The files were proven and written.
    Written {
        /// Up and down files, in version order.
        files: Vec<WrittenFile>,
        /// What the up files destroy (tables, columns).
        drops_data: Vec<String>,
        /// What the down files destroy.
        down_drops_data: Vec<String>,
        /// What `lint` reports on the up files: what still takes a heavy lock or rewrites a
        /// table, generated because the change needs it.
        lint: LintReport,
    },
}

/// A pair of files to write.
struct Pair {
    version: i64,
    name: String,
    online: bool,
    up: Vec<String>,
    down: Vec<String>,
    up_drops: Vec<String>,
    down_drops: Vec<String>,
}

/// Generates, proves and writes the migration from the history in `options.source` to
/// `options.desired`; both schemas are built on scratch databases of the configured server.
///
/// # Errors
///
/// [`SchemaError::Refused`] for a change the generator will not make (it names the objects
/// and says what to do), [`SchemaError::NotProven`] when the generated files do not give
/// exactly the desired schema and back, [`SchemaError::Desired`] for a desired schema that
/// does not apply, and the runner's errors.
pub async fn generate(
    config: &Config,
    options: &GenerateOptions,
) -> Result<Generation, SchemaError> {
    strata_migrate::files::check_migration_name(&options.name).map_err(SchemaError::Refused)?;
    let history = strata_migrate::files::read_migrations(&options.source).await?;
    let settings = Settings::from_config(&config.migrations);
    // The desired schema is read (or built on a scratch database of its own) while this
    // command's scratch database is made and the history replays there: all of it waits on
    // the server, and making a database alone costs 140-240 ms here.
    let (wanted, want) = tokio::sync::oneshot::channel();
    let read_desired = async {
        let _ = wanted.send(desired(config, &options.desired).await);
    };
    let in_scratch = with_scratch(config, "generate", async |scratch| {
        let mut session = Session::from_config(scratch).await?;
        let result = async {
            session.up(&history, &UpOptions::new(settings.clone())).await?;
            let previous = read_state(session.raw_connection()).await?;
            let (want, hints) = want.await.map_err(|_| {
                SchemaError::Refused("the desired schema was not read".to_owned())
            })??;
            prove(&mut session, &settings, options, (&history, &want, &hints), previous).await
        }
        .await;
        session.close().await;
        let pairs = match result? {
            Proof::Equal => return Ok(Generation::Equal),
            Proof::Differs(differences) => return Ok(Generation::Differs { differences }),
            Proof::Proven(pairs) => pairs,
        };
        let mut generation = write(options, pairs)?;
        lint_generated(&mut generation).await?;
        Ok(generation)
    });
    let ((), generation) = tokio::join!(read_desired, in_scratch);
    generation
}

/// On the scratch database brought to the history (whose state is `previous`): plans,
/// applies the up files and then the down files, comparing each time: the pairs when both
/// prove out.
async fn prove(
    session: &mut Session,
    settings: &Settings,
    options: &GenerateOptions,
    (history, want, hints): (&Migrator, &State, &[Hint]),
    previous: State,
) -> Result<Proof, SchemaError> {
    let differences = differing(want, &previous);
    if differences.is_empty() {
        return Ok(Proof::Equal);
    }
    if options.check {
        return Ok(Proof::Differs(differences));
    }
    let before = &previous.0;
    let mut named = options.renames.clone();
    named.extend(hints.iter().filter(|h| h.applies(before)).map(|h| h.rename.clone()));
    let (renames, unrenames) = renames(before, &named)?;
    let renamed = if renames.is_empty() {
        before.clone()
    } else {
        let conn = session.raw_connection();
        let mut tx =
            conn.begin().await.map_err(SchemaError::db("renaming on the scratch database"))?;
        for sql in &renames {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(SchemaError::db("renaming on the scratch database"))?;
        }
        let renamed = model::read(&mut tx).await?;
        tx.rollback().await.map_err(SchemaError::db("renaming on the scratch database"))?;
        renamed
    };
    let up = plan(&renamed, &want.0, true)?;
    if up.is_empty() && renames.is_empty() {
        return Err(SchemaError::Refused(format!(
            "the schemas differ in what the generator does not cover; write this migration by hand:\n{}",
            differences.join("\n")
        )));
    }
    let version = strata_migrate::files::next_version(&options.source).map_err(|e| {
        SchemaError::Desired { path: options.source.clone(), message: e.to_string() }
    })?;
    let mut pairs = Vec::new();
    let mut atomic = renames.clone();
    atomic.extend(up.atomic.iter().cloned());
    if !atomic.is_empty() {
        pairs.push(Pair {
            version,
            name: options.name.clone(),
            online: false,
            up: atomic,
            down: Vec::new(),
            up_drops: up.drops_data.clone(),
            down_drops: Vec::new(),
        });
    }
    if !up.online.is_empty() {
        pairs.push(Pair {
            version: version + i64::try_from(pairs.len()).unwrap_or(0),
            name: format!("{}_online", options.name),
            online: true,
            up: up.online.clone(),
            down: Vec::new(),
            up_drops: if pairs.is_empty() { up.drops_data.clone() } else { Vec::new() },
            down_drops: Vec::new(),
        });
    }
    // The generated files are written and read back as the runner reads them; the history,
    // read already, joins them in memory (copying its files to read them all again cost
    // about 40 ms on a history of 167 files).
    let dir = Scratch::new()?;
    for pair in &pairs {
        write_pair(dir.path(), pair, false)?;
    }
    let with_ups = with_generated(history, dir.path()).await?;
    // Up, pair by pair: the states between are what each down file goes back to.
    let mut states = vec![renamed];
    for pair in &pairs {
        let mut options = UpOptions::new(settings.clone());
        options.target = Some(pair.version);
        session.up(&with_ups, &options).await.map_err(does_not_apply)?;
        states.push(model::read(session.raw_connection()).await?);
    }
    let after_schema = catalog::snapshot(session.raw_connection()).await?;
    let after = states.last().cloned().unwrap_or_default();
    proven("up", "desired", want, &(after, after_schema))?;
    for (i, pair) in pairs.iter_mut().enumerate() {
        let back: Plan = plan(&states[i + 1], &states[i], false)?;
        pair.down = back.atomic.into_iter().chain(back.online).collect();
        if i == 0 {
            pair.down.extend(unrenames.iter().cloned());
        }
        pair.down_drops = back.drops_data;
        write_pair(dir.path(), pair, true)?;
    }
    let with_downs = with_generated(history, dir.path()).await?;
    session
        .down(&with_downs, &DownOptions::new(settings.clone(), DownTarget::Steps(pairs.len())))
        .await?;
    let back = read_state(session.raw_connection()).await?;
    proven("down", "previous", &previous, &back)?;
    Ok(Proof::Proven(pairs))
}

/// The history's migrations and those of the generated files in `dir`, as one migrator.
async fn with_generated(history: &Migrator, dir: &Path) -> Result<Migrator, SchemaError> {
    let generated = strata_migrate::files::read_migrations(dir).await?;
    Ok(Migrator::with_migrations(history.iter().chain(generated.iter()).cloned().collect()))
}

/// A generated file that fails on the scratch database is refused, with the server's reason:
/// the proof caught what the models could not tell (values that no cast converts, say).
fn does_not_apply(error: strata_migrate::MigrateError) -> SchemaError {
    match error {
        strata_migrate::MigrateError::Migration { message, .. } => {
            let hint = if message.contains("42846") {
                "a column changes to a type its values cannot be cast to: mapping the values is a data migration"
            } else {
                "the change needs what the catalogs do not say"
            };
            SchemaError::Refused(format!(
                "the generated migration does not apply on top of the history, so nothing was written ({hint}); write this one by hand (`just new NAME`):\n  {message}"
            ))
        }
        other => other.into(),
    }
}

/// What [`prove`] found.
enum Proof {
    /// Nothing to do.
    Equal,
    /// With `check`: the lines that differ.
    Differs(Vec<String>),
    /// The pairs, proven.
    Proven(Vec<Pair>),
}

/// The lines in which the schemas of two databases differ (`-` only in `expected`'s, `+` only
/// in `actual`'s), by the snapshot and by the generator's model: what `generate` proves with.
///
/// # Errors
///
/// [`SchemaError::Database`] when a catalog cannot be read.
pub async fn compare_databases(
    expected: &mut sqlx::PgConnection,
    actual: &mut sqlx::PgConnection,
) -> Result<Vec<String>, SchemaError> {
    Ok(differing(&read_state(expected).await?, &read_state(actual).await?))
}

/// A database's schema as both readers see it: the generator's model and the snapshot.
pub(crate) type State = (Model, Schema);

/// Reads [`State`] from the database `conn` is on.
pub(crate) async fn read_state(conn: &mut sqlx::PgConnection) -> Result<State, SchemaError> {
    Ok((model::read(&mut *conn).await?, catalog::snapshot(conn).await?))
}

/// The lines in which `actual` differs from `expected`: the snapshot's, or, when it sees no
/// difference, the model's (`-` expected only, `+` actual only).
pub(crate) fn differing((want_model, want): &State, (have_model, have): &State) -> Vec<String> {
    let mut differences: Vec<String> =
        catalog::differences(want, have).iter().map(ToString::to_string).collect();
    if differences.is_empty() {
        let want: std::collections::BTreeSet<String> = want_model.lines().into_iter().collect();
        let have: std::collections::BTreeSet<String> = have_model.lines().into_iter().collect();
        differences.extend(want.difference(&have).map(|l| format!("- {l}")));
        differences.extend(have.difference(&want).map(|l| format!("+ {l}")));
    }
    differences
}

/// [`SchemaError::NotProven`] unless `actual` is `expected`.
fn proven(
    stage: &'static str,
    expected_name: &'static str,
    expected: &State,
    actual: &State,
) -> Result<(), SchemaError> {
    let differences = differing(expected, actual);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::NotProven { stage, expected: expected_name, differences })
    }
}

/// A rename hint written in the desired schema: `-- strata: rename tasks.title=name`.
#[derive(Debug, Clone)]
struct Hint {
    /// As `--rename` takes it.
    rename: String,
}

impl Hint {
    /// The hints in a file's text; a malformed one is an error naming the file.
    fn parse(path: &Path, text: &str) -> Result<Vec<Hint>, SchemaError> {
        let mut hints = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let Some(rest) = line.trim().strip_prefix("--") else { continue };
            let Some(rest) = rest.trim().strip_prefix("strata:") else { continue };
            let rename = rest.trim().strip_prefix("rename ").map(str::trim).filter(|r| {
                r.split_once('=').is_some_and(|(old, new)| {
                    !old.trim().is_empty()
                        && !new.trim().is_empty()
                        && !new.trim().contains(['.', ' '])
                })
            });
            match rename {
                Some(rename) => hints.push(Hint { rename: rename.replace(' ', "") }),
                None => {
                    return Err(SchemaError::Desired {
                        path: path.to_path_buf(),
                        message: format!(
                            "line {}: expected `-- strata: rename TABLE=NEW_NAME` or `-- strata: rename TABLE.COLUMN=NEW_NAME`, found `{}`",
                            n + 1,
                            line.trim()
                        ),
                    });
                }
            }
        }
        Ok(hints)
    }

    /// Whether the history (`model`) still has the old name and not yet the new one: a hint
    /// stays in `schema/` after its migration, and is then simply spent.
    fn applies(&self, model: &Model) -> bool {
        let Some((old, new)) = self.rename.split_once('=') else { return false };
        let renamed = match old.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.{new}"),
            None => new.to_owned(),
        };
        let exists = |name: &str| renames(model, &[format!("{name}=x")]).is_ok();
        exists(old) && !exists(&renamed)
    }
}

/// The desired schema's model and snapshot, and the rename hints its files carry.
async fn desired(config: &Config, desired: &Desired) -> Result<(State, Vec<Hint>), SchemaError> {
    match desired {
        Desired::Files(path) => {
            let files = sql_files(path)?;
            with_scratch(config, "desired", async |scratch| {
                let mut session = Session::from_config(scratch).await?;
                let mut hints = Vec::new();
                let result = async {
                    for file in &files {
                        let text = std::fs::read_to_string(file).map_err(|e| {
                            SchemaError::Desired { path: file.clone(), message: e.to_string() }
                        })?;
                        hints.extend(Hint::parse(file, &text)?);
                        let sql: String = text
                            .lines()
                            .filter(|l| !l.trim_start().starts_with('\\'))
                            .collect::<Vec<_>>()
                            .join("\n");
                        sqlx::raw_sql(AssertSqlSafe(sql))
                            .execute(&mut *session.raw_connection())
                            .await
                            .map_err(|e| SchemaError::Desired {
                                path: file.clone(),
                                message: e.to_string(),
                            })?;
                    }
                    // pg_dump's files empty the search path; the reads qualify every name.
                    sqlx::raw_sql("reset all")
                        .execute(&mut *session.raw_connection())
                        .await
                        .map_err(SchemaError::db("resetting the session"))?;
                    read_state(session.raw_connection()).await
                }
                .await;
                session.close().await;
                Ok((result?, hints))
            })
            .await
        }
        Desired::Url(url) => {
            let mut live = config.clone();
            live.migrations.url = Some(url.clone());
            let mut session = Session::from_config(&live).await?;
            let result = read_state(session.raw_connection()).await;
            session.close().await;
            Ok((result?, Vec::new()))
        }
    }
}

/// The `.sql` files of `path` (itself, or the directory's, recursively, in path order).
fn sql_files(path: &Path) -> Result<Vec<PathBuf>, SchemaError> {
    let error = |e: std::io::Error| SchemaError::Desired {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(error)? {
            let entry = entry.map_err(error)?.path();
            if entry.is_dir() {
                pending.push(entry);
            } else if entry.extension().is_some_and(|e| e == "sql") {
                out.push(entry);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(SchemaError::Desired {
            path: path.to_path_buf(),
            message: "no .sql file here".to_owned(),
        });
    }
    Ok(out)
}

/// The rename statements of the hints, and those that undo them (in reverse order).
fn renames(model: &Model, hints: &[String]) -> Result<(Vec<String>, Vec<String>), SchemaError> {
    let mut up = Vec::new();
    let mut down = Vec::new();
    for hint in hints {
        let bad = || {
            SchemaError::Refused(format!(
                "--rename {hint}: expected TABLE=NEW_NAME or TABLE.COLUMN=NEW_NAME naming a table or column of the history"
            ))
        };
        let (lhs, new) = hint.split_once('=').ok_or_else(bad)?;
        let parts: Vec<&str> = lhs.split('.').collect();
        let table = |schema: &str, name: &str| format!("{}.{}", ident(schema), ident(name));
        let (target, column) = match parts.as_slice() {
            [t] => (table("public", t), None),
            [a, b]
                if model.get(&format!("table {}", table("public", a))).is_some_and(|_| {
                    model.get(&format!("column {}.{}", table("public", a), ident(b))).is_some()
                }) =>
            {
                (table("public", a), Some(*b))
            }
            [a, b] => (table(a, b), None),
            [s, t, c] => (table(s, t), Some(*c)),
            _ => return Err(bad()),
        };
        let new = ident(new.trim());
        match column {
            None => {
                model.get(&format!("table {target}")).ok_or_else(bad)?;
                let schema = target.rsplit_once('.').map_or("", |(s, _)| s);
                up.push(format!("alter table {target} rename to {new};"));
                down.push(format!(
                    "alter table {schema}.{new} rename to {};",
                    target.rsplit_once('.').map_or(target.as_str(), |(_, n)| n)
                ));
            }
            Some(column) => {
                let column = ident(column);
                model.get(&format!("column {target}.{column}")).ok_or_else(bad)?;
                up.push(format!("alter table {target} rename column {column} to {new};"));
                down.push(format!("alter table {target} rename column {new} to {column};"));
            }
        }
    }
    down.reverse();
    Ok((up, down))
}

/// `name` quoted if it needs to be.
fn ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain || (name.starts_with('"') && name.ends_with('"') && name.len() > 1) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The file names of a pair.
fn file_names(pair: &Pair) -> [String; 2] {
    [
        format!("{}_{}.up.sql", pair.version, pair.name),
        format!("{}_{}.down.sql", pair.version, pair.name),
    ]
}

/// The text of one file: `-- no-transaction` first for an online pair, a header, the
/// data-loss warning, then the statements.
fn file_text(pair: &Pair, down: bool) -> String {
    let mut text = String::new();
    if pair.online {
        text.push_str("-- no-transaction\n");
    }
    let (statements, drops) =
        if down { (&pair.down, &pair.down_drops) } else { (&pair.up, &pair.up_drops) };
    text.push_str(&format!(
        "-- {} {}{}: generated by `strata-migrate generate`, proven on a scratch database.\n",
        pair.version,
        pair.name,
        if down { " (down)" } else { "" }
    ));
    if pair.online {
        text.push_str(
            "-- Each statement runs on its own (CONCURRENTLY, VALIDATE): a rerun resumes here.\n",
        );
    }
    if !drops.is_empty() {
        text.push_str(&format!(
            "-- This {} drops data: {}.\n",
            if down { "down file" } else { "migration" },
            drops.join(", ")
        ));
    }
    text.push('\n');
    if statements.is_empty() {
        // The up file's changes cancel out at this point (one that only validates what a
        // later file changes again, say): nothing to undo, and the runner wants a statement.
        text.push_str("-- Nothing to undo here.\nselect 1;\n");
    }
    for statement in statements {
        text.push_str(statement.trim_end());
        text.push('\n');
    }
    text
}

/// Writes a pair's up file, and its down file when `with_down`.
fn write_pair(dir: &Path, pair: &Pair, with_down: bool) -> Result<(), SchemaError> {
    let [up, down] = file_names(pair);
    let mut files = vec![(dir.join(up), file_text(pair, false))];
    if with_down {
        files.push((dir.join(down), file_text(pair, true)));
    }
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|source| SchemaError::Write { path, source })?;
    }
    Ok(())
}

/// Writes the proven pairs into the history's directory (refusing to overwrite a file) and
/// lints the up files.
fn write(options: &GenerateOptions, pairs: Vec<Pair>) -> Result<Generation, SchemaError> {
    let mut files = Vec::new();
    let mut drops_data = Vec::new();
    let mut down_drops_data = Vec::new();
    for pair in &pairs {
        let [up, down] = file_names(pair);
        for (name, is_down) in [(up, false), (down, true)] {
            let path = options.source.join(name);
            let text = file_text(pair, is_down);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
                .map_err(|source| SchemaError::Write { path: path.clone(), source })?;
            let statements = if is_down { pair.down.len() } else { pair.up.len() };
            files.push(WrittenFile { path, statements });
        }
        drops_data.extend(pair.up_drops.iter().cloned());
        down_drops_data.extend(pair.down_drops.iter().cloned());
    }
    Ok(Generation::Written { files, drops_data, down_drops_data, lint: LintReport::default() })
}

/// Lints the up files of a generation (no database: every finding is reported as found).
async fn lint_generated(generation: &mut Generation) -> Result<(), SchemaError> {
    let Generation::Written { files, lint: report, .. } = generation else { return Ok(()) };
    let Some(dir) = files.first().and_then(|f| f.path.parent()).map(Path::to_path_buf) else {
        return Ok(());
    };
    let migrator = strata_migrate::files::read_migrations(&dir).await?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let chosen: Vec<&sqlx::migrate::Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| names.iter().any(|n| *n == strata_migrate::files::file_name(m)))
        .collect();
    *report = lint(&chosen, None, &LintOptions::default()).await?;
    Ok(())
}

/// A directory of its own under the system's temporary directory, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Result<Self, SchemaError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strata-generate-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .map_err(|source| SchemaError::Write { path: path.clone(), source })?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
