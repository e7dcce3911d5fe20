//! The runner under faults: its connection cut during a transactional file, a no-transaction
//! file and `down`; the server restarted while eight runners wait for the lock; the lock
//! holder's network gone silent. Each test has a private cluster and a fault proxy of its own.
//!
//! The cuts land while the server runs `pg_sleep`, so they fall inside a known statement.

mod support;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use strata_test_support::{FaultProxy, PrivateCluster, TestResult};
use support::{Running, applied_versions, has_table, spawn_migrate, text, write_migrations};

const ENV: &[(&str, &str)] = &[("RUST_LOG", "strata_migrate=info")];

/// A private cluster with a proxy in front, and a superuser pool straight to it for checks.
struct Rig {
    cluster: PrivateCluster,
    proxy: FaultProxy,
    admin: PgPool,
}

impl Rig {
    async fn start() -> Result<Self, strata_test_support::BoxError> {
        let cluster = PrivateCluster::start()?;
        let proxy = FaultProxy::start(cluster.port())?;
        // A database of the application's own: the runner refuses the maintenance database.
        cluster.psql("postgres", "create database app")?;
        let admin = PgPool::connect(&cluster.url("app")).await?;
        Ok(Self { cluster, proxy, admin })
    }

    /// Starts the runner through the proxy.
    fn spawn(&self, dir: &Path, args: &[&str]) -> Child {
        self.spawn_at(&self.proxy.url(&self.cluster, "app"), dir, args, ENV)
    }

    fn spawn_at(&self, url: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
        let source = dir.to_string_lossy().into_owned();
        let mut all = vec!["--database-url", url, "--source", &source];
        all.extend_from_slice(args);
        spawn_migrate(&all, env)
    }

    /// Runs the runner through the proxy to the end.
    async fn run(&self, dir: &Path, args: &[&str]) -> Result<Output, std::io::Error> {
        let child = self.spawn(dir, args);
        tokio::task::spawn_blocking(move || child.wait_with_output()).await?
    }

    async fn exists(&self, table: &str) -> Result<bool, sqlx::Error> {
        has_table(&self.admin, table).await
    }

    async fn applied(&self) -> Result<Vec<i64>, sqlx::Error> {
        if !self.exists("_sqlx_migrations").await? {
            return Ok(Vec::new());
        }
        applied_versions(&self.admin).await
    }
}

/// Waits for `child` after cutting every connection of `proxy` once `after` has passed.
async fn cut_during(proxy: &FaultProxy, child: Child, after: Duration) -> std::io::Result<Output> {
    tokio::time::sleep(after).await;
    proxy.cut_all();
    tokio::task::spawn_blocking(move || child.wait_with_output()).await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_a_transactional_file_applies_nothing_and_the_rerun_succeeds() -> TestResult {
    let rig = Rig::start().await?;
    let dir = write_migrations(&[
        ("1_first.up.sql", "create table first (id int);\n"),
        (
            "2_slow.up.sql",
            "create table half (id int);\nselect pg_sleep(3);\ncreate table whole (id int);\n",
        ),
    ]);
    let child = rig.spawn(&dir, &["up"]);
    let out = cut_during(&rig.proxy, child, Duration::from_millis(1500)).await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("connection to the database was lost while applying migration 2"),
        "{all}"
    );
    assert!(all.contains("nothing of it is applied"), "{all}");
    // The file's transaction never committed: none of it is there, and it is not recorded.
    assert_eq!(rig.applied().await?, [1], "{all}");
    assert!(!rig.exists("half").await?, "{all}");

    let again = rig.run(&dir, &["up"]).await?;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(rig.applied().await?, [1, 2]);
    assert!(rig.exists("whole").await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_a_no_transaction_file_resumes_at_the_failed_statement() -> TestResult {
    let rig = Rig::start().await?;
    // Re-running the first statement would fail (the table exists): the rerun must skip it.
    let dir = write_migrations(&[(
        "1_steps.up.sql",
        "-- no-transaction\ncreate table step_one (id int);\nselect pg_sleep(3);\ncreate table step_three (id int);\n",
    )]);
    let child = rig.spawn(&dir, &["up"]);
    let out = cut_during(&rig.proxy, child, Duration::from_millis(1500)).await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("statement 1 stays done, statement 2/3 did not finish"), "{all}");
    assert!(all.contains("a rerun resumes at statement 2"), "{all}");
    assert!(rig.exists("step_one").await? && !rig.exists("step_three").await?, "{all}");
    assert!(rig.applied().await?.is_empty(), "{all}");

    let again = rig.run(&dir, &["up"]).await?;
    let all = text(&again);
    assert_eq!(again.status.code(), Some(0), "{all}");
    assert!(all.contains("resum"), "says it resumes: {all}");
    assert!(rig.exists("step_three").await?);
    assert_eq!(rig.applied().await?, [1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_during_down_reverts_nothing_and_the_rerun_reverts() -> TestResult {
    let rig = Rig::start().await?;
    let dir = write_migrations(&[
        ("1_keep.up.sql", "create table keep (id int);\n"),
        ("1_keep.down.sql", "drop table keep;\n"),
        ("2_gone.up.sql", "create table gone (id int);\n"),
        ("2_gone.down.sql", "drop table gone;\nselect pg_sleep(3);\n"),
    ]);
    let up = rig.run(&dir, &["up"]).await?;
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));

    let child = rig.spawn(&dir, &["down", "--steps", "1"]);
    let out = cut_during(&rig.proxy, child, Duration::from_millis(1500)).await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("lost while reverting migration 2"), "{all}");
    assert_eq!(rig.applied().await?, [1, 2], "{all}");
    assert!(rig.exists("gone").await?, "the drop rolled back: {all}");

    let again = rig.run(&dir, &["down", "--steps", "1"]).await?;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(rig.applied().await?, [1]);
    assert!(!rig.exists("gone").await? && rig.exists("keep").await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_eight_runners_wait_for_the_lock_applies_each_file_once() -> TestResult {
    let rig = Rig::start().await?;
    let dir = write_migrations(&[
        ("1_slow.up.sql", "create table slow (id int);\nselect pg_sleep(3);\n"),
        ("2_after.up.sql", "create table after_slow (id int);\n"),
    ]);
    // Straight to the server: the restart is the fault here.
    let url = rig.cluster.url("app");
    let env = [("RUST_LOG", "strata_migrate=info"), ("STRATA_MIGRATIONS__LOCK_WAIT", "60s")];
    let runners: Vec<Child> = (0..8).map(|_| rig.spawn_at(&url, &dir, &["up"], &env)).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.cluster.restart()?;
    let mut outcomes = Vec::new();
    for child in runners {
        outcomes.push(tokio::task::spawn_blocking(move || child.wait_with_output()).await??);
    }
    let admin = PgPool::connect(&url).await?;
    let applied = applied_versions(&admin).await.unwrap_or_default();
    let report: Vec<String> =
        outcomes.iter().map(|o| format!("exit {:?}: {}", o.status.code(), text(o))).collect();
    let finished = outcomes.iter().filter(|o| o.status.code() == Some(0)).count();
    eprintln!(
        "restart with 8 runners waiting: {finished} finished, {} reported the lost connection",
        outcomes.len() - finished
    );
    // The waiting runners connected again and went on; only the one inside the migration
    // lost it, and said so (the restart rolled its transaction back).
    assert!(finished >= 7, "{report:#?}");
    for (out, line) in outcomes.iter().zip(&report) {
        if out.status.code() != Some(0) {
            assert_eq!(out.status.code(), Some(3), "{line}");
            assert!(line.contains("connection to the database was lost while applying"), "{line}");
        }
    }
    assert_eq!(applied, [1, 2], "{report:#?}");
    let waited = report.iter().filter(|l| l.contains("connecting again")).count();
    assert!(waited >= 7, "{report:#?}");
    // And each file was applied once: one more run finds nothing to do.
    let last = rig.spawn_at(&url, &dir, &["up"], ENV);
    let last = tokio::task::spawn_blocking(move || last.wait_with_output()).await??;
    assert_eq!(last.status.code(), Some(0), "{}", text(&last));
    let events: i64 =
        sqlx::query_scalar("select count(*) from _strata_migration_events where kind = 'apply'")
            .fetch_one(&admin)
            .await?;
    assert_eq!(events, 2, "{report:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_lock_holder_is_ended_by_the_server_and_the_waiting_runner_goes_on() -> TestResult
{
    let rig = Rig::start().await?;
    let dir = write_migrations(&[(
        "1_slow.up.sql",
        "create table slow (id int);\nselect pg_sleep(1);\ncreate table slow_done (id int);\n",
    )]);
    // The holder goes through the proxy, which falls silent once it is inside its migration:
    // its transaction sits idle on the server, holding the lock, with no client to finish it.
    let short = [
        ("RUST_LOG", "strata_migrate=info"),
        ("STRATA_DATABASE__IDLE_IN_TRANSACTION_TIMEOUT", "3s"),
    ];
    let _holder =
        Running::of(rig.spawn_at(&rig.proxy.url(&rig.cluster, "app"), &dir, &["up"], &short));
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.proxy.set_blackhole(true);
    let started = Instant::now();
    let waiter = rig.spawn_at(
        &rig.cluster.url("app"),
        &dir,
        &["up"],
        &[("RUST_LOG", "strata_migrate=info"), ("STRATA_MIGRATIONS__LOCK_WAIT", "30s")],
    );
    let waited = tokio::task::spawn_blocking(move || waiter.wait_with_output()).await??;
    let took = started.elapsed();
    let all = text(&waited);
    assert_eq!(waited.status.code(), Some(0), "{all}");
    // It said who held the lock while it waited, and went on once the server ended that.
    assert!(all.contains("waiting for another migration runner"), "{all}");
    assert!(all.contains("took the migration lock after waiting"), "{all}");
    assert!(took < Duration::from_secs(15), "waited {took:?}: {all}");
    assert!(rig.exists("slow_done").await?);
    assert_eq!(rig.applied().await?, [1]);
    Ok(())
}
