//! Seed data and connections shared by the data-layer tests.
//!
//! `#[sqlx::test]` hands each test a superuser pool on its own database. A superuser bypasses
//! row-level security, so it is for setup and for raw checks only ([`count`]); tenant data is
//! read and written through a [`strata_db::Pool`] of a least-privilege login role
//! ([`app_pool`], [`relay_pool`]), as a service would.

#![allow(dead_code, reason = "each test file uses a different part")]

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use strata_db::{Error, Pool, PoolSettings};
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

#[allow(unused_imports, reason = "each test file uses a different part")]
pub use strata_test_support::fixture::{new_task, tenant, user};

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
/// migrated with this project's history, which distributes every table there
/// ([`strata_test_support::CitusCluster::migrated`]); the superuser's pool on the coordinator.
pub async fn citus_admin(
    cluster: &strata_test_support::CitusCluster,
    name: &str,
) -> Result<PgPool, strata_test_support::BoxError> {
    let admin = cluster.migrated(name, &strata_db::MIGRATOR).await?;
    let distributed: i64 =
        sqlx::query_scalar("select count(*) from pg_dist_partition").fetch_one(&admin).await?;
    assert_eq!(distributed, 10, "the migrations distribute every table on Citus");
    Ok(admin)
}
