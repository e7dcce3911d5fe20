//! `lint`: each enabled rule triggers on an unsafe migration and stays quiet on its safe
//! form; what the runner does is not reported; table sizes from a database decide between
//! error and warning; ignores need a reason.

mod support;

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{migrate, migrate_src, text, url_of, write_migrations};

const BASE: (&str, &str) = (
    "1_base.sql",
    "create table t (id int, x int);\ncreate table u (id int primary key);\ncreate unique index t_x_key_idx on t (x);\n",
);

/// The findings of `lint --all` over BASE and `2_case.sql` holding `sql`: (rule, severity).
fn findings(
    sql: &str,
    extra: &[&str],
    url: Option<&str>,
) -> Result<Vec<(String, String)>, strata_test_support::BoxError> {
    let dir = write_migrations(&[BASE, ("2_case.sql", sql)]);
    let source = dir.to_string_lossy().into_owned();
    let mut args = vec!["--source", source.as_str(), "--format", "json", "lint", "--all"];
    args.extend_from_slice(extra);
    let out = match url {
        Some(url) => {
            let mut all = vec!["--database-url", url];
            all.extend_from_slice(&args);
            migrate(&all, &[])
        }
        None => migrate(&args, &[]),
    };
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    Ok(report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["file"] == "2_case.sql")
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["severity"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[test]
fn each_rule_triggers_on_the_unsafe_form_and_not_on_the_safe_one() -> TestResult {
    let cases = [
        (
            "require-concurrent-index-creation",
            "create index t_i on t (x);",
            "-- no-transaction\ncreate index concurrently if not exists t_i on t (x);",
        ),
        (
            "require-concurrent-index-deletion",
            "drop index t_x_key_idx;",
            "-- no-transaction\ndrop index concurrently if exists t_x_key_idx;",
        ),
        (
            "constraint-missing-not-valid",
            "alter table t add constraint t_x_pos check (x > 0);",
            "alter table t add constraint t_x_pos check (x > 0) not valid;",
        ),
        (
            "adding-field-with-default",
            "alter table t add column y float8 default random();",
            "alter table t add column y int default 5;",
        ),
        (
            "adding-foreign-key-constraint",
            "alter table t add constraint t_u foreign key (id) references u (id);",
            "alter table t add constraint t_u foreign key (id) references u (id) not valid;",
        ),
        (
            "changing-column-type",
            "alter table t alter column x type bigint;",
            "alter table t alter column x set default 1;",
        ),
        (
            "adding-not-nullable-field",
            "alter table t alter column x set not null;",
            "alter table t add constraint t_x_nn check (x is not null) not valid;",
        ),
        (
            "adding-serial-primary-key-field",
            "alter table t add primary key (x);",
            "alter table t add constraint t_pk primary key using index t_x_key_idx;",
        ),
        (
            "disallowed-unique-constraint",
            "alter table t add constraint t_x_key unique (x);",
            "alter table t add constraint t_x_key unique using index t_x_key_idx;",
        ),
        (
            "adding-required-field",
            "alter table t add column y int not null;",
            "alter table t add column y int not null default 0;",
        ),
        ("ban-drop-database", "drop database other;", "select 1;"),
        (
            "renaming-column",
            "alter table t rename column x to y;",
            "alter table t add column y int;",
        ),
        ("renaming-table", "alter table t rename to t2;", "create view t2 as select * from t;"),
        (
            "ban-drop-column",
            "alter table t drop column x;",
            "alter table t alter column x drop default;",
        ),
        ("ban-drop-table", "drop table t;", "create table t3 (id int);"),
        (
            "prefer-robust-stmts",
            "-- no-transaction\ncreate index concurrently t_i on t (x);",
            "-- no-transaction\ncreate index concurrently if not exists t_i on t (x);",
        ),
        (
            "concurrently-in-transactional-file",
            "create index concurrently t_i on t (x);",
            "-- no-transaction\ncreate index concurrently if not exists t_i on t (x);",
        ),
        (
            "transaction-control-in-no-transaction-file",
            "-- no-transaction\nbegin;\nselect 1;\ncommit;",
            "select 1;",
        ),
    ];
    assert!(cases.len() >= strata_schema::RULES.len(), "a case for every enabled rule");
    for rule in strata_schema::RULES {
        assert!(cases.iter().any(|(name, ..)| *name == rule.to_string()), "no case for {rule}");
    }
    for (rule, unsafe_form, safe_form) in cases {
        let found = findings(&format!("{unsafe_form}\n"), &[], None)?;
        assert!(
            found.iter().any(|(r, s)| r == rule && s == "error"),
            "{rule}: {found:?} on {unsafe_form}"
        );
        let found = findings(&format!("{safe_form}\n"), &[], None)?;
        assert!(found.iter().all(|(r, _)| r != rule), "{rule}: {found:?} on {safe_form}");
    }
    Ok(())
}

#[test]
fn what_the_runner_does_is_not_reported_and_new_tables_are_exempt() -> TestResult {
    // No timeout findings (the runner sets lock_timeout), no robust-statement findings in a
    // transactional file, nothing on a table the same file creates.
    let sql = "create table fresh (id int, x int);\ncreate index fresh_x on fresh (x);\n\
               alter table fresh alter column x set not null;\nalter table fresh add constraint fresh_pos check (x > 0);\n";
    assert_eq!(findings(sql, &[], None)?, Vec::<(String, String)>::new());
    Ok(())
}

#[test]
fn an_ignore_needs_a_reason() -> TestResult {
    let with = "-- strata-lint: ignore changing-column-type: t is empty in every environment\nalter table t alter column x type bigint;\n";
    assert_eq!(findings(with, &[], None)?, Vec::<(String, String)>::new());
    let without =
        "-- strata-lint: ignore changing-column-type\nalter table t alter column x type bigint;\n";
    let found = findings(without, &[], None)?;
    assert!(found.iter().any(|(r, _)| r == "ignore-without-reason"), "{found:?}");
    // Applied files take their ignores from a file instead.
    let ignores = support::temp_dir("ignores").join("lint-ignores.txt");
    std::fs::write(&ignores, "# file rule: reason\n2_case.sql changing-column-type: t is empty\n")?;
    let path = ignores.to_string_lossy().into_owned();
    let found =
        findings("alter table t alter column x type bigint;\n", &["--ignores", &path], None)?;
    assert_eq!(found, Vec::<(String, String)>::new());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn table_sizes_decide_between_error_and_warning(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    sqlx::raw_sql(BASE.1).execute(&pool).await?;
    sqlx::raw_sql("analyze t").execute(&pool).await?;
    let unsafe_form = "create index t_i on t (x);\n";
    let small = findings(unsafe_form, &["--large-table-rows", "500"], Some(&url))?;
    assert_eq!(small, [("require-concurrent-index-creation".to_owned(), "warning".to_owned())]);
    sqlx::raw_sql("insert into t select g, g from generate_series(1, 1000) g; analyze t")
        .execute(&pool)
        .await?;
    let big = findings(unsafe_form, &["--large-table-rows", "500"], Some(&url))?;
    assert_eq!(big, [("require-concurrent-index-creation".to_owned(), "error".to_owned())]);
    // Exit codes: 5 with an error, 0 with warnings only.
    let dir = write_migrations(&[BASE, ("2_case.sql", unsafe_form)]);
    let out = migrate_src(&url, &dir, &["lint", "--all", "--large-table-rows", "500"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("locks: SHARE lock on the table"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["lint", "--all", "--large-table-rows", "5000"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

/// A table filled by a bulk load and never analyzed has `reltuples = -1`; its size is the
/// planner's estimate, not "about 0 rows".
#[sqlx::test(migrations = false)]
async fn a_table_never_analyzed_is_sized_by_the_planner(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    sqlx::raw_sql(
        "create table t (id int, x int) with (autovacuum_enabled = false);\n\
         create table u (id int primary key);\n\
         create unique index t_x_key_idx on t (x);\n\
         insert into t select g, g from generate_series(1, 200000) g;",
    )
    .execute(&pool)
    .await?;
    let reltuples: f32 =
        sqlx::query_scalar("select reltuples from pg_class where oid = 't'::regclass")
            .fetch_one(&pool)
            .await?;
    assert!(reltuples < 0.0, "the table must be one never analyzed: reltuples {reltuples}");
    for unsafe_form in
        ["create index t_i on t (x);\n", "alter table t alter column x type bigint;\n"]
    {
        let found = findings(unsafe_form, &[], Some(&url))?;
        assert!(
            !found.is_empty() && found.iter().all(|(_, severity)| severity == "error"),
            "{unsafe_form}: {found:?}"
        );
    }
    let dir = write_migrations(&[BASE, ("2_case.sql", "create index t_i on t (x);\n")]);
    let out = migrate_src(&url, &dir, &["lint", "--all"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(!text(&out).contains("about 0 rows"), "{}", text(&out));
    Ok(())
}
