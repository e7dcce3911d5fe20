//! The schema tools' one error type.

use strata_migrate::MigrateError;

/// Everything that stops a schema tool. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The runner's error: connecting, a scratch database, applying the history.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A statement on the catalogs or a scratch database failed.
    #[error("{doing}: {source}")]
    Database {
        /// What was being done.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration file cannot be split into statements.
    #[error("migration {version} cannot be split into statements: {source}")]
    Lex {
        /// Its version.
        version: i64,
        /// What the lexer found.
        #[source]
        source: strata_migrate::lexer::LexError,
    },
    /// A file of the desired schema could not be read or applied.
    #[error("{}: {message}", .path.display())]
    Desired {
        /// The file (or directory).
        path: std::path::PathBuf,
        /// What went wrong, with the server's message.
        message: String,
    },
    /// The generator will not write this change: a possible rename without a hint, or
    /// something it cannot do safely. The message says which objects, and what to do.
    #[error("{0}")]
    Refused(String),
    /// The generated migration did not prove out: applied on a scratch database it does not
    /// give the desired schema (or its down file does not give back the previous one).
    /// Nothing was written.
    #[error("the generated {stage} file does not give the {expected} schema; nothing was written:\n{}", .differences.join("\n"))]
    NotProven {
        /// `up` or `down`.
        stage: &'static str,
        /// `desired` or `previous`.
        expected: &'static str,
        /// The lines that differ, `-` missing and `+` extra.
        differences: Vec<String>,
    },
    /// The migration files could not be written.
    #[error("could not write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl SchemaError {
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { doing, source }
    }
}
