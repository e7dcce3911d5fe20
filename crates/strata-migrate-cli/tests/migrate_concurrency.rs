//! Several runner processes at once, a runner waiting while another builds an index
//! concurrently under live inserts, and a runner killed with SIGKILL mid-migration.

mod support;

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use strata_test_support::TestResult;
use support::{
    eventually, migrate_src, runner_session, spawn_migrate, text, url_for, url_of, write_migrations,
};

const RUNNERS: usize = 8;
const ROUNDS: usize = 10;

/// Waits for a child without blocking the test's runtime.
async fn wait(child: std::process::Child) -> Result<Output, strata_test_support::BoxError> {
    Ok(tokio::task::spawn_blocking(move || child.wait_with_output()).await??)
}

#[sqlx::test(migrations = false)]
async fn eight_runners_at_once_apply_each_migration_exactly_once(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_log.up.sql", "create table log (version int not null);\ninsert into log values (1);\n"),
        ("2_a.up.sql", "create table a (id int);\ninsert into log values (2);\n"),
        ("3_b.up.sql", "create table b (id int);\ninsert into log values (3);\n"),
        (
            "4_idx.up.sql",
            "-- no-transaction\ncreate index concurrently log_version_idx on log (version);\ninsert into log values (4);\n",
        ),
        ("5_c.up.sql", "create table c (id int);\ninsert into log values (5);\n"),
        ("6_d.up.sql", "insert into log values (6);\n"),
    ]);
    let source = dir.to_string_lossy().into_owned();
    for round in 0..ROUNDS {
        let name = format!("strata_conc_{}_{round}", std::process::id());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&pool)
            .await?;
        let url = url_for(&name, None);
        let start = Instant::now();
        let children: Vec<_> = (0..RUNNERS)
            .map(|_| spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]))
            .collect();
        let mut outputs = Vec::new();
        for child in children {
            outputs.push(wait(child).await?);
        }
        let elapsed = start.elapsed();
        let db = PgPool::connect(&url).await?;
        let per_version: Vec<(i32, i64)> =
            sqlx::query_as("select version, count(*) from log group by version order by version")
                .fetch_all(&db)
                .await?;
        let rows: Vec<(i64, bool)> =
            sqlx::query_as("select version, success from _sqlx_migrations order by version")
                .fetch_all(&db)
                .await?;
        let applies: i64 = sqlx::query_scalar(
            "select count(*) from _strata_migration_events where kind = 'apply'",
        )
        .fetch_one(&db)
        .await?;
        db.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop database {name} with (force)")))
            .execute(&pool)
            .await?;
        let applied_by: Vec<usize> = outputs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stdout).matches("] applied ").count())
            .collect();
        eprintln!(
            "round {round}: {RUNNERS} runners in {elapsed:?}; applied per runner {applied_by:?}"
        );
        for out in &outputs {
            assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(out));
        }
        assert_eq!(per_version, (1..=6).map(|v| (v, 1)).collect::<Vec<_>>(), "round {round}");
        assert_eq!(rows, (1..=6).map(|v| (v, true)).collect::<Vec<_>>(), "round {round}");
        assert_eq!(applies, 6, "round {round}");
        assert_eq!(applied_by.iter().sum::<usize>(), 6, "round {round}");
    }
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_waiting_runner_does_not_deadlock_a_concurrent_index_build(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        (
            "1_ev.up.sql",
            "create table ev (id bigserial primary key, v int not null);\n\
             -- An index expression that takes 1 ms a row, so the build is slow enough to overlap.\n\
             create function slow(x int) returns int immutable language sql as $$ select x from pg_sleep(0.001) $$;\n\
             insert into ev (v) select g from generate_series(1, 1000) g;\n",
        ),
        (
            "2_ev_idx.up.sql",
            "-- no-transaction\ncreate index concurrently ev_slow_idx on ev (slow(v));\n",
        ),
    ]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let out = migrate_src(&url, &dir, &["up", "--to", "1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let inserter = {
        let (pool, stop, inserted) = (pool.clone(), stop.clone(), inserted.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sqlx::query("insert into ev (v) values (1)").execute(&pool).await?;
                inserted.fetch_add(1, Ordering::Relaxed);
                // Live traffic, but not so much that validating the index takes minutes.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, sqlx::Error>(())
        })
    };
    let start = Instant::now();
    let first = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let building = eventually(
        &pool,
        // The concurrent build of migration 2, not the primary key of migration 1's table.
        "select exists (select 1 from pg_stat_progress_create_index
                         where datname = current_database() and command = 'CREATE INDEX CONCURRENTLY')",
        Duration::from_secs(20),
    )
    .await;
    let second = spawn_migrate(
        &["--database-url", &url, "--source", &source, "--format", "json", "up"],
        &[],
    );
    let (first, second) = (wait(first).await, wait(second).await);
    let (first, second) = (first?, second?);
    let building = building?;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    inserter.await??;
    assert!(building, "the concurrent build was seen running");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let report: serde_json::Value = serde_json::from_slice(&second.stdout)?;
    let waited = report["lock_wait_ms"].as_f64().unwrap_or_default();
    assert_eq!(report["applied"], serde_json::json!([]), "the first runner applied it");
    let valid: bool = sqlx::query_scalar(
        "select indisvalid from pg_index where indexrelid = 'ev_slow_idx'::regclass",
    )
    .fetch_one(&pool)
    .await?;
    assert!(valid, "the index is valid");
    let rows: i64 = sqlx::query_scalar("select count(*) from ev").fetch_one(&pool).await?;
    let inserted = inserted.load(Ordering::Relaxed);
    assert_eq!(rows, 1000 + i64::try_from(inserted)?);
    eprintln!(
        "concurrent build: both runners done in {elapsed:?}; second waited {waited:.0} ms for the lock; {inserted} rows inserted meanwhile"
    );
    assert!(waited > 0.0);
    Ok(())
}

const SLEEP_UNLESS: &str =
    "select pg_sleep(case when to_regclass('go') is null then 30 else 0 end);";

#[sqlx::test(migrations = false)]
async fn a_killed_runner_leaves_a_consistent_database_and_the_next_run_completes(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[
        ("1_k.up.sql", "create table k (id int);\n"),
        ("2_slow.up.sql", &format!("create table k2 (id int);\n{SLEEP_UNLESS}\n")),
        (
            "3_slow_notx.up.sql",
            &format!(
                "-- no-transaction\ncreate table n1 (id int);\n{}\ncreate table n2 (id int);\n",
                SLEEP_UNLESS.replace("'go'", "'go_notx'")
            ),
        ),
    ]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let sleeping = &runner_session("state = 'active' and query like '%pg_sleep%'");
    let gone = "select not exists (select 1 from pg_stat_activity
                              where datname = current_database() and application_name = 'strata-migrate')
        and not exists (select 1 from pg_locks where locktype = 'advisory'
                         and database = (select oid from pg_database where datname = current_database()))";

    // A transactional migration, killed in the middle.
    let mut child = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let reached = eventually(&pool, sleeping, Duration::from_secs(20)).await;
    let killed_at = Instant::now();
    let killed = child.kill();
    let waited = child.wait();
    killed?;
    waited?;
    assert!(reached?, "runner reached the sleep");
    assert!(eventually(&pool, gone, Duration::from_secs(15)).await?, "server ended the session");
    eprintln!(
        "SIGKILL (transactional): session and lock gone {:?} after the kill",
        killed_at.elapsed()
    );
    let versions: Vec<i64> = sqlx::query_scalar("select version from _sqlx_migrations order by 1")
        .fetch_all(&pool)
        .await?;
    assert_eq!(versions, vec![1], "2 rolled back with its row");
    let k2: Option<String> =
        sqlx::query_scalar("select to_regclass('k2')::text").fetch_one(&pool).await?;
    assert_eq!(k2, None, "nothing of 2 remains");

    // The rerun applies 2, then stops in the no-transaction file: killed again.
    sqlx::raw_sql("create table go (id int)").execute(&pool).await?;
    let mut child = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let reached = eventually(&pool, sleeping, Duration::from_secs(20)).await;
    let during = migrate_src(&url, &dir, &["status"], &[]);
    let killed_at = Instant::now();
    let killed = child.kill();
    let waited = child.wait();
    killed?;
    waited?;
    assert!(reached?, "runner reached the sleep");
    assert!(
        text(&during)
            .contains("1/3 statements done; a runner holds the lock: probably still running"),
        "status while it runs: {}",
        text(&during)
    );
    assert!(eventually(&pool, gone, Duration::from_secs(15)).await?, "server ended the session");
    let after = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&after).contains("(1/3 statements done)"), "{}", text(&after));
    eprintln!(
        "SIGKILL (no-transaction): session and lock gone {:?} after the kill",
        killed_at.elapsed()
    );
    let rows: Vec<(i64, bool)> =
        sqlx::query_as("select version, success from _sqlx_migrations order by 1")
            .fetch_all(&pool)
            .await?;
    assert_eq!(rows, vec![(1, true), (2, true), (3, false)], "3 is recorded as partial");
    let done: i32 = sqlx::query_scalar(
        "select statements_done from _strata_migration_progress where version = 3",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(done, 1, "statement 1 (create table n1) is done");

    sqlx::raw_sql("create table go_notx (id int)").execute(&pool).await?;
    let start = Instant::now();
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "resumes at statement 2: {}", text(&out));
    assert!(text(&out).contains("2 statement(s)"), "{}", text(&out));
    eprintln!("SIGKILL: rerun completed in {:?}", start.elapsed());
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' and tablename not like '\\_%' order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(tables, ["go", "go_notx", "k", "k2", "n1", "n2"]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_runner_killed_during_a_concurrent_build_leaves_an_invalid_index_that_is_reported(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[
        (
            "1_ev.up.sql",
            "create table ev (id bigserial primary key, v int not null);\n\
             create function slow(x int) returns int immutable language sql as $$ select x from pg_sleep(0.002) $$;\n\
             insert into ev (v) select g from generate_series(1, 3000) g;\n",
        ),
        (
            "2_ev_idx.up.sql",
            "-- no-transaction\ncreate index concurrently ev_slow_idx on ev (slow(v));\n",
        ),
    ]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let mut child = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let building = eventually(
        &pool,
        // The concurrent build of migration 2, not the primary key of migration 1's table.
        "select exists (select 1 from pg_stat_progress_create_index
                         where datname = current_database() and command = 'CREATE INDEX CONCURRENTLY')",
        Duration::from_secs(20),
    )
    .await;
    let killed_at = Instant::now();
    let killed = child.kill();
    let waited = child.wait();
    killed?;
    waited?;
    assert!(building?, "the build was running when the runner was killed");
    let gone = "select not exists (select 1 from pg_stat_progress_create_index
                                    where datname = current_database() and command = 'CREATE INDEX CONCURRENTLY')";
    assert!(
        eventually(&pool, gone, Duration::from_secs(15)).await?,
        "the server stopped the build"
    );
    eprintln!(
        "SIGKILL during CREATE INDEX CONCURRENTLY: build stopped {:?} after the kill",
        killed_at.elapsed()
    );

    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("invalid index(es)")
            && all.contains("DROP INDEX CONCURRENTLY IF EXISTS ev_slow_idx;"),
        "{all}"
    );
    sqlx::raw_sql("drop index concurrently ev_slow_idx").execute(&pool).await?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let valid: bool = sqlx::query_scalar(
        "select indisvalid from pg_index where indexrelid = 'ev_slow_idx'::regclass",
    )
    .fetch_one(&pool)
    .await?;
    assert!(valid);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn sqlx_migrator_waits_for_our_lock(pool: PgPool) -> TestResult {
    use sqlx::migrate::Migrate;
    let dir =
        write_migrations(&[("1_slow.up.sql", "create table s (id int);\nselect pg_sleep(2);\n")]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let child = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let running =
        eventually(&pool, &runner_session("query like '%pg_sleep%'"), Duration::from_secs(20))
            .await;
    let start = Instant::now();
    let mut conn = pool.acquire().await;
    let locked = match &mut conn {
        Ok(conn) => conn.lock().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let waited = start.elapsed();
    let out = wait(child).await?;
    assert!(running?, "our runner was in its migration");
    locked?;
    conn?.unlock().await?;
    eprintln!("sqlx's Migrator lock waited {waited:?} for our runner");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(waited >= Duration::from_millis(1000), "sqlx waited for our lock: {waited:?}");
    Ok(())
}
