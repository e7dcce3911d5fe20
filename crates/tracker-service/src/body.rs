//! The service's own response types: what the API promises, apart from the data layer's rows,
//! so that a column added to a table does not change the contract by accident. Each has its
//! OpenAPI schema.

use serde::{Deserialize, Serialize};
use strata_db::tasks::{Task, TaskMetadata, TaskStatus};
use strata_db::{Role, comments::Comment, memberships::Membership, organizations::Organization};
use strata_db::{projects::Project, tokens::ApiToken, users::User};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Everything, including memberships.
    Owner,
    /// Projects and memberships.
    Admin,
    /// Tasks and comments.
    Member,
    /// Read only.
    Viewer,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Owner => Self::Owner,
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
            Role::Viewer => Self::Viewer,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Owner => Self::Owner,
            RoleName::Admin => Self::Admin,
            RoleName::Member => Self::Member,
            RoleName::Viewer => Self::Viewer,
        }
    }
}

/// A task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
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

impl From<TaskStatus> for StatusName {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Todo => Self::Todo,
            TaskStatus::InProgress => Self::InProgress,
            TaskStatus::Blocked => Self::Blocked,
            TaskStatus::Done => Self::Done,
            TaskStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<StatusName> for TaskStatus {
    fn from(status: StatusName) -> Self {
        match status {
            StatusName::Todo => Self::Todo,
            StatusName::InProgress => Self::InProgress,
            StatusName::Blocked => Self::Blocked,
            StatusName::Done => Self::Done,
            StatusName::Cancelled => Self::Cancelled,
        }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    email: String,
    display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.into_uuid(),
            email: u.email,
            display_name: u.display_name,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// An organization (a tenant).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    id: Uuid,
    slug: String,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        Self {
            id: o.id.into_uuid(),
            slug: o.slug,
            name: o.name,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A user's membership of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    organization_id: Uuid,
    user_id: Uuid,
    role: RoleName,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Membership> for MemberView {
    fn from(m: Membership) -> Self {
        Self {
            organization_id: m.organization_id.into_uuid(),
            user_id: m.user_id.into_uuid(),
            role: m.role.into(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// A project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    id: Uuid,
    organization_id: Uuid,
    key: String,
    name: String,
    description: String,
    archived: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        Self {
            id: p.id.into_uuid(),
            organization_id: p.organization_id.into_uuid(),
            key: p.key,
            name: p.name,
            description: p.description,
            archived: p.archived,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A task. Its `version` is also its `ETag`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    id: Uuid,
    organization_id: Uuid,
    project_id: Uuid,
    /// Per-project sequence number.
    number: i32,
    title: String,
    description: String,
    status: StatusName,
    /// 0 (highest) to 4 (lowest).
    priority: i16,
    assignee_id: Option<Uuid>,
    labels: Vec<String>,
    /// `source`, `external_url`, `estimate`, and any other keys, kept as given.
    #[schema(value_type = Object)]
    metadata: TaskMetadata,
    due_on: Option<Date>,
    version: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    deleted_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        Self {
            id: t.id.into_uuid(),
            organization_id: t.organization_id.into_uuid(),
            project_id: t.project_id.into_uuid(),
            number: t.number,
            title: t.title,
            description: t.description,
            status: t.status.into(),
            priority: t.priority,
            assignee_id: t.assignee_id.map(strata_db::UserId::into_uuid),
            labels: t.labels,
            metadata: t.metadata,
            due_on: t.due_on,
            version: t.version,
            deleted_at: t.deleted_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A comment on a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentView {
    id: Uuid,
    organization_id: Uuid,
    task_id: Uuid,
    author_id: Uuid,
    body: String,
    #[serde(with = "time::serde::rfc3339::option")]
    edited_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id.into_uuid(),
            organization_id: c.organization_id.into_uuid(),
            task_id: c.task_id.into_uuid(),
            author_id: c.author_id.into_uuid(),
            body: c.body,
            edited_at: c.edited_at,
            created_at: c.created_at,
        }
    }
}

/// An API token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    id: Uuid,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id.into_uuid(),
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A token just issued: the whole token is in `secret`, shown this once.
#[derive(Serialize, ToSchema)]
pub struct IssuedTokenView {
    token: TokenView,
    /// `strata_<id>_<secret>`, for `Authorization: Bearer`.
    secret: String,
}

impl std::fmt::Debug for IssuedTokenView {
    /// Without the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokenView").field("token", &self.token).finish_non_exhaustive()
    }
}

impl From<strata_db::tokens::IssuedToken> for IssuedTokenView {
    fn from(issued: strata_db::tokens::IssuedToken) -> Self {
        use secrecy::ExposeSecret as _;
        Self { token: issued.token.into(), secret: issued.secret.expose_secret().to_owned() }
    }
}

/// A page of a list, and where the next one starts (`?after=` of the next request).
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView<T> {
    items: Vec<T>,
    /// `null` on the last page.
    next: Option<String>,
}

impl<T> PageView<T> {
    /// A page of the data layer's rows as views, the cursor as text.
    pub(crate) fn of<R, C: std::fmt::Display>(page: strata_db::page::Page<R, C>) -> Self
    where
        T: From<R>,
    {
        Self {
            items: page.items.into_iter().map(T::from).collect(),
            next: page.next.map(|c| c.to_string()),
        }
    }
}

/// The answer of the health checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (the process runs) or `ready` (the database answers).
    status: &'static str,
}

impl Health {
    /// `{"status": …}`.
    pub(crate) fn of(status: &'static str) -> Self {
        Self { status }
    }
}
