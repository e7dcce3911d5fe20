//! A task as the peers read it: the statements that return every column of a task, in the
//! order [`PeerTask::from_row`] decodes them.

use uuid::Uuid;

/// A task by ID in an organization, straight from the table (no tenant function).
pub(crate) const GET_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from tasks where organization_id = $1 and id = $2 and deleted_at is null";
/// What `tasks::get` sends: the tenant-scoped read through `strata_task_by_id`, for peers that
/// run the very same statement (what the data layer adds over the driver, without the cost of
/// the tenant scope itself).
pub(crate) const TENANT_GET_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from strata_task_by_id($1, $2)";
/// A page of a project's tasks in number order, after number `$3`, `$4` at most.
pub(crate) const LIST_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from tasks where organization_id = $1 and project_id = $2 and deleted_at is null and number > $3
  order by number limit $4";

/// A task as the peer decodes it: every column, as `strata_db::tasks::Task` holds them.
#[expect(dead_code, reason = "decoded to cost what the data layer's decoding costs, not read")]
pub(crate) struct PeerTask {
    id: Uuid,
    organization_id: Uuid,
    project_id: Uuid,
    pub(crate) number: i32,
    title: String,
    description: String,
    status: String,
    priority: i16,
    assignee_id: Option<Uuid>,
    labels: Vec<String>,
    metadata: serde_json::Value,
    due_on: Option<time::Date>,
    version: i32,
    deleted_at: Option<time::OffsetDateTime>,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
}

impl PeerTask {
    /// Decodes every column of `row`, one of the statements above.
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            organization_id: row.try_get(1)?,
            project_id: row.try_get(2)?,
            number: row.try_get(3)?,
            title: row.try_get(4)?,
            description: row.try_get(5)?,
            status: row.try_get(6)?,
            priority: row.try_get(7)?,
            assignee_id: row.try_get(8)?,
            labels: row.try_get(9)?,
            metadata: row.try_get(10)?,
            due_on: row.try_get(11)?,
            version: row.try_get(12)?,
            deleted_at: row.try_get(13)?,
            created_at: row.try_get(14)?,
            updated_at: row.try_get(15)?,
        })
    }
}
