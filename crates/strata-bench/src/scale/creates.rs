//! Creates (workload 12 of the table under `--scale`): 8 callers creating tasks spread over 1,
//! 8 and 64 projects, against tokio-postgres running the very same transaction.

use std::time::Duration;

use strata_db::PageRequest;
use strata_db::projects::{self, NewProject};

use super::curves::CreatesPoint;
use super::data_set::DataSet;
use crate::calls::StrataCreate;
use crate::database::strata_pool;
use crate::peer::same_create::SameCreate;
use crate::plan::Plan;
use crate::stats::{Sample, drive};

/// 8 callers creating tasks spread over 1, 8 and 64 projects (made on first use).
pub(super) async fn creates(
    set: &DataSet,
    plan: Plan,
    round: Duration,
) -> anyhow::Result<Vec<CreatesPoint>> {
    let pool = strata_pool(&set.url, 8)?;
    let mut targets = Vec::new();
    {
        let mut conn = pool.acquire().await?;
        let mut tx = set.scope.begin(&mut conn).await?;
        let existing = projects::list(&mut tx, false, PageRequest::first(100)).await?.items;
        for p in 0..64 {
            let key = format!("C{p}");
            let id = match existing.iter().find(|e| e.key == key) {
                Some(found) => found.id,
                None => {
                    let new = NewProject { key: &key, name: "Creates", description: "" };
                    projects::create(&mut tx, &new).await?.id
                }
            };
            targets.push(id);
        }
        tx.commit().await?;
    }
    let mut points = Vec::new();
    for spread in [1usize, 8, 64] {
        let workers = || -> Vec<StrataCreate> {
            (0..8)
                .map(|w| {
                    // Each caller starts at another project of the spread.
                    let mut projects = targets[..spread].to_vec();
                    projects.rotate_left(w % spread);
                    StrataCreate { pool: pool.clone(), scope: set.scope, projects }
                })
                .collect()
        };
        let (mut sample, mut peer) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            sample.absorb(drive(workers(), round).await?);
            // Connected and prepared before the clock starts, as the pool's connections are.
            let mut peers = Vec::new();
            for w in 0..8 {
                let mut projects = targets[..spread].to_vec();
                projects.rotate_left(w % spread);
                peers.push(SameCreate::connect(&set.url, set.scope, projects).await?);
            }
            peer.absorb(drive(peers, round).await?);
        }
        points.push(CreatesPoint {
            projects: spread,
            creates: sample.summary(),
            peer: Some(peer.summary()),
        });
    }
    pool.close().await;
    Ok(points)
}
