//! Typed, layered configuration shared by the strata migration runner, the data layer and the
//! services that import them.
//!
//! Settings are read once, lowest to highest: built-in defaults, a TOML file (`strata.toml` in
//! the working directory, or the path in `STRATA_CONFIG`), environment variables
//! `STRATA_<SECTION>__<KEY>`, and finally the conventional `DATABASE_URL`. Every value is
//! validated at load time; an error names the key, the problem and where the value came from.
//! Secrets (the database URL and password) are [`secrecy::SecretString`]s and never appear in
//! `Debug` output, errors or logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = strata_config::Config::load()?;
//! let options = config.database.connect_options()?; // never log these: they hold the password
//! strata_config::init_tracing(&config.log)?; // in binaries only
//! # Ok(()) }
//! ```
//!
//! See the crate README for the table of every key, its default and its environment variable.

mod database;
mod duration;
mod error;
mod http;
mod load;
mod telemetry;

use std::time::Duration;

use serde::Deserialize;

pub use database::{
    DatabaseConfig, DatabaseUrl, Pooler, ServerSetting, SslMode, is_connection_lost, is_loopback,
    is_outcome_unknown, tls_refusal,
};
pub use error::{ConfigError, Origin, Problem};
pub use http::{AuthConfig, HttpConfig, JwtAlgorithm};
pub use load::Loader;
pub use telemetry::{LogConfig, LogFormat, init_tracing};

/// The whole configuration: one section per concern.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// How to reach PostgreSQL and size the connection pool.
    pub database: DatabaseConfig,
    /// Settings of the migration runner.
    pub migrations: MigrationsConfig,
    /// Logging for binaries.
    pub log: LogConfig,
    /// Where and how an HTTP service listens.
    pub http: HttpConfig,
    /// How an HTTP service authenticates its callers.
    pub auth: AuthConfig,
}

impl Config {
    /// Loads the configuration from the process environment and the working directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a value is malformed, a key is unknown, a named file is missing, or
    /// the settings contradict each other.
    pub fn load() -> Result<Self, ConfigError> {
        Loader::from_process().load()
    }

    /// Every setting as `(key, value)`, in the keys of `strata.toml` (`None`: not set), with
    /// secrets hidden: the URL's password shows as `***`, and `database.password` as `***`
    /// when it is set. For showing the effective configuration (`strata-migrate config`).
    pub fn settings(&self) -> Vec<(&'static str, Option<String>)> {
        let d = &self.database;
        let duration = |value: Duration| Some(humantime::format_duration(value).to_string());
        vec![
            ("database.url", d.url.as_ref().map(DatabaseUrl::redacted)),
            ("database.password", d.password.as_ref().map(|_| "***".to_owned())),
            ("database.max_connections", Some(d.max_connections.to_string())),
            ("database.min_connections", Some(d.min_connections.to_string())),
            ("database.acquire_timeout", duration(d.acquire_timeout)),
            ("database.idle_timeout", duration(d.idle_timeout)),
            ("database.max_lifetime", duration(d.max_lifetime)),
            ("database.statement_timeout", duration(d.statement_timeout)),
            ("database.connect_timeout", duration(d.connect_timeout)),
            ("database.response_timeout", duration(d.response_timeout)),
            ("database.keepalive", duration(d.keepalive)),
            ("database.idle_in_transaction_timeout", duration(d.idle_in_transaction_timeout)),
            ("database.application_name", Some(d.application_name.clone())),
            ("database.ssl_mode", d.ssl_mode.map(|m| m.as_str().to_owned())),
            ("database.ssl_root_cert", d.ssl_root_cert.as_ref().map(|p| p.display().to_string())),
            ("database.pooler", Some(d.pooler.as_str().to_owned())),
            ("database.pooler_prepared_statements", Some(d.pooler_prepared_statements.to_string())),
            (
                "database.replica_urls",
                (!d.replica_urls.is_empty()).then(|| {
                    let urls: Vec<String> =
                        d.replica_urls.iter().map(DatabaseUrl::redacted).collect();
                    urls.join(", ")
                }),
            ),
            ("migrations.url", self.migrations.url.as_ref().map(DatabaseUrl::redacted)),
            ("migrations.lock_timeout", duration(self.migrations.lock_timeout)),
            ("migrations.lock_wait", duration(self.migrations.lock_wait)),
            ("migrations.progress_after", duration(self.migrations.progress_after)),
            ("migrations.development", self.migrations.development.map(|d| d.to_string())),
            (
                "migrations.allow_maintenance_database",
                Some(self.migrations.allow_maintenance_database.to_string()),
            ),
            ("log.format", Some(self.log.format.as_str().to_owned())),
            ("log.filter", Some(self.log.filter.clone())),
            ("http.listen", Some(self.http.listen.to_string())),
            ("http.request_timeout", duration(self.http.request_timeout)),
            ("http.max_body_bytes", Some(self.http.max_body_bytes.to_string())),
            (
                "http.cors_allowed_origins",
                (!self.http.cors_allowed_origins.is_empty())
                    .then(|| self.http.cors_allowed_origins.join(", ")),
            ),
            ("auth.trust_user_header", Some(self.auth.trust_user_header.to_string())),
            ("auth.token_lifetime", duration(self.auth.token_lifetime)),
            ("auth.jwt_issuer", self.auth.jwt_issuer.clone()),
            ("auth.jwt_audience", self.auth.jwt_audience.clone()),
            ("auth.jwt_algorithm", Some(self.auth.jwt_algorithm.as_str().to_owned())),
            ("auth.jwt_secret", self.auth.jwt_secret.as_ref().map(|_| "***".to_owned())),
            (
                "auth.jwt_public_key_file",
                self.auth.jwt_public_key_file.as_ref().map(|p| p.display().to_string()),
            ),
        ]
    }
}

/// Settings of the migration runner (`[migrations]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MigrationsConfig {
    /// The URL the migration runner connects with, when it is not `database.url`: a role that
    /// owns the schema while services connect as one that only uses it, or the server itself
    /// while services go through a pooler. Its password is hidden like `database.url`'s.
    pub url: Option<DatabaseUrl>,
    /// `lock_timeout` set for each migration's transaction: how long one DDL statement may wait
    /// for a table lock held by live traffic before it gives up (and the runner retries).
    #[serde(deserialize_with = "duration::deserialize")]
    pub lock_timeout: Duration,
    /// How long a runner waits for another runner's advisory lock before it gives up.
    #[serde(deserialize_with = "duration::deserialize")]
    pub lock_wait: Duration,
    /// Once a migration's statement has run this long, the runner reports its progress and
    /// what it waits on, then again every this long (at most 5 s).
    #[serde(deserialize_with = "duration::deserialize")]
    pub progress_after: Duration,
    /// Whether the database is a development one, where `redo` may revert and reapply
    /// migrations; unset, a database on a loopback host or a Unix socket is, any other is not.
    pub development: Option<bool>,
    /// Let `up`, `down`, `redo` and `repair` write to a maintenance database (`postgres`,
    /// `template0`, `template1`), which they refuse by default: a URL that names none, or names
    /// it by mistake, would put the schema there.
    pub allow_maintenance_database: bool,
}

impl Default for MigrationsConfig {
    fn default() -> Self {
        Self {
            url: None,
            lock_timeout: Duration::from_secs(5),
            lock_wait: Duration::from_secs(60),
            progress_after: Duration::from_secs(5),
            development: None,
            allow_maintenance_database: false,
        }
    }
}
