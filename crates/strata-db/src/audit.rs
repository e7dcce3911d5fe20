//! The audit log: written in the statement of each change (`audited!`, the one place its
//! insert is written), read by [`history`]. The database refuses UPDATE, DELETE and TRUNCATE
//! on it.

use crate::TenantTx;
use crate::tenant::TenantExec;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AuditEventId, CommentId, Error, OrganizationId, ProjectId, TaskId, UserId};

/// A checked statement that makes a change and records it in `audit_events`, in one
/// statement, so that the two commit or fail together: `$changes` (`with …`: the CTEs of the
/// change), then the `audit` CTE this macro writes, then `$result` (the statement's final
/// `select`). `record:` is the `select` of the audit row's values, in the order `id,
/// organization_id, actor_id, entity, entity_id, action, before, after` (`null::jsonb` for
/// the side there is none of).
///
/// `audited!(as Task, …)` is `sqlx::query_as!`, `audited!(scalar, …)` `sqlx::query_scalar!`
/// and `audited!(…)` `sqlx::query!`; the arguments follow as theirs do. The parts are joined
/// into one literal (sqlx's `+`), so the statement is checked, and recorded in `.sqlx/`, whole.
///
/// The insert ends in `RETURNING`: without it Citus sends the rows to the shard as `COPY`,
/// which row-level security refuses (see the crate's docs, "On Citus").
macro_rules! audited {
    (@call [$kind:ident $($out:path,)?] $changes:literal, record: $record:literal, $result:literal, $($arg:tt)*) => {
        sqlx::$kind!(
            $($out,)?
            $changes
                + ", audit as (
               insert into audit_events (id, organization_id, actor_id, entity, entity_id, action, before, after)
               "
                + $record
                + "
               returning id
           )
           "
                + $result,
            $($arg)*
        )
    };
    (as $out:path, $($rest:tt)*) => { $crate::audit::audited!(@call [query_as $out,] $($rest)*) };
    (scalar, $($rest:tt)*) => { $crate::audit::audited!(@call [query_scalar] $($rest)*) };
    ($($rest:tt)*) => { $crate::audit::audited!(@call [query] $($rest)*) };
}
pub(crate) use audited;

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Its ID (time-ordered).
    pub id: AuditEventId,
    /// The organization.
    pub organization_id: OrganizationId,
    /// Who made the change.
    pub actor_id: UserId,
    /// The kind of row: `task`, `project`, `membership`, `comment`.
    pub entity: String,
    /// The row's ID.
    pub entity_id: uuid::Uuid,
    /// What was done: `create`, `update`, `transition`, `assign`, `delete`, …
    pub action: String,
    /// The row before (none for a creation).
    pub before: Option<serde_json::Value>,
    /// The row after.
    pub after: Option<serde_json::Value>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

/// A row whose changes the audit log records, by its typed ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    /// A task.
    Task(TaskId),
    /// A project (its creation, changes and imports).
    Project(ProjectId),
    /// A comment.
    Comment(CommentId),
    /// A membership, by its member.
    Membership(UserId),
}

impl Audited {
    /// The `entity` and `entity_id` the log stores it under.
    fn key(self) -> (&'static str, uuid::Uuid) {
        match self {
            Self::Task(id) => ("task", id.into_uuid()),
            Self::Project(id) => ("project", id.into_uuid()),
            Self::Comment(id) => ("comment", id.into_uuid()),
            Self::Membership(user) => ("membership", user.into_uuid()),
        }
    }
}

/// The changes to one row, oldest first.
///
/// # Errors
///
/// [`Error::Database`] only.
#[tracing::instrument(skip(tx), fields(organization.id = %tx.scope().organization_id()), err(level = "debug"))]
pub async fn history(tx: &mut TenantTx<'_>, row: Audited) -> Result<Vec<AuditEvent>, Error> {
    let (entity, entity_id) = row.key();
    let (mut exec, scope) = TenantExec::of(tx);
    let (conn, scope) = (&mut exec, &scope);
    let events = sqlx::query_as!(
        AuditEvent,
        r#"select id as "id: AuditEventId", organization_id as "organization_id: OrganizationId",
                  actor_id as "actor_id: UserId", entity, entity_id, action, before, after, occurred_at
             from audit_events
            where organization_id = $1 and entity = $2 and entity_id = $3
            order by id"#,
        scope.organization_id().into_uuid(),
        entity,
        entity_id,
    )
    .fetch_all(conn)
    .await?;
    Ok(events)
}
