//! Tasks: per project, numbered (`OPS-42`), with status transitions, optimistic concurrency,
//! soft delete, keyset-paged listing and a streaming bulk import.

mod cursor;
mod import;
mod read;
mod write;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::types::Json;
use sqlx::{Decode, Encode, Postgres};
use time::{Date, OffsetDateTime};

use crate::{OrganizationId, ProjectId, TaskId, UserId};

pub use cursor::Cursor;
pub use import::{ImportReport, ImportTask, import};
pub use read::{TaskFilter, TaskOrder, get, get_by_key, list};
pub use write::{TaskPatch, assign, create, delete, restore, transition, update};

/// A task's status, the PostgreSQL enum `task_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "task_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not started.
    Todo,
    /// Being worked on.
    InProgress,
    /// Waiting on something.
    Blocked,
    /// Finished.
    Done,
    /// Dropped.
    Cancelled,
}

impl TaskStatus {
    /// Every status.
    pub const ALL: [Self; 5] =
        [Self::Todo, Self::InProgress, Self::Blocked, Self::Done, Self::Cancelled];

    /// The status as the database spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Blocked => "blocked",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether a task may go from `self` to `to`: the table `task_status_transitions`, which
    /// a trigger enforces; this copy lets callers offer only allowed moves (a test keeps the
    /// two equal).
    pub fn can_become(self, to: Self) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Todo, InProgress | Blocked | Cancelled | Done)
                | (InProgress, Todo | Blocked | Done | Cancelled)
                | (Blocked, Todo | InProgress | Cancelled)
                | (Done, Todo)
                | (Cancelled, Todo)
        )
    }
}

/// Structured metadata from integrations (`tasks.metadata`, jsonb); unknown keys are kept.
///
/// `Deserialize` is written by hand: serde's `flatten` buffers every value through an
/// intermediate tree, which cost a third of the time of listing 10,000 tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskMetadata {
    /// Where the task came from (an importer, an integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A link to the task elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// An estimate in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<u32>,
    /// Anything else, kept as is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl<'de> Deserialize<'de> for TaskMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TaskMetadata;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of task metadata")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TaskMetadata, A::Error> {
                let mut metadata = TaskMetadata::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "source" => metadata.source = map.next_value()?,
                        "external_url" => metadata.external_url = map.next_value()?,
                        "estimate" => metadata.estimate = map.next_value()?,
                        _ => {
                            let value = map.next_value()?;
                            metadata.extra.insert(key, value);
                        }
                    }
                }
                Ok(metadata)
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

// Stored as jsonb, read and written as the type itself: sqlx's `Json` wrapper stays inside the
// data layer.
impl sqlx::Type<Postgres> for TaskMetadata {
    fn type_info() -> PgTypeInfo {
        <Json<Self> as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<Self> as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for TaskMetadata {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <Json<Self> as Decode<'r, Postgres>>::decode(value).map(|json| json.0)
    }
}

impl Encode<'_, Postgres> for TaskMetadata {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <Json<&Self> as Encode<'_, Postgres>>::encode(Json(self), buf)
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its ID.
    pub id: TaskId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its project.
    pub project_id: ProjectId,
    /// Its number in the project: 42 in `OPS-42`.
    pub number: i32,
    /// Title, not blank.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Status.
    pub status: TaskStatus,
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
    /// Optimistic concurrency version: pass it back to change the task.
    pub version: i32,
    /// When it was soft-deleted, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The fields of a new task.
#[derive(Debug, Clone, Copy)]
pub struct NewTask<'a> {
    /// Its ID, chosen by the caller (`TaskId::new()`), which makes the create idempotent: sent
    /// again after an [`crate::Error::InDoubt`], it answers [`crate::Error::Conflict`] on
    /// [`crate::constraints::TASKS_PKEY`] if the first create landed, and creates it if not.
    pub id: TaskId,
    /// The project; it must not be archived.
    pub project_id: ProjectId,
    /// Title, not blank.
    pub title: &'a str,
    /// Free text.
    pub description: &'a str,
    /// 0 (highest) to 4 (lowest).
    pub priority: i16,
    /// A member of the organization, or none.
    pub assignee_id: Option<UserId>,
    /// Labels.
    pub labels: &'a [String],
    /// Integration metadata.
    pub metadata: &'a TaskMetadata,
    /// Due date.
    pub due_on: Option<Date>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_unknown_keys_and_round_trips() -> Result<(), serde_json::Error> {
        let text = r#"{"source":"jira","estimate":3,"sprint":{"n":7},"tags":["a"]}"#;
        let metadata: TaskMetadata = serde_json::from_str(text)?;
        assert_eq!(metadata.source.as_deref(), Some("jira"));
        assert_eq!(metadata.estimate, Some(3));
        assert_eq!(metadata.extra["sprint"]["n"], 7);
        let back: serde_json::Value = serde_json::to_value(&metadata)?;
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(text)?);
        assert!(serde_json::from_str::<TaskMetadata>(r#"{"estimate":"three"}"#).is_err());
        assert!(serde_json::from_str::<TaskMetadata>("[1]").is_err());
        Ok(())
    }
}
