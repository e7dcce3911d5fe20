//! strata-migrate through a Citus coordinator (two workers of the test's own): this project's
//! history up, `diff` and `verify` on it, the Citus steps down and up again; a concurrent index build on a distributed
//! table in a `-- no-transaction` file; the advisory lock held by another runner; `lint`'s
//! Citus rules; an error raised on a worker, named in the runner's message.

mod support;

use std::path::{Path, PathBuf};

use sqlx::PgPool;
use strata_migrate::exit;
use strata_test_support::CitusCluster;
use support::{hold_migration_lock, migrate_src, temp_dir, text};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// This project's migrations.
fn project_migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// Tables Citus distributes or copies (`pg_dist_partition`).
async fn citus_tables(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from pg_dist_partition").fetch_one(pool).await
}

#[tokio::test]
async fn the_history_goes_up_down_and_up_again_through_the_coordinator() -> TestResult {
    let cluster = CitusCluster::start()?;
    let url = cluster.create_database("strata")?;
    let pool = PgPool::connect(&url).await?;
    let source = project_migrations();

    let out = migrate_src(&url, &source, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(citus_tables(&pool).await?, 10, "reference and distributed tables");
    let out = migrate_src(&url, &source, &["status"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // The scratch databases of diff and verify are Citus databases of one node: the history
    // replays there as here, Citus steps included.
    let out = migrate_src(&url, &source, &["diff"], &[]);
    assert!(out.status.success() && text(&out).contains("no drift"), "{}", text(&out));
    let out = migrate_src(&url, &source, &["verify"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("undo their up file exactly"), "{}", text(&out));

    // Down past the Citus steps (distribution, statements, keys, key indexes): every table
    // back on the coordinator alone, the rows with it.
    sqlx::raw_sql(
        "insert into users (id, email, display_name)
         values ('00000000-0000-0000-0000-0000000000a1', 'a@example.com', 'A');
         insert into organizations (id, slug, name)
         values ('00000000-0000-0000-0000-000000000001', 'kept', 'Kept');",
    )
    .execute(&pool)
    .await?;
    let out = migrate_src(&url, &source, &["down", "--steps", "7"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(citus_tables(&pool).await?, 0, "nothing distributed after down");
    let out = migrate_src(&url, &source, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(citus_tables(&pool).await?, 10, "distributed again");
    let slug: String =
        sqlx::query_scalar("select slug from organizations").fetch_one(&pool).await?;
    assert_eq!(slug, "kept", "rows survive down and up");
    Ok(())
}

#[tokio::test]
async fn concurrent_indexes_the_lock_and_a_workers_error_through_the_coordinator() -> TestResult {
    let cluster = CitusCluster::start()?;
    let url = cluster.create_database("strata")?;
    let pool = PgPool::connect(&url).await?;
    let dir = temp_dir("citus");
    for entry in std::fs::read_dir(project_migrations())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap_or_default()))?;
        }
    }
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // An index built concurrently on a distributed table: Citus builds it on every shard.
    std::fs::write(
        dir.join("20991231000001_tasks_due_index.up.sql"),
        "-- no-transaction\ncreate index concurrently tasks_due_idx on tasks (organization_id, due_on);\n",
    )?;
    std::fs::write(
        dir.join("20991231000001_tasks_due_index.down.sql"),
        "-- no-transaction\ndrop index concurrently tasks_due_idx;\n",
    )?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let on_shards = cluster.workers()[0]
        .psql("strata", "select count(*) from pg_indexes where indexname like 'tasks_due_idx%'")?;
    assert!(on_shards.parse::<i64>()? > 0, "the index is on the worker's shards: {on_shards}");

    // Another runner holds the lock on the coordinator: this one waits, then gives up.
    let (mut holder, key) = hold_migration_lock(&pool, &url).await?;
    std::fs::write(
        dir.join("20991231000002_tasks_note.up.sql"),
        "alter table tasks add column note text;\n",
    )?;
    std::fs::write(
        dir.join("20991231000002_tasks_note.down.sql"),
        "alter table tasks drop column note;\n",
    )?;
    let out = migrate_src(&url, &dir, &["up"], &[("STRATA_MIGRATIONS__LOCK_WAIT", "300ms")]);
    assert_eq!(out.status.code(), Some(i32::from(exit::LOCK)), "{}", text(&out));
    sqlx::query("select pg_advisory_unlock($1)").bind(key).execute(&mut *holder).await?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // lint, given the coordinator, knows Citus's rules: a unique index without the
    // distribution column is an error there (Citus would refuse it).
    let unique = dir.join("20991231000003_tasks_title_key.up.sql");
    std::fs::write(
        &unique,
        "-- no-transaction\ncreate unique index concurrently tasks_title_key on tasks (title);\n",
    )?;
    let out = migrate_src(&url, &dir, &["lint", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("citus-unique-without-distribution-column"), "{}", text(&out));
    std::fs::remove_file(&unique)?;

    // A check that a row on a worker's shard breaks: the runner names that worker.
    sqlx::raw_sql(
        "insert into users (id, email, display_name)
         values ('00000000-0000-0000-0000-0000000000a1', 'a@example.com', 'A');
         insert into organizations (id, slug, name)
         values ('00000000-0000-0000-0000-000000000001', 'acme', 'Acme');
         insert into projects (id, organization_id, key, name)
         values ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', 'OPS', 'Ops');",
    )
    .execute(&pool)
    .await?;
    std::fs::write(
        dir.join("20991231000004_projects_short_names.up.sql"),
        "alter table projects add constraint projects_name_short check (length(name) < 2);\n",
    )?;
    std::fs::write(
        dir.join("20991231000004_projects_short_names.down.sql"),
        "alter table projects drop constraint projects_name_short;\n",
    )?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let ports: Vec<String> = cluster.workers().iter().map(|w| w.port().to_string()).collect();
    assert!(
        ports.iter().any(|port| text(&out).contains(&format!("on worker 127.0.0.1:{port}"))),
        "the worker is named ({ports:?}): {}",
        text(&out)
    );
    Ok(())
}
