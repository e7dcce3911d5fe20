//! Seed data and connections shared by the data-layer tests.
//!
//! `#[sqlx::test]` hands each test a superuser pool on its own database. A superuser bypasses
//! row-level security, so it is for setup and for raw checks only ([`count`]); tenant data is
//! read and written through a [`strata_db::Pool`] of a least-privilege login role
//! ([`app_pool`], [`relay_pool`]), as a service would.

#![allow(dead_code, reason = "each test file uses a different part")]

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use strata_db::organizations::{self, NewOrganization, Organization};
use strata_db::projects::{self, NewProject, Project};
use strata_db::tasks::{NewTask, TaskMetadata};
use strata_db::users::{self, NewUser, User};
use strata_db::{Error, Pool, PoolSettings, PooledConnection, ProjectId, Scope, TaskId, TenantTx};
use strata_test_support::{APP_ROLE, RELAY_ROLE, login_role_options};

/// Connect options for the test's database as the application's role (`strata_app`: no
/// superuser, no `BYPASSRLS`).
pub async fn app_options(admin: &PgPool) -> Result<PgConnectOptions, Error> {
    Ok(login_role_options(admin, APP_ROLE).await?)
}

/// A pool of the test's database as the application's role, with default settings.
pub async fn app_pool(admin: &PgPool) -> Result<Pool, Error> {
    Pool::new(app_options(admin).await?, PoolSettings::default())
}

/// A pool of the test's database as the outbox relay's role (`strata_relay`).
pub async fn relay_pool(admin: &PgPool) -> Result<Pool, Error> {
    Pool::new(login_role_options(admin, RELAY_ROLE).await?, PoolSettings::default())
}

/// An organization with its owner and one project `OPS`.
pub struct Tenant {
    pub org: Organization,
    pub owner: User,
    pub scope: Scope,
    pub project: Project,
}

/// Creates user `<slug>-owner@example.com`, organization `slug` owned by them, and project OPS.
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
pub async fn user(conn: &mut PooledConnection, email: &str) -> Result<User, Error> {
    users::create(conn, &NewUser { email, display_name: "Someone" }).await
}

pub static NO_METADATA: std::sync::LazyLock<TaskMetadata> =
    std::sync::LazyLock::new(TaskMetadata::default);

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

/// How many rows `sql_table` holds, read through the superuser pool (no RLS).
///
/// # Errors
/// The query's: a count that could not be read fails the test, never compares equal.
pub async fn count(admin: &PgPool, sql_table: &str) -> Result<i64, sqlx::Error> {
    let sql = format!("select count(*) from {sql_table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(admin).await
}

/// Trials of each race on Citus, where every transaction crosses nodes: fewer than on one
/// server, the same assertions.
pub const CITUS_TRIALS: usize = 8;

/// Database `name` on `cluster` (a Citus coordinator and two workers of the test's own),
/// migrated with this project's history, which distributes the tables there; the superuser's
/// pool on the coordinator, for setup, as `#[sqlx::test]` hands one on a single server.
pub async fn citus_admin(
    cluster: &strata_test_support::CitusCluster,
    name: &str,
) -> Result<PgPool, Box<dyn std::error::Error>> {
    let url = cluster.create_database(name)?;
    let admin = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&url).await?;
    strata_db::MIGRATOR.run(&admin).await?;
    let distributed: i64 =
        sqlx::query_scalar("select count(*) from pg_dist_partition").fetch_one(&admin).await?;
    assert_eq!(distributed, 10, "the migrations distribute every table on Citus");
    Ok(admin)
}
