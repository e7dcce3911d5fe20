//! The crate's one error type, and where a value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A TOML file, with the line of the key when it could be found.
    File {
        /// The file's path.
        path: PathBuf,
        /// The 1-based line of the key.
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command-line flag, such as `--database-url`.
    Flag {
        /// The flag as typed.
        flag: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File { path, line: Some(line) } => write!(f, "{}, line {line}", path.display()),
            Self::File { path, line: None } => write!(f, "{}", path.display()),
            Self::Env { var } => write!(f, "environment variable {var}"),
            Self::Flag { flag } => write!(f, "command-line flag {flag}"),
        }
    }
}

/// One thing wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, such as `database.max_connections`.
    pub key: String,
    /// What is wrong; never contains a secret.
    pub message: String,
    /// Where the offending value came from.
    pub origin: Origin,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (from {})", self.key, self.message, self.origin)
    }
}

/// Everything that can go wrong while loading or using the configuration.
///
/// No variant carries a secret: URLs are shown with their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// One or more keys hold bad values; each problem names its key and source.
    #[error("invalid configuration: {}", join(.0))]
    Invalid(Vec<Problem>),
    /// `STRATA_CONFIG` names a file that does not exist.
    #[error("config file {} (named by STRATA_CONFIG) does not exist", .path.display())]
    MissingFile {
        /// The path as resolved.
        path: PathBuf,
    },
    /// The TOML file could not be read or parsed.
    #[error("config file {}: {message}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, without the quoted source line.
        message: String,
    },
    /// No database URL is configured but one is needed.
    #[error(
        "database.url is not set: set DATABASE_URL (or STRATA_DATABASE__URL), or `url` under [database] in strata.toml"
    )]
    MissingUrl,
    /// `log.filter` or `RUST_LOG` is not a valid tracing filter.
    #[error("{key}: {message} (from {origin})")]
    Filter {
        /// `log.filter` or `RUST_LOG`.
        key: String,
        /// The parser's message.
        message: String,
        /// Where the filter came from.
        origin: Origin,
    },
}

fn join(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => many.iter().map(|p| format!("\n  - {p}")).collect(),
    }
}
