//! Reading the layers (defaults, TOML file, environment) and validating the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use tracing_subscriber::EnvFilter;

use crate::database::{check_url, hide_passwords};
use crate::{Config, ConfigError, Origin, Problem};

/// The prefix of the environment variables that set keys.
const ENV_PREFIX: &str = "STRATA_";
/// The variable that names the config file.
const CONFIG_VAR: &str = "STRATA_CONFIG";
/// The conventional variable that sets `database.url`, above everything else.
const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// The file read from the working directory when `STRATA_CONFIG` is not set.
const DEFAULT_FILE: &str = "strata.toml";
/// Keys whose values are never shown in a message.
const SECRET_KEYS: [&str; 5] = [
    "database.url",
    "database.password",
    "migrations.url",
    "database.replica_urls",
    "auth.jwt_secret",
];

/// Loads a [`Config`] from a given environment and directory; [`Config::load`] uses the
/// process's. Tests use [`Loader::new`] to load without touching the process environment.
#[derive(Clone)]
pub struct Loader {
    dir: PathBuf,
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Loader {
    /// The directory and the variables' names only: their values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("dir", &self.dir).field("vars", &self.vars.keys()).finish()
    }
}

impl Loader {
    /// The process's environment and working directory.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self { dir, vars }
    }

    /// An explicit working directory and set of environment variables.
    pub fn new<K: Into<String>, V: Into<String>>(
        dir: impl Into<PathBuf>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self { dir: dir.into(), vars }
    }

    /// Reads and validates every layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingFile`] when `STRATA_CONFIG` names no file, [`ConfigError::File`]
    /// when the file is not valid TOML, and [`ConfigError::Invalid`] with one [`Problem`] per
    /// bad key otherwise.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let file = self.file()?;
        let mut figment = Figment::new();
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
            if let Err(e) = text.parse::<toml::Table>() {
                return Err(ConfigError::File {
                    path: path.clone(),
                    message: toml_message(&text, &e),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        for (var, value) in &self.vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if var == CONFIG_VAR || rest.is_empty() {
                continue;
            }
            let key = rest.to_lowercase().replace("__", ".");
            figment = figment.merge(EnvVar::new(var, key, value));
        }
        if let Some(url) = self.vars.get(DATABASE_URL_VAR) {
            figment = figment.merge(EnvVar::new(DATABASE_URL_VAR, "database.url".into(), url));
        }

        let config: Config = figment.extract().map_err(|e| {
            ConfigError::Invalid(e.into_iter().map(|e| problem(&figment, e)).collect())
        })?;
        let problems = validate(&config, &|key| origin_of(&figment, key));
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid(problems)) }
    }

    fn file(&self) -> Result<Option<PathBuf>, ConfigError> {
        match self.vars.get(CONFIG_VAR) {
            Some(named) => {
                let path = self.dir.join(named);
                if path.is_file() { Ok(Some(path)) } else { Err(ConfigError::MissingFile { path }) }
            }
            None => {
                let path = self.dir.join(DEFAULT_FILE);
                Ok(path.is_file().then_some(path))
            }
        }
    }
}

/// Checks what the types cannot: pool sizes, the URL's scheme and syntax, the log filter.
fn validate(config: &Config, origin: &dyn Fn(&str) -> Origin) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |key: &str, message: String| {
        let message = hide_passwords(&message);
        problems.push(Problem { key: key.to_owned(), message, origin: origin(key) });
    };
    let db = &config.database;
    if db.max_connections == 0 {
        report("database.max_connections", "must be at least 1".to_owned());
    }
    if db.min_connections > db.max_connections {
        report(
            "database.min_connections",
            format!(
                "{} is more than database.max_connections ({})",
                db.min_connections, db.max_connections
            ),
        );
    }
    // A password typed into a key that is not secret would be shown, logged and sent on.
    let auth = &config.auth;
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    let shown = [
        ("database.application_name", db.application_name.clone()),
        ("log.filter", config.log.filter.clone()),
        ("auth.jwt_issuer", optional(&auth.jwt_issuer)),
        ("auth.jwt_audience", optional(&auth.jwt_audience)),
        ("http.cors_allowed_origins", config.http.cors_allowed_origins.join(" ")),
    ];
    for (key, value) in &shown {
        if hide_passwords(value) != *value {
            report(
                key,
                "holds a password (a URL with one, or password=): this key is shown and logged; \
                 put the URL in database.url or migrations.url"
                    .to_owned(),
            );
        }
    }
    if db.application_name.len() > 63 {
        report("database.application_name", "is longer than PostgreSQL's 63 bytes".to_owned());
    }
    if let Some(message) = db.url.as_ref().and_then(check_url) {
        report("database.url", message);
    }
    if let Some(cert) = &db.ssl_root_cert
        && !cert.is_file()
    {
        report("database.ssl_root_cert", format!("{} is not a file", cert.display()));
    }
    if db.pooler_prepared_statements && db.pooler != crate::Pooler::Transaction {
        report(
            "database.pooler_prepared_statements",
            format!(
                "says what a transaction-mode pooler keeps, but database.pooler is \"{}\": set \
                 database.pooler = \"transaction\", or leave this out",
                db.pooler.as_str()
            ),
        );
    }
    if !db.response_timeout.is_zero()
        && !db.statement_timeout.is_zero()
        && db.response_timeout <= db.statement_timeout
    {
        report(
            "database.response_timeout",
            format!(
                "{} is not longer than database.statement_timeout ({}): the client would give up \
                 on statements the server still runs; make it longer, or \"0s\" for no limit",
                humantime::format_duration(db.response_timeout),
                humantime::format_duration(db.statement_timeout),
            ),
        );
    }
    for (index, url) in db.replica_urls.iter().enumerate() {
        if let Some(message) = check_url(url) {
            report("database.replica_urls", format!("entry {}: {message}", index + 1));
        }
    }
    if let Some(message) = config.migrations.url.as_ref().and_then(check_url) {
        report("migrations.url", message);
    }
    if config.migrations.lock_wait.is_zero() {
        report("migrations.lock_wait", "must be more than 0s".to_owned());
    }
    for (key, message) in crate::http::problems(&config.http, &config.auth) {
        report(key, message);
    }
    if let Err(e) = EnvFilter::builder().parse(&config.log.filter) {
        report("log.filter", format!("{:?} is not a valid filter: {e}", config.log.filter));
    }
    problems
}

/// Turns one figment error into a problem with its key and source, hiding secret values.
fn problem(figment: &Figment, error: figment::Error) -> Problem {
    let mut path = error.path.clone();
    if let Kind::UnknownField(field, _) = &error.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    let key = path.join(".");
    let origin = match origin_of(figment, &key) {
        Origin::Default => {
            error.metadata.as_ref().map_or(Origin::Default, |m| origin_from(m, &key))
        }
        found => found,
    };
    let shown = |actual: &Actual| {
        if is_leaf(&key) && !is_secret(&key) { format!("{actual}") } else { "a value".to_owned() }
    };
    let message = match &error.kind {
        Kind::UnknownField(_, expected) => {
            format!("unknown key; expected one of: {}", expected.join(", "))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value {found:?}; expected one of: {}", expected.join(", "))
        }
        Kind::InvalidType(actual, expected) => {
            format!("found {}, expected {expected}", shown(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("found {}, expected {expected}", shown(actual))
        }
        other if !is_secret(&key) => other.to_string(),
        _ => "has a value that cannot be used".to_owned(),
    };
    // A URL with a password put under the wrong key is still a secret.
    Problem { key, message: hide_passwords(&message), origin }
}

/// Whether `key` names a value rather than a section.
/// Whether `key` (or the list it is an entry of, `database.replica_urls.0`) holds a secret.
fn is_secret(key: &str) -> bool {
    SECRET_KEYS.iter().any(|secret| {
        key == *secret || key.strip_prefix(secret).is_some_and(|rest| rest.starts_with('.'))
    })
}

fn is_leaf(key: &str) -> bool {
    key.contains('.')
}

/// Where the value of `key` came from, as figment recorded it.
fn origin_of(figment: &Figment, key: &str) -> Origin {
    figment.find_metadata(key).map_or(Origin::Default, |m| origin_from(m, key))
}

fn origin_from(metadata: &Metadata, key: &str) -> Origin {
    if let Some(var) = metadata.name.strip_prefix(ENV_NAME_PREFIX) {
        return Origin::Env { var: var.to_owned() };
    }
    match metadata.source.as_ref().and_then(|s| s.file_path()) {
        Some(path) => Origin::File { path: path.to_owned(), line: find_line(path, key) },
        None => Origin::Default,
    }
}

/// The 1-based line of `key` in a TOML file: a `name =` line under its `[section]`, or a
/// dotted `section.name =` line.
fn find_line(path: &Path, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = header.trim().to_owned();
            if current == key {
                return Some(index + 1);
            }
            continue;
        }
        let Some((lhs, _)) = line.split_once('=') else { continue };
        let lhs = lhs.trim().trim_matches('"');
        let full = if current.is_empty() { lhs.to_owned() } else { format!("{current}.{lhs}") };
        if full == key || (current == section && lhs == name) {
            return Some(index + 1);
        }
    }
    None
}

/// The TOML parser's message without the quoted source line, which may hold a secret.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

const ENV_NAME_PREFIX: &str = "environment variable ";

/// One environment variable as a figment provider, so that errors name the variable.
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

impl EnvVar {
    fn new(name: &str, key: String, value: &str) -> Self {
        Self { name: name.to_owned(), key, value: value.to_owned() }
    }
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("{ENV_NAME_PREFIX}{}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        // Secrets stay strings: parsing could reshape them. A list of secrets
        // (`database.replica_urls`) is written as an array of quoted strings, and parsed.
        let list = self.value.trim_start().starts_with('[');
        let value = if is_secret(&self.key) && !list {
            Value::from(self.value.clone())
        } else {
            self.value.parse::<Value>().unwrap_or_else(|never| match never {})
        };
        Serialized::default(&self.key, value).data()
    }
}
