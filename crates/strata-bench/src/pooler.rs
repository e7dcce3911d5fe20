//! Workload 7: lookups through PgBouncer in transaction mode (a PgBouncer of the bench's own,
//! from the installed package, with as many server connections as the pool has) against the
//! same lookups straight to the server. No target yet; the row shows what the pooler mode
//! costs: each bare statement runs in a transaction of its own, as an unnamed statement.

use std::time::Duration;

use strata_config::{DatabaseConfig, DatabaseUrl, Pooler, SslMode};
use strata_db::Pool;
use strata_test_support::{PgBouncer, PoolMode};

use crate::data::{Fixture, StrataGet, strata_pool};
use crate::stats::{Sample, drive};
use crate::{Plan, Row};

/// Runs workload 7, or explains why it cannot.
pub(crate) async fn gets(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let url = url::Url::parse(&f.url)?;
    // PostgreSQL's default port when the URL names none.
    let (port, database) = (url.port().unwrap_or(5432), url.path().trim_start_matches('/'));
    let start = |mode| PgBouncer::start(port, mode, 8);
    let (transaction, session) = match (start(PoolMode::Transaction), start(PoolMode::Session)) {
        (Ok(transaction), Ok(session)) => (transaction, session),
        (Err(error), _) | (_, Err(error)) => {
            println!("skipping workload 7: {error}");
            return Ok(Vec::new());
        }
    };
    let through = |bouncer: &PgBouncer, pooler| -> anyhow::Result<Pool> {
        let mut config = DatabaseConfig::default();
        config.url = Some(DatabaseUrl::new(bouncer.url("postgres", database)));
        config.pooler = pooler;
        config.statement_timeout = Duration::ZERO;
        config.ssl_mode = Some(SslMode::Disable);
        config.max_connections = 8;
        config.min_connections = 8;
        Ok(Pool::from_config(&config)?)
    };
    let pooled = through(&transaction, Pooler::Transaction)?;
    let sessions = through(&session, Pooler::Session)?;
    let direct = strata_pool(&f.url, 8)?;
    let workers = |pool: &Pool| -> Vec<StrataGet> {
        (0..8)
            .map(|_| StrataGet { pool: pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    for pool in [&pooled, &sessions, &direct] {
        drive(workers(pool), Duration::from_millis(300)).await?;
    }
    let (mut by_transaction, mut by_session, mut straight) =
        (Sample::default(), Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        by_transaction.absorb(drive(workers(&pooled), plan.round).await?);
        by_session.absorb(drive(workers(&sessions), plan.round).await?);
        straight.absorb(drive(workers(&direct), plan.round).await?);
    }
    for pool in [pooled, sessions, direct] {
        pool.close().await;
    }
    drop((transaction, session));
    Ok(vec![
        Row::new(
            "7. get by id, 8 tasks, through PgBouncer 1.18 in session mode (8 server connections)",
            &by_session,
            "strata straight to the server",
            &straight,
            "-",
            "pooler = \"session\": the same 1 round trip, one more hop".to_owned(),
        ),
        Row::new(
            "7. get by id, 8 tasks, through PgBouncer 1.18 in transaction mode (8 server \
             connections)",
            &by_transaction,
            "strata straight to the server",
            &straight,
            "-",
            "pooler = \"transaction\": BEGIN, Parse, Bind/Execute, COMMIT (4 round trips) against 1"
                .to_owned(),
        ),
    ])
}
