//! Migration files nobody expected: each gets a clear error naming the file, and nothing is
//! applied, not even the good file before it. A huge file is no error: it applies.

mod support;

use std::time::Instant;

use sqlx::PgPool;
use strata_test_support::TestResult;
use support::{migrate_src, temp_dir, text, url_of};

/// `(case, file name, content, what the error must say)`.
const CASES: &[(&str, &str, &[u8], &str)] = &[
    ("not UTF-8", "2_latin1.up.sql", b"select 'caf\xe9';\n", "2_latin1.up.sql"),
    (
        "a byte order mark",
        "2_bom.up.sql",
        b"\xef\xbb\xbfcreate table x (id int);\n",
        "byte order mark",
    ),
    ("an empty file", "2_empty.up.sql", b"", "has no SQL statement"),
    ("only comments", "2_todo.up.sql", b"-- Add migration script here\n\n", "has no SQL statement"),
    (
        "a duplicate version",
        "1_again.up.sql",
        b"create table x (id int);\n",
        "two migrations have version 1",
    ),
    ("no integer version", "v2_name.up.sql", b"create table x (id int);\n", "v2_name.up.sql"),
    ("a space in the name", "2_two words.up.sql", b"create table x (id int);\n", "not spaces"),
    ("an upper-case ending", "2_shout.UP.sql", b"create table x (id int);\n", "2_shout.UP.sql"),
    (
        "a down file without its up",
        "2_orphan.down.sql",
        b"drop table good;\n",
        "2_orphan.down.sql has no up migration",
    ),
    ("an unterminated string", "2_open.up.sql", b"select 'never closed;\n", "unterminated string"),
    (
        "an unterminated comment",
        "2_comment.up.sql",
        b"select 1; /* never closed\n",
        "unterminated block comment",
    ),
    (
        "an unterminated dollar quote",
        "2_dollar.up.sql",
        b"do $body$ begin perform 1; end\n",
        "unterminated",
    ),
    (
        "a late no-transaction",
        "2_late.up.sql",
        b"create index i on good (id);\n-- no-transaction\n",
        "line 2: `-- no-transaction` would be ignored",
    ),
    (
        "a no-transaction without its space",
        "2_tight.up.sql",
        b"--no-transaction\ncreate index i on good (id);\n",
        "line 1: `--no-transaction` would be ignored",
    ),
    (
        "a late lock_timeout",
        "2_timeout.up.sql",
        b"select 1;\n-- lock_timeout: 5s\nselect 2;\n",
        "line 2: `-- lock_timeout: 5s` would be ignored",
    ),
    (
        "a bad directive value",
        "2_soon.up.sql",
        b"-- lock_timeout: soon\nselect 1;\n",
        "bad `-- lock_timeout:` directive",
    ),
];

#[sqlx::test(migrations = false)]
async fn each_hostile_file_is_refused_by_name_and_nothing_is_applied(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    for (case, name, content, says) in CASES {
        let dir = temp_dir("hostile");
        std::fs::write(dir.join("1_good.up.sql"), "create table good (id int);\n")?;
        std::fs::write(dir.join(name), content)?;
        for args in [&["up", "--dry-run"][..], &["up"]] {
            let out = migrate_src(&url, &dir, args, &[]);
            let all = text(&out);
            assert_eq!(out.status.code(), Some(1), "{case} ({args:?}): {all}");
            assert!(all.contains(says), "{case} ({args:?}) should say {says:?}: {all}");
            assert!(!all.contains("applied 1"), "{case}: {all}");
        }
        let good: bool =
            sqlx::query_scalar("select to_regclass('good') is not null").fetch_one(&pool).await?;
        assert!(!good, "{case}: the good file before it was applied");
    }
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_huge_file_applies(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = temp_dir("huge");
    let mut sql = String::from("create table big (id int);\n");
    for n in 0..100_000 {
        sql.push_str(&format!(
            "insert into big values ({n}); -- row {n}; with a ';' in a comment\n"
        ));
    }
    std::fs::write(dir.join("1_big.up.sql"), &sql)?;
    let started = Instant::now();
    let out = migrate_src(&url, &dir, &["up"], &[]);
    eprintln!(
        "a {} MB file of 100,001 statements applied in {:?}",
        sql.len() >> 20,
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: i64 = sqlx::query_scalar("select count(*) from big").fetch_one(&pool).await?;
    assert_eq!(rows, 100_000);
    Ok(())
}
