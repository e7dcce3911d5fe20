//! Workload 2: a project's 10,000 tasks listed through the data layer (keyset pages of 500, and
//! one call) against tokio-postgres, every column decoded on both sides.

use strata_db::PageRequest;
use strata_db::Pool;
use strata_db::tasks::{self, TaskFilter};
use tokio_postgres::{Client, Statement};

use crate::database::strata_pool;
use crate::fixture::Fixture;
use crate::peer::peer_client;
use crate::peer::task::{LIST_SQL, PeerTask};
use crate::plan::Plan;
use crate::stats::{Sample, repeat};
use crate::table::Row;

/// Runs workload 2.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 1)?;
    let client = peer_client(&f.url).await?;
    let statement = client.prepare(LIST_SQL).await?;
    let times = if plan.quick { 3 } else { 8 };
    let mut results = Vec::new();
    for page in [500u32, 10_000] {
        // One untimed listing each first: connecting and preparing are not listing.
        strata_listing(&pool, f, page).await?;
        peer_listing(&client, &statement, f, page).await?;
        let (mut s, mut p) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            s.absorb(repeat(times, 10_000.0, |_| strata_listing(&pool, f, page)).await?);
            p.absorb(
                repeat(times, 10_000.0, |_| peer_listing(&client, &statement, f, page)).await?,
            );
        }
        if std::env::var_os("STRATA_BENCH_TRACE").is_some() {
            eprintln!("page {page}: strata {:?}", s.latencies);
            eprintln!("page {page}: peer {:?}", p.latencies);
        }
        let name = if page == 500 {
            "2. list 10,000 rows, keyset pages of 500"
        } else {
            "2. list 10,000 rows, one call"
        };
        results.push(Row::new(
            name,
            &s,
            "tokio-postgres",
            &p,
            "≥ 1.0×",
            "rows/s, every column decoded".into(),
        ));
    }
    Ok(results)
}

/// A project's 10,000 tasks through the data layer, `page` at a time, in a tenant transaction.
async fn strata_listing(pool: &Pool, f: &Fixture, page: u32) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut tx = f.scope.begin(&mut conn).await?;
    let (mut cursor, mut seen) = (None, 0);
    loop {
        let got = tasks::list(
            &mut tx,
            f.project,
            &TaskFilter::default(),
            PageRequest { after: cursor.as_ref(), limit: page },
        )
        .await?;
        seen += got.items.len();
        match got.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tx.commit().await?;
    anyhow::ensure!(seen == 10_000, "listed {seen}");
    Ok(())
}

/// The same listing through tokio-postgres, every column decoded into a struct.
async fn peer_listing(
    client: &Client,
    statement: &Statement,
    f: &Fixture,
    page: u32,
) -> anyhow::Result<()> {
    let (org, project) = (f.scope.organization_id().into_uuid(), f.project.into_uuid());
    let (mut after, mut seen) = (0i32, 0);
    loop {
        let rows = client.query(statement, &[&org, &project, &after, &i64::from(page)]).await?;
        let decoded: Vec<PeerTask> =
            rows.iter().map(PeerTask::from_row).collect::<Result<_, _>>()?;
        seen += decoded.len();
        match decoded.last() {
            Some(last) if decoded.len() == page as usize => after = last.number,
            _ => break,
        }
    }
    anyhow::ensure!(seen == 10_000, "listed {seen}");
    Ok(())
}
