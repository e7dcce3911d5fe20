//! `-- no-transaction` files: several `CREATE INDEX CONCURRENTLY` in one file, resumable
//! progress after a failure, the INVALID index a failed concurrent build leaves, `repair`.

mod support;

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{migrate_src, text, url_of, write_migrations};

const TABLE: (&str, &str) = (
    "1_items.up.sql",
    "create table items (id int, a int, b int);\ninsert into items select g, g % 10, g % 3 from generate_series(1, 1000) g;\n",
);

async fn index_valid(pool: &PgPool, name: &str) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "select i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
}

#[sqlx::test(migrations = false)]
async fn several_concurrent_index_builds_in_one_file(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        TABLE,
        (
            "2_indexes.up.sql",
            "-- no-transaction\n-- Two concurrent builds and a function with semicolons inside.\ncreate index concurrently items_a_idx on items (a);\n\ncreate index concurrently items_b_idx\n    on items (b);\ncreate function items_note() returns text language plpgsql as $$\nbegin\n  return 'a;b';\nend;\n$$;\n",
        ),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("3 statement(s)"), "{}", text(&out));
    assert_eq!(index_valid(&pool, "items_a_idx").await?, Some(true));
    assert_eq!(index_valid(&pool, "items_b_idx").await?, Some(true));
    let note: String = sqlx::query_scalar("select items_note()").fetch_one(&pool).await?;
    assert_eq!(note, "a;b");
    let row: (bool, i64) =
        sqlx::query_as("select success, execution_time from _sqlx_migrations where version = 2")
            .fetch_one(&pool)
            .await?;
    assert!(row.0 && row.1 > 0, "{row:?}");
    let done: (i32, i32) = sqlx::query_as(
        "select statements_done, statements_total from _strata_migration_events where version = 2 and kind = 'apply'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(done, (3, 3));
    let progress: i64 = sqlx::query_scalar("select count(*) from _strata_migration_progress")
        .fetch_one(&pool)
        .await?;
    assert_eq!(progress, 0, "progress is cleared once the file is done");
    // sqlx's own Migrator sees the result as applied.
    sqlx::migrate::Migrator::new(dir.as_path()).await?.run(&pool).await?;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failed_concurrent_build_is_reported_and_the_rerun_resumes(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        TABLE,
        (
            "2_indexes.up.sql",
            "-- no-transaction\ncreate index concurrently items_a_idx on items (a);\n\ncreate unique index concurrently items_b_key\n  on items (b);\ncreate index concurrently items_ab_idx on items (a, b);\n",
        ),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("migration 2 (indexes) failed"), "{all}");
    assert!(all.contains("SQLSTATE 23505"), "{all}");
    assert!(
        all.contains(
            "failing statement 2/3: create unique index concurrently items_b_key on items (b);"
        ),
        "{all}"
    );
    assert!(all.contains("DROP INDEX CONCURRENTLY IF EXISTS items_b_key;"), "{all}");
    assert_eq!(index_valid(&pool, "items_a_idx").await?, Some(true));
    assert_eq!(index_valid(&pool, "items_b_key").await?, Some(false));
    let success: bool =
        sqlx::query_scalar("select success from _sqlx_migrations where version = 2")
            .fetch_one(&pool)
            .await?;
    assert!(!success, "partial: success = false, so sqlx refuses to run over it too");

    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&out).contains("failed") && text(&out).contains("1/3 statements done"));
    let out = migrate_src(&url, &dir, &["check", "--fail-on", "failed"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)));

    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(
        all.contains("invalid index(es)")
            && all.contains("DROP INDEX CONCURRENTLY IF EXISTS items_b_key;")
    );

    sqlx::raw_sql("drop index concurrently items_b_key").execute(&pool).await?;
    sqlx::raw_sql("update items set b = id").execute(&pool).await?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "resumed at statement 2: {}", text(&out));
    assert!(text(&out).contains("2 statement(s)"), "statement 1 did not run again");
    for index in ["items_a_idx", "items_b_key", "items_ab_idx"] {
        assert_eq!(index_valid(&pool, index).await?, Some(true), "{index}");
    }
    let events: Vec<(String, Option<i32>, Option<String>)> = sqlx::query_as(
        "select kind, statements_done, detail from _strata_migration_events where version = 2 order by id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(events[0].0, "fail");
    assert_eq!(events[0].1, Some(1));
    assert_eq!(events[1].0, "apply");
    assert_eq!(events[1].2.as_deref(), Some("resumed at statement 2"));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn repair_settles_a_failed_migration(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        TABLE,
        (
            "2_broken.up.sql",
            "-- no-transaction\ncreate table half (id int);\nselect no_such_column from half;\n",
        ),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("SQLSTATE 42703") && all.contains("at line 3 of 2_broken.up.sql"),
        "{all}"
    );
    assert!(all.contains("failing statement 2/2: select no_such_column from half;"), "{all}");
    // The operator undoes the partial change and fixes the file: it changed, so no resume.
    sqlx::raw_sql("drop table half").execute(&pool).await?;
    std::fs::write(
        dir.join("2_broken.up.sql"),
        "-- no-transaction\ncreate table half (id int);\n",
    )?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("its file changed since it started") && all.contains("repair"), "{all}");

    let out = migrate_src(&url, &dir, &["repair"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("removed the failed migration's record"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let kinds: Vec<String> = sqlx::query_scalar(
        "select kind from _strata_migration_events where version = 2 order by id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(kinds, ["fail", "repair", "apply"]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failing_no_transaction_down_file_says_where_it_stopped(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_t.up.sql", "-- no-transaction\ncreate table t1 (id int);\ncreate table t2 (id int);\n"),
        ("1_t.down.sql", "-- no-transaction\ndrop table t2;\ndrop table no_such_table;\n"),
    ]);
    let url = url_of(&pool).await;
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    let out = migrate_src(&url, &dir, &["down", "--steps", "1"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(
        all.contains("SQLSTATE 42P01")
            && all.contains(
                "at line 3 of 1_t.down.sql; failing statement 2/2: drop table no_such_table;"
            ),
        "{all}"
    );
    assert!(all.contains("statement 1 stays done"), "{all}");
    assert!(all.contains("still recorded as applied"), "{all}");
    let applied: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&pool).await?;
    assert_eq!(applied, 1);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failure_in_the_first_statement_resumes_there(pool: PgPool) -> TestResult {
    sqlx::raw_sql("create table flag (id int)").execute(&pool).await?;
    let dir = write_migrations(&[(
        "1_first.up.sql",
        "-- no-transaction\ncreate table first as select 1 / (select count(*) from flag)::int as x;\ncreate index concurrently first_x on first (x);\n",
    )]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("no statement of it ran"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["up", "--dry-run"], &[]);
    assert!(text(&out).contains("resuming a partial run: 0 statement(s) done"), "{}", text(&out));
    sqlx::raw_sql("insert into flag values (1)").execute(&pool).await?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("2 statement(s)"), "{}", text(&out));
    let detail: Option<String> = sqlx::query_scalar(
        "select detail from _strata_migration_events where kind = 'apply' and version = 1",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(detail.as_deref(), Some("resumed at statement 1"));
    Ok(())
}

/// The steps a run went through, from its log: `(version, None)` for a migration, then
/// `(version, Some((statement, line)))` for each statement of a no-transaction file.
fn steps_run(log: &str) -> Vec<(i64, Option<(usize, usize)>)> {
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(&format!(" {key}="))? + key.len() + 2;
        Some(line[at..].split_whitespace().next()?.to_owned())
    };
    let mut steps = Vec::new();
    for line in log.lines() {
        let version = field(line, "migration.version").and_then(|v| v.parse().ok());
        if line.contains("applying migration") {
            steps.extend(version.map(|v| (v, None)));
        } else if line.contains("running statement") {
            let statement = field(line, "statement")
                .and_then(|s| s.split('/').next().and_then(|n| n.parse().ok()));
            let at = field(line, "line").and_then(|l| l.parse().ok());
            if let (Some(v), Some(s), Some(l)) = (version, statement, at) {
                steps.push((v, Some((s, l))));
            }
        }
    }
    steps
}

/// The steps a dry run printed, in the same form.
fn steps_printed(script: &str) -> Vec<(i64, Option<(usize, usize)>)> {
    let mut steps = Vec::new();
    let mut version = 0;
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("-- [") {
            let file = rest.split("] ").nth(1).unwrap_or_default();
            version = file.split('_').next().and_then(|v| v.parse().ok()).unwrap_or(-1);
            steps.push((version, None));
        } else if let Some(rest) = line.strip_prefix("-- statement ") {
            let statement = rest.split('/').next().and_then(|n| n.parse().ok());
            let at = rest
                .split("(line ")
                .nth(1)
                .and_then(|l| l.split(')').next())
                .and_then(|l| l.parse().ok());
            if let (Some(s), Some(l)) = (statement, at) {
                steps.push((version, Some((s, l))));
            }
        }
    }
    steps
}

#[sqlx::test(migrations = false)]
async fn a_run_goes_through_the_steps_its_dry_run_printed(pool: PgPool) -> TestResult {
    sqlx::raw_sql("create table flag (id int)").execute(&pool).await?;
    let dir = write_migrations(&[
        TABLE,
        (
            "2_indexes.up.sql",
            "-- no-transaction\ncreate index concurrently items_a on items (a);\nalter table items add column c int;\ncreate table gate as select 1 / (select count(*) from flag)::int as x;\ncreate index concurrently items_b on items (b);\n",
        ),
        ("3_more.up.sql", "create table more (id int);\n"),
    ]);
    let url = url_of(&pool).await;
    let env = [("STRATA_LOG__FILTER", "strata_migrate=info")];
    // Once from the start (it fails at statement 3), then resuming there.
    for expected_code in [exit::MIGRATION, exit::OK] {
        let printed = migrate_src(&url, &dir, &["up", "--dry-run"], &env);
        assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
        let ran = migrate_src(&url, &dir, &["up"], &env);
        assert_eq!(ran.status.code(), Some(i32::from(expected_code)), "{}", text(&ran));
        let printed = steps_printed(&String::from_utf8_lossy(&printed.stdout));
        let ran = steps_run(&String::from_utf8_lossy(&ran.stderr));
        assert!(printed.len() >= 3, "{printed:?}");
        if expected_code == exit::OK {
            assert_eq!(ran, printed, "the run went through the printed steps");
        } else {
            // It stops at the statement that fails: what ran is the start of the plan.
            assert_eq!(ran[..], printed[..ran.len()], "{ran:?} is not a start of {printed:?}");
            assert_eq!(ran.last(), Some(&(2, Some((3, 4)))), "{ran:?}");
            sqlx::raw_sql("insert into flag values (1)").execute(&pool).await?;
        }
    }
    Ok(())
}
