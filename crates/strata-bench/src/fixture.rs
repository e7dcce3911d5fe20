//! The bench's seed data: one organization owned by one user, with one project of tasks, and
//! the task IDs to look them up by in random order; and an API token for that owner.

use std::sync::Arc;

use strata_db::tasks::{self, ImportTask};
use strata_db::{Pool, ProjectId, Scope};
use strata_test_support::fixture::{self, Tenant};
use uuid::Uuid;

use crate::database::{fresh_database, strata_pool};

/// The bench database: a project of 10,000 tasks in one organization.
pub(crate) struct Fixture {
    /// The database's URL.
    pub(crate) url: String,
    /// The organization's owner, in the organization.
    pub(crate) scope: Scope,
    /// The project that holds the tasks.
    pub(crate) project: ProjectId,
    /// Every task's ID, shuffled.
    pub(crate) ids: Arc<Vec<Uuid>>,
}

/// The fixture of workloads 1–4, 6, 7 and 12: database `strata_bench`, 10,000 tasks.
pub(crate) async fn fixture(server: &str) -> anyhow::Result<Fixture> {
    fixture_of(server, "strata_bench", 10_000).await
}

/// A fixture of 200 tasks in database `name`, for the bench's own tests.
#[cfg(test)]
pub(crate) async fn small_fixture(server: &str, name: &str) -> anyhow::Result<Fixture> {
    fixture_of(server, name, 200).await
}

/// Database `name`, recreated and migrated, with one project of `tasks` tasks.
pub(crate) async fn fixture_of(server: &str, name: &str, tasks: usize) -> anyhow::Result<Fixture> {
    fixture_in(fresh_database(server, name, true).await?, tasks).await
}

/// One organization with one project of `tasks` tasks, in the migrated database at `url`.
pub(crate) async fn fixture_in(url: String, tasks: usize) -> anyhow::Result<Fixture> {
    let pool = strata_pool(&url, 2)?;
    let mut conn = pool.acquire().await?;
    let Tenant { scope, project, .. } = fixture::tenant(&mut conn, "bench").await?;
    let mut tx = scope.begin(&mut conn).await?;
    let rows = (0..tasks).map(|i| ImportTask {
        title: format!("Task number {i} with a realistic title"),
        description: "Some description text that a task would carry around.".repeat(2),
        priority: (i % 5) as i16,
        labels: vec!["bench".to_owned(), format!("l{}", i % 7)],
        ..ImportTask::default()
    });
    tasks::import(&mut tx, project.id, rows).await?;
    tx.commit().await?;
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select id from tasks order by random()").fetch_all(&mut conn).await?;
    drop(conn);
    pool.close().await;
    Ok(Fixture { url, scope, project: project.id, ids: Arc::new(ids) })
}

/// An API token for the fixture's actor, as `tracker-service issue-token` issues it.
pub(crate) async fn issue_token(pool: &Pool, scope: Scope) -> anyhow::Result<String> {
    use secrecy::ExposeSecret as _;
    let mut conn = pool.acquire().await?;
    let new = strata_db::tokens::NewApiToken {
        user: scope.actor(),
        name: "bench",
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::DAY,
    };
    let issued = strata_db::tokens::issue(&mut conn, &new).await?;
    Ok(issued.secret.expose_secret().to_owned())
}
