//! The outbox consumer: events written in the transaction of the change that caused them,
//! claimed by relays with `FOR UPDATE SKIP LOCKED` so concurrent consumers never share one.
//!
//! The outbox serves every tenant (a relay delivers for all), so it has no row-level security
//! and these functions take no [`crate::Scope`].
//!
//! On Citus the outbox is distributed by organization, and Citus locks rows
//! (`FOR UPDATE SKIP LOCKED`) only on one shard: [`claim`] is refused there. A relay on Citus
//! asks which tenants have events ready ([`pending_tenants`]) and claims each tenant's
//! ([`claim_tenant`]), with the same guarantees; both also work on PostgreSQL.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use time::OffsetDateTime;

use crate::error::of_write;
use crate::{Error, OrganizationId, OutboxEventId};

/// An event to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Its ID (time-ordered).
    pub id: OutboxEventId,
    /// The organization it concerns.
    pub organization_id: OrganizationId,
    /// What happened: `task.created`, `task.status_changed`, `task.assigned`, …
    pub topic: String,
    /// The ID of the row it is about.
    pub aggregate_id: uuid::Uuid,
    /// The event's body.
    pub payload: serde_json::Value,
    /// Claims so far, this one included.
    pub attempts: i32,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Claims up to `batch` deliverable events, oldest first, for `lease`: no other consumer gets
/// them until they are delivered, released, or the lease runs out (a crashed consumer).
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn claim(
    conn: impl PgExecutor<'_>,
    batch: i64,
    lease: Duration,
) -> Result<Vec<OutboxEvent>, Error> {
    let events = sqlx::query_as!(
        OutboxEvent,
        r#"update outbox_events
              set attempts = attempts + 1,
                  claimed_until = now() + make_interval(secs => $2)
            where id in (
                select id from outbox_events
                 where delivered_at is null and available_at <= now()
                   and (claimed_until is null or claimed_until < now())
                 order by available_at, id
                 limit $1
                 for update skip locked
            )
           returning id as "id: OutboxEventId", organization_id as "organization_id: OrganizationId",
                     topic, aggregate_id, payload, attempts, created_at"#,
        batch,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await
    .map_err(of_write)?;
    Ok(events)
}

/// The tenants with deliverable events, at most `limit`, the one with the oldest event first:
/// what a relay on Citus claims next, one tenant at a time ([`claim_tenant`]).
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn pending_tenants(
    conn: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<OrganizationId>, Error> {
    let tenants = sqlx::query_scalar!(
        r#"select organization_id as "organization_id!: OrganizationId"
             from outbox_events
            where delivered_at is null and available_at <= now()
              and (claimed_until is null or claimed_until < now())
            group by organization_id
            order by min(available_at), organization_id
            limit $1"#,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(tenants)
}

/// As [`claim`], within one tenant's events: one shard on Citus, where [`claim`] is refused.
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn claim_tenant(
    conn: impl PgExecutor<'_>,
    organization: OrganizationId,
    batch: i64,
    lease: Duration,
) -> Result<Vec<OutboxEvent>, Error> {
    let events = sqlx::query_as!(
        OutboxEvent,
        r#"update outbox_events
              set attempts = attempts + 1,
                  claimed_until = now() + make_interval(secs => $3)
            where organization_id = $1 and id in (
                select id from outbox_events
                 where organization_id = $1
                   and delivered_at is null and available_at <= now()
                   and (claimed_until is null or claimed_until < now())
                 order by available_at, id
                 limit $2
                 for update skip locked
            )
           returning id as "id: OutboxEventId", organization_id as "organization_id: OrganizationId",
                     topic, aggregate_id, payload, attempts, created_at"#,
        organization.into_uuid(),
        batch,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await
    .map_err(of_write)?;
    Ok(events)
}

/// Marks events delivered; returns how many were still undelivered.
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(conn, ids), fields(count = ids.len()), err(level = "debug"))]
pub async fn mark_delivered(
    conn: impl PgExecutor<'_>,
    ids: &[OutboxEventId],
) -> Result<u64, Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.into_uuid()).collect();
    let done = sqlx::query!(
        "update outbox_events set delivered_at = now(), claimed_until = null
          where id = any($1) and delivered_at is null",
        &ids,
    )
    .execute(conn)
    .await
    .map_err(of_write)?;
    Ok(done.rows_affected())
}

/// Gives an event back after a failed delivery, claimable again after `retry_after`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no undelivered event with this ID.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn release(
    conn: impl PgExecutor<'_>,
    id: OutboxEventId,
    retry_after: Duration,
) -> Result<(), Error> {
    let released = sqlx::query!(
        "update outbox_events
            set claimed_until = null, available_at = now() + make_interval(secs => $2)
          where id = $1 and delivered_at is null",
        id.into_uuid(),
        retry_after.as_secs_f64(),
    )
    .execute(conn)
    .await
    .map_err(of_write)?;
    match released.rows_affected() {
        0 => Err(Error::NotFound { entity: "outbox event" }),
        _ => Ok(()),
    }
}
