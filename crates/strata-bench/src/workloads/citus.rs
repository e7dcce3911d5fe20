//! Workload 13: lookups and creates on Citus (a coordinator and two workers of the bench's
//! own, on this machine, as `just test` starts them) against the same calls on one server.
//! On a machine of 2 cores this measures what distribution costs (a hop from the coordinator
//! to a worker, a commit on two nodes), not what it gains: the workers share the cores the
//! single server has to itself.

use std::time::Duration;

use strata_db::Pool;
use strata_db::projects::{self, NewProject};
use strata_test_support::CitusCluster;

use crate::calls::{StrataCreate, StrataGet};
use crate::database::{migrate_database, strata_pool};
use crate::fixture::{Fixture, fixture_in, fixture_of};
use crate::plan::Plan;
use crate::stats::{Sample, drive};
use crate::table::Row;

/// Callers and pool size on both.
const CALLERS: u32 = 8;
/// Tasks in each fixture's project.
const TASKS: usize = 2_000;

/// One place the calls go, and what they measured there.
struct Side {
    fixture: Fixture,
    pool: Pool,
    /// A project of its own for the creates.
    creates_in: strata_db::ProjectId,
    gets: Sample,
    creates: Sample,
}

impl Side {
    async fn new(fixture: Fixture) -> anyhow::Result<Self> {
        let pool = strata_pool(&fixture.url, CALLERS)?;
        let mut conn = pool.acquire().await?;
        let mut tx = fixture.scope.begin(&mut conn).await?;
        let new = NewProject { key: "CREATES", name: "Creates", description: "" };
        let creates_in = projects::create(&mut tx, &new).await?.id;
        tx.commit().await?;
        drop(conn);
        Ok(Self { fixture, pool, creates_in, gets: Sample::default(), creates: Sample::default() })
    }

    fn lookups(&self) -> Vec<StrataGet> {
        (0..CALLERS)
            .map(|_| StrataGet {
                pool: self.pool.clone(),
                scope: self.fixture.scope,
                ids: self.fixture.ids.clone(),
            })
            .collect()
    }

    fn creators(&self) -> Vec<StrataCreate> {
        (0..CALLERS)
            .map(|_| StrataCreate {
                pool: self.pool.clone(),
                scope: self.fixture.scope,
                projects: vec![self.creates_in],
            })
            .collect()
    }
}

/// Runs workload 13, or says why it cannot (Citus not installed).
pub(crate) async fn run(server: &str, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let cluster = match CitusCluster::start() {
        Ok(cluster) => cluster,
        Err(error) => {
            println!("skipping workload 13: {error}");
            return Ok(Vec::new());
        }
    };
    let url = cluster.create_database("strata_bench_citus")?;
    migrate_database(&url).await?;
    let mut citus = Side::new(fixture_in(url, TASKS).await?).await?;
    let mut single = Side::new(fixture_of(server, "strata_bench_single", TASKS).await?).await?;
    for side in [&citus, &single] {
        drive(side.lookups(), Duration::from_millis(300)).await?;
        drive(side.creators(), Duration::from_millis(300)).await?;
    }
    for _ in 0..plan.rounds {
        for side in [&mut citus, &mut single] {
            side.gets.absorb(drive(side.lookups(), plan.round).await?);
            side.creates.absorb(drive(side.creators(), plan.round).await?);
        }
    }
    let note =
        "the same machine (2 cores shared by 3 nodes): the cost of distribution, not its gain";
    let rows = vec![
        Row::new(
            "13. get by id, 8 callers, on Citus (coordinator and 2 workers)",
            &citus.gets,
            "strata on one server",
            &single.gets,
            "-",
            format!("{note}; one shard per call, routed by the coordinator"),
        ),
        Row::new(
            "13. create task, 8 callers, on Citus (coordinator and 2 workers)",
            &citus.creates,
            "strata on one server",
            &single.creates,
            "-",
            format!("{note}; task, audit event and outbox event on the tenant's shard"),
        ),
    ];
    for side in [citus, single] {
        side.pool.close().await;
    }
    Ok(rows)
}
