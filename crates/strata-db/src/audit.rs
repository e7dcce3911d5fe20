//! Reading the audit log. Writing happens in the statement of each change; the database
//! refuses UPDATE, DELETE and TRUNCATE on it.

use crate::TenantTx;
use crate::tenant::TenantExec;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AuditEventId, CommentId, Error, OrganizationId, ProjectId, TaskId, UserId};

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
