//! `[log]` and the subscriber that binaries install.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::{ConfigError, Origin};

/// Output format of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

impl LogFormat {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// `[log]`: how binaries log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,sqlx=warn`; `RUST_LOG`, when set, takes precedence.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info,sqlx=warn".to_owned() }
    }
}

/// Installs the global subscriber of a binary: text or JSON on standard error, filtered by
/// `RUST_LOG` when set and by `log.filter` otherwise. Libraries never call this.
///
/// # Errors
///
/// [`ConfigError::Filter`] when `RUST_LOG` is not a valid filter (`log.filter` was checked at
/// load time).
pub fn init_tracing(config: &LogConfig) -> Result<(), ConfigError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).map_err(|e| ConfigError::Filter {
                key: "RUST_LOG".to_owned(),
                message: format!("{directives:?} is not a valid filter: {e}"),
                origin: Origin::Env { var: "RUST_LOG".to_owned() },
            })?
        }
        _ => EnvFilter::builder().parse_lossy(&config.filter),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second call (as in tests) keeps the first subscriber; that is not an error.
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
