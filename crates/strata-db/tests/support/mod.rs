//! Seed data shared by the data-layer tests.

#![allow(dead_code, reason = "each test file uses a different part")]

use sqlx::PgConnection;
use strata_db::organizations::{self, NewOrganization, Organization};
use strata_db::projects::{self, NewProject, Project};
use strata_db::tasks::{NewTask, TaskMetadata};
use strata_db::users::{self, NewUser, User};
use strata_db::{Error, ProjectId, Scope};

/// An organization with its owner and one project `OPS`.
pub struct Tenant {
    pub org: Organization,
    pub owner: User,
    pub scope: Scope,
    pub project: Project,
}

/// Creates user `<slug>-owner@example.com`, organization `slug` owned by them, and project OPS.
pub async fn tenant(conn: &mut PgConnection, slug: &str) -> Result<Tenant, Error> {
    let email = format!("{slug}-owner@example.com");
    let owner =
        users::create(&mut *conn, &NewUser { email: &email, display_name: "Owner" }).await?;
    let (org, scope) =
        organizations::create_with_owner(conn, &NewOrganization { slug, name: "Tenant" }, owner.id)
            .await?;
    let mut tx = scope.begin(conn).await?;
    let project = projects::create(
        &mut tx,
        &scope,
        &NewProject { key: "OPS", name: "Operations", description: "" },
    )
    .await?;
    tx.commit().await?;
    Ok(Tenant { org, owner, scope, project })
}

/// A user who is not yet a member of anything.
pub async fn user(conn: &mut PgConnection, email: &str) -> Result<User, Error> {
    users::create(conn, &NewUser { email, display_name: "Someone" }).await
}

pub static NO_METADATA: std::sync::LazyLock<TaskMetadata> =
    std::sync::LazyLock::new(TaskMetadata::default);

/// A plain new task in `project`.
pub fn new_task(project: ProjectId, title: &str) -> NewTask<'_> {
    NewTask {
        project_id: project,
        title,
        description: "",
        priority: 2,
        assignee_id: None,
        labels: &[],
        metadata: &NO_METADATA,
        due_on: None,
    }
}

/// How many rows `table` holds, read as the superuser (no RLS).
pub async fn count(conn: &mut PgConnection, sql_table: &str) -> i64 {
    let sql = format!("select count(*) from {sql_table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await.unwrap_or(-1)
}
