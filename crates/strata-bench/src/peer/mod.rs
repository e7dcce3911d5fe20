//! The peers: the driver alone (tokio-postgres, deadpool-postgres) running what the data layer
//! runs, connected without TLS as the data layer's pools are, so that a ratio is what the data
//! layer costs over the driver.

pub(crate) mod same_create;
pub(crate) mod task;

use std::sync::Arc;

use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use crate::stats::Worker;
use task::PeerTask;

/// A tokio-postgres connection to `url`, its connection task spawned.
pub(crate) async fn peer_client(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A deadpool-postgres pool of `size` connections to `url`.
pub(crate) fn deadpool(url: &str, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    Ok(deadpool_postgres::Pool::builder(manager).max_size(size).build()?)
}

/// A get by ID through deadpool-postgres: `sql` (one of [`task`]'s statements), prepared and
/// cached per connection, every column decoded.
pub(crate) struct DeadpoolGet {
    /// The pool the caller takes a client from.
    pub(crate) pool: deadpool_postgres::Pool,
    /// The statement, taking the organization and the task's ID.
    pub(crate) sql: &'static str,
    /// The organization.
    pub(crate) org: Uuid,
    /// The tasks to get, one after the other.
    pub(crate) ids: Arc<Vec<Uuid>>,
}

impl Worker for DeadpoolGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = self.ids[i as usize % self.ids.len()];
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(self.sql).await?;
        let row = client.query_one(&statement, &[&self.org, &id]).await?;
        PeerTask::from_row(&row)?;
        Ok(())
    }
}
