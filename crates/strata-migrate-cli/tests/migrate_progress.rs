//! Progress of long statements: a statement that runs longer than
//! `migrations.progress_after` gets reports of how far it got and of what it waits on.

mod support;

use std::time::Duration;

use sqlx::PgPool;
use strata_test_support::TestResult;
use support::{eventually, migrate_src, runner_session, text, url_of, write_migrations};

const WATCH: [(&str, &str); 2] =
    [("STRATA_MIGRATIONS__PROGRESS_AFTER", "300ms"), ("STRATA_MIGRATIONS__LOCK_TIMEOUT", "20s")];

/// Whether the runner's statement has waited on `wait` (`wait_event_type = 'Lock'`, or
/// `wait_event = 'virtualxid'`) for three times `progress_after`, as the server reports it:
/// long enough to have been reported.
fn waited_long(wait: &str) -> String {
    runner_session(&format!("{wait} and clock_timestamp() - query_start > interval '900 ms'"))
}

/// Waits (up to 30 s) until the runner has waited long on `wait`, then runs `release`.
async fn release_when_waited(
    pool: PgPool,
    wait: &'static str,
    release: impl AsyncFnOnce() -> Result<(), sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    let waited = eventually(&pool, &waited_long(wait), Duration::from_secs(30)).await;
    release().await?;
    waited
}

#[sqlx::test(migrations = false)]
async fn a_blocked_migration_names_the_session_it_waits_on(pool: PgPool) -> TestResult {
    sqlx::raw_sql("create table t (id int)").execute(&pool).await?;
    let mut blocker = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *blocker).await?;
    sqlx::raw_sql("begin; lock table t in access share mode").execute(&mut *blocker).await?;
    let dir = write_migrations(&[("1_x.sql", "alter table t add column x int;\n")]);
    let url = url_of(&pool).await;
    let release = tokio::spawn(release_when_waited(
        pool.clone(),
        "wait_event_type = 'Lock'",
        async move || sqlx::raw_sql("commit").execute(&mut *blocker).await.map(drop),
    ));
    let out = tokio::task::spawn_blocking(move || migrate_src(&url, &dir, &["up"], &WATCH)).await?;
    assert!(release.await??, "the runner never waited long on the lock");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("waiting on a lock another session holds"), "{all}");
    assert!(all.contains(&format!("blocker.pid={pid}")), "{all}");
    assert!(all.contains("blocker.query=begin; lock table t in access share mode"), "{all}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_concurrent_index_build_reports_its_phase(pool: PgPool) -> TestResult {
    sqlx::raw_sql("create table t (id int); insert into t select generate_series(1, 1000)")
        .execute(&pool)
        .await?;
    // A writer the build must wait for.
    let mut writer = pool.acquire().await?;
    sqlx::raw_sql("begin; insert into t values (0)").execute(&mut *writer).await?;
    let dir = write_migrations(&[(
        "1_idx.sql",
        "-- no-transaction\ncreate index concurrently t_id_idx on t (id);\n",
    )]);
    let url = url_of(&pool).await;
    let release = tokio::spawn(release_when_waited(
        pool.clone(),
        "wait_event = 'virtualxid'",
        async move || sqlx::raw_sql("commit").execute(&mut *writer).await.map(drop),
    ));
    let out = tokio::task::spawn_blocking(move || migrate_src(&url, &dir, &["up"], &WATCH)).await?;
    assert!(release.await??, "the build never waited long for the writer");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("still running"), "{all}");
    assert!(all.contains("command=CREATE INDEX CONCURRENTLY"), "{all}");
    assert!(all.contains("phase=waiting for writers before build"), "{all}");
    assert!(all.contains("statement=\"1_idx.sql statement 1/1\""), "{all}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn with_format_json_the_reports_are_json_events(pool: PgPool) -> TestResult {
    sqlx::raw_sql("create table t (id int)").execute(&pool).await?;
    let mut blocker = pool.acquire().await?;
    sqlx::raw_sql("begin; lock table t in access share mode").execute(&mut *blocker).await?;
    let dir = write_migrations(&[("1_x.sql", "alter table t add column x int;\n")]);
    let url = url_of(&pool).await;
    let release = tokio::spawn(release_when_waited(
        pool.clone(),
        "wait_event_type = 'Lock'",
        async move || sqlx::raw_sql("commit").execute(&mut *blocker).await.map(drop),
    ));
    let out = tokio::task::spawn_blocking(move || {
        migrate_src(&url, &dir, &["--format", "json", "up"], &WATCH)
    })
    .await?;
    assert!(release.await??, "the runner never waited long on the lock");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        events.iter().any(|e| e["message"] == "waiting on a lock another session holds"),
        "{}",
        text(&out)
    );
    Ok(())
}
