//! The generator measured on histories others wrote: for every step of each history, the
//! state before it (the files before, replayed by `generate` itself) is taken to the state
//! after it (a live database that has the step applied, `--to-url`), and the outcome is
//! counted: regenerated exactly (written only once proven), no schema change, refused (with
//! its reason), or failed (nothing written: the proof or the apply failed).
//!
//! With `--squash`, each history is instead squashed through its last step (`squash`, which
//! proves the checkpoint on both kinds of database), and a new database is brought up from
//! the files and from the checkpoint, timed.
//!
//! With `--speed N`, only the last step of each history is generated, N times, against `up` of
//! the whole history N times, each on a new database: the medians and their ratio.
//!
//! Usage: `generate_sweep [--squash | --speed N] [--limit N] [--require-exact] [--out FILE.json] DIR...`, with
//! `DATABASE_URL` naming a server where it may create and drop databases; `--require-exact`
//! fails unless every step is regenerated exactly (CI, on this project's own history). Each DIR holds one history in sqlx's file
//! format (`<version>_<name>.sql` or `.up.sql`). `just generate-sweep` fetches the public
//! histories (scripts/histories.sh) and runs it in release mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use strata_config::{Config, DatabaseUrl};
use strata_schema::{Desired, GenerateOptions, Generation, SchemaError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// sqlx's table, which a history may write to (one deletes its own rows from it).
const SQLX_TABLE: &str = "create table _sqlx_migrations (version bigint primary key,
    description text not null, installed_on timestamptz not null default now(),
    success boolean not null, checksum bytea not null, execution_time bigint not null)";

/// The database that holds each step applied, which `generate` takes as its desired schema
/// (`--to-url`): made afresh, with sqlx's table, which a history may write to.
struct Target {
    admin: PgConnection,
    name: String,
    url: url::Url,
    conn: PgConnection,
}

impl Target {
    async fn create(server: &DatabaseUrl, tag: &str) -> Result<Self, BoxError> {
        let mut admin = PgConnection::connect(server.expose()).await?;
        let name = format!("strata_{tag}_after_{}", std::process::id());
        sqlx::raw_sql(AssertSqlSafe(format!("drop database if exists {name} with (force)")))
            .execute(&mut admin)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("create database {name}"))).execute(&mut admin).await?;
        let mut url = url::Url::parse(server.expose())?;
        url.set_path(&name);
        let mut conn = PgConnection::connect(url.as_str()).await?;
        sqlx::raw_sql(SQLX_TABLE).execute(&mut conn).await?;
        Ok(Self { admin, name, url, conn })
    }

    async fn drop_database(mut self) -> Result<(), BoxError> {
        let _ = self.conn.close().await;
        let drop = format!("drop database if exists {} with (force)", self.name);
        sqlx::raw_sql(AssertSqlSafe(drop)).execute(&mut self.admin).await?;
        Ok(())
    }
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
struct Step {
    file: String,
    outcome: &'static str,
    /// For a refusal or failure: the first line of the message.
    detail: Option<String>,
    /// Files written (for `exact`).
    files: usize,
    millis: u128,
}

/// One history's results.
#[derive(Debug, Clone, Serialize)]
struct History {
    name: String,
    steps: Vec<Step>,
    counts: BTreeMap<&'static str, usize>,
    seconds: f64,
    /// `up` of the whole history on an empty database.
    up_seconds: f64,
    /// `generate` from every file but the last to the schema of all.
    generate_last_seconds: f64,
}

/// The sweep, stopped on Ctrl-C by dropping it: `with_scratch` then drops the scratch
/// database it was using (the library listens to no signal; its callers stop it).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    tokio::select! {
        done = run() => done,
        _ = tokio::signal::ctrl_c() => {
            Err("interrupted (Ctrl-C); the scratch database in use was dropped".into())
        }
    }
}

/// The sweep of the command line's histories.
async fn run() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut limit = usize::MAX;
    let mut require_exact = false;
    let mut out = PathBuf::from("target/sweep/generate-sweep.json");
    let mut dirs = Vec::new();
    let mut squash = false;
    let mut speed = 0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--squash" => squash = true,
            "--speed" => speed = args.next().ok_or("--speed N")?.parse()?,
            "--limit" => limit = args.next().ok_or("--limit N")?.parse()?,
            "--require-exact" => require_exact = true,
            "--out" => out = PathBuf::from(args.next().ok_or("--out FILE")?),
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    if dirs.is_empty() {
        return Err("usage: generate_sweep [--limit N] [--out FILE.json] DIR...".into());
    }
    let mut config = Config::load()?;
    config.migrations.url = config.database.url.clone();
    config.log.filter = "warn".to_owned();
    let server = config.database.url.clone().ok_or("DATABASE_URL names the server")?;
    if squash {
        return squash_all(&config, &dirs, limit, &out).await;
    }
    if speed > 0 {
        return speed_all(&config, &server, &dirs, speed, &out).await;
    }
    let mut histories = Vec::new();
    for dir in &dirs {
        match sweep(&config, &server, dir, limit).await {
            Ok(history) => {
                print_history(&history);
                histories.push(history);
            }
            Err(error) => println!("{}: stopped: {error}", dir.display()),
        }
    }
    let mut total: BTreeMap<&'static str, usize> = BTreeMap::new();
    for h in &histories {
        for (k, v) in &h.counts {
            *total.entry(k).or_default() += v;
        }
    }
    let steps: usize = total.values().sum();
    let exact =
        total.get("exact").copied().unwrap_or(0) + total.get("unchanged").copied().unwrap_or(0);
    let seconds: f64 = histories.iter().map(|h| h.seconds).sum();
    println!(
        "\nall: {steps} steps, {exact} regenerated exactly ({:.1}%), {total:?}, {seconds:.1} s",
        100.0 * exact as f64 / steps.max(1) as f64
    );
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let (compare_seconds, compare_differences) = time_compare(&server, 200).await?;
    println!(
        "comparison of two 200-table schemas: {compare_seconds:.3} s ({compare_differences} differences)"
    );
    for h in &histories {
        println!(
            "{}: up of the whole history {:.2} s, generate of its last step {:.2} s ({:.2}x)",
            h.name,
            h.up_seconds,
            h.generate_last_seconds,
            h.generate_last_seconds / h.up_seconds.max(1e-9)
        );
    }
    let report = serde_json::json!({ "histories": histories, "total": total, "steps": steps,
                                      "exact": exact, "seconds": seconds,
                                      "compare_200_tables_seconds": compare_seconds });
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    if require_exact && exact < steps {
        return Err(format!("{} of {steps} steps not regenerated exactly", steps - exact).into());
    }
    Ok(())
}

fn print_history(history: &History) {
    println!("{}: {:?} in {:.1} s", history.name, history.counts, history.seconds);
    for step in history.steps.iter().filter(|s| s.outcome != "exact" && s.outcome != "unchanged") {
        println!("  {} {}: {}", step.outcome, step.file, step.detail.as_deref().unwrap_or(""));
    }
}

/// The history's files in order.
fn files_of(dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.ends_with(".sql") && !name.ends_with(".down.sql")
        })
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name.split('_').next()?.parse().ok()?, p))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// A file's text as the runner takes it: `-- no-transaction` first where it builds an index
/// concurrently, and without the transaction control a file wrapped in one must not have.
fn runner_text(text: &str) -> String {
    let lower = text.to_lowercase();
    let control = |s: &str| {
        let s = s.trim().trim_end_matches(';').trim().to_lowercase();
        matches!(s.as_str(), "begin" | "commit" | "end" | "start transaction" | "begin transaction")
    };
    let mut out = match strata_migrate::lexer::split(text) {
        Ok(statements) if statements.iter().any(|s| control(s.text)) => statements
            .iter()
            .filter(|s| !control(s.text))
            .map(|s| s.text)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text.to_owned(),
    };
    if lower.contains("concurrently") && !lower.starts_with("-- no-transaction") {
        out = format!("-- no-transaction\n{out}");
    }
    out
}

/// Runs every step of the history in `dir`.
async fn sweep(
    config: &Config,
    server: &DatabaseUrl,
    dir: &Path,
    limit: usize,
) -> Result<History, BoxError> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let files = files_of(dir)?;
    let mut after = Target::create(server, "sweep").await?;
    let history = std::env::temp_dir().join(format!("strata-sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&history);
    std::fs::create_dir_all(&history)?;
    let started = Instant::now();
    let mut steps = Vec::new();
    for file in files.iter().take(limit) {
        let file_name =
            file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = runner_text(&std::fs::read_to_string(file)?);
        apply(&mut after.conn, &text)
            .await
            .map_err(|e| format!("{file_name} does not apply: {e}"))?;
        let at = Instant::now();
        let mut options = GenerateOptions::new(
            "step",
            &history,
            Desired::Url(DatabaseUrl::new(after.url.as_str())),
        );
        options.renames = Vec::new();
        let result = strata_schema::generate(config, &options).await;
        let millis = at.elapsed().as_millis();
        let (outcome, detail, written) = match result {
            Ok(Generation::Equal) => ("unchanged", None, Vec::new()),
            Ok(Generation::Written { files, .. }) => {
                ("exact", None, files.into_iter().map(|f| f.path).collect())
            }
            Ok(Generation::Differs { .. }) => ("failed", Some("check mode".to_owned()), Vec::new()),
            Err(SchemaError::Refused(message)) => {
                ("refused", Some(first_lines(&message)), Vec::new())
            }
            Err(SchemaError::NotProven { stage, differences, .. }) => (
                "not proven",
                Some(format!(
                    "{stage}: {}",
                    differences.iter().take(3).cloned().collect::<Vec<_>>().join(" | ")
                )),
                Vec::new(),
            ),
            Err(other) => ("failed", Some(first_lines(&other.to_string())), Vec::new()),
        };
        // The history goes on with the real file, not the generated one.
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        std::fs::write(history.join(&file_name), &text)?;
        steps.push(Step { file: file_name, outcome, detail, files: written.len(), millis });
    }
    let seconds = started.elapsed().as_secs_f64();
    after.drop_database().await?;
    let _ = std::fs::remove_dir_all(&history);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for step in &steps {
        *counts.entry(step.outcome).or_default() += 1;
    }
    let generate_last_seconds = steps.last().map_or(0.0, |s| s.millis as f64 / 1000.0);
    let up_seconds = time_up(config, dir, limit).await?;
    Ok(History { name, steps, counts, seconds, up_seconds, generate_last_seconds })
}

/// The history's first `limit` files as the runner takes them ([`runner_text`]), in a
/// directory of its own named after `tag`.
fn runner_copy(dir: &Path, limit: usize, tag: &str) -> Result<PathBuf, BoxError> {
    let copy = std::env::temp_dir().join(format!("strata-sweep-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy)?;
    for file in files_of(dir)?.iter().take(limit) {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        std::fs::write(copy.join(name), runner_text(&std::fs::read_to_string(file)?))?;
    }
    Ok(copy)
}

/// One history squashed.
#[derive(Debug, Serialize)]
struct Squashed {
    name: String,
    files: usize,
    /// `squash`, proof included.
    squash_seconds: f64,
    statements: usize,
    rows: usize,
    /// `up` on an empty database from the files, and from the checkpoint.
    up_files_seconds: f64,
    up_checkpoint_seconds: f64,
    /// Why it was refused, if it was.
    refused: Option<String>,
}

/// `--squash`: every history squashed through its last step, then brought up both ways.
async fn squash_all(
    config: &Config,
    dirs: &[PathBuf],
    limit: usize,
    out: &Path,
) -> Result<(), BoxError> {
    let mut results = Vec::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let copy = runner_copy(dir, limit, "squash")?;
        let files = files_of(&copy)?;
        let through = files
            .last()
            .and_then(|f| f.file_name()?.to_str()?.split('_').next()?.parse::<i64>().ok())
            .ok_or("an empty history")?;
        let up_files_seconds = time_up(config, dir, limit).await?;
        let mut options = strata_schema::SquashOptions::new(&copy, through);
        options.check_database = false;
        let at = Instant::now();
        let result = strata_schema::squash(config, &options).await;
        let squash_seconds = at.elapsed().as_secs_f64();
        let mut squashed = Squashed {
            name,
            files: files.len(),
            squash_seconds,
            statements: 0,
            rows: 0,
            up_files_seconds,
            up_checkpoint_seconds: 0.0,
            refused: None,
        };
        match result {
            Ok(report) => {
                squashed.statements = report.statements;
                squashed.rows = report.rows.values().map(|r| *r as usize).sum();
                squashed.up_checkpoint_seconds = time_up_dir(config, &copy).await?;
            }
            Err(error) => squashed.refused = Some(first_lines(&error.to_string())),
        }
        println!(
            "{}: {} files squashed in {:.1} s ({} statements, {} rows carried){}; a new database from the files {:.2} s, from the checkpoint {:.2} s",
            squashed.name,
            squashed.files,
            squashed.squash_seconds,
            squashed.statements,
            squashed.rows,
            squashed.refused.as_deref().map(|r| format!(", refused: {r}")).unwrap_or_default(),
            squashed.up_files_seconds,
            squashed.up_checkpoint_seconds
        );
        let _ = std::fs::remove_dir_all(&copy);
        results.push(squashed);
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(&serde_json::json!({ "squashed": results }))?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}

/// One history's last step generated, and the whole history brought up, `repeats` times each.
#[derive(Debug, Serialize)]
struct Speed {
    name: String,
    files: usize,
    generate_seconds: Vec<f64>,
    up_seconds: Vec<f64>,
    /// Median of `generate_seconds` over median of `up_seconds`.
    ratio: f64,
}

/// `--speed N`: for each history, `generate` of its last step (from the other files to a
/// database with all of them, as the sweep does) and `up` of all its files, N times each,
/// alternating so that both see the same machine.
async fn speed_all(
    config: &Config,
    server: &DatabaseUrl,
    dirs: &[PathBuf],
    repeats: usize,
    out: &Path,
) -> Result<(), BoxError> {
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    };
    let mut results = Vec::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let files = files_of(dir)?.len();
        let all = runner_copy(dir, files, "speed-all")?;
        let before = runner_copy(dir, files.saturating_sub(1), "speed-before")?;
        let mut after = Target::create(server, "speed").await?;
        for file in files_of(&all)? {
            apply(&mut after.conn, &std::fs::read_to_string(&file)?).await?;
        }
        let (mut generate_seconds, mut up_seconds) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let options = GenerateOptions::new(
                "step",
                &before,
                Desired::Url(DatabaseUrl::new(after.url.as_str())),
            );
            let at = Instant::now();
            let generation = strata_schema::generate(config, &options).await?;
            generate_seconds.push(at.elapsed().as_secs_f64());
            if let Generation::Written { files, .. } = generation {
                for file in files {
                    std::fs::remove_file(file.path)?;
                }
            }
            up_seconds.push(time_up_dir(config, &all).await?);
        }
        after.drop_database().await?;
        let _ = std::fs::remove_dir_all(&all);
        let _ = std::fs::remove_dir_all(&before);
        let ratio = median(&generate_seconds) / median(&up_seconds).max(1e-9);
        println!(
            "{name}: {files} files; generate of the last step {:.2} s (median of {repeats}), up of all {:.2} s: {ratio:.2}x",
            median(&generate_seconds),
            median(&up_seconds)
        );
        results.push(Speed { name, files, generate_seconds, up_seconds, ratio });
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&serde_json::json!({ "speed": results }))?)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// How long `up` of the history's first `limit` files takes on an empty scratch database.
async fn time_up(config: &Config, dir: &Path, limit: usize) -> Result<f64, BoxError> {
    let copy = runner_copy(dir, limit, "up")?;
    let seconds = time_up_dir(config, &copy).await;
    let _ = std::fs::remove_dir_all(&copy);
    seconds
}

/// How long `up` of the files in `dir`, as they are, takes on an empty scratch database.
async fn time_up_dir(config: &Config, copy: &Path) -> Result<f64, BoxError> {
    let settings = strata_migrate::Settings::from_config(&config.migrations);
    let seconds = strata_migrate::scratch::with_scratch(config, "sweep", async |scratch| {
        // A database connected to before, as a user's is (the first connection to a new
        // database builds its caches).
        strata_migrate::Session::from_config(scratch).await?.close().await;
        // `strata-migrate up`'s work, as `generate`'s is timed: read the files, connect, apply.
        let at = Instant::now();
        let migrator = strata_migrate::files::read_migrations(copy).await?;
        let mut session = strata_migrate::Session::from_config(scratch).await?;
        // As `up` runs on a real database: each commit waits for the disk (a scratch database
        // does not).
        sqlx::raw_sql("set synchronous_commit = on")
            .execute(&mut *session.raw_connection())
            .await
            .map_err(|source| strata_migrate::MigrateError::Database {
                doing: "setting synchronous_commit",
                source,
            })?;
        session.up(&migrator, &strata_migrate::UpOptions::new(settings.clone())).await?;
        let seconds = at.elapsed().as_secs_f64();
        session.close().await;
        Ok::<_, strata_migrate::MigrateError>(seconds)
    })
    .await?;
    Ok(seconds)
}

/// How long [`strata_schema::compare_databases`] takes on two databases of `tables` tables
/// each (a key, a foreign key, an index, a check, a comment and a grant a table).
async fn time_compare(server: &DatabaseUrl, tables: usize) -> Result<(f64, usize), BoxError> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    let mut sql = String::new();
    for i in 0..tables {
        let fk = if i == 0 {
            String::new()
        } else {
            format!(", parent_id bigint references t{} (id)", i - 1)
        };
        sql.push_str(&format!(
            "create table t{i} (id bigint primary key, name text not null check (name <> ''), created_at timestamptz not null default now(){fk});\n\
             create index t{i}_name_idx on t{i} (name);\n\
             comment on table t{i} is 'table {i}';\n\
             grant select on t{i} to public;\n"
        ));
    }
    let mut urls = Vec::new();
    let names = ["a", "b"].map(|x| format!("strata_sweep_compare_{x}_{}", std::process::id()));
    for name in &names {
        sqlx::raw_sql(AssertSqlSafe(format!("drop database if exists {name} with (force)")))
            .execute(&mut admin)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!("create database {name}"))).execute(&mut admin).await?;
        let mut url = url::Url::parse(server.expose())?;
        url.set_path(name);
        let mut conn = PgConnection::connect(url.as_str()).await?;
        sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&mut conn).await?;
        let _ = conn.close().await;
        urls.push(url);
    }
    let mut a = PgConnection::connect(urls[0].as_str()).await?;
    let mut b = PgConnection::connect(urls[1].as_str()).await?;
    let at = Instant::now();
    let differences = strata_schema::compare_databases(&mut a, &mut b).await?;
    let seconds = at.elapsed().as_secs_f64();
    let _ = (a.close().await, b.close().await);
    for name in &names {
        sqlx::raw_sql(AssertSqlSafe(format!("drop database if exists {name} with (force)")))
            .execute(&mut admin)
            .await?;
    }
    Ok((seconds, differences.len()))
}

/// Applies one file as the runner would: in one transaction, or, with `-- no-transaction`,
/// statement by statement.
async fn apply(conn: &mut PgConnection, text: &str) -> Result<(), BoxError> {
    if text.starts_with("-- no-transaction") {
        for statement in strata_migrate::lexer::split(text)? {
            sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned())).execute(&mut *conn).await?;
        }
    } else {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(text.to_owned())).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    sqlx::raw_sql("reset all").execute(&mut *conn).await?;
    Ok(())
}

/// The first two lines of a message, on one line.
fn first_lines(message: &str) -> String {
    message.lines().take(2).collect::<Vec<_>>().join(" / ")
}
