//! strata-migrate through a Citus coordinator (two workers of the test's own): this project's
//! history up, `diff` and `verify` on it, the Citus steps down and up again; a concurrent index build on a distributed
//! table in a `-- no-transaction` file, and a failed one resumed after the fix; the advisory
//! lock held by another runner; `lint`'s Citus rules; an error raised on a worker, named in
//! the runner's message.

mod support;

use std::path::{Path, PathBuf};

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::{CitusCluster, TestResult};
use support::{hold_migration_lock, migrate_src, temp_dir, text};

/// A user, an organization and its project OPS, as the superuser.
const SEED: &str = "
    insert into users (id, email, display_name)
    values ('00000000-0000-0000-0000-0000000000a1', 'a@example.com', 'A');
    insert into organizations (id, slug, name)
    values ('00000000-0000-0000-0000-000000000001', 'acme', 'Acme');
    insert into projects (id, organization_id, key, name)
    values ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', 'OPS', 'Ops');";

/// This project's migrations.
fn project_migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// A directory of its own holding a copy of this project's migrations, for files to be added.
fn project_copy() -> std::io::Result<PathBuf> {
    let dir = temp_dir("citus");
    for entry in std::fs::read_dir(project_migrations())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap_or_default()))?;
        }
    }
    Ok(dir)
}

/// A Citus cluster, database `strata` on it migrated from a copy of this project's migrations:
/// the cluster, the URL, a superuser's pool and the copy's directory.
async fn migrated_copy()
-> Result<(CitusCluster, String, PgPool, PathBuf), strata_test_support::BoxError> {
    let cluster = CitusCluster::start()?;
    let url = cluster.create_database("strata")?;
    let pool = PgPool::connect(&url).await?;
    let dir = project_copy()?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    Ok((cluster, url, pool, dir))
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
    let (cluster, url, pool, dir) = migrated_copy().await?;

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
    sqlx::raw_sql(SEED).execute(&pool).await?;
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

#[tokio::test]
async fn a_failed_concurrent_build_on_a_distributed_table_resumes_after_the_fix() -> TestResult {
    let (_cluster, url, pool, dir) = migrated_copy().await?;
    // Two tasks with one title, on a worker's shard.
    sqlx::raw_sql(SEED).execute(&pool).await?;
    sqlx::raw_sql(
        "insert into tasks (id, organization_id, project_id, number, title)
         select gen_random_uuid(), '00000000-0000-0000-0000-000000000001',
                '00000000-0000-0000-0000-0000000000b1', n, 'same' from generate_series(1, 2) n",
    )
    .execute(&pool)
    .await?;
    std::fs::write(
        dir.join("20991231000001_tasks_indexes.up.sql"),
        "-- no-transaction\ncreate index concurrently tasks_due_idx on tasks (organization_id, due_on);\n\
         create unique index concurrently tasks_title_key on tasks (organization_id, title);\n",
    )?;
    std::fs::write(
        dir.join("20991231000001_tasks_indexes.down.sql"),
        "-- no-transaction\ndrop index concurrently if exists tasks_title_key;\n\
         drop index concurrently if exists tasks_due_idx;\n",
    )?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("failing statement 2/2"), "{all}");
    assert!(all.contains("on worker 127.0.0.1:"), "{all}");
    // The coordinator's index is left INVALID, as on one server: the runner says so.
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("DROP INDEX CONCURRENTLY IF EXISTS tasks_title_key;"), "{all}");

    // The fix, as the runner advised: the invalid index dropped (on the shards too, where it
    // exists), the titles told apart; the rerun resumes at statement 2.
    sqlx::raw_sql("drop index concurrently if exists tasks_title_key").execute(&pool).await?;
    sqlx::raw_sql("update tasks set title = title || number::text").execute(&pool).await?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let detail: Option<String> = sqlx::query_scalar(
        "select detail from _strata_migration_events
          where version = 20991231000001 and kind = 'apply' order by id desc limit 1",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(detail.as_deref(), Some("resumed at statement 2"));
    let valid: bool = sqlx::query_scalar(
        "select i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid
          where c.relname = 'tasks_title_key'",
    )
    .fetch_one(&pool)
    .await?;
    assert!(valid);
    Ok(())
}
