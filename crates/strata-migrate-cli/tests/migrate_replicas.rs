//! The runner and a real streaming replica (a private primary and a replica made from it with
//! `pg_basebackup -R`): `up` refused on the replica, `status` read there, and `up
//! --wait-for-replicas` on the primary.

mod support;

use strata_migrate_cli::exit;
use strata_test_support::{PrivateCluster, TestResult};
use support::{migrate, text, write_migrations};

#[test]
fn up_waits_for_the_replica_to_replay_and_is_refused_on_it() -> TestResult {
    let primary = PrivateCluster::start()?;
    // A database of the application's own (the runner refuses the maintenance database),
    // made before the replica so that its base backup has it.
    primary.psql("postgres", "create database app")?;
    let replica = primary.start_replica()?;
    let dir =
        write_migrations(&[("1_accounts.sql", "create table accounts (id bigint primary key);\n")]);
    let source = dir.to_string_lossy().into_owned();
    let (on_primary, on_replica) = (primary.url("app"), replica.url("app"));
    let run = |url: &str, args: &[&str]| {
        let mut all = vec!["--database-url", url, "--source", source.as_str()];
        all.extend_from_slice(args);
        migrate(&all, &[])
    };

    let out = run(&on_replica, &["up"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CONNECT)), "{}", text(&out));
    assert!(text(&out).contains("read-only standby"), "{}", text(&out));

    let out = run(&on_primary, &["up", "--wait-for-replicas", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 streaming replica(s) have replayed it"), "{}", text(&out));
    // The replica has the table and the history the moment `up` returns.
    assert_eq!(replica.psql("app", "select to_regclass('accounts') is not null")?, "t");
    let out = run(&on_replica, &["--format", "json", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(lines[0]["state"], "applied", "{lines}");

    // Replay paused: `up` applies on the primary, then reports the replica behind.
    replica.pause_replay()?;
    std::fs::write(dir.join("2_names.sql"), "alter table accounts add column name text;\n")?;
    let out = run(&on_primary, &["up", "--wait-for-replicas", "500ms"]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(
        text(&out).contains("1 of 1 streaming replica(s) had not replayed it"),
        "{}",
        text(&out)
    );
    replica.resume_replay()?;
    let out = run(&on_primary, &["up", "--wait-for-replicas", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}
