//! strata-db on Citus (a coordinator and two workers of the test's own, the tables distributed
//! by the migrations): every operation inside a tenant transaction reaches one shard, as
//! Citus itself counts it; a connection refused on the nodes' certificates says what to set;
//! a worker stopped under load costs retryable errors and nothing acknowledged.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use strata_db::PageRequest;
use strata_db::projects::{self, NewProject, ProjectPatch};
use strata_db::tasks::{self, ImportTask, TaskFilter, TaskOrder, TaskPatch, TaskStatus};
use strata_db::{Error, Pool, PoolSettings, Retry, Role, TenantTx, audit, comments, memberships};
use strata_test_support::runner::until;
use strata_test_support::{CitusCluster, TestResult};
use support::{app_options, app_pool, citus_admin, new_task, tenant, user};
use tokio::sync::Mutex;

/// Citus's own count of the queries it ran on one shard and on several, for this database
/// (`citus_stat_counters`, with `citus.enable_stat_counters`).
async fn shard_counts(admin: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select query_execution_single_shard, query_execution_multi_shard
           from citus_stat_counters where name = current_database()",
    )
    .fetch_one(admin)
    .await
}

/// What one operation cost in Citus's counters.
#[derive(Debug)]
struct Routed {
    operation: &'static str,
    single_shard: i64,
    multi_shard: i64,
}

#[tokio::test]
async fn every_operation_in_a_tenant_transaction_reaches_one_shard() -> TestResult {
    let cluster = CitusCluster::start()?;
    let admin = citus_admin(&cluster, "routing").await?;
    // Counters on; and a statement the application's role runs on more than one shard fails
    // outright, so no operation can slip past the counts below.
    // (Database settings apply to the sessions that start after them: the application's
    // pool is made next.)
    sqlx::raw_sql(
        "alter database routing set citus.enable_stat_counters = on;
         alter database routing set citus.multi_task_query_log_level = 'error';",
    )
    .execute(&admin)
    .await?;
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "alpha").await?;
    let other = tenant(&mut conn, "beta").await?;
    let bob = user(&mut conn, "bob@example.com").await?;

    let mut routed = Vec::new();
    macro_rules! routed {
        ($operation:literal, $tx:ident => $body:expr) => {{
            let (single_before, multi_before) = shard_counts(&admin).await?;
            let mut $tx = t.scope.begin(&mut conn).await?;
            let value = $body;
            $tx.commit().await?;
            let (single, multi) = shard_counts(&admin).await?;
            routed.push(Routed {
                operation: $operation,
                single_shard: single - single_before,
                multi_shard: multi - multi_before,
            });
            value
        }};
    }
    let project = routed!("projects::create", tx => projects::create(
        &mut tx, &NewProject { key: "WEB", name: "Web", description: "" }).await?);
    routed!("projects::get", tx => projects::get(&mut tx, project.id).await?);
    routed!("projects::get_by_key", tx => projects::get_by_key(&mut tx, "WEB").await?);
    routed!("projects::list", tx => projects::list(&mut tx, false, PageRequest::first(10)).await?);
    routed!("projects::update", tx =>
        projects::update(&mut tx, project.id, &ProjectPatch { name: Some("Website"), ..ProjectPatch::default() })
            .await?);
    routed!("projects::summaries", tx => projects::summaries(&mut tx).await?);
    routed!("memberships::add", tx => memberships::add(&mut tx, bob.id, Role::Member).await?);
    routed!("memberships::change_role", tx =>
        memberships::change_role(&mut tx, bob.id, Role::Admin).await?);
    routed!("memberships::list", tx => memberships::list(&mut tx, PageRequest::first(10)).await?);
    let task = routed!("tasks::create", tx =>
        tasks::create(&mut tx, &new_task(project.id, "Routed")).await?);
    routed!("tasks::get", tx => tasks::get(&mut tx, task.id).await?);
    routed!("tasks::get_by_key", tx => tasks::get_by_key(&mut tx, "WEB-1").await?);
    routed!("tasks::list", tx => tasks::list(&mut tx, project.id, &TaskFilter { order: TaskOrder::Priority, ..TaskFilter::default() }, PageRequest::first(10))
        .await?);
    let patch = TaskPatch { title: Some("Routed again".to_owned()), ..TaskPatch::default() };
    let task = routed!("tasks::update", tx =>
        tasks::update(&mut tx, task.id, task.version, &patch).await?);
    let task = routed!("tasks::transition", tx =>
        tasks::transition(&mut tx, task.id, task.version, TaskStatus::InProgress).await?);
    let task = routed!("tasks::assign", tx =>
        tasks::assign(&mut tx, task.id, task.version, Some(bob.id)).await?);
    let task = routed!("tasks::delete", tx => tasks::delete(&mut tx, task.id, task.version).await?);
    let task = routed!("tasks::restore", tx =>
        tasks::restore(&mut tx, task.id, task.version).await?);
    routed!("tasks::import", tx => tasks::import(&mut tx, project.id,
        (0..20).map(|i| ImportTask { title: format!("imported {i}"), ..ImportTask::default() }))
        .await?);
    let comment = routed!("comments::create", tx =>
        comments::create(&mut tx, task.id, "first").await?);
    routed!("comments::update", tx => comments::update(&mut tx, comment.id, "edited").await?);
    routed!("comments::list", tx => comments::list(&mut tx, task.id, PageRequest::first(10)).await?);
    routed!("comments::delete", tx => comments::delete(&mut tx, comment.id).await?);
    routed!("audit::history", tx => audit::history(&mut tx, audit::Audited::Task(task.id)).await?);
    routed!("tasks::assign (to nobody)", tx =>
        tasks::assign(&mut tx, task.id, task.version, None).await?);
    routed!("memberships::remove", tx => memberships::remove(&mut tx, bob.id).await?);
    routed!("projects::set_archived", tx =>
        projects::set_archived(&mut tx, project.id, true).await?);

    for r in &routed {
        eprintln!(
            "{:<28} single-shard {:>3}  multi-shard {}",
            r.operation, r.single_shard, r.multi_shard
        );
    }
    let multi: Vec<&Routed> = routed.iter().filter(|r| r.multi_shard != 0).collect();
    assert!(multi.is_empty(), "operations that reached more than one shard: {multi:#?}");
    let uncounted: Vec<&Routed> = routed.iter().filter(|r| r.single_shard == 0).collect();
    assert!(uncounted.is_empty(), "operations Citus did not count on a shard: {uncounted:#?}");

    // The check above can fail: a statement without the tenant reaches every shard, and the
    // application's role is refused it.
    let mut tx = TenantTx::begin(&mut conn, other.org.id, other.owner.id).await?;
    let everywhere = sqlx::query_scalar::<_, i64>("select count(*) from tasks where number > 0")
        .fetch_one(&mut tx)
        .await;
    let error = everywhere.expect_err("a multi-shard query is refused here");
    assert!(error.to_string().contains("multi-task"), "{error}");
    tx.rollback().await?;
    Ok(())
}

#[tokio::test]
async fn a_node_certificate_rustls_refuses_is_explained_not_bypassed() -> TestResult {
    let cluster = CitusCluster::start()?;
    let admin = citus_admin(&cluster, "tls").await?;
    // Citus turned TLS on with its self-signed X.509 v1 certificate; `prefer` would use it.
    let options = app_options(&admin).await?.ssl_mode(sqlx::postgres::PgSslMode::Prefer);
    let pool = Pool::new(options, PoolSettings::default())?;
    let error = pool.acquire().await.expect_err("rustls refuses a v1 certificate");
    let text = error.to_string();
    assert!(matches!(error, Error::Connect(_)), "{error:?}");
    assert!(text.contains("UnsupportedCertVersion"), "{text}");
    assert!(text.contains("sslmode=disable"), "{text}");
    assert_eq!(error.retry(), Retry::No, "the same certificate would be refused again");
    Ok(())
}

#[tokio::test]
async fn a_worker_stopped_and_started_under_load_loses_nothing_acknowledged() -> TestResult {
    let cluster = CitusCluster::start()?;
    let admin = citus_admin(&cluster, "restart").await?;
    let app = app_pool(&admin).await?;
    let stopped_port = cluster.workers()[1].port();
    // Tenants on both workers: some keep working while the other is down.
    let mut conn = app.acquire().await?;
    let mut tenants = Vec::new();
    for i in 0..32 {
        let t = tenant(&mut conn, &format!("tenant-{i}")).await?;
        let holder = cluster.worker_holding("restart", "tasks", &t.org.id.to_string())?;
        let on_stopped = holder.port() == stopped_port;
        tenants.push((t, on_stopped));
        let both = tenants.iter().any(|(_, s)| *s) && tenants.iter().any(|(_, s)| !*s);
        if both && tenants.len() >= 4 {
            break;
        }
    }
    drop(conn);

    let done = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::<(bool, String)>::new()));
    let mut writers = Vec::new();
    for (i, (t, _)) in tenants.iter().enumerate() {
        let (app, done) = (app.clone(), done.clone());
        let (acknowledged, failures) = (acknowledged.clone(), failures.clone());
        let (scope, project) = (t.scope, t.project.id);
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                let title = format!("writer {i} task {n}");
                let result = async {
                    let mut conn = app.acquire().await?;
                    let mut tx = scope.begin(&mut conn).await?;
                    let task = tasks::create(&mut tx, &new_task(project, &title)).await?;
                    tx.commit().await?;
                    Ok::<_, Error>(task.id)
                }
                .await;
                match result {
                    Ok(id) => acknowledged.lock().await.push(id),
                    Err(error) => {
                        let retryable = error.retry() != Retry::No;
                        failures.lock().await.push((retryable, format!("{error:?}")));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    let acked = || async { acknowledged.lock().await.len() };
    let failed = || async { failures.lock().await.len() };
    // Load first; then the worker goes down until its tenants' writes have failed, and comes
    // back until writes succeed again.
    wait_for("writes before the stop", async || acked().await >= 20).await?;
    let worker = &cluster.workers()[1];
    worker.stop()?;
    wait_for("failures while the worker is down", async || failed().await >= 5).await?;
    let acked_while_down = acked().await;
    worker.start_again()?;
    let after_restart = acked().await;
    wait_for("writes after the restart", async || acked().await >= after_restart + 20).await?;
    done.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await?;
    }

    let failures = failures.lock().await.clone();
    let acknowledged = acknowledged.lock().await.clone();
    let ids: Vec<uuid::Uuid> = acknowledged.iter().map(|id| id.into_uuid()).collect();
    let found: i64 = sqlx::query_scalar("select count(*) from tasks where id = any($1)")
        .bind(&ids)
        .fetch_one(&admin)
        .await?;
    let not_retryable: Vec<&String> =
        failures.iter().filter(|(retryable, _)| !retryable).map(|(_, e)| e).collect();
    eprintln!(
        "worker restart under {} writers: {} tasks acknowledged ({acked_while_down} by the time \
         the worker came back), {} failures, {} of them not retryable; first: {:?}",
        tenants.len(),
        acknowledged.len(),
        failures.len(),
        not_retryable.len(),
        failures.first()
    );
    assert!(not_retryable.is_empty(), "failures that are not retryable: {not_retryable:#?}");
    assert_eq!(found, acknowledged.len() as i64, "every acknowledged task is there");
    Ok(())
}

/// Waits (up to 60 s) until `condition` holds; an error naming `what` when it never does.
async fn wait_for(what: &str, condition: impl AsyncFn() -> bool) -> TestResult {
    let condition = &condition;
    let held = until(Duration::from_secs(60), || async { Ok::<_, Infallible>(condition().await) });
    if held.await.unwrap_or(false) {
        Ok(())
    } else {
        Err(format!("timed out waiting for {what}").into())
    }
}
