//! strata-db on Citus (a coordinator and two workers of the test's own, the tables distributed
//! by the migrations): every operation inside a tenant transaction reaches one shard, as
//! Citus itself counts it, and a connection refused on the nodes' certificates says what to
//! set.

mod support;

use sqlx::PgPool;
use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask, TaskFilter, TaskOrder, TaskPatch, TaskStatus};
use strata_db::{Error, Pool, PoolSettings, Role, TenantTx, audit, comments, memberships};
use strata_test_support::CitusCluster;
use support::{app_options, app_pool, citus_admin, new_task, tenant, user};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
    routed!("projects::list", tx => projects::list(&mut tx, false, None, 10).await?);
    routed!("projects::update", tx =>
        projects::update(&mut tx, project.id, Some("Website"), None).await?);
    routed!("projects::summaries", tx => projects::summaries(&mut tx).await?);
    routed!("memberships::add", tx => memberships::add(&mut tx, bob.id, Role::Member).await?);
    routed!("memberships::change_role", tx =>
        memberships::change_role(&mut tx, bob.id, Role::Admin).await?);
    routed!("memberships::list", tx => memberships::list(&mut tx, None, 10).await?);
    let task = routed!("tasks::create", tx =>
        tasks::create(&mut tx, &new_task(project.id, "Routed")).await?);
    routed!("tasks::get", tx => tasks::get(&mut tx, task.id).await?);
    routed!("tasks::get_by_key", tx => tasks::get_by_key(&mut tx, "WEB-1").await?);
    routed!("tasks::list", tx => tasks::list(
        &mut tx, project.id, &TaskFilter::default(), TaskOrder::Priority, None, 10).await?);
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
    routed!("comments::edit", tx => comments::edit(&mut tx, comment.id, "edited").await?);
    routed!("comments::list", tx => comments::list(&mut tx, task.id, None, 10).await?);
    routed!("comments::delete", tx => comments::delete(&mut tx, comment.id).await?);
    routed!("audit::history", tx => audit::history(&mut tx, "task", task.id.into_uuid()).await?);
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
    assert!(!error.is_retryable(), "the same certificate would be refused again");
    Ok(())
}
