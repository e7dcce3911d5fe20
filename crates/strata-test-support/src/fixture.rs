//! The seed data of the data-layer tests, the fault rig and the bench, made through strata-db
//! as a service would: one builder, so that a change to what a tenant needs is made once. (The
//! service's and the end-to-end tests make theirs over HTTP, which is what they test.)

use std::sync::LazyLock;

use strata_db::organizations::{self, NewOrganization, Organization};
use strata_db::projects::{self, NewProject, Project};
use strata_db::tasks::{NewTask, TaskMetadata};
use strata_db::users::{self, NewUser, User};
use strata_db::{Error, PooledConnection, ProjectId, Scope, TaskId, TenantTx};

/// An organization with its owner and one project `OPS`.
#[derive(Debug)]
pub struct Tenant {
    /// The organization.
    pub org: Organization,
    /// Its owner.
    pub owner: User,
    /// The owner acting in it.
    pub scope: Scope,
    /// Its project `OPS`.
    pub project: Project,
}

/// Creates user `<slug>-owner@example.com`, organization `slug` owned by them, and project
/// `OPS`.
///
/// # Errors
/// The data layer's.
pub async fn tenant(conn: &mut PooledConnection, slug: &str) -> Result<Tenant, Error> {
    let email = format!("{slug}-owner@example.com");
    let owner =
        users::create(&mut *conn, &NewUser { email: &email, display_name: "Owner" }).await?;
    let (org, scope) =
        organizations::create_with_owner(conn, &NewOrganization { slug, name: "Tenant" }, owner.id)
            .await?;
    let mut tx = TenantTx::begin(conn, org.id, owner.id).await?;
    let project =
        projects::create(&mut tx, &NewProject { key: "OPS", name: "Operations", description: "" })
            .await?;
    tx.commit().await?;
    Ok(Tenant { org, owner, scope, project })
}

/// A user who is not yet a member of anything.
///
/// # Errors
/// The data layer's.
pub async fn user(conn: &mut PooledConnection, email: &str) -> Result<User, Error> {
    users::create(conn, &NewUser { email, display_name: "Someone" }).await
}

/// Empty metadata, for [`new_task`].
pub static NO_METADATA: LazyLock<TaskMetadata> = LazyLock::new(TaskMetadata::default);

/// A plain new task in `project`.
pub fn new_task(project: ProjectId, title: &str) -> NewTask<'_> {
    NewTask {
        id: TaskId::new(),
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
