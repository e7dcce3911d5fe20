//! A database of its own for one command (`verify`, `diff`), on the server the configuration
//! names, dropped when the command ends: on success, on failure, and when the command's future
//! is dropped half-way (a command line that stops it on Ctrl-C). The library listens to no
//! signal: stopping is the caller's, cleaning up is this module's.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use strata_config::{Config, DatabaseUrl};

use crate::error::MigrateError;
use crate::runner::options::APPLICATION_NAME;
use crate::runner::session::runner_database;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `work` with the configuration of a new, empty database `strata_<purpose>_<pid>_<n>`
/// on the configured server, then drops that database whatever happened (`with (force)`): also
/// when the returned future is dropped before it completes (a caller that stops the command on
/// Ctrl-C), then from a thread of its own.
///
/// # Errors
///
/// [`MigrateError::Database`] when the database cannot be created (the role needs
/// `CREATEDB`), and `work`'s error.
pub async fn with_scratch<T, E: From<MigrateError>>(
    config: &Config,
    purpose: &str,
    work: impl AsyncFnOnce(&Config) -> Result<T, E>,
) -> Result<T, E> {
    let database = runner_database(config);
    let url = database.url.as_ref();
    let url = url.ok_or(MigrateError::Config(strata_config::ConfigError::MissingUrl))?;
    let mut parsed = url::Url::parse(url.expose()).map_err(|e| MigrateError::Invalid {
        message: format!("the database URL does not parse: {e}"),
    })?;
    let name =
        format!("strata_{purpose}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    parsed.set_path(&name);
    // Nothing on a scratch database needs to survive a crash: its commits do not wait for the
    // WAL to reach the disk. Replaying a history of 167 files (a commit each) took about
    // 180 ms less this way, on this machine's disk.
    let options = match parsed.query_pairs().find(|(key, _)| key == "options") {
        Some((_, given)) => format!("{given} -c synchronous_commit=off"),
        None => "-c synchronous_commit=off".to_owned(),
    };
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != "options")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(others).append_pair("options", &options);
    let mut scratch = config.clone();
    scratch.migrations.url = Some(DatabaseUrl::new(parsed.as_str()));
    let options =
        database.connect_options_without_timeout(APPLICATION_NAME).map_err(MigrateError::from)?;
    let mut admin = PgConnection::connect_with(&options)
        .await
        .map_err(MigrateError::db("connecting to create a scratch database"))?;
    // On a Citus coordinator, the scratch database is a Citus database too (see `as_citus`).
    let citus: bool =
        sqlx::query_scalar("select exists (select from pg_extension where extname = 'citus')")
            .fetch_one(&mut admin)
            .await
            .map_err(MigrateError::db("asking whether the server is a Citus coordinator"))?;
    // The guard first: a future dropped while the server creates the database drops it too.
    let mut guard = Scratch { options: options.clone(), name: name.clone(), dropped: false };
    let created = sqlx::raw_sql(AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .map_err(MigrateError::db("creating a scratch database (the role needs CREATEDB)"));
    if let Err(error) = created {
        guard.dropped = true;
        return Err(error.into());
    }
    tracing::info!(database = %name, "created a scratch database");
    let result = async {
        if citus {
            as_citus(&options, &name).await?;
        }
        work(&scratch).await
    }
    .await;
    let dropped = drop_database(&mut admin, &name).await;
    guard.dropped = true;
    let _ = admin.close().await;
    report_drop(&name, dropped);
    result
}

/// A scratch database not yet dropped: dropping this guard (the future of [`with_scratch`]
/// dropped half-way) drops the database from a thread of its own, which it waits for, since a
/// destructor cannot wait on the caller's runtime.
struct Scratch {
    options: sqlx::postgres::PgConnectOptions,
    name: String,
    dropped: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (options, name) = (self.options.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let runtime = runtime.map_err(sqlx::Error::Io)?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect_with(&options).await?;
                let dropped = drop_database(&mut admin, &name).await;
                let _ = admin.close().await;
                dropped
            })
        });
        match cleanup.join() {
            Ok(dropped) => report_drop(&self.name, dropped),
            Err(_) => tracing::warn!(database = %self.name, "could not drop the scratch database"),
        }
    }
}

/// `drop database NAME with (force)`, on `admin`.
async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(format!("drop database if exists {name} with (force)")))
        .execute(admin)
        .await
        .map(drop)
}

/// Logs whether the scratch database `name` was dropped.
fn report_drop(name: &str, dropped: Result<(), sqlx::Error>) {
    match dropped {
        Ok(()) => tracing::info!(database = %name, "dropped the scratch database"),
        Err(error) => {
            tracing::warn!(database = %name, %error, "could not drop the scratch database")
        }
    }
}

/// Makes scratch database `name` a Citus database of one node, the coordinator itself, which
/// also holds the shards: a history then replays there as it did on the target (its Citus
/// steps distribute the tables), so `verify`, `diff` and `generate` compare like with like.
/// Citus hides the shards from the catalog reads, as it does on the target.
async fn as_citus(
    options: &sqlx::postgres::PgConnectOptions,
    name: &str,
) -> Result<(), MigrateError> {
    let error = || MigrateError::db("making the scratch database a Citus database of one node");
    let mut conn = PgConnection::connect_with(&options.clone().database(name))
        .await
        .map_err(MigrateError::db("connecting to the scratch database"))?;
    let (host, port) = (options.get_host().to_owned(), i32::from(options.get_port()));
    sqlx::raw_sql("set client_min_messages = warning; create extension citus")
        .execute(&mut conn)
        .await
        .map_err(error())?;
    sqlx::query(
        "select citus_set_coordinator_host($1, $2),
                citus_set_node_property($1, $2, 'shouldhaveshards', true)",
    )
    .bind(&host)
    .bind(port)
    .execute(&mut conn)
    .await
    .map_err(error())?;
    let _ = conn.close().await;
    Ok(())
}
