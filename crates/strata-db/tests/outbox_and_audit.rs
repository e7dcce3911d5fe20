//! The outbox consumer API, as the relay's role, and the append-only audit log.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use strata_db::{Error, OutboxEventId, constraints, outbox};
use strata_test_support::{CitusCluster, TestResult};
use support::{app_pool, citus_admin, count, relay_pool, tenant};

/// Inserts `n` events for the organization directly, as the superuser (the API writes them one
/// change at a time).
async fn seed_events(pool: &PgPool, organization: uuid::Uuid, n: i32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
         select gen_random_uuid(), $1, 'test.event', gen_random_uuid(), jsonb_build_object('i', i)
           from generate_series(1, $2) i",
    )
    .bind(organization)
    .bind(n)
    .execute(pool)
    .await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn four_consumers_deliver_10k_events_exactly_once(admin: PgPool) -> TestResult {
    deliver_exactly_once(&admin, &["acme"], 10_000, Claim::AnyTenant).await
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn four_consumers_claiming_tenant_by_tenant_deliver_each_event_once(
    admin: PgPool,
) -> TestResult {
    deliver_exactly_once(&admin, &["alpha", "beta", "gamma"], 2_000, Claim::TenantByTenant).await
}

/// How the consumers claim.
#[derive(Debug, Clone, Copy)]
enum Claim {
    /// [`outbox::claim`]: any tenant's events (PostgreSQL).
    AnyTenant,
    /// [`outbox::pending_tenants`], then [`outbox::claim_tenant`] for each (Citus too).
    TenantByTenant,
}

/// `per_tenant` events for each of `tenants`, delivered by four consumers at once: each event
/// exactly once, none left.
async fn deliver_exactly_once(
    admin: &PgPool,
    tenants: &[&str],
    per_tenant: i32,
    how: Claim,
) -> TestResult {
    let app = app_pool(admin).await?;
    for slug in tenants {
        let t = tenant(&mut app.acquire().await?, slug).await?;
        seed_events(admin, t.org.id.into_uuid(), per_tenant).await?;
    }
    let relay = relay_pool(admin).await?;
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let relay = relay.clone();
        consumers.push(tokio::spawn(async move {
            let mut conn = relay.acquire().await?;
            let mut delivered = Vec::new();
            loop {
                let lease = Duration::from_secs(60);
                let batch = match how {
                    Claim::AnyTenant => outbox::claim(&mut conn, 100, lease).await?,
                    Claim::TenantByTenant => {
                        let mut batch = Vec::new();
                        for tenant in outbox::pending_tenants(&mut conn, 10).await? {
                            batch
                                .extend(outbox::claim_tenant(&mut conn, tenant, 100, lease).await?);
                        }
                        batch
                    }
                };
                if batch.is_empty() {
                    break;
                }
                let ids: Vec<OutboxEventId> = batch.iter().map(|e| e.id).collect();
                assert_eq!(outbox::mark_delivered(&mut conn, &ids).await?, ids.len() as u64);
                delivered.extend(ids);
            }
            Ok::<_, Error>(delivered)
        }));
    }
    let mut all = Vec::new();
    let mut per_consumer = Vec::new();
    for consumer in consumers {
        let delivered = consumer.await??;
        per_consumer.push(delivered.len());
        all.extend(delivered);
    }
    let total = per_tenant as usize * tenants.len();
    let unique: BTreeSet<OutboxEventId> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (total, total), "each event once: {per_consumer:?}");
    let left = count(admin, "outbox_events where delivered_at is null").await?;
    assert_eq!(left, 0, "none lost");
    Ok(())
}

/// Outbox delivery on Citus (a coordinator and two workers of the test's own), where the
/// outbox is distributed by tenant: claimed tenant by tenant, each event once.
#[tokio::test]
async fn on_citus_four_consumers_deliver_each_event_once() -> TestResult {
    let cluster = CitusCluster::start()?;
    let admin = citus_admin(&cluster, "outbox").await?;
    deliver_exactly_once(&admin, &["alpha", "beta", "gamma"], 500, Claim::TenantByTenant).await
}

/// As the superuser: the retry delays of released events have passed, by the server's clock.
const DELAYS_PASSED: &str = "update outbox_events set available_at = now() - interval '1 second'";

/// As the superuser: the leases of claimed events have run out, by the server's clock.
const LEASES_RAN_OUT: &str = "update outbox_events
    set claimed_until = now() - interval '1 second' where claimed_until is not null";

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn released_events_wait_their_delay_and_count_attempts(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let t = tenant(&mut app.acquire().await?, "acme").await?;
    seed_events(&admin, t.org.id.into_uuid(), 1).await?;
    let relay = relay_pool(&admin).await?;
    let mut conn = relay.acquire().await?;
    let first = outbox::claim(&mut conn, 10, Duration::from_secs(60)).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert!(
        outbox::claim(&mut conn, 10, Duration::from_secs(60)).await?.is_empty(),
        "claimed: invisible"
    );
    outbox::release(&mut conn, first[0].id, Duration::from_secs(60)).await?;
    assert!(
        outbox::claim(&mut conn, 10, Duration::from_secs(60)).await?.is_empty(),
        "waits its delay"
    );
    // The delay passes, by the server's clock (no sleep: a loaded machine cannot make the
    // assertion above come too late, nor this one too early).
    sqlx::query(DELAYS_PASSED).execute(&admin).await?;
    let again = outbox::claim(&mut conn, 10, Duration::from_secs(60)).await?;
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    outbox::mark_delivered(&mut conn, &[again[0].id]).await?;
    let err = outbox::release(&mut conn, again[0].id, Duration::ZERO).await.expect_err("delivered");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn an_expired_lease_makes_the_event_claimable_again(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let t = tenant(&mut app.acquire().await?, "acme").await?;
    seed_events(&admin, t.org.id.into_uuid(), 1).await?;
    let relay = relay_pool(&admin).await?;
    let mut conn = relay.acquire().await?;
    assert_eq!(outbox::claim(&mut conn, 1, Duration::from_secs(60)).await?.len(), 1);
    assert!(outbox::claim(&mut conn, 1, Duration::from_secs(60)).await?.is_empty(), "leased");
    // The consumer died: its lease runs out, by the server's clock.
    sqlx::query(LEASES_RAN_OUT).execute(&admin).await?;
    assert_eq!(
        outbox::claim(&mut conn, 1, Duration::from_secs(60)).await?.len(),
        1,
        "a dead consumer's event comes back"
    );
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_audit_log_refuses_update_delete_and_truncate(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let statements = [
        "update audit_events set action = 'forged'",
        "delete from audit_events",
        "truncate audit_events",
    ];
    // The application's role has no such privilege at all.
    for sql in statements {
        let mut tx = t.scope.begin(&mut conn).await?;
        let err: Error = sqlx::query(sql).execute(&mut tx).await.expect_err(sql).into();
        assert!(matches!(err, Error::Forbidden { .. }), "{sql}: {err:?}");
        tx.rollback().await?;
    }
    // The table's owner has, and the trigger refuses it: the log stays append-only whoever
    // writes.
    for sql in statements {
        let err: Error = sqlx::query(sql).execute(&admin).await.expect_err(sql).into();
        assert!(
            matches!(err, Error::Forbidden { reason: "the audit log is append-only" }),
            "{sql}: {err:?}"
        );
    }
    assert_eq!(count(&admin, "audit_events where action = 'forged'").await?, 0);
    assert!(count(&admin, "audit_events").await? > 0, "the setup's events are all there");
    let _ = constraints::AUDIT_EVENTS_APPEND_ONLY;
    Ok(())
}
