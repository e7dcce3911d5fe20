//! The commands beyond `up`/`status`, through the binary with `--source DIR`: `up --to`,
//! `--dry-run`, out-of-order refusal, `down`, cosmetic checksum changes, `repair`,
//! `baseline`, `check`, and the side table of events.

mod support;

use sqlx::PgPool;
use strata_db::MIGRATOR;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{
    applied_versions, has_table, migrate_src, schema_dump, text, url_of, write_migrations,
};

const REVERSIBLE: &[(&str, &str)] = &[
    (
        "1_accounts.up.sql",
        "create table accounts (\n  id int constraint accounts_pkey primary key,\n  name text not null default 'x'\n);\n",
    ),
    ("1_accounts.down.sql", "drop table accounts;\n"),
    (
        "2_entries.up.sql",
        "-- lock_timeout: 30s\ncreate table entries (id bigserial constraint entries_pkey primary key, account int constraint entries_account_fkey references accounts (id));\ncreate index entries_account_idx on entries (account);\n",
    ),
    ("2_entries.down.sql", "drop table entries;\n"),
    (
        "3_names.up.sql",
        "-- no-transaction\ncreate index concurrently accounts_name_idx on accounts (name);\ncreate index concurrently entries_id_account_idx on entries (id, account);\n",
    ),
    (
        "3_names.down.sql",
        "-- no-transaction\ndrop index concurrently entries_id_account_idx;\ndrop index concurrently accounts_name_idx;\n",
    ),
];

#[sqlx::test(migrations = false)]
async fn up_to_then_dry_run_shows_the_exact_sql_and_changes_nothing(pool: PgPool) -> TestResult {
    let dir = write_migrations(REVERSIBLE);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up", "--to", "1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, vec![1]);

    let env = [("STRATA_MIGRATIONS__LOCK_TIMEOUT", "1500ms")];
    let out = migrate_src(&url, &dir, &["up", "--dry-run"], &env);
    let sql = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected_in_order = [
        "-- [1/2] 2_entries.up.sql",
        "BEGIN;",
        "SET LOCAL lock_timeout = '30000ms';",
        "create table entries",
        "INSERT INTO _sqlx_migrations",
        "COMMIT;",
        "-- [2/2] 3_names.up.sql",
        "VALUES (3, 'names', false,",
        "SET lock_timeout = '0ms'; -- none for CONCURRENTLY",
        "-- statement 1/2 (line 2)",
        "create index concurrently accounts_name_idx on accounts (name);",
        "-- statement 2/2 (line 3)",
        "RESET lock_timeout;",
        "UPDATE _sqlx_migrations SET success = true",
        "pg_advisory_unlock(",
    ];
    let mut at = 0;
    for piece in expected_in_order {
        let found = sql[at..].find(piece).ok_or_else(|| format!("{piece:?} after {at}:\n{sql}"))?;
        at += found + piece.len();
    }
    assert_eq!(applied_versions(&pool).await?, vec![1], "dry run changed nothing");
    assert!(!has_table(&pool, "entries").await?);

    let out = migrate_src(&url, &dir, &["--format", "json", "up", "--dry-run"], &[]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["planned"], serde_json::json!([2, 3]));

    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, vec![1, 2, 3]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn down_then_up_leaves_an_identical_schema(pool: PgPool) -> TestResult {
    let dir = write_migrations(REVERSIBLE);
    let url = url_of(&pool).await;
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    let before = schema_dump(&pool).await;
    assert!(before.iter().any(|l| l.contains("accounts_name_idx")), "{before:#?}");

    let out = migrate_src(&url, &dir, &["down", "--to", "1", "--dry-run"], &[]);
    let sql = text(&out);
    assert!(sql.contains("drop index concurrently accounts_name_idx;"), "{sql}");
    assert!(sql.contains("DELETE FROM _sqlx_migrations WHERE version = 2;"), "{sql}");
    assert_eq!(applied_versions(&pool).await?, vec![1, 2, 3], "dry run changed nothing");

    let out = migrate_src(&url, &dir, &["down", "--to", "1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("2 migration(s) reverted"), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, vec![1]);
    assert!(!has_table(&pool, "entries").await?);
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(schema_dump(&pool).await, before);

    let out = migrate_src(&url, &dir, &["down", "--steps", "3"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, Vec::<i64>::new());
    assert_eq!(schema_dump(&pool).await, Vec::<String>::new());
    let reverts: i64 =
        sqlx::query_scalar("select count(*) from _strata_migration_events where kind = 'revert'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(reverts, 5);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn the_project_migrations_round_trip(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let run = |args: &[&str]| support::migrate(&[&["--database-url", &url], args].concat(), &[]);
    assert_eq!(run(&["up"]).status.code(), Some(0));
    let before = schema_dump(&pool).await;
    let first = MIGRATOR.iter().map(|m| m.version).min().ok_or("no migrations")?;
    let out = run(&["down", "--to", "0"]);
    assert_eq!(out.status.code(), Some(0), "every migration has a down file: {}", text(&out));
    assert_eq!(schema_dump(&pool).await, Vec::<String>::new(), "down to 0 removes everything");
    let out = run(&["up", "--to", &first.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(run(&["up"]).status.code(), Some(0));
    assert_eq!(schema_dump(&pool).await, before);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn down_without_a_down_file_is_refused_and_changes_nothing(pool: PgPool) -> TestResult {
    let mut files = REVERSIBLE.to_vec();
    files.push(("4_oneway.sql", "create table oneway (id int);\n"));
    let dir = write_migrations(&files);
    let url = url_of(&pool).await;
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    let out = migrate_src(&url, &dir, &["down", "--steps", "2"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("cannot revert migration(s) [4]: no .down.sql file"), "{all}");
    assert_eq!(applied_versions(&pool).await?, vec![1, 2, 3, 4], "nothing was reverted");
    let out = migrate_src(&url, &dir, &["down"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "needs --to or --steps");
    let out = migrate_src(&url, &dir, &["down", "--to", "7"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{}", text(&out));
    assert!(text(&out).contains("down --to 7: that version is not applied"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn an_out_of_order_version_is_refused_unless_allowed(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("10_a.up.sql", "create table a (id int);\n"),
        ("30_c.up.sql", "create table c (id int);\n"),
    ]);
    let url = url_of(&pool).await;
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    std::fs::write(dir.join("20_b.up.sql"), "create table b (id int);\n")?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(
        all.contains("pending migration(s) [20] are older than the newest applied version 30"),
        "{all}"
    );
    assert!(all.contains("--allow-out-of-order"), "{all}");
    let out = migrate_src(&url, &dir, &["check", "--fail-on", "out-of-order"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&out).contains("out of order"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["up", "--allow-out-of-order"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, vec![10, 20, 30]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn cosmetic_changes_warn_real_ones_need_repair(pool: PgPool) -> TestResult {
    let applied = "create table t (  \n  id int\n);\n";
    let dir = write_migrations(&[("1_t.up.sql", applied)]);
    let url = url_of(&pool).await;
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));

    for (what, edited) in [
        ("CRLF", applied.replace('\n', "\r\n")),
        ("blanks added", "create table t (   \t\n  id int   \n);  \n\n".to_owned()),
        ("blanks removed", "create table t (\n  id int\n);".to_owned()),
        ("both", "create table t (\r\n  id int \r\n);".to_owned()),
    ] {
        std::fs::write(dir.join("1_t.up.sql"), &edited)?;
        let out = migrate_src(&url, &dir, &["up"], &[]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {all}");
        assert!(
            all.contains("warning: migration 1 (t) differs from what was applied only in"),
            "{what}: {all}"
        );
        let out = migrate_src(&url, &dir, &["check"], &[]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
    }

    std::fs::write(dir.join("1_t.up.sql"), "create table t (\n  id bigint\n);\n")?;
    let out = migrate_src(&url, &dir, &["up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("applied checksum") && all.contains("file checksum"), "{all}");
    let out = migrate_src(&url, &dir, &["check", "--fail-on", "changed"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));

    let out = migrate_src(&url, &dir, &["repair"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("accepted the file's checksum"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let repairs: i64 = sqlx::query_scalar(
        "select count(*) from _strata_migration_events where kind = 'repair' and version = 1",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(repairs, 1);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn baseline_then_up_runs_only_the_rest(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("2_b.up.sql", "create table b (id int);\n"),
        ("3_c.up.sql", "create table c (id int);\n"),
    ]);
    sqlx::raw_sql("create table a (id int); create table b (id int);").execute(&pool).await?;
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["--format", "json", "baseline", "--to", "2"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["marked"], serde_json::json!([1, 2]));
    let rows: Vec<(i64, bool, i64)> =
        sqlx::query_as("select version, success, execution_time from _sqlx_migrations order by 1")
            .fetch_all(&pool)
            .await?;
    assert_eq!(rows, vec![(1, true, -1), (2, true, -1)], "as sqlx's skip records them");
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 migration(s) applied"), "{}", text(&out));
    assert_eq!(applied_versions(&pool).await?, vec![1, 2, 3]);
    let kinds: Vec<String> = sqlx::query_scalar(
        "select kind || ' ' || version from _strata_migration_events order by id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(kinds, ["baseline 1", "baseline 2", "apply 3"]);
    // sqlx's own Migrator agrees that everything is applied.
    sqlx::migrate::Migrator::new(dir.as_path()).await?.run(&pool).await?;
    let out = migrate_src(&url, &dir, &["baseline", "--to", "9"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{}", text(&out));
    assert!(text(&out).contains("there is no migration with that version"));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn check_and_status_json_match_the_database(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("2_b.up.sql", "create table b (id int);\n"),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["check"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["check", "--fail-on", "changed,missing,failed"], &[]);
    assert_eq!(out.status.code(), Some(0), "pending only: {}", text(&out));
    assert_eq!(migrate_src(&url, &dir, &["up", "--to", "1"], &[]).status.code(), Some(0));

    let out = migrate_src(&url, &dir, &["check", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["failed"], true);
    assert_eq!(report["found"][0]["finding"], "pending");
    assert_eq!(report["found"][0]["version"], 2);

    let out = migrate_src(&url, &dir, &["status", "--format", "json"], &[]);
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "select version, to_char(installed_on at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'), execution_time
           from _sqlx_migrations order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(lines[0]["version"], 1);
    assert_eq!(lines[0]["state"], "applied");
    let at = lines[0]["applied_at"].as_str().ok_or("applied_at")?;
    assert!(at.starts_with(&rows[0].1), "{at} vs {}", rows[0].1);
    let ms = lines[0]["duration_ms"].as_f64().ok_or("duration_ms")?;
    assert!((ms - rows[0].2 as f64 / 1e6).abs() < 0.01, "{ms}");
    assert_eq!(lines[1]["state"], "pending");
    assert_eq!(lines[1]["applied_at"], serde_json::Value::Null);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn the_side_table_records_who_ran_what(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[("1_a.up.sql", "create table a (id int);\n")]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[("USER", "deployer")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let row: (String, i64, String, Option<String>, Option<String>, String, Option<f64>) =
        sqlx::query_as(
            "select kind, version, db_user, os_user, host, app_version, lock_wait_ms
               from _strata_migration_events",
        )
        .fetch_one(&pool)
        .await?;
    assert_eq!((row.0.as_str(), row.1), ("apply", 1));
    assert_eq!(row.2, "postgres");
    assert_eq!(row.3.as_deref(), Some("deployer"));
    assert!(row.4.is_some_and(|h| !h.is_empty()));
    assert_eq!(row.5, env!("CARGO_PKG_VERSION"));
    assert!(row.6.is_some_and(|ms| ms >= 0.0));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn sqlx_and_we_revert_each_others_migrations(pool: PgPool) -> TestResult {
    let dir = write_migrations(&REVERSIBLE[..4]);
    let url = url_of(&pool).await;
    let sqlx_migrator = sqlx::migrate::Migrator::new(dir.as_path()).await?;
    sqlx_migrator.run(&pool).await?;
    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&out).contains("2 applied, 0 pending"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["down", "--to", "0"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(schema_dump(&pool).await, Vec::<String>::new());

    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sqlx_migrator.undo(&pool, 0).await?;
    assert_eq!(applied_versions(&pool).await?, Vec::<i64>::new());
    assert_eq!(schema_dump(&pool).await, Vec::<String>::new());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn json_logs_carry_the_migration_fields_and_progress(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("2_b.up.sql", "-- no-transaction\ncreate index concurrently a_id on a (id);\n"),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up"], &[("STRATA_LOG__FORMAT", "json")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let applied: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["message"] == "applied migration").collect();
    assert_eq!(applied.len(), 2, "{events:#?}");
    assert_eq!(applied[0]["migration.version"], 1);
    assert!(applied[0]["duration_ms"].is_f64());
    assert_eq!(applied[1]["statements"], 1);
    let progress: Vec<&str> = events.iter().filter_map(|e| e["progress"].as_str()).collect();
    assert_eq!(progress, ["1/2", "2/2"]);
    Ok(())
}
