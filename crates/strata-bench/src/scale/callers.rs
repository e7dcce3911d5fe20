//! Callers (workload 11 of the table): get by ID from 1 to 64 callers on pools of 8, strata
//! against deadpool-postgres on the same statement.

use std::time::Duration;

use super::curves::CallersPoint;
use super::data_set::{DataSet, deadpool_gets, strata_gets};
use crate::database::strata_pool;
use crate::peer::deadpool;
use crate::plan::Plan;
use crate::stats::{Sample, drive};

/// Callers from 1 to 64 on pools of 8: strata against deadpool-postgres, same statement,
/// alternating round by round.
pub(super) async fn sweep(
    set: &DataSet,
    plan: Plan,
    round: Duration,
) -> anyhow::Result<Vec<CallersPoint>> {
    let pool = strata_pool(&set.url, 8)?;
    let peer = deadpool(&set.url, 8)?;
    let mut points = Vec::new();
    for callers in [1usize, 2, 4, 8, 16, 32, 64] {
        let ours = || strata_gets(&pool, set, callers);
        let theirs = || deadpool_gets(&peer, set, callers);
        drive(ours(), Duration::from_millis(200)).await?;
        drive(theirs(), Duration::from_millis(200)).await?;
        let (mut s, mut d) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            s.absorb(drive(ours(), round).await?);
            d.absorb(drive(theirs(), round).await?);
        }
        points.push(CallersPoint { callers, strata: s.summary(), deadpool: d.summary() });
    }
    pool.close().await;
    Ok(points)
}
