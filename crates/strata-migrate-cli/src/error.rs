//! What stops a command, the exit code it ends with, and the message it prints, with the flag
//! that changes the outcome where there is one.

use strata_migrate::MigrateError;
use strata_migrate_cli::exit;
use strata_schema::SchemaError;

use crate::args::{Command, UpArgs};
use crate::terminal::Interrupted;

/// What stops a command: the library's error, or the command line's own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The runner's.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The schema tools'.
    #[error(transparent)]
    Schema(strata_schema::SchemaError),
    /// The output could not be written (a full disk, say); a reader that stopped early
    /// (`| head`) is not an error.
    #[error("could not write the output: {0}")]
    Output(std::io::Error),
    /// `new` could not make the files.
    #[error("{0}")]
    NewFile(String),
    /// A value that does not fit (an unknown setting, a missing target).
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C or SIGTERM stopped a writing command (what it left is reported where it stopped;
    /// never printed as an error).
    #[error("interrupted by {}", .0.signal.name())]
    Interrupted(Box<Interrupted>),
    /// Ctrl-C stopped a command on a scratch database (`verify`, `diff`, `generate`,
    /// `squash`); dropping its work dropped the database.
    #[error("interrupted (Ctrl-C); any scratch database it had made was dropped")]
    ScratchInterrupted,
}

impl From<SchemaError> for CliError {
    /// The runner's errors inside the schema tools' keep their hints and exit codes.
    fn from(error: SchemaError) -> Self {
        match error {
            SchemaError::Migrate(e) => Self::Migrate(e),
            other => Self::Schema(other),
        }
    }
}

/// What the failing command was asked, for the hints.
#[derive(Default)]
pub(crate) struct Context {
    /// `up --to N`, `down --to N`, `baseline --to N`: the flag as given.
    target: Option<String>,
}

impl Context {
    /// What `command` was asked.
    pub(crate) fn of(command: &Command) -> Self {
        let target = match command {
            Command::Up(UpArgs { to: Some(to), .. }) => Some(format!("up --to {to}")),
            Command::Down { to: Some(to), .. } => Some(format!("down --to {to}")),
            Command::Baseline { to } => Some(format!("baseline --to {to}")),
            _ => None,
        };
        Self { target }
    }
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Migrate(MigrateError::Invalid { .. }) | Self::Usage(_) => exit::USAGE,
            Self::Migrate(e) | Self::Schema(SchemaError::Migrate(e)) => exit::code(e),
            Self::ScratchInterrupted => exit::MIGRATION,
            Self::Schema(SchemaError::Refused(_)) => exit::CHECK,
            Self::Schema(_) => exit::MIGRATION,
            Self::Output(_) | Self::NewFile(_) => exit::MIGRATION,
            Self::Interrupted(interrupted) => interrupted.signal.exit_code(),
        }
    }

    /// The message, with the flag that changes the outcome where there is one.
    pub(crate) fn explain(&self, context: &Context) -> String {
        match self {
            Self::Migrate(MigrateError::Invalid { message }) => match &context.target {
                Some(target) => format!("{target}: {message}"),
                None => message.clone(),
            },
            Self::Migrate(e @ MigrateError::Missing { .. }) => {
                format!("{e}; to go on without them, pass --ignore-missing")
            }
            Self::Migrate(e @ MigrateError::OutOfOrder { .. }) => {
                format!("{e}; to apply them now, pass --allow-out-of-order")
            }
            Self::Migrate(e @ MigrateError::MaintenanceDatabase { .. }) => {
                format!("{e} (or pass --allow-maintenance-database)")
            }
            Self::Migrate(e @ MigrateError::NotDevelopment { .. }) => {
                format!("{e} (STRATA_MIGRATIONS__DEVELOPMENT=true)")
            }
            other => other.to_string(),
        }
    }
}
