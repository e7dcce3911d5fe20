//! `--targets`: one command on many databases. Twenty databases on a cluster of the test's own,
//! one of them holding an object that conflicts with a migration.

mod support;

use strata_migrate_cli::exit;
use strata_test_support::{PrivateCluster, TestResult};
use support::{migrate, temp_dir, text, write_migrations};

const SHARDS: usize = 20;

#[test]
fn up_on_twenty_databases_fails_only_where_the_schema_conflicts_and_resumes_there() -> TestResult {
    let cluster = PrivateCluster::start()?;
    let mut list = vec!["# the shards".to_owned(), String::new()];
    for i in 0..SHARDS {
        cluster.psql("postgres", &format!("create database shard_{i}"))?;
        list.push(cluster.url(&format!("shard_{i}")));
    }
    cluster.psql("shard_7", "create table accounts (id int)")?;
    let dir = write_migrations(&[
        ("1_accounts.sql", "create table accounts (id bigint primary key, name text);\n"),
        ("2_names.sql", "create index accounts_name_idx on accounts (name);\n"),
    ]);
    let targets = temp_dir("targets").join("targets.txt");
    std::fs::write(&targets, list.join("\n"))?;
    let (source, file) =
        (dir.to_string_lossy().into_owned(), targets.to_string_lossy().into_owned());
    let run = |args: &[&str]| {
        let mut all = vec!["--source", source.as_str(), "--targets", file.as_str()];
        all.extend_from_slice(args);
        migrate(&all, &[])
    };

    let out = run(&["--parallel", "4", "--format", "json", "up"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let reports = reports.as_array().ok_or("an array of reports")?;
    assert_eq!(reports.len(), SHARDS);
    for (i, report) in reports.iter().enumerate() {
        assert!(report["target"].as_str().is_some_and(|t| t.ends_with(&format!("/shard_{i}"))));
        if i == 7 {
            assert_eq!(report["outcome"], "failed", "{report}");
            let error = report["error"].as_str().unwrap_or_default();
            assert!(error.contains("already exists"), "{error}");
        } else {
            assert_eq!(report["outcome"], "done", "{report}");
            let applied: Vec<i64> = report["report"]["applied"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["version"].as_i64())
                .collect();
            assert_eq!(applied, [1, 2], "{report}");
        }
    }

    // Fixed, the rerun completes the one that failed and leaves the others as they are.
    cluster.psql("shard_7", "drop table accounts")?;
    let out = run(&["up"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("/shard_7: applied 2 migration(s) [1, 2]"), "{shown}");
    assert_eq!(shown.matches(": up to date").count(), SHARDS - 1, "{shown}");
    assert!(shown.contains("20 target(s): 20 done, 0 failed, 0 skipped"), "{shown}");
    let out = run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(text(&out).matches(": ok").count(), SHARDS, "{}", text(&out));

    // With --fail-fast and one at a time, the first failure stops the rest.
    std::fs::write(dir.join("3_audit.sql"), "create table audit (id bigint);\n")?;
    cluster.psql("shard_0", "create table audit (id int)")?;
    let out = run(&["--parallel", "1", "--fail-fast", "up"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("20 target(s): 0 done, 1 failed, 19 skipped"), "{}", text(&out));
    let out = run(&["--format", "json", "status"]);
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let pending = reports
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["report"].as_array().is_some_and(|l| l.iter().any(|m| m["state"] == "pending"))
        })
        .count();
    assert_eq!(pending, SHARDS, "migration 3 is pending everywhere");

    // The same list from a catalog query, on the database --database-url names.
    let catalog = cluster.url("postgres");
    cluster.psql("postgres", "create table shards (url text)")?;
    for url in list.iter().filter(|l| l.starts_with("postgres")) {
        cluster.psql("postgres", &format!("insert into shards values ('{url}')"))?;
    }
    let out = migrate(
        &[
            "--database-url",
            &catalog,
            "--source",
            &source,
            "--targets-query",
            "select url from shards order by url",
            "status",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("20 target(s): 20 done, 0 failed, 0 skipped"), "{}", text(&out));
    Ok(())
}
