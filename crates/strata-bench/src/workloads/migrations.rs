//! Workload 5: the migration runner against sqlx-cli on the same files: 500 small
//! transactional ones, and a history shaped like a real one (tables holding rows, and one
//! no-transaction file per `CREATE INDEX CONCURRENTLY`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::database::fresh_database;
use crate::plan::Plan;
use crate::stats::{Sample, repeat};
use crate::table::Row;

const MIGRATIONS: usize = 500;

fn write_migrations() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/migrations-500");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for i in 1..=MIGRATIONS {
        std::fs::write(
            dir.join(format!("{i}_table_{i}.sql")),
            format!(
                "create table bench_{i} (id bigint primary key, note text not null default '');\n"
            ),
        )?;
    }
    Ok(dir)
}

/// Tables of the realistic history, and how many of them get a concurrent index build.
const TABLES: usize = 91;
const INDEXED: usize = 76;
/// Rows in each of its tables.
const ROWS: usize = 5_000;

/// A history of `TABLES + INDEXED` files (167): each table created and filled in one
/// transactional file, and, for most of them, the next file builds an index concurrently.
fn write_realistic() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/migrations-167");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut version = 0;
    for i in 1..=TABLES {
        version += 1;
        std::fs::write(
            dir.join(format!("{version}_table_{i}.sql")),
            format!(
                "create table hist_{i} (id bigint primary key, owner bigint not null, note text not null);\n\
                 insert into hist_{i} select g, g % 97, md5(g::text) from generate_series(1, {ROWS}) g;\n"
            ),
        )?;
        if i <= INDEXED {
            version += 1;
            std::fs::write(
                dir.join(format!("{version}_index_{i}.sql")),
                format!(
                    "-- no-transaction\n\
                     create index concurrently if not exists hist_{i}_owner_idx on hist_{i} (owner);\n"
                ),
            )?;
        }
    }
    Ok(dir)
}

/// The realistic history squashed into one checkpoint (`strata-migrate squash`, which proves
/// it first), in a directory of its own.
async fn squash_realistic(ours: &Path, server: &str, realistic: &Path) -> anyhow::Result<PathBuf> {
    let dir = realistic.with_file_name("migrations-167-squashed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(realistic)? {
        let path = entry?.path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap_or_default()))?;
    }
    let url = plaintext(&fresh_database(server, "strata_bench_squash", false).await?);
    let (source, through) = (dir.to_string_lossy().into_owned(), (TABLES + INDEXED).to_string());
    exec(
        ours,
        &[
            "--database-url",
            &url,
            "--source",
            &source,
            "squash",
            "--through",
            &through,
            "--no-database",
        ],
    )?;
    Ok(dir)
}

/// `url` without TLS unless it asks for a mode: both tools then measure their own work, not
/// the TLS handshake, which on sqlx 0.9 stalls about 90 ms on Nagle's algorithm (it never
/// sets `TCP_NODELAY`), whichever tool connects.
fn plaintext(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return url.to_owned() };
    if !parsed.query_pairs().any(|(key, _)| key == "sslmode") {
        parsed.query_pairs_mut().append_pair("sslmode", "disable");
    }
    parsed.to_string()
}

/// Waits for the server to write out what earlier workloads left dirty (the imports leave
/// gigabytes), so that no checkpoint lands in the middle of these short runs.
async fn settle(server: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(server).await?;
    sqlx::raw_sql("checkpoint").execute(&mut admin).await?;
    admin.close().await?;
    Ok(())
}

/// Runs `program args`, failing on a non-zero exit.
fn exec(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .env("STRATA_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "{} {args:?} failed: {status}", program.display());
    Ok(())
}

fn find_sqlx() -> Option<PathBuf> {
    let output = Command::new("sqlx").arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    version.trim().ends_with("0.9.0").then(|| PathBuf::from("sqlx"))
}

/// Runs workload 5, or explains why it cannot.
pub(crate) async fn run(server: &str, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let ours = std::env::current_exe()?.with_file_name("strata-migrate");
    anyhow::ensure!(
        ours.exists(),
        "{} is missing: build it with the bench (`just bench`)",
        ours.display()
    );
    let Some(sqlx) = find_sqlx() else {
        println!("skipping workload 5: sqlx-cli 0.9.0 is not on PATH (just bench installs it)");
        return Ok(Vec::new());
    };
    let dir = write_migrations()?;
    let source = dir.to_string_lossy().into_owned();
    let realistic_dir = write_realistic()?;
    let squashed = squash_realistic(&ours, server, &realistic_dir).await?;
    let squashed = squashed.to_string_lossy().into_owned();
    let realistic = realistic_dir.to_string_lossy().into_owned();
    let (mut history_s, mut history_p) = (Sample::default(), Sample::default());
    let mut checkpoint_s = Sample::default();
    let times = if plan.quick { 4 } else { 20 };
    let (mut apply_s, mut apply_p) = (Sample::default(), Sample::default());
    let (mut noop_s, mut noop_p) = (Sample::default(), Sample::default());
    let (mut status_s, mut status_p) = (Sample::default(), Sample::default());
    settle(server).await?;
    for round in 0..plan.rounds.min(3) {
        let ours_url = plaintext(&fresh_database(server, "strata_bench_runner_a", false).await?);
        let theirs_url = plaintext(&fresh_database(server, "strata_bench_runner_b", false).await?);
        let ours_args = |command: &'static str| {
            ["--database-url", ours_url.as_str(), "--source", source.as_str(), command]
        };
        let sqlx_args = |command: &'static str| {
            ["migrate", command, "--source", source.as_str(), "--database-url", theirs_url.as_str()]
        };
        // Who goes first alternates, so a server still busy from earlier workloads (a
        // checkpoint, autovacuum) slows both alike.
        let ours_first = |i: usize| i.is_multiple_of(2);
        let (up, run) = (ours_args("up"), sqlx_args("run"));
        let mut apply: [(&mut Sample, &Path, &[&str]); 2] =
            [(&mut apply_s, &ours, &up), (&mut apply_p, &sqlx, &run)];
        if !ours_first(round) {
            apply.swap(0, 1);
        }
        for (sample, program, args) in apply {
            sample.absorb(repeat(1, 1.0, |_| async { exec(program, args) }).await?);
        }
        for pair in 0..if plan.quick { 2 } else { 4 } {
            let ours_url =
                plaintext(&fresh_database(server, "strata_bench_history_a", false).await?);
            let theirs_url =
                plaintext(&fresh_database(server, "strata_bench_history_b", false).await?);
            let up = ["--database-url", ours_url.as_str(), "--source", realistic.as_str(), "up"];
            let run = [
                "migrate",
                "run",
                "--source",
                realistic.as_str(),
                "--database-url",
                theirs_url.as_str(),
            ];
            let mut apply: [(&mut Sample, &Path, &[&str]); 2] =
                [(&mut history_s, &ours, &up), (&mut history_p, &sqlx, &run)];
            if !ours_first(round + pair) {
                apply.swap(0, 1);
            }
            for (sample, program, args) in apply {
                sample.absorb(repeat(1, 1.0, |_| async { exec(program, args) }).await?);
            }
            let url = plaintext(&fresh_database(server, "strata_bench_history_c", false).await?);
            let up = ["--database-url", url.as_str(), "--source", squashed.as_str(), "up"];
            checkpoint_s.absorb(repeat(1, 1.0, |_| async { exec(&ours, &up) }).await?);
        }
        let (status, info) = (ours_args("status"), sqlx_args("info"));
        for i in 0..times {
            let mut pairs: [(&mut Sample, &Path, &[&str]); 4] = [
                (&mut noop_s, &ours, &up),
                (&mut noop_p, &sqlx, &run),
                (&mut status_s, &ours, &status),
                (&mut status_p, &sqlx, &info),
            ];
            if !ours_first(i) {
                pairs.swap(0, 1);
                pairs.swap(2, 3);
            }
            for (sample, program, args) in pairs {
                sample.absorb(repeat(1, 1.0, |_| async { exec(program, args) }).await?);
            }
        }
    }
    let note =
        "runs/s of the whole process, plaintext loopback; ratio > 1 means faster than sqlx-cli"
            .to_owned();
    Ok(vec![
        Row::new(
            "5. apply 500 migrations to an empty database",
            &apply_s,
            "sqlx migrate run",
            &apply_p,
            "≥ 1.0×",
            note.clone(),
        ),
        Row::new(
            &format!(
                "5. apply a {}-file history ({INDEXED} of them CONCURRENTLY index builds, {ROWS} rows a table) to an empty database",
                TABLES + INDEXED
            ),
            &history_s,
            "sqlx migrate run",
            &history_p,
            "≥ 1.0×",
            note.clone(),
        ),
        Row::new(
            &format!(
                "5. the same {}-file history squashed into one checkpoint (`squash`, rows carried), to an empty database",
                TABLES + INDEXED
            ),
            &checkpoint_s,
            "strata-migrate up, the files",
            &history_s,
            "> 1.0×",
            "runs/s of the whole process; ratio > 1 means the checkpoint is faster than the files"
                .to_owned(),
        ),
        Row::new(
            "5. up with nothing pending (500 applied)",
            &noop_s,
            "sqlx migrate run",
            &noop_p,
            "≥ 1.0×",
            note.clone(),
        ),
        Row::new(
            "5. status over 500 migrations",
            &status_s,
            "sqlx migrate info",
            &status_p,
            "≥ 1.0×",
            note,
        ),
    ])
}
