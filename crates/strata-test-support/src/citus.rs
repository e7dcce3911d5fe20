//! [`CitusCluster`]: a distributed PostgreSQL of the test's own, a coordinator and two
//! workers.

use crate::{HarnessError, PrivateCluster};

/// The settings every node starts with: Citus loaded, and prepared transactions for its
/// two-phase commits (a write to a reference table reaches every node).
const NODE_SETTINGS: &[(&str, &str)] = &[
    ("shared_preload_libraries", "citus"),
    ("max_prepared_transactions", "100"),
    ("max_connections", "200"),
    // Four shards per distributed table instead of 32: the same routing, less to create.
    ("citus.shard_count", "4"),
];

/// A Citus cluster: a coordinator and two workers, each a [`PrivateCluster`] (own directory,
/// own port, stopped and deleted when dropped, also when the test fails).
///
/// Citus does not send `CREATE DATABASE` to the workers: [`create_database`] makes the
/// database and the extension on every node and adds the workers to the coordinator.
///
/// [`create_database`]: Self::create_database
#[derive(Debug)]
pub struct CitusCluster {
    // Workers first: dropped before the coordinator, which would otherwise retry them.
    workers: Vec<PrivateCluster>,
    coordinator: PrivateCluster,
}

impl CitusCluster {
    /// Starts the coordinator and two workers, with `citus` preloaded.
    ///
    /// # Errors
    /// [`HarnessError::CitusNotInstalled`] when the server cannot load Citus
    /// (`scripts/citus.sh installed` installs it), else as [`PrivateCluster::start`].
    pub fn start() -> Result<Self, HarnessError> {
        let start = || {
            PrivateCluster::start_with(NODE_SETTINGS).map_err(|error| {
                let text = error.to_string();
                if text.contains("citus") && text.contains("could not access file") {
                    HarnessError::CitusNotInstalled
                } else {
                    error
                }
            })
        };
        let coordinator = start()?;
        let workers = vec![start()?, start()?];
        Ok(Self { workers, coordinator })
    }

    /// Creates `database` on every node with the `citus` extension, registers the coordinator
    /// and adds the workers; returns the coordinator's URL for it (superuser, `sslmode=disable`:
    /// Citus gives each node a self-signed X.509 v1 certificate, which rustls refuses).
    ///
    /// # Errors
    /// When a statement fails (psql's message).
    pub fn create_database(&self, database: &str) -> Result<String, HarnessError> {
        for node in self.nodes() {
            node.psql("postgres", &format!("create database {database}"))?;
            node.psql(database, "set client_min_messages = warning; create extension citus")?;
        }
        let mut setup =
            format!("select citus_set_coordinator_host('127.0.0.1', {});", self.coordinator.port());
        for worker in &self.workers {
            setup.push_str(&format!("select citus_add_node('127.0.0.1', {});", worker.port()));
        }
        self.coordinator.psql(database, &setup)?;
        Ok(format!("{}?sslmode=disable", self.coordinator.url(database)))
    }

    /// The coordinator, where clients connect.
    pub fn coordinator(&self) -> &PrivateCluster {
        &self.coordinator
    }

    /// The workers, which hold the shards.
    pub fn workers(&self) -> &[PrivateCluster] {
        &self.workers
    }

    /// The worker that holds the shard of distributed `table` (in `database`) where the
    /// distribution column is `key`: the node to stop to take a tenant's rows away.
    ///
    /// # Errors
    /// When psql fails (a table that is not distributed, say), or the shard is on no worker.
    pub fn worker_holding(
        &self,
        database: &str,
        table: &str,
        key: &str,
    ) -> Result<&PrivateCluster, HarnessError> {
        // Test setup: the table and the key are the test's own constants and ids.
        let port = self.coordinator.psql(
            database,
            &format!(
                "select nodeport from citus_shards
                  where table_name = '{table}'::regclass
                    and shardid = get_shard_id_for_distribution_column('{table}', '{key}')"
            ),
        )?;
        let port = port.parse::<u16>().ok();
        self.workers.iter().find(|w| Some(w.port()) == port).ok_or_else(|| {
            HarnessError::ShardNotOnAWorker { table: table.to_owned(), key: key.to_owned(), port }
        })
    }

    /// Database `name` on every node ([`create_database`](Self::create_database)), migrated
    /// with `migrator`, which must leave no table of its own local: each is distributed or a
    /// reference table. The superuser's pool on the coordinator, for setup, as
    /// `#[sqlx::test]` hands one on a single server.
    ///
    /// # Errors
    /// The database's creation, the migrations', or the tables they left local, named.
    pub async fn migrated(
        &self,
        name: &str,
        migrator: &sqlx::migrate::Migrator,
    ) -> Result<sqlx::PgPool, crate::BoxError> {
        let admin = connect(&self.create_database(name)?).await?;
        migrator.run(&admin).await?;
        let local: Option<String> = sqlx::query_scalar(
            "select string_agg(t.tablename, ', ') from pg_tables t
              where t.schemaname = 'public' and t.tablename <> '_sqlx_migrations'
                and not exists (select from pg_dist_partition p
                                 where p.logicalrelid = format('%I.%I', t.schemaname, t.tablename)::regclass)",
        )
        .fetch_one(&admin)
        .await?;
        match local {
            Some(tables) => {
                Err(format!("the migrations left tables local on Citus: {tables}").into())
            }
            None => Ok(admin),
        }
    }

    fn nodes(&self) -> impl Iterator<Item = &PrivateCluster> {
        std::iter::once(&self.coordinator).chain(&self.workers)
    }
}

/// A superuser's pool of 8 on `url`.
async fn connect(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(url).await
}

/// A scenario written for a single server's test database (its superuser's pool), to run
/// again on Citus with [`each_on_citus`]; [`scenarios!`](crate::scenarios) makes a list.
pub type Scenario =
    fn(sqlx::PgPool) -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::TestResult>>>;

/// Runs each scenario on a fresh [`CitusCluster`], one after the other, each on a database of
/// its own, migrated with `migrator` when given (which distributes the tables); a failure
/// names its scenario.
///
/// # Errors
/// The cluster's start, the database's setup, or the first failing scenario's, named.
pub async fn each_on_citus(
    scenarios: &[(&str, Scenario)],
    migrator: Option<&sqlx::migrate::Migrator>,
) -> crate::TestResult {
    let cluster = CitusCluster::start()?;
    for (i, (name, scenario)) in scenarios.iter().enumerate() {
        let database = format!("scenario_{i}");
        let admin = match migrator {
            Some(migrator) => cluster.migrated(&database, migrator).await?,
            None => connect(&cluster.create_database(&database)?).await?,
        };
        scenario(admin).await.map_err(|error| format!("{name}: {error}"))?;
    }
    Ok(())
}

/// The [`Scenario`]s `(name, function)` of async functions that take a superuser's pool,
/// for [`each_on_citus`]: `scenarios![check_that_a, check_that_b]`.
#[macro_export]
macro_rules! scenarios {
    ($($check:ident),+ $(,)?) => {
        [$((
            stringify!($check),
            (|admin| Box::pin($check(admin))) as $crate::citus::Scenario,
        )),+]
    };
}
