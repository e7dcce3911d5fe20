//! Paging (workload 9 of the table): the page of 50 at 90% depth of a project against its first
//! page, by keyset cursor.

use std::time::Duration;

use strata_db::PageRequest;
use strata_db::tasks::{self, TaskFilter};
use strata_db::{Pool, ProjectId, Scope};

use super::data_set::DataSet;
use crate::database::strata_pool;
use crate::plan::Plan;
use crate::stats::{Sample, Summary, Worker, drive};

/// One page of 50 after `cursor`.
struct PageAt {
    pool: Pool,
    scope: Scope,
    project: ProjectId,
    cursor: Option<tasks::Cursor>,
}

impl Worker for PageAt {
    async fn call(&mut self, _: u64) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        let filter = TaskFilter::default();
        let page = tasks::list(
            &mut tx,
            self.project,
            &filter,
            PageRequest { after: self.cursor.as_ref(), limit: 50 },
        )
        .await?;
        tx.commit().await?;
        anyhow::ensure!(page.items.len() == 50, "a short page");
        Ok(())
    }
}

/// The first page and the page at 90% depth of the data set's first project, 1 caller.
pub(super) async fn paging(
    set: &DataSet,
    project_tasks: u64,
    plan: Plan,
    round: Duration,
) -> anyhow::Result<(Summary, Summary)> {
    let pool = strata_pool(&set.url, 1)?;
    let project = set.projects[0];
    // Walk to 90% depth the way a client would, 10,000 at a time, keeping the cursor.
    let mut cursor = None;
    let mut seen = 0u64;
    {
        let mut conn = pool.acquire().await?;
        let mut tx = set.scope.begin(&mut conn).await?;
        while seen < project_tasks * 9 / 10 {
            let step = (project_tasks * 9 / 10 - seen).min(10_000) as u32;
            let filter = TaskFilter::default();
            let page = tasks::list(
                &mut tx,
                project,
                &filter,
                PageRequest { after: cursor.as_ref(), limit: step },
            )
            .await?;
            seen += page.items.len() as u64;
            cursor = page.next;
        }
        tx.commit().await?;
    }
    let at = |cursor: Option<tasks::Cursor>| {
        vec![PageAt { pool: pool.clone(), scope: set.scope, project, cursor }]
    };
    drive(at(None), Duration::from_millis(300)).await?;
    let (mut first, mut deep) = (Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        first.absorb(drive(at(None), round).await?);
        deep.absorb(drive(at(cursor.clone()), round).await?);
    }
    pool.close().await;
    Ok((first.summary(), deep.summary()))
}
