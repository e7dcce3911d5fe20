//! Workload 7: lookups and creates through PgBouncer (PgBouncers of the bench's own, each with
//! as many server connections as the pool has) against the same calls straight to the server:
//! Debian's 1.18 in session and in transaction mode, and 1.25.2 (built from
//! `../shared/vendor` when no 1.21 or later is installed) in transaction mode with
//! `max_prepared_statements`, where the data layer names its statements again
//! (`database.pooler_prepared_statements`).

use std::time::Duration;

use strata_config::{DatabaseConfig, DatabaseUrl, Pooler, SslMode};
use strata_db::Pool;
use strata_db::projects::{self, NewProject};
use strata_test_support::{PgBouncer, PoolMode};

use crate::calls::{StrataCreate, StrataGet};
use crate::database::strata_pool;
use crate::fixture::Fixture;
use crate::peer::task::TENANT_GET_SQL;
use crate::peer::{DeadpoolGet, deadpool};
use crate::plan::Plan;
use crate::stats::{Sample, drive};
use crate::table::Row;

/// Callers, pool sizes and the pooler's server connections.
const CALLERS: u32 = 8;

/// The PgBouncers of workload 7, and why one could not start.
struct Bouncers {
    transaction: PgBouncer,
    session: PgBouncer,
    /// 1.21 or later, with `max_prepared_statements`.
    prepared: Result<PgBouncer, String>,
}

impl Bouncers {
    fn start(port: u16) -> Result<Self, strata_test_support::HarnessError> {
        let installed = |mode| PgBouncer::builder(port, mode).pool_size(CALLERS).start();
        let prepared = PgBouncer::builder(port, PoolMode::Transaction)
            .pool_size(CALLERS)
            .modern()
            .max_prepared_statements(200)
            .start()
            .map_err(|e| e.to_string());
        Ok(Self {
            transaction: installed(PoolMode::Transaction)?,
            session: installed(PoolMode::Session)?,
            prepared,
        })
    }
}

/// A pool of `CALLERS` connections to `database` through `bouncer`.
fn through(
    bouncer: &PgBouncer,
    database: &str,
    pooler: Pooler,
    prepared: bool,
) -> anyhow::Result<Pool> {
    let mut config = DatabaseConfig::default();
    config.url = Some(DatabaseUrl::new(bouncer.url("postgres", database)));
    config.pooler = pooler;
    config.pooler_prepared_statements = prepared;
    // Bare statements through the pooler that keeps prepared statements run outside any
    // transaction, where only the role's own timeout holds; the bench's role has none.
    config.statement_timeout = Duration::ZERO;
    config.ssl_mode = Some(SslMode::Disable);
    config.max_connections = CALLERS;
    config.min_connections = CALLERS;
    Ok(Pool::from_config(&config)?)
}

/// One way to the server, and what workload 7 measured through it.
struct Way {
    name: &'static str,
    pool: Pool,
    gets: Sample,
    creates: Sample,
}

/// Runs workload 7, or explains why it cannot.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let url = url::Url::parse(&f.url)?;
    // PostgreSQL's default port when the URL names none.
    let (port, database) = (url.port().unwrap_or(5432), url.path().trim_start_matches('/'));
    let bouncers = match Bouncers::start(port) {
        Ok(bouncers) => bouncers,
        Err(error) => {
            println!("skipping workload 7: {error}");
            return Ok(Vec::new());
        }
    };
    let mut ways = vec![
        Way {
            name: "PgBouncer 1.18 in session mode",
            pool: through(&bouncers.session, database, Pooler::Session, false)?,
            gets: Sample::default(),
            creates: Sample::default(),
        },
        Way {
            name: "PgBouncer 1.18 in transaction mode",
            pool: through(&bouncers.transaction, database, Pooler::Transaction, false)?,
            gets: Sample::default(),
            creates: Sample::default(),
        },
    ];
    match &bouncers.prepared {
        Ok(bouncer) => ways.push(Way {
            name: "PgBouncer 1.25.2 in transaction mode, prepared statements kept",
            pool: through(bouncer, database, Pooler::Transaction, true)?,
            gets: Sample::default(),
            creates: Sample::default(),
        }),
        Err(error) => println!("workload 7 without PgBouncer 1.21 or later: {error}"),
    }
    ways.push(Way {
        name: "straight to the server",
        pool: strata_pool(&f.url, CALLERS)?,
        gets: Sample::default(),
        creates: Sample::default(),
    });
    // Creates go to a project of their own: the fixture's keeps its 10,000 tasks.
    let project = {
        let mut conn = ways[0].pool.acquire().await?;
        let mut tx = f.scope.begin(&mut conn).await?;
        let new = NewProject { key: "POOLER", name: "Pooler", description: "" };
        let project = projects::create(&mut tx, &new).await?.id;
        tx.commit().await?;
        project
    };
    let lookups = |pool: &Pool| -> Vec<StrataGet> {
        (0..CALLERS)
            .map(|_| StrataGet { pool: pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    let creates = |pool: &Pool| -> Vec<StrataCreate> {
        (0..CALLERS)
            .map(|_| StrataCreate { pool: pool.clone(), scope: f.scope, projects: vec![project] })
            .collect()
    };
    for way in &ways {
        drive(lookups(&way.pool), Duration::from_millis(300)).await?;
        drive(creates(&way.pool), Duration::from_millis(300)).await?;
    }
    for _ in 0..plan.rounds {
        for way in &mut ways {
            way.gets.absorb(drive(lookups(&way.pool), plan.round).await?);
            way.creates.absorb(drive(creates(&way.pool), plan.round).await?);
        }
    }
    // The driver alone, through the pooler that keeps prepared statements and straight to the
    // server: what the pooler costs any client, beside what it costs strata.
    let peer_rows = match &bouncers.prepared {
        Ok(bouncer) => Some(driver_alone(f, bouncer, database, plan).await?),
        Err(_) => None,
    };
    let Some(direct) = ways.pop() else { anyhow::bail!("no direct pool") };
    let mut rows = Vec::new();
    for way in &ways {
        let (get_target, get_note) = match way.name {
            n if n.contains("session") => {
                ("-", "pooler = \"session\": the same 1 round trip, one more hop")
            }
            n if n.contains("1.25.2") => (
                "≥ 0.6×",
                "pooler_prepared_statements: a named, cached statement, no transaction: 1 round trip",
            ),
            _ => (
                "≥ 0.35×",
                "pooler = \"transaction\": BEGIN, Parse, Bind/Execute, COMMIT (4 round trips) against 1",
            ),
        };
        rows.push(Row::new(
            &format!(
                "7. get by id, 8 callers, through {} ({CALLERS} server connections)",
                way.name
            ),
            &way.gets,
            "strata straight to the server",
            &direct.gets,
            get_target,
            get_note.to_owned(),
        ));
        rows.push(Row::new(
            &format!("7. create task, 8 callers, through {}", way.name),
            &way.creates,
            "strata straight to the server",
            &direct.creates,
            if way.name.contains("session") { "-" } else { "≥ 0.8×" },
            "a create is one transaction already: BEGIN, membership and tenant, the statement, COMMIT"
                .to_owned(),
        ));
    }
    if let (Some((pooled, straight)), Some(prepared)) =
        (peer_rows, ways.iter().find(|w| w.name.contains("1.25.2")))
    {
        let pooled_ratio = pooled.summary().throughput / straight.summary().throughput.max(1.0);
        rows.push(Row::new(
            "7. get by id, 8 callers, through PgBouncer 1.25.2 in transaction mode: strata and the \
             driver alone through the same pooler",
            &prepared.gets,
            "deadpool-postgres through the same PgBouncer",
            &pooled,
            "-",
            format!(
                "deadpool-postgres through it runs at {pooled_ratio:.2}× of deadpool-postgres \
                 straight to the server"
            ),
        ));
    }
    for way in ways.into_iter().chain([direct]) {
        way.pool.close().await;
    }
    drop(bouncers);
    Ok(rows)
}

/// deadpool-postgres running `tasks::get`'s statement through `bouncer` and straight to the
/// server, 8 callers each, alternating: `(through, straight)`.
async fn driver_alone(
    f: &Fixture,
    bouncer: &PgBouncer,
    database: &str,
    plan: Plan,
) -> anyhow::Result<(Sample, Sample)> {
    let pooled = deadpool(&bouncer.url("postgres", database), CALLERS as usize)?;
    let straight = deadpool(&f.url, CALLERS as usize)?;
    let org = f.scope.organization_id().into_uuid();
    let workers = |pool: &deadpool_postgres::Pool| -> Vec<DeadpoolGet> {
        (0..CALLERS)
            .map(|_| DeadpoolGet {
                pool: pool.clone(),
                sql: TENANT_GET_SQL,
                org,
                ids: f.ids.clone(),
            })
            .collect()
    };
    drive(workers(&pooled), Duration::from_millis(300)).await?;
    drive(workers(&straight), Duration::from_millis(300)).await?;
    let (mut through, mut direct) = (Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        through.absorb(drive(workers(&pooled), plan.round).await?);
        direct.absorb(drive(workers(&straight), plan.round).await?);
    }
    Ok((through, direct))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workload 7 as CI runs it, with short rounds: every way to the server gives rows, and no
    /// call fails. A lookup on the driver's connection (`&mut *conn`, no longer possible) sent
    /// named statements through transaction mode and stopped the whole run on `prepared
    /// statement "sqlx_s_922" already exists`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workload_7_runs_through_every_pooler() -> anyhow::Result<()> {
        let server = strata_test_support::runner::server_url();
        let fixture = crate::fixture::small_fixture(&server, "strata_bench_pooler").await?;
        let plan = Plan { quick: true, rounds: 1, round: Duration::from_millis(200), only: &[7] };
        let rows = run(&fixture, plan).await?;
        let names: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
        assert_eq!(rows.len(), 7, "{names:?}");
        for row in &rows {
            assert!(row.strata.ops > 0 && row.peer.ops > 0, "{}: nothing measured", row.workload);
        }
        assert!(names.iter().any(|n| n.contains("1.25.2")), "{names:?}");
        Ok(())
    }
}
