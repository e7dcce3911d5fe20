//! Loading the layers: precedence, and an error for each kind of bad input that names the key
//! and where the value came from, without ever showing a secret.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_config::{Config, ConfigError, Loader, LogFormat, Origin, SslMode};

const SECRET: &str = "pa55-w0rd-never-shown";

/// A fresh directory holding `strata.toml` with `toml` (if given).
fn dir_with(toml: Option<&str>) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strata-config-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let file = dir.join("strata.toml");
    match toml {
        Some(text) => std::fs::write(&file, text).expect("write strata.toml"),
        None => {
            let _ = std::fs::remove_file(&file);
        }
    }
    dir
}

fn load(toml: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Loader::new(dir_with(toml), vars.iter().copied()).load()
}

/// The error's message, checked to be free of the secret.
fn message_of(result: Result<Config, ConfigError>) -> String {
    let err = result.expect_err("expected a configuration error");
    let message = err.to_string();
    let debug = format!("{err:?}");
    assert!(!message.contains(SECRET), "secret in message: {message}");
    assert!(!debug.contains(SECRET), "secret in Debug: {debug}");
    message
}

#[test]
fn defaults_apply_when_nothing_is_set() -> Result<(), ConfigError> {
    let config = load(None, &[])?;
    assert!(config.database.url.is_none());
    assert_eq!(config.database.max_connections, 10);
    assert_eq!(config.database.ssl_mode, None);
    assert_eq!(config.migrations.lock_timeout, Duration::from_secs(5));
    assert_eq!(config.log.format, LogFormat::Text);
    Ok(())
}

#[test]
fn ssl_mode_is_read_when_set() -> Result<(), ConfigError> {
    let config = load(None, &[("STRATA_DATABASE__SSL_MODE", "verify-full")])?;
    assert_eq!(config.database.ssl_mode, Some(SslMode::VerifyFull));
    Ok(())
}

#[test]
fn environment_overrides_file_and_database_url_overrides_both() -> Result<(), ConfigError> {
    let toml = r#"
[database]
url = "postgres://file@127.0.0.1/file"
max_connections = 4
acquire_timeout = "250ms"

[log]
format = "json"
"#;
    let config = load(
        Some(toml),
        &[
            ("STRATA_DATABASE__MAX_CONNECTIONS", "7"),
            ("STRATA_DATABASE__URL", "postgres://env@127.0.0.1/env"),
            ("DATABASE_URL", "postgres://conventional@127.0.0.1/conventional"),
            ("STRATA_MIGRATIONS__LOCK_WAIT", "1m 30s"),
            ("UNRELATED", "ignored"),
        ],
    )?;
    let url = config.database.url.as_ref().map(|u| u.expose().to_owned());
    assert_eq!(url.as_deref(), Some("postgres://conventional@127.0.0.1/conventional"));
    assert_eq!(config.database.max_connections, 7);
    assert_eq!(config.database.acquire_timeout, Duration::from_millis(250));
    assert_eq!(config.migrations.lock_wait, Duration::from_secs(90));
    assert_eq!(config.log.format, LogFormat::Json);
    Ok(())
}

#[test]
fn strata_config_names_the_file_and_it_must_exist() -> Result<(), ConfigError> {
    let dir = dir_with(None);
    std::fs::write(dir.join("other.toml"), "[database]\nmax_connections = 3\n").expect("write");
    let config = Loader::new(&dir, [("STRATA_CONFIG", "other.toml")]).load()?;
    assert_eq!(config.database.max_connections, 3);

    let err = Loader::new(&dir, [("STRATA_CONFIG", "missing.toml")]).load();
    let message = message_of(err.map(|_: Config| unreachable_config()));
    assert!(message.contains("missing.toml") && message.contains("STRATA_CONFIG"), "{message}");
    Ok(())
}

fn unreachable_config() -> Config {
    Config::default()
}

#[test]
fn unknown_key_in_file_names_key_file_and_line() {
    let message = message_of(load(Some("[database]\nmax_conections = 5\n"), &[]));
    assert!(message.contains("database.max_conections"), "{message}");
    assert!(message.contains("unknown key"), "{message}");
    assert!(message.contains("strata.toml, line 2"), "{message}");
}

#[test]
fn unknown_section_and_unknown_env_key_are_refused() {
    let message = message_of(load(Some("[databse]\nurl = \"x\"\n"), &[]));
    assert!(message.contains("databse") && message.contains("unknown key"), "{message}");
    assert!(message.contains("line 1"), "{message}");

    let message = message_of(load(None, &[("STRATA_DATABASE__MAX_CONECTIONS", "5")]));
    assert!(message.contains("database.max_conections"), "{message}");
    assert!(message.contains("environment variable STRATA_DATABASE__MAX_CONECTIONS"), "{message}");
}

#[test]
fn malformed_durations_name_key_and_source() {
    let message = message_of(load(Some("[migrations]\n\nlock_timeout = \"5 parsecs\"\n"), &[]));
    assert!(message.contains("migrations.lock_timeout"), "{message}");
    assert!(message.contains("\"5 parsecs\""), "{message}");
    assert!(message.contains("strata.toml, line 3"), "{message}");

    let message = message_of(load(None, &[("STRATA_DATABASE__ACQUIRE_TIMEOUT", "30")]));
    assert!(message.contains("database.acquire_timeout"), "{message}");
    assert!(message.contains("has no unit"), "{message}");
    assert!(message.contains("STRATA_DATABASE__ACQUIRE_TIMEOUT"), "{message}");
}

#[test]
fn zero_pool_and_min_above_max_are_refused() {
    let message = message_of(load(Some("[database]\nmax_connections = 0\n"), &[]));
    assert!(message.contains("database.max_connections: must be at least 1"), "{message}");
    assert!(message.contains("line 2"), "{message}");

    let message = message_of(load(
        Some("[database]\nmax_connections = 2\n"),
        &[("STRATA_DATABASE__MIN_CONNECTIONS", "5")],
    ));
    assert!(message.contains("database.min_connections"), "{message}");
    assert!(message.contains("more than database.max_connections (2)"), "{message}");
    assert!(message.contains("STRATA_DATABASE__MIN_CONNECTIONS"), "{message}");
}

#[test]
fn a_url_that_is_not_postgres_is_refused_without_its_password() {
    let url = format!("mysql://app:{SECRET}@db.example/app");
    let message = message_of(load(None, &[("DATABASE_URL", url.as_str())]));
    assert!(message.contains("database.url"), "{message}");
    assert!(message.contains("postgres://"), "{message}");
    assert!(message.contains("mysql://app:***@db.example/app"), "{message}");
    assert!(message.contains("environment variable DATABASE_URL"), "{message}");

    let toml = format!("[database]\nurl = \"postgres://app:{SECRET}@db:notaport/app\"\n");
    let message = message_of(load(Some(&toml), &[]));
    assert!(message.contains("database.url") && message.contains("not a valid"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn a_secret_of_the_wrong_type_is_not_echoed() {
    let toml = format!("database = \"postgres://app:{SECRET}@db/app\"\n");
    let message = message_of(load(Some(&toml), &[]));
    assert!(message.contains("database"), "{message}");
}

#[test]
fn a_toml_syntax_error_names_the_line_but_not_the_secret() {
    let toml = format!("[database]\nurl = \"postgres://app:{SECRET}@db/app\" oops\n");
    let message = message_of(load(Some(&toml), &[]));
    assert!(message.contains("strata.toml") && message.contains("line 2"), "{message}");
}

#[test]
fn bad_enum_values_list_the_choices() {
    let message = message_of(load(None, &[("STRATA_LOG__FORMAT", "xml")]));
    assert!(message.contains("log.format") && message.contains("text, json"), "{message}");
    let message = message_of(load(Some("[database]\nssl_mode = \"sometimes\"\n"), &[]));
    assert!(message.contains("database.ssl_mode") && message.contains("verify-full"), "{message}");
}

#[test]
fn an_invalid_log_filter_is_refused_at_load() {
    let message = message_of(load(None, &[("STRATA_LOG__FILTER", "info,[[[")]));
    assert!(message.contains("log.filter"), "{message}");
    assert!(message.contains("STRATA_LOG__FILTER"), "{message}");
}

#[test]
fn debug_of_a_loaded_config_hides_url_and_password() -> Result<(), ConfigError> {
    let url = format!("postgres://app:{SECRET}@127.0.0.1/app");
    let config =
        load(None, &[("DATABASE_URL", url.as_str()), ("STRATA_DATABASE__PASSWORD", SECRET)])?;
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("postgres://app:***@127.0.0.1/app"), "{debug}");
    Ok(())
}

#[test]
fn origins_display_as_operators_read_them() {
    let file = Origin::File { path: "strata.toml".into(), line: Some(3) };
    assert_eq!(file.to_string(), "strata.toml, line 3");
    assert_eq!(Origin::Env { var: "X".into() }.to_string(), "environment variable X");
}

#[test]
fn a_malformed_url_never_shows_its_password() {
    for raw in ["/", "?", "#", "@"] {
        let url = format!("postgres://app:a{raw}{SECRET}@db.example:notaport/app");
        let message = message_of(load(None, &[("DATABASE_URL", url.as_str())]));
        assert!(message.contains("database.url"), "{message}");
    }
    let loader = Loader::new(dir_with(None), [("STRATA_DATABASE__PASSWORD", SECRET)]);
    assert!(!format!("{loader:?}").contains(SECRET));
}

#[test]
fn a_transaction_mode_pooler_keeps_the_statement_timeout() -> Result<(), ConfigError> {
    // The data layer sends it with each transaction's BEGIN (SET LOCAL), not at start-up.
    let pooled = load(None, &[("STRATA_DATABASE__POOLER", "transaction")])?;
    let settings = pooled.database.server_settings();
    assert_eq!(
        settings.first().map(|s| (s.key, s.millis)),
        Some(("database.statement_timeout", 30_000))
    );
    let config = load(
        Some("[database]\npooler = \"transaction\"\nstatement_timeout = \"0s\"\n"),
        &[("STRATA_MIGRATIONS__URL", &format!("postgres://owner:{SECRET}@db/strata"))],
    )?;
    assert_eq!(config.database.pooler, strata_config::Pooler::Transaction);
    let options = config.database.connect_options_without_timeout("t");
    assert!(options.is_err(), "no database.url: the pooled URL is still required");
    let shown = config.settings();
    let url = shown.iter().find(|(k, _)| *k == "migrations.url").and_then(|(_, v)| v.clone());
    assert_eq!(url.as_deref(), Some("postgres://owner:***@db/strata"));
    let message = message_of(load(None, &[("STRATA_DATABASE__POOLER", "sometimes")]));
    assert!(message.contains("database.pooler"), "{message}");
    // Prepared statements kept by the pooler: only a transaction-mode pooler says so.
    let kept = [("STRATA_DATABASE__POOLER_PREPARED_STATEMENTS", "true")];
    let message = message_of(load(None, &kept));
    assert!(message.contains("database.pooler_prepared_statements"), "{message}");
    assert!(message.contains("\"none\""), "{message}");
    let both = [kept[0], ("STRATA_DATABASE__POOLER", "transaction")];
    assert!(load(None, &both)?.database.pooler_prepared_statements);
    Ok(())
}

#[test]
fn replica_urls_are_read_checked_and_hidden() -> Result<(), ConfigError> {
    let replicas = format!("[\"postgres://app:{SECRET}@r1/strata\", \"postgres://app@r2/strata\"]");
    let config = load(None, &[("STRATA_DATABASE__REPLICA_URLS", &replicas)])?;
    assert_eq!(config.database.replica_urls.len(), 2);
    assert!(!format!("{:?}", config.database).contains(SECRET));
    let shown = config.settings();
    let value =
        shown.iter().find(|(k, _)| *k == "database.replica_urls").and_then(|(_, v)| v.clone());
    assert_eq!(value.as_deref(), Some("postgres://app:***@r1/strata, postgres://app@r2/strata"));
    let bad = format!("[\"mysql://root:{SECRET}@h/db\"]");
    let message = message_of(load(None, &[("STRATA_DATABASE__REPLICA_URLS", &bad)]));
    assert!(message.contains("database.replica_urls") && message.contains("entry 1"), "{message}");
    let wrong_type = format!("[\"postgres://app:{SECRET}@r1/s\", 7]");
    let message = message_of(load(None, &[("STRATA_DATABASE__REPLICA_URLS", &wrong_type)]));
    assert!(message.contains("database.replica_urls"), "{message}");
    Ok(())
}

#[test]
fn the_response_timeout_must_outlast_the_statement_timeout() -> Result<(), ConfigError> {
    let short = [("STRATA_DATABASE__RESPONSE_TIMEOUT", "20s")];
    let message = message_of(load(None, &short));
    assert!(message.contains("database.response_timeout"), "{message}");
    assert!(message.contains("database.statement_timeout (30s)"), "{message}");
    assert!(message.contains("STRATA_DATABASE__RESPONSE_TIMEOUT"), "{message}");
    // No server-side limit: any client limit goes; and 0s turns the client's off.
    let config =
        load(Some("[database]\nstatement_timeout = \"0s\"\nresponse_timeout = \"5s\"\n"), &[])?;
    assert_eq!(config.database.response_timeout, std::time::Duration::from_secs(5));
    let config = load(None, &[("STRATA_DATABASE__RESPONSE_TIMEOUT", "0s")])?;
    assert!(config.database.response_timeout.is_zero());
    let defaults = load(None, &[])?;
    let shown = defaults.settings();
    for key in ["database.connect_timeout", "database.response_timeout", "database.keepalive"] {
        assert!(shown.iter().any(|(k, v)| *k == key && v.is_some()), "{key} not shown");
    }
    Ok(())
}

#[test]
fn http_and_auth_are_read_and_checked_together() -> Result<(), ConfigError> {
    let config = load(
        Some(
            "[http]\nlisten = \"0.0.0.0:9000\"\nrequest_timeout = \"5s\"\n\
             cors_allowed_origins = [\"https://app.example\"]\n\
             [auth]\njwt_issuer = \"https://idp.example/\"\njwt_audience = \"tracker\"\n",
        ),
        &[("STRATA_AUTH__JWT_SECRET", &format!("{SECRET}-{SECRET}"))],
    )?;
    assert_eq!(config.http.listen.port(), 9000);
    assert_eq!(config.http.request_timeout, Duration::from_secs(5));
    assert!(!config.auth.trust_user_header, "the development header is off by default");
    let shown = format!("{config:?} {:?}", config.settings());
    assert!(!shown.contains(SECRET), "the JWT key shows: {shown}");

    let refused = [
        (&[("STRATA_HTTP__LISTEN", "localhost")][..], "http.listen"),
        (
            &[("STRATA_HTTP__CORS_ALLOWED_ORIGINS", "[\"https://app.example/path\"]")],
            "http.cors_allowed_origins",
        ),
        (&[("STRATA_HTTP__MAX_BODY_BYTES", "0")], "http.max_body_bytes"),
        (&[("STRATA_AUTH__JWT_ISSUER", "https://idp.example/")], "auth.jwt_audience"),
        (
            &[
                ("STRATA_AUTH__JWT_ISSUER", "https://idp.example/"),
                ("STRATA_AUTH__JWT_AUDIENCE", "t"),
            ],
            "auth.jwt_issuer",
        ),
        (
            &[
                ("STRATA_AUTH__JWT_ISSUER", "i"),
                ("STRATA_AUTH__JWT_AUDIENCE", "t"),
                ("STRATA_AUTH__JWT_SECRET", SECRET),
            ],
            "auth.jwt_secret",
        ),
        (
            &[
                ("STRATA_AUTH__JWT_ISSUER", "i"),
                ("STRATA_AUTH__JWT_AUDIENCE", "t"),
                ("STRATA_AUTH__JWT_ALGORITHM", "RS256"),
                ("STRATA_AUTH__JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"),
            ],
            "auth.jwt_public_key_file",
        ),
        (&[("STRATA_AUTH__JWT_ALGORITHM", "none")], "auth.jwt_algorithm"),
        (&[("STRATA_AUTH__TOKEN_LIFETIME", "0s")], "auth.token_lifetime"),
    ];
    for (vars, key) in refused {
        let message = message_of(load(None, vars));
        assert!(message.contains(key), "{vars:?}: {message}");
    }
    Ok(())
}
