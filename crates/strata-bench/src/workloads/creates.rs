//! Workload 4: a task created with its audit event and its outbox event, through the data layer
//! against tokio-postgres running three statements in a transaction.

use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use crate::calls::StrataCreate;
use crate::database::strata_pool;
use crate::fixture::Fixture;
use crate::peer::peer_client;
use crate::plan::Plan;
use crate::stats::{Sample, Worker, drive};
use crate::table::Row;

/// The peer's create: the task, its audit event and its outbox event, three statements in a
/// transaction on a tokio-postgres connection of its own.
struct PeerCreate {
    client: Client,
    statements: [Statement; 3],
    org: Uuid,
    actor: Uuid,
    project: Uuid,
}

const PEER_INSERT_TASK: &str = "with n as (update projects set next_task_number = next_task_number + 1
      where organization_id = $1 and id = $2 returning next_task_number - 1 as number)
   insert into tasks (id, organization_id, project_id, number, title) select $3, $1, $2, n.number, $4 from n
   returning number";
const PEER_INSERT_AUDIT: &str =
    "insert into audit_events (id, organization_id, actor_id, entity, entity_id, action, after)
   select $1, $2, $3, 'task', $4, 'create', to_jsonb(t) from tasks t where t.id = $4";
const PEER_INSERT_OUTBOX: &str =
    "insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
   values ($1, $2, 'task.created', $3, jsonb_build_object('task_id', $3::uuid))";

impl Worker for PeerCreate {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = Uuid::now_v7();
        let title = format!("peer {i}");
        let tx = self.client.transaction().await?;
        tx.query_one(&self.statements[0], &[&self.org, &self.project, &id, &title]).await?;
        tx.execute(&self.statements[1], &[&Uuid::now_v7(), &self.org, &self.actor, &id]).await?;
        tx.execute(&self.statements[2], &[&Uuid::now_v7(), &self.org, &id]).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Runs workload 4 at 1 and 8 concurrent callers.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 8)?;
    let mut rows = Vec::new();
    for n in [1usize, 8] {
        let (mut s, mut p) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            let workers = (0..n)
                .map(|_| StrataCreate {
                    pool: pool.clone(),
                    scope: f.scope,
                    projects: vec![f.project],
                })
                .collect();
            s.absorb(drive(workers, plan.round).await?);
            let mut peers = Vec::new();
            for _ in 0..n {
                let client = peer_client(&f.url).await?;
                let statements = [
                    client.prepare(PEER_INSERT_TASK).await?,
                    client.prepare(PEER_INSERT_AUDIT).await?,
                    client.prepare(PEER_INSERT_OUTBOX).await?,
                ];
                peers.push(PeerCreate {
                    client,
                    statements,
                    org: f.scope.organization_id().into_uuid(),
                    actor: f.scope.actor().into_uuid(),
                    project: f.project.into_uuid(),
                });
            }
            p.absorb(drive(peers, plan.round).await?);
        }
        rows.push(Row::new(
            &format!("4. create task + audit + outbox, {n} concurrent"),
            &s,
            "tokio-postgres, 3 statements in a tx",
            &p,
            "≤ 1 round trip per statement",
            "strata 4 round trips (BEGIN, membership check and tenant in one, 1 statement, COMMIT); peer 5".into(),
        ));
    }
    Ok(rows)
}
