//! tokio-postgres running the very transaction that `strata_db::tasks::create` runs, for the
//! creates target: `BEGIN`, `strata_enter_organization` (membership and tenant), the one
//! statement that writes the task, its audit event and its outbox event, `COMMIT`. Four round
//! trips on both sides, so the ratio is what the data layer costs over the driver.

use strata_db::tasks::TaskMetadata;
use strata_db::{ProjectId, Scope};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use crate::stats::Worker;

/// What `TenantTx::begin` sends after `BEGIN`.
const ENTER_SQL: &str = "select strata_enter_organization($1, $2)::text as role";

/// What `tasks::create` sends (its query, column aliases and all), as `.sqlx/` records it.
const CREATE_SQL: &str = r#"with n as (
       update projects set next_task_number = next_task_number + 1
        where organization_id = $1 and id = $2 and not archived
       returning next_task_number - 1 as number
   ), t as (
       insert into tasks (id, organization_id, project_id, number, title, description,
                          priority, assignee_id, labels, metadata, due_on)
       select $3, $1, $2, n.number, $4, $5, $6, $7, $8, $9, $10 from n
       returning *
   ), audit as (
       insert into audit_events (id, organization_id, actor_id, entity, entity_id, action, before, after)
       select $11, t.organization_id, $12, 'task', t.id, 'create', null::jsonb, to_jsonb(t) from t
       returning id
   )
   , outbox as (
       insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
       select $13, t.organization_id, 'task.created', t.id,
              jsonb_build_object('task_id', t.id, 'project_id', t.project_id,
                                 'number', t.number, 'status', t.status)
         from t
       returning id
   )
   select id as "id!: TaskId", organization_id as "organization_id!: OrganizationId",
          project_id as "project_id!: ProjectId", number as "number!", title as "title!",
          description as "description!", status as "status!: TaskStatus",
          priority as "priority!", assignee_id as "assignee_id?: UserId", labels as "labels!",
          metadata as "metadata!: TaskMetadata", due_on as "due_on?", version as "version!",
          deleted_at as "deleted_at?", created_at as "created_at!", updated_at as "updated_at!"
     from t"#;

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
        let create = client.prepare(CREATE_SQL).await?;
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
