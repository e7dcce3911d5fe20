//! The runner's one error type. (The exit code each kind maps to is the command line's concern:
//! strata-migrate-cli's `exit` module.)

use std::time::Duration;

use strata_config::ConfigError;

/// Everything that stops a migration command. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The configuration is invalid or incomplete.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The migrations directory given with `--source` could not be read.
    #[error("could not read migrations from {}: {message}", .dir.display())]
    Source {
        /// The directory.
        dir: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The server could not be reached or refused the connection.
    #[error("could not connect to {target}: {reason}")]
    Connect {
        /// The URL with its password redacted.
        target: String,
        /// The driver's reason, in one sentence.
        reason: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// `database.url` goes through a transaction-mode pooler and no `migrations.url` is set.
    #[error(
        "database.pooler is \"transaction\": database.url goes through a transaction-mode pooler, where the runner's advisory lock (held by a session) would not hold; set migrations.url (STRATA_MIGRATIONS__URL) to the server's own URL"
    )]
    NeedsSession,
    /// Streaming replicas had not replayed the migrations when `wait_for_replicas` ran out
    /// (the migrations are applied on the primary).
    #[error(
        "applied, but {behind} of {replicas} streaming replica(s) had not replayed it after {}; see pg_stat_replication on the primary",
        humanize(*.waited)
    )]
    ReplicasBehind {
        /// How long the runner waited.
        waited: Duration,
        /// Replicas still behind.
        behind: usize,
        /// Replicas connected.
        replicas: usize,
    },
    /// A writing command was pointed at a maintenance database (`postgres`, `template0`,
    /// `template1`): a URL that names no database, or the wrong one.
    #[error(
        "{target} is the maintenance database {database:?}: refusing to put the schema there; name the application's database in the URL, or allow it with migrations.allow_maintenance_database = true"
    )]
    MaintenanceDatabase {
        /// The database's name.
        database: String,
        /// The URL with its password redacted.
        target: String,
    },
    /// `redo` on a database that is not a development one.
    #[error(
        "{target} is not a development database (host {host}): redo reverts migrations and their data; set migrations.development = true where that is wanted"
    )]
    NotDevelopment {
        /// The URL with its password redacted.
        target: String,
        /// Its host.
        host: String,
    },
    /// The target is a read-only standby.
    #[error(
        "{target} is a read-only standby (pg_is_in_recovery() is true): run migrations against the primary"
    )]
    ReadOnly {
        /// The URL with its password redacted.
        target: String,
    },
    /// Another runner held the migration lock for longer than `migrations.lock_wait`.
    #[error(
        "another migration runner held the lock for longer than migrations.lock_wait ({}); holder: {holder}",
        humanize(*.waited)
    )]
    LockTimeout {
        /// How long this runner waited.
        waited: Duration,
        /// Who held it, as `pg_stat_activity` shows the session.
        holder: String,
    },
    /// An applied migration's file changed since it was applied.
    #[error(
        "migration {version} ({description}) was changed after it was applied: applied checksum {applied}, file checksum {file}; restore the file, or accept the change with `strata-migrate repair`"
    )]
    ChecksumChanged {
        /// Its version.
        version: i64,
        /// Its description.
        description: String,
        /// Hex of the recorded checksum.
        applied: String,
        /// Hex of the file's checksum.
        file: String,
    },
    /// The database records migrations for which there is no file.
    #[error(
        "the database has applied migrations with no file here: {versions:?}; run a build that has them, or ignore them (UpOptions::ignore_missing)"
    )]
    Missing {
        /// The versions.
        versions: Vec<i64>,
    },
    /// A migration is recorded as failed (a partial no-transaction migration) and cannot be
    /// resumed.
    #[error(
        "migration {version} is recorded as failed (success = false) and cannot be resumed: {why}; inspect the schema, then `strata-migrate repair`"
    )]
    Dirty {
        /// Its version.
        version: i64,
        /// Why it cannot be resumed.
        why: String,
    },
    /// Pending versions are older than the newest applied one.
    #[error(
        "pending migration(s) {versions:?} are older than the newest applied version {newest}: they were probably merged late; check they do not depend on newer ones, then allow them (UpOptions::allow_out_of_order)"
    )]
    OutOfOrder {
        /// The pending versions below `newest`.
        versions: Vec<i64>,
        /// The newest applied version.
        newest: i64,
    },
    /// `down` would revert migrations that have no `.down.sql` file.
    #[error(
        "cannot revert migration(s) {versions:?}: no .down.sql file; nothing was reverted (write the down file, or revert by hand with a new forward migration)"
    )]
    NoDownFile {
        /// The versions without a down file.
        versions: Vec<i64>,
    },
    /// A migration file would not run as written (a byte order mark, no statement, an
    /// unterminated literal or comment, a directive where it is not read); refused before
    /// anything is applied.
    #[error("migration file {file}: {message}")]
    File {
        /// The file's name.
        file: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file `lint` reads could not be split into statements (the runner refuses such a file
    /// as [`MigrateError::File`] before it plans).
    #[error("migration {version} cannot be split into statements: {source}")]
    Lex {
        /// Its version.
        version: i64,
        /// What the lexer found.
        #[source]
        source: crate::lexer::LexError,
    },
    /// Invalid indexes (left by a failed `CREATE INDEX CONCURRENTLY`) must be dropped first.
    #[error(
        "invalid index(es) left by a failed concurrent build; drop them, then run again: {}",
        .fixes.join(" ")
    )]
    InvalidIndexes {
        /// The commands that fix it, one per index.
        fixes: Vec<String>,
    },
    /// A checkpoint (`strata-migrate squash`) does not fit the database or the files: the
    /// database applied only some of the files it stands for, `down` would go past it, or a
    /// file it replaces is still there.
    #[error("checkpoint {version}: {message}")]
    Checkpoint {
        /// The checkpoint's version.
        version: i64,
        /// What is wrong and what to do.
        message: String,
    },
    /// A request that does not fit the migrations: a target version that does not exist or
    /// is not applied.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// A migration's directive (`-- lock_timeout: …`) has a value that is not a duration.
    #[error("migration {version}: {message}")]
    Directive {
        /// The migration's version.
        version: i64,
        /// What is wrong.
        message: String,
    },
    /// A migration's SQL failed; nothing of it remains when it ran in a transaction.
    #[error("migration {version} ({description}) failed: {message}")]
    Migration {
        /// Its version.
        version: i64,
        /// Its description.
        description: String,
        /// The server's message with SQLSTATE and the line in the file, when known.
        message: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The connection to the database was lost (a cut network, a server restart) while a
    /// migration ran; `outcome` says what of it is applied. Running the same command again
    /// reads the history and goes on from there.
    #[error(
        "the connection to the database was lost while {doing} migration {version} ({description}): {outcome}; run the same command again, which goes on from there ({source})"
    )]
    ConnectionLost {
        /// `applying` or `reverting`.
        doing: &'static str,
        /// Its version.
        version: i64,
        /// Its description.
        description: String,
        /// What of it is applied, for a human.
        outcome: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query of the runner's own bookkeeping failed.
    #[error("database error while {doing}: {source}")]
    Database {
        /// What the runner was doing.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

impl MigrateError {
    /// The [`MigrateError::Database`] of a failed bookkeeping query while `doing`.
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { doing, source }
    }
}

fn humanize(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
