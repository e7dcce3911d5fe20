//! Bulk import: many tasks in one call, streamed in chunks through UNNEST arrays, so memory
//! stays bounded whatever the count.

use crate::audit::audited;
use crate::input;
use serde::Serialize;
use sqlx::types::Json;
use time::Date;
use uuid::Uuid;

use super::TaskMetadata;
use crate::TenantTx;
use crate::tenant::TenantExec;
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
/// chunks of a few thousand rows. The import is atomic: it runs in a transaction of its own,
/// or in a savepoint of the caller's (`scope.begin`, which row-level security needs anyway).
/// Each chunk records one audit event (`import`, with the count and number range) and one
/// `tasks.imported` outbox event. A caller's transaction must be sqlx's (`scope.begin`, or
/// `Connection::begin`), so that the import nests as a savepoint: after a raw `BEGIN` sent as
/// a query, the import's COMMIT would end the caller's transaction.
///
/// The project row is locked once (`FOR NO KEY UPDATE`: creates in the same project wait,
/// foreign-key checks do not) and its counter written once at the end. Advancing the counter
/// per chunk left one row version per chunk in the transaction, and every foreign-key check
/// of every row walked that chain: an import of a million rows ran 30% slower per row than
/// one of 100,000.
///
/// # Errors
///
/// As [`super::create`]; a bad row fails the import with the constraint it broke, and
/// nothing of the import remains.
#[tracing::instrument(skip_all, fields(organization.id = %tx.scope().organization_id(), project.id = %project), err(level = "debug"))]
pub async fn import(
    tx: &mut TenantTx<'_>,
    project: ProjectId,
    tasks: impl IntoIterator<Item = ImportTask>,
) -> Result<ImportReport, Error> {
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    scope.require_writer()?;
    let (mut tx, watch) = conn.savepoint().await?;
    let mut exec = TenantExec::on(&mut tx, watch);
    let next = sqlx::query_scalar!(
        "select next_task_number from projects
          where organization_id = $1 and id = $2 and not archived
            for no key update",
        scope.organization_id().into_uuid(),
        project.into_uuid(),
    )
    .fetch_optional(&mut exec)
    .await?;
    let Some(next) = next else {
        return Err(super::write::project_refusal(&mut exec, scope, project).await?);
    };
    let mut report = ImportReport { count: 0, first_number: None, last_number: None };
    // Two buffers: the next chunk is read from `tasks` while the server inserts this one.
    let mut tasks = tasks.into_iter();
    let (mut chunk, mut next_chunk) = (Columns::default(), Columns::default());
    chunk.fill(&mut tasks)?;
    while chunk.len() > 0 {
        let insert = insert_chunk(&mut exec, scope, project, next, &chunk, &mut report);
        let (inserted, filled) = tokio::join!(insert, async { next_chunk.fill(&mut tasks) });
        inserted?;
        filled?;
        std::mem::swap(&mut chunk, &mut next_chunk);
        next_chunk.clear();
    }
    if let Some(last) = report.last_number {
        sqlx::query!(
            "update projects set next_task_number = $3 where organization_id = $1 and id = $2",
            scope.organization_id().into_uuid(),
            project.into_uuid(),
            last + 1,
        )
        .execute(&mut exec)
        .await?;
    }
    tx.commit().await?;
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
    /// `None` for no labels and for empty metadata (most imported rows): the server then
    /// parses no JSON for them, and the client serializes none.
    labels: Vec<Option<Json<Vec<String>>>>,
    metadata: Vec<Option<Json<TaskMetadata>>>,
    due: Vec<Option<Date>>,
}

impl Columns {
    /// Adds `task`, once its values pass the boundary checks ([`crate::input`]).
    fn push(&mut self, task: ImportTask) -> Result<(), Error> {
        input::text("title", &task.title, input::TITLE_MAX)?;
        input::text("description", &task.description, input::TEXT_MAX)?;
        input::labels(&task.labels)?;
        input::metadata(&task.metadata)?;
        input::date("due_on", task.due_on)?;
        self.ids.push(TaskId::new().into_uuid());
        self.titles.push(task.title);
        self.descriptions.push(task.description);
        self.priorities.push(task.priority);
        self.assignees.push(task.assignee_id.map(UserId::into_uuid));
        self.labels.push((!task.labels.is_empty()).then_some(Json(task.labels)));
        let empty = task.metadata == TaskMetadata::default();
        self.metadata.push((!empty).then_some(Json(task.metadata)));
        self.due.push(task.due_on);
        Ok(())
    }

    /// Takes up to a chunk's worth of rows from `tasks`; the first row that fails the checks
    /// stops the import (nothing of it is kept: the savepoint rolls back).
    fn fill(&mut self, tasks: &mut impl Iterator<Item = ImportTask>) -> Result<(), Error> {
        tasks.take(CHUNK - self.len()).try_for_each(|task| self.push(task))
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Empties every column, keeping their capacity for the next chunk.
    fn clear(&mut self) {
        self.ids.clear();
        self.titles.clear();
        self.descriptions.clear();
        self.priorities.clear();
        self.assignees.clear();
        self.labels.clear();
        self.metadata.clear();
        self.due.clear();
    }
}

async fn insert_chunk(
    conn: &mut TenantExec<'_>,
    scope: &Scope,
    project: ProjectId,
    next: i32,
    chunk: &Columns,
    report: &mut ImportReport,
) -> Result<(), Error> {
    let done = i32::try_from(report.count).map_err(|_| too_many())?;
    let size = i32::try_from(chunk.len()).map_err(|_| too_many())?;
    let first = next.checked_add(done).ok_or_else(too_many)?;
    // The last number, and the counter after it, must fit `integer` too.
    first.checked_add(size).ok_or_else(too_many)?;
    let row = audited!(
        r#"with t as (
               insert into tasks as inserted (id, organization_id, project_id, number, title,
                                              description, priority, assignee_id, labels,
                                              metadata, due_on)
               select u.id, p.organization_id, p.id, $3 + u.ord::int - 1, u.title,
                      u.description, u.priority, u.assignee_id,
                      -- NULL for no labels and for empty metadata: no JSON to parse
                      case when u.labels is null then '{}'::text[]
                           else array(select jsonb_array_elements_text(u.labels)) end,
                      coalesce(u.metadata, '{}'::jsonb), u.due_on
                 -- From the project's row (locked already), not from constants: on Citus the
                 -- insert then runs on the project's shard as an INSERT ... SELECT, where
                 -- rows from constants would go through the coordinator as a COPY, which
                 -- row-level security refuses.
                 from projects p
                cross join unnest($4::uuid[], $5::text[], $6::text[], $7::smallint[], $8::uuid[],
                                  $9::jsonb[], $10::jsonb[], $11::date[])
                      with ordinality as u(id, title, description, priority, assignee_id,
                                           labels, metadata, due_on, ord)
                where p.organization_id = $1 and p.id = $2
               -- Qualified by an alias: Citus 13.2 writes an unqualified `number` here as
               -- `tasks.number` on the shard, whose table has another name.
               returning inserted.number
           ), summary as (
               select count(*) as count, min(number) as first, max(number) as last from t
           )"#,
        record: r#"select $12, $1, $13, 'project', $2, 'import', null::jsonb,
                      jsonb_build_object('count', count, 'first_number', first, 'last_number', last)
                 from summary where count > 0"#,
        r#", outbox as (
               insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
               select $14, $1, 'tasks.imported', $2,
                      jsonb_build_object('project_id', $2::uuid, 'count', count,
                                         'first_number', first, 'last_number', last)
                 from summary where count > 0
               returning id
           )
           select count as "count!", first, last from summary"#,
        scope.organization_id().into_uuid(),
        project.into_uuid(),
        first,
        &chunk.ids,
        &chunk.titles,
        &chunk.descriptions,
        &chunk.priorities,
        &chunk.assignees as &[Option<Uuid>],
        &chunk.labels as &[Option<Json<Vec<String>>>],
        &chunk.metadata as &[Option<Json<TaskMetadata>>],
        &chunk.due as &[Option<Date>],
        AuditEventId::new().into_uuid(),
        scope.actor().into_uuid(),
        OutboxEventId::new().into_uuid(),
    )
    .fetch_one(&mut *conn)
    .await?;
    report.count += u64::try_from(row.count).unwrap_or_default();
    report.first_number = report.first_number.or(row.first);
    report.last_number = row.last;
    Ok(())
}

/// Task numbers are `integer`: an import past 2,147,483,647 cannot be numbered.
fn too_many() -> Error {
    Error::BadInput { message: "the project's task numbers would overflow" }
}
