//! tokio-postgres running the very transaction that `strata_db::tasks::create` runs, for the
//! creates target: `BEGIN`, `strata_enter_organization` (membership and tenant), the one
//! statement that writes the task, its audit event and its outbox event, `COMMIT`. Four round
//! trips on both sides, so the ratio is what the data layer costs over the driver.

use std::path::Path;
use std::sync::LazyLock;

use strata_db::tasks::TaskMetadata;
use strata_db::{ProjectId, Scope};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use crate::stats::Worker;

/// What `TenantTx::begin` sends after `BEGIN`.
const ENTER_SQL: &str = "select strata_enter_organization($1, $2)::text as role";

/// What `tasks::create` sends (its query, column aliases and all): read from the statement
/// `.sqlx/` records for it (the one with its outbox topic), so that it cannot drift from the
/// data layer's, as a copy here once did. Read once, for every caller.
static CREATE_SQL: LazyLock<Result<String, String>> =
    LazyLock::new(|| recorded_statement("'task.created'").map_err(|error| error.to_string()));

/// The one statement in `.sqlx/` (the workspace's offline query data) whose text holds `marker`.
fn recorded_statement(marker: &str) -> anyhow::Result<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.sqlx");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let data: serde_json::Value = serde_json::from_slice(&std::fs::read(entry?.path())?)?;
        if let Some(query) = data["query"].as_str().filter(|query| query.contains(marker)) {
            found.push(query.to_owned());
        }
    }
    match <[String; 1]>::try_from(found) {
        Ok([query]) => Ok(query),
        Err(found) => anyhow::bail!("{} statements in .sqlx/ hold {marker}, not one", found.len()),
    }
}

/// One caller: its own connection, both statements prepared, creating in `projects` in turn.
pub(crate) struct SameCreate {
    client: Client,
    enter: Statement,
    create: Statement,
    scope: Scope,
    projects: Vec<ProjectId>,
    metadata: serde_json::Value,
}

impl SameCreate {
    /// Connects to `url` and prepares both statements.
    pub(crate) async fn connect(
        url: &str,
        scope: Scope,
        projects: Vec<ProjectId>,
    ) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(connection);
        let enter = client.prepare(ENTER_SQL).await?;
        let sql = CREATE_SQL.as_deref().map_err(|error| anyhow::anyhow!("{error}"))?;
        let create = client.prepare(sql).await?;
        let metadata = serde_json::to_value(TaskMetadata::default())?;
        Ok(Self { client, enter, create, scope, projects, metadata })
    }
}

impl Worker for SameCreate {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let (org, actor) =
            (self.scope.organization_id().into_uuid(), self.scope.actor().into_uuid());
        let project = self.projects[i as usize % self.projects.len()].into_uuid();
        let title = format!("created {i}");
        let tx = self.client.transaction().await?;
        let role: Option<String> = tx.query_one(&self.enter, &[&org, &actor]).await?.get(0);
        anyhow::ensure!(matches!(role.as_deref(), Some("owner" | "admin" | "member")), "{role:?}");
        let (id, audit, outbox) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (no_assignee, no_due, no_labels) =
            (None::<Uuid>, None::<time::Date>, Vec::<String>::new());
        let row = tx
            .query_opt(
                &self.create,
                &[
                    &org,
                    &project,
                    &id,
                    &title,
                    &"",
                    &2_i16,
                    &no_assignee,
                    &no_labels,
                    &self.metadata,
                    &no_due,
                    &audit,
                    &actor,
                    &outbox,
                ],
            )
            .await?;
        anyhow::ensure!(row.is_some(), "no task created in {project}");
        tx.commit().await?;
        Ok(())
    }
}
