//! The server the bench measures on: databases made afresh and migrated, and the pools that
//! strata-config's settings build (the data layer's own, and sqlx's stock one).

use sqlx::PgPool;
use strata_config::{DatabaseConfig, DatabaseUrl, SslMode};
use strata_db::Pool;

/// The URL of database `name` on the server of `server`.
pub(crate) fn url_with_db(server: &str, name: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) => {
            url.set_path(name);
            url.to_string()
        }
        Err(_) => server.to_owned(),
    }
}

/// Drops and recreates database `name`, migrated; returns its URL.
pub(crate) async fn fresh_database(
    server: &str,
    name: &str,
    migrate: bool,
) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&url_with_db(server, "postgres")).await?;
    let drop = format!("drop database if exists {name} with (force)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await?;
    let create = format!("create database {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await?;
    let url = url_with_db(server, name);
    if migrate {
        migrate_database(&url).await?;
    }
    Ok(url)
}

/// Applies this project's migrations to the database at `url`.
pub(crate) async fn migrate_database(url: &str) -> anyhow::Result<()> {
    let config = database_config(url, 2);
    let mut session = strata_migrate::Session::connect(&config).await?;
    let options =
        strata_migrate::UpOptions::from_config(&strata_config::Config::default().migrations);
    session.up(&strata_db::MIGRATOR, &options).await?;
    session.close().await;
    Ok(())
}

/// strata-config's settings for a pool of `max` connections to `url`, without TLS.
fn database_config(url: &str, max: u32) -> DatabaseConfig {
    let mut config = DatabaseConfig::default();
    config.url = Some(DatabaseUrl::new(url));
    config.max_connections = max;
    config.min_connections = max;
    // The peers connect with `NoTls`; without this, sqlx's `prefer` would encrypt every
    // message on a server that has TLS on, and the ratio would measure rustls.
    config.ssl_mode = Some(SslMode::Disable);
    config
}

/// The data layer's own pool, as a service builds it from strata-config.
pub(crate) fn strata_pool(url: &str, size: u32) -> anyhow::Result<Pool> {
    Ok(Pool::from_config(&database_config(url, size))?)
}

/// sqlx's stock pool with strata-config's settings, to show what the own pool saves.
pub(crate) async fn stock_pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let config = database_config(url, size);
    let options = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout);
    Ok(options.connect_with(config.connect_options()?).await?)
}
