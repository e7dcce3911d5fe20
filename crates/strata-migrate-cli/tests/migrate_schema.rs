//! `verify`, `diff` and `schema --check`: what each catches, on databases of their own.

mod support;

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{migrate_src, temp_dir, text, url_of, write_migrations};

/// A small schema with each kind of object a down file can forget.
const BASE: &[(&str, &str)] = &[
    (
        "1_base.up.sql",
        "create type mood as enum ('calm', 'busy');\n\
         create table notes (id bigint primary key, body text not null default '', mood mood not null default 'calm',\n\
           constraint notes_body_short check (length(body) < 1000));\n\
         create function notes_count() returns bigint language sql as 'select count(*) from notes';\n\
         alter table notes enable row level security;\n\
         create policy notes_all on notes using (true);\n",
    ),
    ("1_base.down.sql", "drop table notes;\ndrop function notes_count();\ndrop type mood;\n"),
];

/// `verify` over BASE and a second migration with `up` and `down`; returns its output.
fn verify_with(pool_url: &str, up: &str, down: &str) -> std::process::Output {
    let mut files = BASE.to_vec();
    files.push(("2_change.up.sql", up));
    files.push(("2_change.down.sql", down));
    let dir = write_migrations(&files);
    migrate_src(pool_url, &dir, &["verify"], &[])
}

#[sqlx::test(migrations = false)]
async fn verify_names_a_down_file_that_forgets_something(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let exact = verify_with(
        &url,
        "create index notes_body_idx on notes (body);\nalter table notes alter column body set default 'x';\n",
        "drop index notes_body_idx;\nalter table notes alter column body set default '';\n",
    );
    assert_eq!(exact.status.code(), Some(0), "{}", text(&exact));
    assert!(
        text(&exact).contains("2 down file(s) undo their up file exactly: [1, 2]"),
        "{}",
        text(&exact)
    );
    let cases = [
        (
            "an index",
            "create index notes_body_idx on notes (body);\n",
            "select 1;\n",
            "+ index CREATE INDEX notes_body_idx",
        ),
        (
            "a default",
            "alter table notes alter column body set default 'x';\n",
            "select 1;\n",
            "+ column public.notes.body text not null default 'x'::text",
        ),
        (
            "a grant",
            "grant select on notes to public;\n",
            "select 1;\n",
            "+ grant SELECT on table public.notes to public",
        ),
        (
            "a policy",
            "drop policy notes_all on notes;\ncreate policy notes_all on notes using (id > 0);\n",
            "select 1;\n",
            "+ policy public.notes notes_all PERMISSIVE for ALL to public using ((id > 0))",
        ),
    ];
    for (what, up, down, shown) in cases {
        let out = verify_with(&url, up, down);
        assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{what}: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains("migration 2 (change): after down, the schema differs"),
            "{what}: {all}"
        );
        assert!(all.contains(shown), "{what}: {all}");
    }
    // A missing down: reported, and an error only with --require-down.
    let mut files = BASE.to_vec();
    files.push(("2_only_up.sql", "create table more (id int);\n"));
    let dir = write_migrations(&files);
    let out = migrate_src(&url, &dir, &["verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("without a .down.sql (applied only): [2]"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["verify", "--require-down"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    // Every scratch database is gone.
    let left: i64 = sqlx::query_scalar(
        "select count(*) from pg_database where datname like 'strata\\_verify\\_%'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(left, 0);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn diff_catches_each_change_made_by_hand(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&BASE[..1]);
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    let clean = migrate_src(&url, &dir, &["diff"], &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(text(&clean).contains("no drift"), "{}", text(&clean));
    let changes = [
        ("create index notes_mood_idx on notes (mood)", "+ index CREATE INDEX notes_mood_idx"),
        (
            "alter table notes alter column body drop default",
            "+ column public.notes.body text not null\n",
        ),
        ("alter policy notes_all on notes using (id > 7)", "+ policy public.notes notes_all"),
        ("grant select on notes to public", "+ grant SELECT on table public.notes to public"),
        (
            "create or replace function notes_count() returns bigint language sql as 'select count(*) + 1 from notes'",
            "+ function notes_count()",
        ),
        (
            "create index notes_body_idx on notes (body); update pg_index set indisvalid = false where indexrelid = 'notes_body_idx'::regclass",
            "-- INVALID",
        ),
        ("alter type mood add value 'angry'", "+ enum mood values 'calm', 'busy', 'angry'"),
        (
            "alter table notes drop constraint notes_body_short",
            "- constraint public.notes notes_body_short",
        ),
    ];
    for (change, shown) in changes {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(change)).execute(&mut *tx).await?;
        // Each change alone: made by hand, diffed, then the schema rebuilt from the files.
        tx.commit().await?;
        let out = migrate_src(&url, &dir, &["diff"], &[]);
        assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{change}: {}", text(&out));
        assert!(text(&out).contains(shown.trim_end_matches('\n')), "{change}: {}", text(&out));
        let undo = migrate_src(&url, &dir, &["--format", "json", "diff"], &[]);
        let report: serde_json::Value = serde_json::from_slice(&undo.stdout)?;
        assert!(report["differences"].as_array().is_some_and(|d| !d.is_empty()), "{report}");
        // Put the database back by rebuilding it from the migrations.
        sqlx::raw_sql(
            "drop table notes; drop function notes_count(); drop type mood;
             delete from _sqlx_migrations; delete from _strata_migration_events",
        )
        .execute(&pool)
        .await?;
        assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    }
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn diff_sees_no_drift_on_a_database_sqlx_migrated(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[(
        "1_t.sql",
        "create table t (id int primary key, v text default 'x');\n",
    )]);
    sqlx::migrate::Migrator::new(dir.as_path()).await?.run(&pool).await?;
    let out = migrate_src(&url_of(&pool).await, &dir, &["diff"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no drift"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_stale_schema_file_fails_the_check(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&[("1_t.sql", "create table t (id int primary key);\n")]);
    assert_eq!(migrate_src(&url, &dir, &["up"], &[]).status.code(), Some(0));
    let file = temp_dir("schema").join("schema.sql");
    let out = migrate_src(&url, &dir, &["schema"], &[]);
    std::fs::write(&file, &out.stdout)?;
    let path = file.to_string_lossy().into_owned();
    let out = migrate_src(&url, &dir, &["schema", "--check", &path], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sqlx::raw_sql("alter table t add column note text").execute(&pool).await?;
    let out = migrate_src(&url, &dir, &["schema", "--check", &path], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("+ column public.t.note text"), "{}", text(&out));
    assert!(text(&out).contains("is stale"), "{}", text(&out));
    Ok(())
}

/// Runs git in `dir`, quietly, with a fixed identity.
fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git")
}

#[test]
fn two_branches_that_each_add_a_migration_conflict_on_the_sum_file() -> TestResult {
    let repo = temp_dir("sum-repo");
    let migrations = repo.join("migrations");
    std::fs::create_dir_all(&migrations)?;
    std::fs::write(migrations.join("1_a.sql"), "create table a (id int);\n")?;
    let sum = |dir: &std::path::Path| -> Result<(), strata_test_support::BoxError> {
        let source = dir.to_string_lossy().into_owned();
        let out = support::migrate(&["--source", &source, "sum"], &[]);
        std::fs::write(dir.join("strata.sum"), &out.stdout)?;
        Ok(())
    };
    sum(&migrations)?;
    assert!(git(&repo, &["init", "-q"]).status.success());
    git(&repo, &["add", "."]);
    assert!(git(&repo, &["commit", "-qm", "base"]).status.success());
    for (branch, file) in [("left", "2_left.sql"), ("right", "3_right.sql")] {
        git(&repo, &["checkout", "-qb", branch, "main"]);
        std::fs::write(migrations.join(file), "select 1;\n")?;
        sum(&migrations)?;
        git(&repo, &["add", "."]);
        assert!(git(&repo, &["commit", "-qm", branch]).status.success());
    }
    git(&repo, &["checkout", "-q", "left"]);
    let merge = git(&repo, &["merge", "-q", "right"]);
    assert!(!merge.status.success(), "the merge went through: {}", text(&merge));
    assert!(
        text(&merge).contains("CONFLICT (content): Merge conflict in migrations/strata.sum"),
        "{}",
        text(&merge)
    );
    // A file edited after the sum was written is caught too.
    git(&repo, &["merge", "--abort"]);
    std::fs::write(migrations.join("1_a.sql"), "create table a (id bigint);\n")?;
    let source = migrations.to_string_lossy().into_owned();
    let file = migrations.join("strata.sum").to_string_lossy().into_owned();
    let out = support::migrate(&["--source", &source, "sum", "--check", &file], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("- 1_a.sql "), "{}", text(&out));
    Ok(())
}
