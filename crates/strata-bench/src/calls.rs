//! The data layer's calls that several workloads time: a get by ID, a create, and the get that
//! tracker-service's handler runs, without HTTP.

use std::sync::Arc;

use strata_db::tasks;
use strata_db::{Pool, ProjectId, Scope, TaskId, TenantTx};
use uuid::Uuid;

use crate::stats::Worker;

/// `tasks::get` of one of `ids` in turn, on a connection of `pool`.
pub(crate) struct StrataGet {
    /// The pool the caller acquires from.
    pub(crate) pool: Pool,
    /// The tenant and actor.
    pub(crate) scope: Scope,
    /// The tasks to get, one after the other.
    pub(crate) ids: Arc<Vec<Uuid>>,
}

impl Worker for StrataGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.ids[i as usize % self.ids.len()]);
        let mut conn = self.pool.acquire().await?;
        tasks::get(&mut self.scope.on(&mut conn), id).await?;
        Ok(())
    }
}

/// `tasks::create` (the task, its audit event and its outbox event) in a tenant transaction.
pub(crate) struct StrataCreate {
    /// The pool the caller acquires from.
    pub(crate) pool: Pool,
    /// The tenant and actor.
    pub(crate) scope: Scope,
    /// The projects to create in, one after the other.
    pub(crate) projects: Vec<ProjectId>,
}

impl Worker for StrataCreate {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let title = format!("created {i}");
        let project = self.projects[i as usize % self.projects.len()];
        let new = strata_test_support::fixture::new_task(project, &title);
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        tasks::create(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What tracker-service's handler of a get does, without HTTP: the tenant transaction it opens
/// (`TenantTx::begin`, `tasks::get`, `commit`) and the JSON it writes.
pub(crate) struct DirectGet {
    /// The pool the caller acquires from.
    pub(crate) pool: Pool,
    /// The tenant and actor.
    pub(crate) scope: Scope,
    /// The tasks to get, one after the other.
    pub(crate) ids: Arc<Vec<Uuid>>,
}

impl Worker for DirectGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.ids[i as usize % self.ids.len()]);
        let mut conn = self.pool.acquire().await?;
        let mut tx =
            TenantTx::begin(&mut conn, self.scope.organization_id(), self.scope.actor()).await?;
        let task = tasks::get(&mut tx, id).await?;
        tx.commit().await?;
        anyhow::ensure!(!serde_json::to_vec(&task)?.is_empty());
        Ok(())
    }
}
