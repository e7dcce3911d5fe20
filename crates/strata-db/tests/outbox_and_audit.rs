//! The outbox consumer API and the append-only audit log.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use strata_db::{Error, OutboxEventId, constraints, outbox};
use support::tenant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Inserts `n` events for the organization directly (the API writes them one change at a time).
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

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn four_consumers_deliver_10k_events_exactly_once(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    drop(conn);
    seed_events(&pool, t.org.id.into_uuid(), 10_000).await?;
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let pool = pool.clone();
        consumers.push(tokio::spawn(async move {
            let mut delivered = Vec::new();
            loop {
                let batch = outbox::claim(&pool, 100, Duration::from_secs(60)).await?;
                if batch.is_empty() {
                    break;
                }
                let ids: Vec<OutboxEventId> = batch.iter().map(|e| e.id).collect();
                assert_eq!(outbox::mark_delivered(&pool, &ids).await?, ids.len() as u64);
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
    let unique: BTreeSet<OutboxEventId> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (10_000, 10_000), "each event once: {per_consumer:?}");
    let left: i64 =
        sqlx::query_scalar("select count(*) from outbox_events where delivered_at is null")
            .fetch_one(&pool)
            .await?;
    assert_eq!(left, 0, "none lost");
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn released_events_wait_their_delay_and_count_attempts(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    seed_events(&pool, t.org.id.into_uuid(), 1).await?;
    let first = outbox::claim(&pool, 10, Duration::from_secs(60)).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert!(
        outbox::claim(&pool, 10, Duration::from_secs(60)).await?.is_empty(),
        "claimed: invisible"
    );
    outbox::release(&pool, first[0].id, Duration::from_millis(300)).await?;
    assert!(outbox::claim(&pool, 10, Duration::from_secs(60)).await?.is_empty(), "waits its delay");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = outbox::claim(&pool, 10, Duration::from_secs(60)).await?;
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    outbox::mark_delivered(&pool, &[again[0].id]).await?;
    let err = outbox::release(&pool, again[0].id, Duration::ZERO).await.expect_err("delivered");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn an_expired_lease_makes_the_event_claimable_again(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    seed_events(&pool, t.org.id.into_uuid(), 1).await?;
    assert_eq!(outbox::claim(&pool, 1, Duration::from_millis(100)).await?.len(), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        outbox::claim(&pool, 1, Duration::from_secs(60)).await?.len(),
        1,
        "a dead consumer's event comes back"
    );
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn the_audit_log_refuses_update_delete_and_truncate(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    tenant(&mut conn, "acme").await?;
    for sql in [
        "update audit_events set action = 'forged'",
        "delete from audit_events",
        "truncate audit_events",
    ] {
        let err: Error = sqlx::query(sql).execute(&pool).await.expect_err(sql).into();
        assert!(
            matches!(err, Error::Forbidden { reason: "the audit log is append-only" }),
            "{sql}: {err:?}"
        );
    }
    let forged: i64 =
        sqlx::query_scalar("select count(*) from audit_events where action = 'forged'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(forged, 0);
    let _ = constraints::AUDIT_EVENTS_APPEND_ONLY;
    Ok(())
}
