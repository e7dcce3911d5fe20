//! `lock_timeout` inside a migration: another session holds an ACCESS EXCLUSIVE lock on the
//! table the migration alters for longer than `lock_timeout`; the runner rolls back, backs
//! off and retries, then succeeds once the lock is freed or fails cleanly after the last try.
//! A concurrent index build is exempt: it waits for old transactions without blocking anyone.

mod support;

use std::time::{Duration, Instant};

use sqlx::{PgPool, Postgres, Transaction};
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use strata_test_support::runner::retried_on_a_lock;
use support::{Running, eventually, runner_session, spawn_migrate, text, url_of, write_migrations};

const ENV: &[(&str, &str)] =
    &[("STRATA_MIGRATIONS__LOCK_TIMEOUT", "200ms"), ("RUST_LOG", "strata_migrate=info")];

fn alter_busy() -> std::path::PathBuf {
    write_migrations(&[("1_note.up.sql", "alter table busy add column note text;\n")])
}

/// Creates table `busy` and holds an ACCESS EXCLUSIVE lock on it until the returned
/// transaction ends.
async fn hold_busy(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    sqlx::raw_sql("create table busy (id int)").execute(pool).await?;
    let mut holder = pool.begin().await?;
    sqlx::raw_sql("lock table busy in access exclusive mode").execute(&mut *holder).await?;
    Ok(holder)
}

async fn has_note(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from information_schema.columns where table_name = 'busy' and column_name = 'note')",
    )
    .fetch_one(pool)
    .await
}

#[sqlx::test(migrations = false)]
async fn retries_until_the_lock_is_freed(pool: PgPool) -> TestResult {
    let holder = hold_busy(&pool).await?;
    let dir = alter_busy();
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());

    let start = Instant::now();
    let child = Running::spawn(
        &["--database-url", &url, "--source", &source, "up", "--lock-retries", "5"],
        ENV,
    );
    // Released once the runner has retried at least once, as PostgreSQL shows it.
    let retried = retried_on_a_lock(&pool, "strata-migrate", Duration::from_secs(30)).await?;
    assert!(retried, "the runner never retried");
    let released = holder.commit().await;
    let out = child.output().await?;
    released?;
    let all = text(&out);
    eprintln!(
        "lock retry (freed after the first retry): exit {:?} after {:?}",
        out.status.code(),
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("lock_timeout expired"), "each try is logged: {all}");
    assert!(has_note(&pool).await?);
    let retries: i32 = sqlx::query_scalar(
        "select retries from _strata_migration_events where version = 1 and kind = 'apply'",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!("lock retry: {retries} retries recorded");
    assert!(retries >= 1, "{retries}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn fails_cleanly_after_the_last_try(pool: PgPool) -> TestResult {
    let holder = hold_busy(&pool).await?;
    let dir = alter_busy();
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());

    let start = Instant::now();
    let child = spawn_migrate(
        &["--database-url", &url, "--source", &source, "up", "--lock-retries", "2"],
        ENV,
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let elapsed = start.elapsed();
    holder.commit().await?;
    let all = text(&out);
    eprintln!("lock retry (never freed): exit {:?} after {elapsed:?}", out.status.code());
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("migration 1 (note) failed"), "{all}");
    assert!(all.contains("SQLSTATE 55P03"), "{all}");
    assert!(all.contains("gave up after 3 tries"), "{all}");
    assert_eq!(all.matches("lock_timeout expired").count(), 2, "two retries logged: {all}");
    assert!(elapsed >= Duration::from_millis(1500), "backed off between tries: {elapsed:?}");
    assert!(!has_note(&pool).await?, "nothing of it remains");
    let rows: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&pool).await?;
    assert_eq!(rows, 0);
    let failure: (String, i32, Option<String>) =
        sqlx::query_as("select kind, retries, detail from _strata_migration_events")
            .fetch_one(&pool)
            .await?;
    assert_eq!((failure.0.as_str(), failure.1), ("fail", 2), "the failure is recorded");
    assert!(failure.2.is_some_and(|d| d.contains("SQLSTATE 55P03")));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_no_transaction_statement_retries_too(pool: PgPool) -> TestResult {
    let holder = hold_busy(&pool).await?;
    let dir = write_migrations(&[(
        "1_note.up.sql",
        "-- no-transaction\ncreate table side (id int);\nalter table busy add column note text;\n",
    )]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let child = Running::spawn(
        &["--database-url", &url, "--source", &source, "up", "--lock-retries", "5"],
        ENV,
    );
    // Released once the runner has retried at least once, as PostgreSQL shows it.
    let retried = retried_on_a_lock(&pool, "strata-migrate", Duration::from_secs(30)).await?;
    assert!(retried, "the runner never retried");
    let released = holder.commit().await;
    let out = child.output().await?;
    released?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("the statement was rolled back, retrying"), "{all}");
    assert!(has_note(&pool).await?);
    let retries: i32 = sqlx::query_scalar(
        "select retries from _strata_migration_events where version = 1 and kind = 'apply'",
    )
    .fetch_one(&pool)
    .await?;
    assert!(retries >= 1, "{retries}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_concurrent_build_waits_for_old_transactions_instead_of_timing_out(
    pool: PgPool,
) -> TestResult {
    sqlx::raw_sql("create table busy (id int); create table other (id int)").execute(&pool).await?;
    let dir = write_migrations(&[(
        "1_idx.up.sql",
        "-- no-transaction\ncreate index concurrently busy_id_idx on busy (id);\n",
    )]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    // An old transaction with a snapshot, on another table: a concurrent build must wait
    // for it; with lock_timeout in force it would be cancelled and leave an INVALID index.
    let mut old = pool.begin().await?;
    sqlx::raw_sql("set transaction isolation level repeatable read; select count(*) from other")
        .execute(&mut *old)
        .await?;
    let child = spawn_migrate(&["--database-url", &url, "--source", &source, "up"], ENV);
    // The build waits for the old transaction (a lock on its virtual transaction id) ...
    let waiting = runner_session("wait_event = 'virtualxid'");
    let waited = eventually(&pool, &waiting, Duration::from_secs(30)).await;
    // ... well past lock_timeout (200 ms), as PostgreSQL shows it, and is not cancelled.
    let still = if matches!(waited, Ok(true)) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(waiting)).fetch_one(&pool).await
    } else {
        Ok(false)
    };
    let finished = old.commit().await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    finished?;
    assert!(waited?, "the build never waited for the old transaction");
    assert!(still?, "the build stopped waiting before the old transaction ended");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let valid: bool = sqlx::query_scalar(
        "select indisvalid from pg_index where indexrelid = 'busy_id_idx'::regclass",
    )
    .fetch_one(&pool)
    .await?;
    assert!(valid);
    Ok(())
}
