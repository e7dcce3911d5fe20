//! Table size (workload 8 of the table): get by ID, strata against deadpool-postgres on the
//! same statement, and the first page of a project, at each table size.

use std::time::Duration;

use strata_db::PageRequest;
use strata_db::tasks::{self, TaskFilter};
use strata_db::{Pool, ProjectId, Scope};

use super::curves::SizePoint;
use super::data_set::{DataSet, deadpool_gets, strata_gets};
use crate::database::strata_pool;
use crate::peer::deadpool;
use crate::plan::Plan;
use crate::stats::{Sample, Worker, drive};

/// Gets (strata and deadpool on the same statement) and first pages at one size.
pub(super) async fn size_point(
    set: &DataSet,
    plan: Plan,
    round: Duration,
) -> anyhow::Result<SizePoint> {
    let pool = strata_pool(&set.url, 4)?;
    let peer = deadpool(&set.url, 4)?;
    let gets = || strata_gets(&pool, set, 4);
    let peers = || deadpool_gets(&peer, set, 4);
    let lists = || -> Vec<FirstPage> {
        (0..4)
            .map(|_| FirstPage { pool: pool.clone(), scope: set.scope, project: set.projects[0] })
            .collect()
    };
    // Warm the pools and the cache.
    drive(gets(), Duration::from_millis(300)).await?;
    drive(peers(), Duration::from_millis(300)).await?;
    let (mut get, mut get_peer, mut list) =
        (Sample::default(), Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        get.absorb(drive(gets(), round).await?);
        get_peer.absorb(drive(peers(), round).await?);
        list.absorb(drive(lists(), round).await?);
    }
    pool.close().await;
    Ok(SizePoint {
        tasks: set.tasks,
        get: get.summary(),
        get_peer: get_peer.summary(),
        list: list.summary(),
    })
}

/// The first page of 50 of a project, in number order, in a tenant transaction.
struct FirstPage {
    pool: Pool,
    scope: Scope,
    project: ProjectId,
}

impl Worker for FirstPage {
    async fn call(&mut self, _: u64) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        let page =
            tasks::list(&mut tx, self.project, &TaskFilter::default(), PageRequest::first(50))
                .await?;
        tx.commit().await?;
        anyhow::ensure!(page.items.len() == 50, "a short page");
        Ok(())
    }
}
