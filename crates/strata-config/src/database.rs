//! `[database]`: the URL, TLS, the pool, and the connect options built from them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::{ConfigError, duration};

/// A PostgreSQL URL that may hold a password: its `Debug` and `Display` show `***` in place of
/// the password, and only [`DatabaseUrl::expose`] gives the real text.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL with its password, for handing to a driver. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with the password (and any `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(self.expose())
    }

    /// The scheme before `://`, if any.
    pub(crate) fn scheme(&self) -> Option<&str> {
        self.expose().split_once("://").map(|(scheme, _)| scheme)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host/...` and of a `password=` query
/// parameter with `***`. Everything before the last `@` counts as user information, so a
/// password with an unencoded `/`, `?`, `#` or `@` is hidden too.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (authority_prefix, rest) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _password)) => (format!("{user}:***@"), after),
            None => (format!("{userinfo}@"), after),
        },
        None => (String::new(), rest),
    };
    let tail = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{scheme}://{authority_prefix}{tail}")
}

/// `text` with the password of every URL in it, and every `password=` value, replaced by
/// `***`: for messages that quote a value given under a key that is not secret (a URL put in
/// the wrong variable is still a secret).
pub(crate) fn hide_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |out: &mut String, token: &mut String| {
        if token.contains("://") {
            out.push_str(&redact_url(token));
        } else if let Some(key) = token.get(..9).filter(|k| k.eq_ignore_ascii_case("password=")) {
            out.push_str(key);
            out.push_str("***");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | '(' | ')') {
            flush(&mut out, &mut token);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut out, &mut token);
    out
}

/// TLS modes, as libpq names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Try plaintext first, then TLS.
    Allow,
    /// Try TLS, fall back to plaintext silently (libpq's and sqlx's default).
    #[default]
    Prefer,
    /// Require TLS, but do not check the certificate.
    Require,
    /// Require TLS and a certificate signed by a trusted CA.
    VerifyCa,
    /// Require TLS, a trusted certificate, and a host name that matches it.
    VerifyFull,
}

impl SslMode {
    /// The name as written in the configuration (`verify-full` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl From<SslMode> for PgSslMode {
    fn from(mode: SslMode) -> Self {
        match mode {
            SslMode::Disable => Self::Disable,
            SslMode::Allow => Self::Allow,
            SslMode::Prefer => Self::Prefer,
            SslMode::Require => Self::Require,
            SslMode::VerifyCa => Self::VerifyCa,
            SslMode::VerifyFull => Self::VerifyFull,
        }
    }
}

/// What sits between the service and PostgreSQL (`database.pooler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooler {
    /// Nothing: `database.url` is the server.
    #[default]
    None,
    /// PgBouncer (or another pooler) in session mode: one server connection per client
    /// connection, so everything works as on the server. Poolers refuse or drop start-up
    /// parameters, so strata-db sends `statement_timeout` and
    /// `idle_in_transaction_session_timeout` with `SET` once a connection is open.
    Session,
    /// PgBouncer in transaction mode: a client connection gets a server connection for one
    /// transaction only. strata-db then names no prepared statement and runs every statement
    /// inside a transaction, whose `BEGIN` carries `statement_timeout` and
    /// `idle_in_transaction_session_timeout` as `SET LOCAL` (a session's `SET` would land on
    /// whichever server connection the pooler picked, and stay there for other clients); the
    /// migration runner needs `migrations.url` (its advisory lock needs a session).
    Transaction,
}

impl Pooler {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// `idle_in_transaction_session_timeout`, by its server name.
const IDLE_IN_TRANSACTION: &str = "idle_in_transaction_session_timeout";

/// A server setting that every connection of the data layer must have
/// ([`DatabaseConfig::server_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSetting {
    /// The server's name for it (`statement_timeout`).
    pub name: &'static str,
    /// The configuration key it comes from (`database.statement_timeout`).
    pub key: &'static str,
    /// Its value in milliseconds, the server's unit for both settings (as `pg_settings.setting`
    /// shows it).
    pub millis: u128,
}

impl ServerSetting {
    /// `statement_timeout` and `idle_in_transaction_session_timeout` at these values, leaving
    /// out those at zero (the server's own then holds).
    pub fn of(statement_timeout: Duration, idle_in_transaction_timeout: Duration) -> Vec<Self> {
        [
            ("statement_timeout", "database.statement_timeout", statement_timeout),
            (
                IDLE_IN_TRANSACTION,
                "database.idle_in_transaction_timeout",
                idle_in_transaction_timeout,
            ),
        ]
        .into_iter()
        .filter(|(.., value)| !value.is_zero())
        .map(|(name, key, value)| Self { name, key, millis: value.as_millis() })
        .collect()
    }
}

/// `[database]`: where PostgreSQL is and how to pool connections to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DatabaseConfig {
    /// `postgres://` or `postgresql://` URL; `DATABASE_URL` sets it too.
    pub url: Option<DatabaseUrl>,
    /// A password that overrides the URL's, so the URL can be kept free of it.
    pub password: Option<SecretString>,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle.
    pub min_connections: u32,
    /// How long a caller waits for a pooled connection.
    #[serde(deserialize_with = "duration::deserialize")]
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` close after this; `0s` keeps them.
    #[serde(deserialize_with = "duration::deserialize")]
    pub idle_timeout: Duration,
    /// A connection is replaced after this age; `0s` keeps it for ever.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_lifetime: Duration,
    /// `statement_timeout` of every connection; `0s` disables it.
    #[serde(deserialize_with = "duration::deserialize")]
    pub statement_timeout: Duration,
    /// How long opening one connection (TCP, TLS and start-up) may take; `0s` waits for ever.
    #[serde(deserialize_with = "duration::deserialize")]
    pub connect_timeout: Duration,
    /// How long the client waits for the server's answer to one statement before it gives up
    /// on the connection (a server that stopped answering, a network that drops everything);
    /// `0s` waits for ever. Longer than `statement_timeout`, which the server enforces itself.
    #[serde(deserialize_with = "duration::deserialize")]
    pub response_timeout: Duration,
    /// How long a connection may stay silent before the server probes it with TCP keepalives
    /// (3 probes, `keepalive / 3` apart), and how long data the server sends may stay
    /// unacknowledged (`tcp_user_timeout`): the server then closes the session, rolling back its
    /// transaction and freeing its locks, within about twice this of a client that vanished.
    /// `0s` keeps the server's settings (Linux's default is over two hours).
    #[serde(deserialize_with = "duration::deserialize")]
    pub keepalive: Duration,
    /// How long a session may sit idle inside a transaction before the server ends it,
    /// rolling the transaction back and freeing its locks (the migration runner's advisory
    /// lock too): a client that hung, or lost its network, mid-transaction. `0s` never.
    #[serde(deserialize_with = "duration::deserialize")]
    pub idle_in_transaction_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity`.
    pub application_name: String,
    /// TLS mode; `None` keeps the URL's `sslmode` (the driver's `prefer` when it has none).
    pub ssl_mode: Option<SslMode>,
    /// A CA certificate (PEM) for `verify-ca` and `verify-full`.
    pub ssl_root_cert: Option<PathBuf>,
    /// What sits between the service and the server ([`Pooler`]).
    pub pooler: Pooler,
    /// The transaction-mode pooler keeps protocol-level prepared statements across
    /// transactions (PgBouncer 1.21 or later with `max_prepared_statements` above 0): strata-db
    /// then names and caches its statements again, and runs a bare statement without a
    /// transaction of its own. Only with `pooler = "transaction"`.
    pub pooler_prepared_statements: bool,
    /// Streaming replicas of the server, for reads that tolerate lag (`strata_db::ReadPool`);
    /// every other key of `[database]` applies to them too. Passwords hidden like `url`'s.
    pub replica_urls: Vec<DatabaseUrl>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            password: None,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(1800),
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(35),
            keepalive: Duration::from_secs(30),
            idle_in_transaction_timeout: Duration::from_secs(60),
            application_name: "strata".to_owned(),
            ssl_mode: None,
            ssl_root_cert: None,
            pooler: Pooler::None,
            pooler_prepared_statements: false,
            replica_urls: Vec::new(),
        }
    }
}

impl DatabaseConfig {
    /// Connect options built from the fields: URL, password, TLS, application name and, with
    /// no pooler in front ([`Pooler::None`]), the statement timeout and the session settings
    /// sent as start-up parameters, so every connection has them at no cost. Through a pooler
    /// no start-up parameter is sent (PgBouncer refuses `options`, or drops it when told to
    /// ignore it): the data layer sets [`DatabaseConfig::server_settings`] after connecting.
    ///
    /// Logs a warning when a host that is not loopback is used without `verify-full`.
    /// Never log the result: sqlx's `Debug` of it shows the password.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingUrl`] when no URL is configured, [`ConfigError::Invalid`] when the
    /// URL does not parse.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        let mut options = self.base_connect_options()?;
        if self.pooler == Pooler::Transaction && !self.pooler_prepared_statements {
            // Named statements outlive a transaction, and another client's would collide
            // with them on the server connection they share, unless the pooler keeps them.
            options = options.statement_cache_capacity(0);
        }
        if self.pooler == Pooler::None {
            let mut settings: Vec<_> = self
                .server_settings()
                .into_iter()
                .filter(|s| s.name != IDLE_IN_TRANSACTION)
                .map(|s| (s.name, s.millis.to_string()))
                .collect();
            settings.extend(self.session_settings());
            if !settings.is_empty() {
                options = options.options(settings);
            }
        }
        Ok(options)
    }

    /// The settings that must hold on the server for every connection of the data layer, with
    /// the keys they come from: `statement_timeout` and `idle_in_transaction_session_timeout`
    /// (those set to `0s` keep the server's own). The data layer checks them on every new
    /// connection, whatever the pooler, so a pooler that dropped one is an error, not a silent
    /// default.
    pub fn server_settings(&self) -> Vec<ServerSetting> {
        ServerSetting::of(self.statement_timeout, self.idle_in_transaction_timeout)
    }

    /// The server settings that end the session of a client that vanished or hung: TCP
    /// keepalives that notice a vanished client within about twice `keepalive`, and
    /// `idle_in_transaction_timeout`. Sent as start-up parameters, so they cost no round trip.
    fn session_settings(&self) -> Vec<(&'static str, String)> {
        if self.pooler != Pooler::None {
            // A pooler holds the server connections: the settings would be refused, or apply
            // to its connection rather than to this client (`idle_in_transaction_timeout`
            // reaches the server after connecting: see `server_settings`).
            return Vec::new();
        }
        let mut settings = Vec::new();
        if !self.keepalive.is_zero() {
            let idle = self.keepalive.as_secs().max(1);
            let interval = (idle / 3).max(1);
            let user_timeout_ms = (idle + 3 * interval) * 1000;
            settings.extend([
                ("tcp_keepalives_idle", idle.to_string()),
                ("tcp_keepalives_interval", interval.to_string()),
                ("tcp_keepalives_count", "3".to_owned()),
                ("tcp_user_timeout", user_timeout_ms.to_string()),
            ]);
        }
        if !self.idle_in_transaction_timeout.is_zero() {
            let millis = self.idle_in_transaction_timeout.as_millis().to_string();
            settings.push(("idle_in_transaction_session_timeout", millis));
        }
        settings
    }

    /// Connect options without the statement timeout, for sessions that run long DDL (the
    /// migration runner), with `application_name` set to `application_name`. The keepalive
    /// settings apply, so the advisory lock of a runner whose host vanished is freed.
    ///
    /// # Errors
    ///
    /// As [`DatabaseConfig::connect_options`].
    pub fn connect_options_without_timeout(
        &self,
        application_name: &str,
    ) -> Result<PgConnectOptions, ConfigError> {
        let options = self.base_connect_options()?.application_name(application_name);
        let settings = self.session_settings();
        Ok(if settings.is_empty() { options } else { options.options(settings) })
    }

    fn base_connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = self.url.as_ref().ok_or(ConfigError::MissingUrl)?;
        let mut options = parse_url(url)?.application_name(&self.application_name);
        if let Some(mode) = self.ssl_mode {
            options = options.ssl_mode(mode.into());
        }
        if let Some(password) = &self.password {
            options = options.password(password.expose_secret());
        }
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        let host = options.get_host().to_owned();
        let ssl_mode = options.get_ssl_mode();
        if !is_loopback(&host) && !matches!(ssl_mode, PgSslMode::VerifyFull) {
            tracing::warn!(
                database.host = %host,
                ssl_mode = ?ssl_mode,
                "connecting to a non-loopback host without database.ssl_mode = \"verify-full\": \
                 the connection may be unencrypted or its server unverified"
            );
        }
        Ok(options)
    }

    /// Replaces the URL with one given elsewhere (a command-line flag), validated as at load.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming `database.url` and `origin` when the URL is unusable.
    pub fn override_url(
        &mut self,
        url: DatabaseUrl,
        origin: crate::Origin,
    ) -> Result<(), ConfigError> {
        if let Some(message) = check_url(&url) {
            return Err(ConfigError::Invalid(vec![crate::Problem {
                key: "database.url".to_owned(),
                message,
                origin,
            }]));
        }
        self.url = Some(url);
        Ok(())
    }
}

/// What is wrong with a URL, if anything: its scheme, or its syntax.
pub(crate) fn check_url(url: &DatabaseUrl) -> Option<String> {
    match url.scheme() {
        Some("postgres" | "postgresql") => {
            parse_url(url).is_err().then(|| format!("{url} is not a valid PostgreSQL URL"))
        }
        _ => Some(format!("{url} must start with postgres:// or postgresql://")),
    }
}

/// Parses the URL without letting the driver's message (which may quote it) through.
pub(crate) fn parse_url(url: &DatabaseUrl) -> Result<PgConnectOptions, ConfigError> {
    PgConnectOptions::from_str(url.expose()).map_err(|_| {
        ConfigError::Invalid(vec![crate::Problem {
            key: "database.url".to_owned(),
            message: format!("{} is not a valid PostgreSQL URL", url.redacted()),
            origin: crate::Origin::Default,
        }])
    })
}

/// Whether `error` means the connection is gone: an I/O, TLS or protocol failure, or a
/// `FATAL`/`PANIC` from the server (a shutdown or restart sends 57P01 before closing). Shared
/// by the data layer (which then closes the pooled connection) and the migration runner.
pub fn is_connection_lost(error: &sqlx::Error) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
        _ => false,
    }
}

/// Whether `error` ended a statement without the server's word on it: the connection failed
/// (I/O, TLS, protocol) or stopped answering, rather than the server reporting an error.
/// After a commit (or a statement outside a transaction) was sent, its outcome is then
/// unknown; a `FATAL` from the server, by contrast, says the transaction was aborted.
pub fn is_outcome_unknown(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_))
}

/// When a connection failed because the TLS library (rustls) refused the server's
/// certificate: what happened and what to set, in one sentence. `None` for every other
/// failure.
///
/// rustls takes only X.509 v3 certificates, and under `verify-ca`/`verify-full` only those
/// signed by a CA it trusts. libpq (psql) is laxer, so a server psql reaches can still be
/// refused here: Citus, for one, gives each node a self-signed v1 certificate. strata never
/// falls back to a connection without TLS by itself; the fix is the operator's to choose.
pub fn tls_refusal(error: &sqlx::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = next {
        // An io::Error's `source()` skips the error it wraps: look inside it by hand.
        let inner = error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        for candidate in [Some(error), inner.map(|e| e as _)].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(reason)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(format!(
                    "the server's TLS certificate was refused ({reason:?}): rustls, the TLS library \
                     strata uses, accepts only X.509 v3 certificates, signed by a trusted CA under \
                     verify-ca or verify-full. Give the server such a certificate (and set \
                     database.ssl_root_cert to its CA), or, where the network is trusted, set \
                     sslmode=disable in the URL (database.ssl_mode = \"disable\"); strata does not \
                     fall back to a connection without TLS by itself"
                ));
            }
        }
        next = error.source();
    }
    None
}

/// Whether `host` is a loopback address or a Unix socket directory: a database on this
/// machine (no TLS needed to reach it; `redo` allowed there by default).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_says_what_to_set_and_nothing_else_does() {
        let refused = |reason| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(reason),
            ))
        };
        let advice = tls_refusal(&refused(rustls::CertificateError::BadEncoding));
        let advice = advice.unwrap_or_default();
        assert!(advice.contains("BadEncoding"), "{advice}");
        assert!(advice.contains("sslmode=disable"), "{advice}");
        assert!(advice.contains("database.ssl_root_cert"), "{advice}");
        let refused_tls = sqlx::Error::Tls(Box::new(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(tls_refusal(&refused_tls).is_some_and(|a| a.contains("UnknownIssuer")));
        for other in [
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
            sqlx::Error::Tls(Box::new(rustls::Error::HandshakeNotComplete)),
            sqlx::Error::PoolTimedOut,
        ] {
            assert_eq!(tls_refusal(&other), None, "{other}");
        }
    }

    #[test]
    fn redacts_the_password_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://app:s3cr3t@db.example:5432/app?sslmode=require&password=s3cr3t"),
            "postgres://app:***@db.example:5432/app?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact_url("postgres://a:p@ss@h/db"), "postgres://a:***@h/db");
        for raw in ["pa/ss", "pa?ss", "pa#ss", "p@/?#s"] {
            let url = format!("postgres://app:{raw}@db.example:5432/app");
            assert_eq!(redact_url(&url), "postgres://app:***@db.example:5432/app", "{raw}");
        }
        assert_eq!(redact_url("not a url with s3cr3t"), "***");
    }

    #[test]
    fn passwords_in_any_text_are_hidden() {
        assert_eq!(
            hide_passwords(r#"found string "postgres://app:s3cr3t@db/app", expected u32"#),
            r#"found string "postgres://app:***@db/app", expected u32"#
        );
        assert_eq!(hide_passwords("host=db password=s3cr3t x"), "host=db password=*** x");
        assert_eq!(hide_passwords("no secrets: 5s"), "no secrets: 5s");
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let url = DatabaseUrl::new("postgresql://app:hunter2@127.0.0.1/app");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!format!("{url}").contains("hunter2"));
        let config = DatabaseConfig {
            url: Some(url),
            password: Some(SecretString::from("hunter3")),
            ..DatabaseConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("hunter3"), "{debug}");
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "::1", "[::1]", "/var/run/postgresql"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["db.example", "10.0.0.1", "localhost.example"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn connect_options_apply_the_fields() -> Result<(), ConfigError> {
        let config = DatabaseConfig {
            url: Some(DatabaseUrl::new("postgres://app:pw@127.0.0.1:6543/appdb")),
            password: Some(SecretString::from("override")),
            statement_timeout: Duration::from_millis(1500),
            application_name: "svc".to_owned(),
            ..DatabaseConfig::default()
        };
        let options = config.connect_options()?;
        assert_eq!(options.get_port(), 6543);
        assert_eq!(options.get_database(), Some("appdb"));
        assert_eq!(options.get_application_name(), Some("svc"));
        assert_eq!(
            options.get_options(),
            Some(
                "-c statement_timeout=1500 -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 \
                 -c tcp_keepalives_count=3 -c tcp_user_timeout=60000 \
                 -c idle_in_transaction_session_timeout=60000"
            )
        );
        let quiet = DatabaseConfig {
            keepalive: Duration::ZERO,
            idle_in_transaction_timeout: Duration::ZERO,
            ..config.clone()
        };
        assert_eq!(quiet.connect_options()?.get_options(), Some("-c statement_timeout=1500"));
        // Through a pooler, no start-up parameter: the data layer sets them after connecting.
        for pooler in [Pooler::Session, Pooler::Transaction] {
            let pooled = DatabaseConfig { pooler, ..config.clone() };
            assert_eq!(pooled.connect_options()?.get_options(), None, "{pooler:?}");
        }
        let names =
            |c: &DatabaseConfig| c.server_settings().iter().map(|s| s.millis).collect::<Vec<_>>();
        assert_eq!(names(&config), [1500, 60_000]);
        assert_eq!(names(&quiet), [1500]);
        assert!(matches!(
            DatabaseConfig::default().connect_options(),
            Err(ConfigError::MissingUrl)
        ));
        Ok(())
    }

    #[test]
    fn the_urls_sslmode_holds_unless_ssl_mode_is_set() -> Result<(), ConfigError> {
        let with_url = |url: &str, ssl_mode| DatabaseConfig {
            url: Some(DatabaseUrl::new(url)),
            ssl_mode,
            ..DatabaseConfig::default()
        };
        let plain = "postgres://app@127.0.0.1/appdb";
        let disabled = "postgres://app@127.0.0.1/appdb?sslmode=disable";
        let mode = |config: DatabaseConfig| -> Result<PgSslMode, ConfigError> {
            Ok(config.connect_options()?.get_ssl_mode())
        };
        assert!(matches!(mode(with_url(plain, None))?, PgSslMode::Prefer));
        assert!(matches!(mode(with_url(disabled, None))?, PgSslMode::Disable));
        assert!(matches!(mode(with_url(disabled, Some(SslMode::Require)))?, PgSslMode::Require));
        Ok(())
    }
}
