//! The runner's binary for these tests, on top of the shared helpers of strata-test-support.

#![allow(dead_code, unused_imports, reason = "each test file uses its own part of the helpers")]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use sqlx::PgPool;

pub use strata_test_support::runner::{
    eventually, runner_session, schema_dump, server_url, temp_dir, text, url_for, url_of,
    write_migrations,
};

/// The `strata-migrate` command, set up as [`migrate`] runs it, for callers that need their
/// own standard streams.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    strata_test_support::runner::command(env!("CARGO_BIN_EXE_strata-migrate"), args, env)
}

/// Runs `strata-migrate` with `args` and extra environment, in an empty working directory
/// and with no inherited configuration.
pub fn migrate(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("run strata-migrate")
}

/// `strata-migrate --database-url URL --source DIR ARGS...` with extra environment.
pub fn migrate_src(url: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let source = dir.to_string_lossy().into_owned();
    let mut all = vec!["--database-url", url, "--source", &source];
    all.extend_from_slice(args);
    migrate(&all, env)
}

/// Starts `strata-migrate` in the background with captured output (see [`migrate`]).
pub fn spawn_migrate(args: &[&str], env: &[(&str, &str)]) -> Child {
    command(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strata-migrate")
}

/// The versions `_sqlx_migrations` records as applied, in order.
pub async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
        .fetch_all(pool)
        .await
}

/// The versions of the migrations embedded in the binary (`strata_db::MIGRATOR`), up files only.
pub fn embedded_versions() -> Vec<i64> {
    strata_db::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect()
}

/// Takes the migration lock of the database at `url` (sqlx's key, as the runner takes it) on
/// a connection of `pool`, as another runner would hold it; returns the connection and the key.
pub async fn hold_migration_lock(
    pool: &PgPool,
    url: &str,
) -> Result<(sqlx::pool::PoolConnection<sqlx::Postgres>, i64), strata_test_support::BoxError> {
    let mut holder = pool.acquire().await?;
    let mut config = strata_config::DatabaseConfig::default();
    config.url = Some(strata_config::DatabaseUrl::new(url));
    let session = strata_migrate::Session::connect(&config).await?;
    let key = session.lock_key();
    session.close().await;
    sqlx::query("select pg_advisory_lock($1)").bind(key).execute(&mut *holder).await?;
    Ok((holder, key))
}

/// Whether relation `name` exists.
pub async fn has_table(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select to_regclass($1) is not null").bind(name).fetch_one(pool).await
}

/// A runner started in the background, killed and reaped if the test ends before it does.
pub struct Running(Option<Child>);

impl Running {
    /// Starts `strata-migrate` with `args` (see [`spawn_migrate`]).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self(Some(spawn_migrate(args, env)))
    }

    /// Wraps a started child.
    pub fn of(child: Child) -> Self {
        Self(Some(child))
    }

    /// Sends it `signal` (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let Some(child) = &self.0 else { return Ok(()) };
        let status = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status()?;
        if status.success() { Ok(()) } else { Err(std::io::Error::other("kill failed")) }
    }

    /// Waits for it to end, off the async runtime's threads; its output.
    pub async fn output(mut self) -> std::io::Result<Output> {
        let child = self.0.take().ok_or_else(|| std::io::Error::other("already waited"))?;
        tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(std::io::Error::other)?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            drop(child.kill());
            drop(child.wait());
        }
    }
}
