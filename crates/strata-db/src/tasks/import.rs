//! Bulk import: many tasks in one call, streamed in chunks through UNNEST arrays, so memory
//! stays bounded whatever the count.

use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use time::Date;
use uuid::Uuid;

use super::TaskMetadata;
use crate::{AuditEventId, Error, OutboxEventId, ProjectId, Scope, TaskId, UserId};

/// Rows sent per statement: large enough to amortise the round trip, small enough that
/// memory stays flat.
const CHUNK: usize = 2_000;

/// One task to import.
#[derive(Debug, Clone, Default)]
pub struct ImportTask {
    /// Title, not blank.
    pub title: String,
    /// Free text.
    pub description: String,
    /// 0 (highest) to 4 (lowest).
    pub priority: i16,
    /// A member of the organization, or none.
    pub assignee_id: Option<UserId>,
    /// Labels.
    pub labels: Vec<String>,
    /// Integration metadata.
    pub metadata: TaskMetadata,
    /// Due date.
    pub due_on: Option<Date>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Tasks created.
    pub count: u64,
    /// The first number given, if any task was imported.
    pub first_number: Option<i32>,
    /// The last number given.
    pub last_number: Option<i32>,
}

/// Imports `tasks` into a project, numbering them contiguously after its existing tasks, in
/// chunks of a few thousand rows. Each chunk records one audit event (`import`, with the
/// count and number range) and one `tasks.imported` outbox event. Run it in a transaction
/// (`scope.begin`) to make the whole import atomic.
///
/// # Errors
///
/// As [`super::create`]; a bad row fails its chunk with the constraint it broke.
#[tracing::instrument(skip_all, fields(organization.id = %scope.organization_id(), project.id = %project), err)]
pub async fn import(
    conn: &mut PgConnection,
    scope: &Scope,
    project: ProjectId,
    tasks: impl IntoIterator<Item = ImportTask>,
) -> Result<ImportReport, Error> {
    scope.require_writer()?;
    let mut report = ImportReport { count: 0, first_number: None, last_number: None };
    let mut chunk = Columns::default();
    for task in tasks {
        chunk.push(task);
        if chunk.len() == CHUNK {
            insert_chunk(conn, scope, project, &mut chunk, &mut report).await?;
        }
    }
    if chunk.len() > 0 {
        insert_chunk(conn, scope, project, &mut chunk, &mut report).await?;
    }
    Ok(report)
}

/// One chunk, column by column, as the UNNEST arrays want it.
#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    titles: Vec<String>,
    descriptions: Vec<String>,
    priorities: Vec<i16>,
    assignees: Vec<Option<Uuid>>,
    labels: Vec<Json<Vec<String>>>,
    metadata: Vec<Json<TaskMetadata>>,
    due: Vec<Option<Date>>,
}

impl Columns {
    fn push(&mut self, task: ImportTask) {
        self.ids.push(TaskId::new().into_uuid());
        self.titles.push(task.title);
        self.descriptions.push(task.description);
        self.priorities.push(task.priority);
        self.assignees.push(task.assignee_id.map(UserId::into_uuid));
        self.labels.push(Json(task.labels));
        self.metadata.push(Json(task.metadata));
        self.due.push(task.due_on);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

async fn insert_chunk(
    conn: &mut PgConnection,
    scope: &Scope,
    project: ProjectId,
    chunk: &mut Columns,
    report: &mut ImportReport,
) -> Result<(), Error> {
    let count = i32::try_from(chunk.len()).unwrap_or(i32::MAX);
    let row = sqlx::query!(
        r#"with n as (
               update projects set next_task_number = next_task_number + $3
                where organization_id = $1 and id = $2 and not archived
               returning next_task_number - $3 as first
           ), t as (
               insert into tasks (id, organization_id, project_id, number, title, description,
                                  priority, assignee_id, labels, metadata, due_on)
               select u.id, $1, $2, n.first + u.ord::int - 1, u.title, u.description, u.priority,
                      u.assignee_id,
                      -- the subquery only when there are labels: most imported rows have none
                      case when u.labels = '[]'::jsonb then '{}'::text[]
                           else array(select jsonb_array_elements_text(u.labels)) end,
                      u.metadata, u.due_on
                 from n, unnest($4::uuid[], $5::text[], $6::text[], $7::smallint[], $8::uuid[],
                                $9::jsonb[], $10::jsonb[], $11::date[])
                      with ordinality as u(id, title, description, priority, assignee_id,
                                           labels, metadata, due_on, ord)
               returning number
           ), summary as (
               select count(*) as count, min(number) as first, max(number) as last from t
           ), audit as (
               insert into audit_events (id, organization_id, actor_id, entity, entity_id, action, after)
               select $12, $1, $13, 'project', $2, 'import',
                      jsonb_build_object('count', count, 'first_number', first, 'last_number', last)
                 from summary where count > 0
           ), outbox as (
               insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
               select $14, $1, 'tasks.imported', $2,
                      jsonb_build_object('project_id', $2::uuid, 'count', count,
                                         'first_number', first, 'last_number', last)
                 from summary where count > 0
           )
           select count as "count!", first, last from summary"#,
        scope.organization_id().into_uuid(),
        project.into_uuid(),
        count,
        &chunk.ids,
        &chunk.titles,
        &chunk.descriptions,
        &chunk.priorities,
        &chunk.assignees as &[Option<Uuid>],
        &chunk.labels as &[Json<Vec<String>>],
        &chunk.metadata as &[Json<TaskMetadata>],
        &chunk.due as &[Option<Date>],
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
        OutboxEventId::new().into_uuid(),
    )
    .fetch_one(&mut *conn)
    .await?;
    chunk.clear();
    if row.count == 0 {
        return Err(super::write::project_refusal(conn, scope, project).await?);
    }
    report.count += u64::try_from(row.count).unwrap_or_default();
    report.first_number = report.first_number.or(row.first);
    report.last_number = row.last;
    Ok(())
}
