//! `squash`: the files through a version become one checkpoint. This project's own history is
//! squashed here (in a copy, not committed); a database that applied the files records the
//! checkpoint without running it, a new one runs it, and both get the later files. Seed rows
//! are carried, a table of data is refused, and so is a squash through a version that failed
//! or is pending, or while another runner keeps the lock. `down` past a checkpoint is refused.
//! sqlx-cli 0.9 reads both kinds of database afterwards, as `docs/migrations.md` says.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{
    Running, eventually, migrate_src, runner_session, schema_dump, temp_dir, text, url_for, url_of,
    write_migrations,
};

/// A copy of this project's `migrations/` (and its sum file).
fn project_history() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let dir = temp_dir("squash-project");
    for entry in std::fs::read_dir(root).expect("migrations/") {
        let path = entry.expect("an entry").path();
        std::fs::copy(&path, dir.join(path.file_name().expect("a name"))).expect("copy");
    }
    dir
}

/// The up files' versions of `dir`, in order.
fn up_versions(dir: &Path) -> Vec<i64> {
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .expect("the history")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let up =
                name.ends_with(".up.sql") || (name.ends_with(".sql") && !name.contains(".down."));
            if up { name.split('_').next()?.parse().ok() } else { None }
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// A new, empty database on the test server, named after the test process and `tag` (the
/// test's own database name is as long as PostgreSQL allows, so nothing may be appended to
/// it), with a pool; [`drop_database`] removes it.
async fn new_database(tag: &str) -> Result<(String, PgPool), sqlx::Error> {
    let name = format!("strata_squash_{tag}_{}", std::process::id());
    let mut admin = PgConnection::connect(&url_for("postgres", None)).await?;
    for sql in
        [format!("drop database if exists {name} with (force)"), format!("create database {name}")]
    {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await?;
    }
    admin.close().await?;
    let url = url_for(&name, None);
    let pool = PgPool::connect(&url).await?;
    Ok((url, pool))
}

/// Closes `pool` and drops the database [`new_database`] made for `tag`.
async fn drop_database(tag: &str, pool: PgPool) -> Result<(), sqlx::Error> {
    pool.close().await;
    let mut admin = PgConnection::connect(&url_for("postgres", None)).await?;
    let name = format!("strata_squash_{tag}_{}", std::process::id());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop database if exists {name} with (force)")))
        .execute(&mut admin)
        .await?;
    admin.close().await
}

/// The recorded rows `(version, checksum)` of `_sqlx_migrations`.
async fn records(pool: &PgPool) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("select version, checksum from _sqlx_migrations order by version")
        .fetch_all(pool)
        .await
}

/// sqlx's checksum of the up file of `version` in `dir`.
async fn checksum(dir: &Path, version: i64) -> Vec<u8> {
    let migrator = strata_migrate::files::read_migrations(dir).await.expect("the history");
    let file =
        migrator.iter().find(|m| m.version == version && !m.migration_type.is_down_migration());
    file.expect("the file").checksum.to_vec()
}

async fn seed_rows(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select t::text from task_status_transitions t order by 1")
        .fetch_all(pool)
        .await
}

#[sqlx::test(migrations = false)]
async fn this_projects_history_squashes_and_both_kinds_of_database_go_on(
    pool: PgPool,
) -> TestResult {
    let old_url = url_of(&pool).await;
    let dir = project_history();
    let versions = up_versions(&dir);
    assert!(versions.len() >= 6, "the project's history: {versions:?}");
    let out = migrate_src(&old_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let old_records = records(&pool).await?;

    // Squash through the fourth file: checked against the database that applied them all.
    let through = versions[3].to_string();
    let out = migrate_src(&old_url, &dir, &["squash", "--through", &through], &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("has applied all 4"), "{said}");
    assert!(said.contains("row(s) of task_status_transitions"), "seed rows: {said}");
    let checkpoint = dir.join(format!("{through}_checkpoint.up.sql"));
    assert!(checkpoint.exists() && dir.join(format!("{through}_checkpoint.down.sql")).exists());
    assert_eq!(up_versions(&dir)[0], versions[3], "the files through it are gone");
    assert_eq!(&up_versions(&dir)[1..], &versions[4..], "the later files stay");
    let sum = std::fs::read_to_string(dir.join("strata.sum"))?;
    assert!(sum.contains("_checkpoint.up.sql") && !sum.contains(&format!("{}_", versions[0])));
    assert_eq!(records(&pool).await?, old_records, "squash changes no database");

    // The database that applied the files: the checkpoint is recorded, nothing runs.
    let out = migrate_src(&old_url, &dir, &["status"], &[]);
    assert!(text(&out).contains("3 in a checkpoint"), "{}", text(&out));
    let before = schema_dump(&pool).await;
    let out = migrate_src(&old_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("recorded"), "{}", text(&out));
    assert_eq!(schema_dump(&pool).await, before);
    let now = records(&pool).await?;
    assert_eq!(now.len(), old_records.len(), "no row added or removed");
    let row = now.iter().find(|(v, _)| v.to_string() == through).expect("its row");
    assert_eq!(row.1, checksum(&dir, versions[3]).await, "its row takes the checkpoint's checksum");
    let out = migrate_src(&old_url, &dir, &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = migrate_src(&old_url, &dir, &["diff"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A new database runs the checkpoint, then the later files: the same schema and rows.
    let (new_url, new_pool) = new_database("new").await?;
    let out = migrate_src(&new_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(schema_dump(&new_pool).await, schema_dump(&pool).await);
    assert_eq!(seed_rows(&new_pool).await?, seed_rows(&pool).await?);
    assert!(!seed_rows(&new_pool).await?.is_empty());
    let new_versions: Vec<i64> = records(&new_pool).await?.into_iter().map(|r| r.0).collect();
    assert_eq!(new_versions, up_versions(&dir));

    // Down past the checkpoint is refused, on both, before anything is reverted.
    let later = (versions.len() - 4 + 1).to_string();
    for (url, db) in [(&old_url, &pool), (&new_url, &new_pool)] {
        let kept = records(db).await?;
        let out = migrate_src(url, &dir, &["down", "--steps", &later], &[]);
        assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
        assert!(text(&out).contains("down past a checkpoint is refused"), "{}", text(&out));
        assert_eq!(records(db).await?, kept);
    }
    // The later files still revert and apply again.
    let out = migrate_src(&new_url, &dir, &["down", "--steps", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = migrate_src(&new_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // verify skips the checkpoint (not reversible by design) and proves the rest.
    let out = migrate_src(&new_url, &dir, &["verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("checkpoints (applied only"), "{}", text(&out));

    // A second squash carries the first: an old database that never ran `up` since the first
    // one (its row is the original file's) records it too.
    let (older_url, older_pool) = new_database("older").await?;
    let out = migrate_src(&older_url, &project_history(), &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let through2 = versions[5].to_string();
    let out = migrate_src(&new_url, &dir, &["squash", "--through", &through2], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(up_versions(&dir)[0], versions[5]);
    for (url, db) in [(&older_url, &older_pool), (&old_url, &pool), (&new_url, &new_pool)] {
        let before = schema_dump(db).await;
        let out = migrate_src(url, &dir, &["up"], &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("recorded"), "{}", text(&out));
        assert_eq!(schema_dump(db).await, before);
    }
    drop_database("new", new_pool).await?;
    drop_database("older", older_pool).await?;
    Ok(())
}

/// A history with seed rows behind a trigger and a foreign key, an identity and a sequence.
const SEEDED: &[(&str, &str)] = &[
    (
        "1_kinds.sql",
        "create table kinds (id int generated always as identity primary key, name text not null unique);
         create function shout() returns trigger language plpgsql as
           $$ begin new.name := upper(new.name) || '!'; return new; end $$;
         create trigger kinds_shout before insert on kinds for each row execute function shout();
         insert into kinds (name) values ('low'), ('high');",
    ),
    (
        "2_things.sql",
        "create table things (id bigserial primary key, kind_id int not null references kinds (id),
                              label text, shown text generated always as (upper(label)) stored);
         insert into things (kind_id, label) select id, name from kinds;
         alter table things add constraint things_label_short check (length(label) < 100) not valid;
         create sequence tickets start 100;
         select nextval('tickets'); select nextval('tickets');",
    ),
    ("3_later.sql", "create table later (id int primary key);\n"),
];

#[sqlx::test(migrations = false)]
async fn seed_rows_are_carried_and_a_table_of_data_is_refused(pool: PgPool) -> TestResult {
    let dir = write_migrations(SEEDED);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["squash", "--through", "2", "--no-database"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not looked at"), "{}", text(&out));
    let sql = std::fs::read_to_string(dir.join("2_checkpoint.up.sql"))?;
    assert!(sql.contains("disable trigger user"), "the trigger is off while rows go in:\n{sql}");

    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let kinds: Vec<String> =
        sqlx::query_scalar("select name from kinds order by id").fetch_all(&pool).await?;
    assert_eq!(kinds, ["LOW!", "HIGH!"], "the rows as the files left them, not shouted twice");
    let shown: Vec<String> =
        sqlx::query_scalar("select shown from things order by id").fetch_all(&pool).await?;
    assert_eq!(shown, ["LOW!", "HIGH!"]);
    let next: i64 = sqlx::query_scalar("select nextval('tickets')").fetch_one(&pool).await?;
    assert_eq!(next, 102, "the sequence goes on where the files left it");
    let next_kind: i32 = sqlx::query_scalar("insert into kinds (name) values ('new') returning id")
        .fetch_one(&pool)
        .await?;
    assert_eq!(next_kind, 3, "the identity goes on too");
    assert!(support::has_table(&pool, "later").await?);

    // A table with more rows than seed data is refused, and nothing is written or deleted.
    let big = write_migrations(&[
        ("1_a.sql", "create table events (id int);\n"),
        ("2_b.sql", "insert into events select generate_series(1, 10001);\n"),
    ]);
    let (other_url, other_pool) = new_database("big").await?;
    let out = migrate_src(&other_url, &big, &["squash", "--through", "2"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("holds 10001 rows"), "{}", text(&out));
    assert_eq!(up_versions(&big), [1, 2]);
    drop_database("big", other_pool).await?;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_squash_through_a_failed_or_pending_version_is_refused(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&[
        ("1_a.sql", "create table a (id int);\n"),
        ("2_b.sql", "create table b (id int);\n"),
        ("3_c.sql", "-- no-transaction\ncreate table c (id int);\nselect 1 / 0;\n"),
    ]);
    // Pending here: the database applied 1, not 2.
    let out = migrate_src(&url, &dir, &["up", "--to", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["squash", "--through", "2"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("applied 1 of the 2 migrations through 2"), "{}", text(&out));
    assert_eq!(up_versions(&dir), [1, 2, 3], "nothing written or deleted");

    // Failed here: 3 stopped half-way.
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["squash", "--through", "3"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("failed on this database"), "{}", text(&out));
    assert_eq!(up_versions(&dir), [1, 2, 3]);

    // Squashed anyway elsewhere (no database looked at), the runner refuses this one: it
    // applied only some of what the checkpoint stands for.
    let elsewhere = write_migrations(&[
        ("1_a.sql", "create table a (id int);\n"),
        ("2_b.sql", "create table b (id int);\n"),
    ]);
    let out = migrate_src(&url, &elsewhere, &["squash", "--through", "2", "--no-database"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let (partial_url, partial) = new_database("partial").await?;
    let first = write_migrations(&[("1_a.sql", "create table a (id int);\n")]);
    let out = migrate_src(&partial_url, &first, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = migrate_src(&partial_url, &elsewhere, &["up"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("applied 1 of the 2 migrations it stands for"), "{}", text(&out));
    assert!(!support::has_table(&partial, "b").await?);
    drop_database("partial", partial).await?;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_squash_waits_for_another_runner_and_gives_up_after_lock_wait(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.sql", "create table a (id int);\n"),
        ("2_b.sql", "create table b (id int);\n"),
    ]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let (mut holder, key) = support::hold_migration_lock(&pool, &url).await?;

    let out = migrate_src(
        &url,
        &dir,
        &["squash", "--through", "2"],
        &[("STRATA_MIGRATIONS__LOCK_WAIT", "300ms")],
    );
    assert_eq!(out.status.code(), Some(i32::from(exit::LOCK)), "{}", text(&out));
    assert!(text(&out).contains("held the lock"), "{}", text(&out));
    assert_eq!(up_versions(&dir), [1, 2], "nothing written or deleted");

    // Waiting, as PostgreSQL shows it; once the lock is free it squashes.
    let child = Running::spawn(
        &["--database-url", &url, "--source", &source, "squash", "--through", "2"],
        &[],
    );
    let waiting = runner_session("true");
    assert!(eventually(&pool, &waiting, Duration::from_secs(20)).await?, "never connected");
    assert_eq!(up_versions(&dir), [1, 2], "nothing written while the lock is held");
    sqlx::query("select pg_advisory_unlock($1)").bind(key).execute(&mut *holder).await?;
    let out = child.output().await?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(up_versions(&dir), [2]);
    Ok(())
}

/// sqlx-cli's `migrate` command (`cargo sqlx migrate ARGS --source DIR --database-url URL`).
fn sqlx_cli(args: &[&str], dir: &Path, url: &str) -> std::process::Output {
    let source = dir.to_string_lossy().into_owned();
    std::process::Command::new("cargo")
        .args(["sqlx", "migrate"])
        .args(args)
        .args(["--source", &source, "--database-url", url])
        .env_remove("DATABASE_URL")
        .output()
        .expect("sqlx-cli (`just _sqlx-cli` installs it; `just test` does first)")
}

/// What `docs/migrations.md` says of sqlx-cli 0.9 and sqlx's `Migrator` after a squash, on a
/// database that applied the files (before and after `strata-migrate up` recorded the
/// checkpoint) and on a new one.
#[sqlx::test(migrations = false)]
async fn sqlx_cli_reads_both_kinds_of_database_after_a_squash(pool: PgPool) -> TestResult {
    let old_url = url_of(&pool).await;
    let dir = project_history();
    let versions = up_versions(&dir);
    let out = migrate_src(&old_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let through = versions[3].to_string();
    let out = migrate_src(&old_url, &dir, &["squash", "--through", &through], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let first = versions[0].to_string();

    // Before strata-migrate recorded the checkpoint there: sqlx-cli refuses to run.
    let info = sqlx_cli(&["info"], &dir, &old_url);
    assert!(text(&info).contains(&format!("{through}/installed (different checksum) checkpoint")));
    let run = sqlx_cli(&["run"], &dir, &old_url);
    assert!(!run.status.success());
    assert!(text(&run).contains(&format!(
        "migration {first} was previously applied but is missing in the resolved migrations"
    )));
    let run = sqlx_cli(&["run", "--ignore-missing"], &dir, &old_url);
    assert!(!run.status.success());
    assert!(
        text(&run)
            .contains(&format!("migration {through} was previously applied but has been modified"))
    );

    // Once `up` recorded it: applied, with `--ignore-missing` (the files it replaced are gone).
    let out = migrate_src(&old_url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let info = sqlx_cli(&["info"], &dir, &old_url);
    assert!(text(&info).contains(&format!("{through}/installed checkpoint")), "{}", text(&info));
    assert!(!text(&info).contains("different checksum"), "{}", text(&info));
    let run = sqlx_cli(&["run"], &dir, &old_url);
    assert!(!run.status.success(), "{}", text(&run));
    let run = sqlx_cli(&["run", "--ignore-missing"], &dir, &old_url);
    assert!(run.status.success(), "{}", text(&run));
    // sqlx's Migrator, as `sqlx::migrate!` embeds the directory in a service: the same.
    let mut migrator = sqlx::migrate::Migrator::new(dir.as_path()).await?;
    let missing = migrator.run(&pool).await.expect_err("the replaced files are missing");
    assert!(missing.to_string().contains("missing in the resolved migrations"), "{missing}");
    migrator.set_ignore_missing(true);
    migrator.run(&pool).await?;

    // A new database: sqlx-cli runs the checkpoint and the later files; strata-migrate agrees.
    let (new_url, new_pool) = new_database("sqlx").await?;
    let run = sqlx_cli(&["run"], &dir, &new_url);
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains(&format!("Applied {through}/migrate checkpoint")),
        "{}",
        text(&run)
    );
    assert_eq!(schema_dump(&new_pool).await, schema_dump(&pool).await);
    let out = migrate_src(&new_url, &dir, &["up"], &[]);
    assert!(text(&out).contains("nothing to apply"), "{}", text(&out));
    // sqlx-cli's revert stops at the checkpoint: its down file refuses.
    let revert = sqlx_cli(&["revert", "--target-version", "0"], &dir, &new_url);
    assert!(!revert.status.success());
    assert!(
        text(&revert).contains(&format!("checkpoint {through} cannot be reverted")),
        "{}",
        text(&revert)
    );
    drop_database("sqlx", new_pool).await?;
    Ok(())
}
