//! Workload 1: get by ID, through the data layer (its pool of 1 and of 8, and sqlx's stock
//! pool) against tokio-postgres and deadpool-postgres, on the plain statement and on the very
//! statement `tasks::get` sends.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use strata_db::{Pool, Scope, TaskId, tasks};
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use crate::calls::StrataGet;
use crate::database::{stock_pool, strata_pool};
use crate::fixture::Fixture;
use crate::peer::task::{GET_SQL, PeerTask, TENANT_GET_SQL};
use crate::peer::{DeadpoolGet, deadpool, peer_client};
use crate::plan::Plan;
use crate::stats::{Sample, Worker, drive};
use crate::table::Row;

/// Runs workload 1.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let org = f.scope.organization_id().into_uuid();
    let pool1 = strata_pool(&f.url, 1)?;
    let pool8 = strata_pool(&f.url, 8)?;
    let stock8 = stock_pool(&f.url, 8).await?;
    let dp = deadpool(&f.url, 8)?;
    let ours = |pool: &Pool, n: usize| -> Vec<StrataGet> {
        (0..n)
            .map(|_| StrataGet { pool: pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    let (mut s1, mut p1) = (Sample::default(), Sample::default());
    let (mut s8, mut stock, mut d8, mut p8) =
        (Sample::default(), Sample::default(), Sample::default(), Sample::default());
    let (mut bare8, mut same1, mut same8) =
        (Sample::default(), Sample::default(), Sample::default());
    // Open every pool's connections before timing anything.
    drive(ours(&pool1, 1), Duration::from_millis(200)).await?;
    drive(ours(&pool8, 8), Duration::from_millis(200)).await?;
    for _ in 0..plan.rounds {
        s1.absorb(drive(ours(&pool1, 1), plan.round).await?);
        p1.absorb(drive(peer_gets(f, 1, GET_SQL).await?, plan.round).await?);
        same1.absorb(drive(peer_gets(f, 1, TENANT_GET_SQL).await?, plan.round).await?);
        s8.absorb(drive(ours(&pool8, 8), plan.round).await?);
        let dps = |sql| -> Vec<DeadpoolGet> {
            (0..8).map(|_| DeadpoolGet { pool: dp.clone(), sql, org, ids: f.ids.clone() }).collect()
        };
        d8.absorb(drive(dps(GET_SQL), plan.round).await?);
        same8.absorb(drive(dps(TENANT_GET_SQL), plan.round).await?);
        let stocks: Vec<StockGet> = (0..8)
            .map(|_| StockGet { pool: stock8.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect();
        stock.absorb(drive(stocks, plan.round).await?);
        p8.absorb(drive(peer_gets(f, 8, GET_SQL).await?, plan.round).await?);
        let bares: Vec<BareGet> =
            (0..8).map(|_| BareGet { pool: pool8.clone(), org, ids: f.ids.clone() }).collect();
        bare8.absorb(drive(bares, plan.round).await?);
    }
    let rls = "1 round trip, tenant set for the statement, under RLS".to_owned();
    Ok(vec![
        Row::new(
            "1. get by id, 1 task (strata Pool of 1)",
            &s1,
            "tokio-postgres",
            &p1,
            "≥ 0.9×",
            rls.clone(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "deadpool-postgres",
            &d8,
            "≥ 0.9×",
            rls.clone(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "tokio-postgres ×8",
            &p8,
            "-",
            "dedicated connections".into(),
        ),
        Row::new(
            "1. get by id, 1 task (strata Pool of 1)",
            &s1,
            "tokio-postgres, same statement",
            &same1,
            "-",
            "both call strata_task_by_id: the data layer against the driver".into(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "deadpool-postgres, same statement",
            &same8,
            "-",
            "both call strata_task_by_id: the data layer against the driver".into(),
        ),
        Row::new(
            "1. get by id, 8 tasks (stock sqlx PgPool)",
            &stock,
            "deadpool-postgres",
            &d8,
            "-",
            "pings on acquire and release".into(),
        ),
        Row::new(
            "1. same plain query, strata Pool + sqlx, no RLS, 8 tasks",
            &bare8,
            "deadpool-postgres",
            &d8,
            "-",
            "the pool and the driver alone".into(),
        ),
    ])
}

/// The same plain query as the peers, through the data layer's pool and sqlx (no RLS
/// function): what the pool and the driver cost on their own.
struct BareGet {
    pool: Pool,
    org: Uuid,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for BareGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        use sqlx::Row as _;
        let id = self.ids[i as usize % self.ids.len()];
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(GET_SQL).bind(self.org).bind(id).fetch_one(&mut conn).await?;
        let _decoded = (
            row.try_get::<Uuid, _>(0)?,
            row.try_get::<Uuid, _>(1)?,
            row.try_get::<Uuid, _>(2)?,
            row.try_get::<i32, _>(3)?,
            row.try_get::<String, _>(4)?,
            row.try_get::<String, _>(5)?,
            row.try_get::<String, _>(6)?,
            row.try_get::<i16, _>(7)?,
            row.try_get::<Option<Uuid>, _>(8)?,
            row.try_get::<Vec<String>, _>(9)?,
            row.try_get::<serde_json::Value, _>(10)?,
            row.try_get::<Option<time::Date>, _>(11)?,
            row.try_get::<i32, _>(12)?,
            row.try_get::<Option<time::OffsetDateTime>, _>(13)?,
            row.try_get::<time::OffsetDateTime, _>(14)?,
            row.try_get::<time::OffsetDateTime, _>(15)?,
        );
        Ok(())
    }
}

/// `tasks::get` on a connection of sqlx's stock pool.
struct StockGet {
    pool: PgPool,
    scope: Scope,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for StockGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.ids[i as usize % self.ids.len()]);
        let mut conn = self.pool.acquire().await?;
        tasks::get(&mut self.scope.on(&mut *conn), id).await?;
        Ok(())
    }
}

/// The plain statement on a tokio-postgres connection of its own, prepared once.
struct PeerGet {
    client: Client,
    statement: Statement,
    org: Uuid,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for PeerGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = self.ids[i as usize % self.ids.len()];
        let row = self.client.query_one(&self.statement, &[&self.org, &id]).await?;
        PeerTask::from_row(&row)?;
        Ok(())
    }
}

/// `n` callers of `sql` on tokio-postgres connections of their own.
async fn peer_gets(f: &Fixture, n: usize, sql: &str) -> anyhow::Result<Vec<PeerGet>> {
    let mut workers = Vec::new();
    for _ in 0..n {
        let client = peer_client(&f.url).await?;
        let statement = client.prepare(sql).await?;
        workers.push(PeerGet {
            client,
            statement,
            org: f.scope.organization_id().into_uuid(),
            ids: f.ids.clone(),
        });
    }
    Ok(workers)
}
