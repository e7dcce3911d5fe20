//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// Everything that can go wrong while setting up, driving or querying a [`PrivateCluster`].
///
/// Each message says what is missing or what failed, and for server failures ends with the
/// last lines of the server log. `Debug` prints the same text followed by the source chain, so
/// a test returning `Result<(), HarnessError>` fails with a readable message.
///
/// [`PrivateCluster`]: crate::PrivateCluster
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No directory holds all of `initdb`, `pg_ctl` and `postgres`.
    #[error(
        "the PostgreSQL server programs (initdb, pg_ctl, postgres) are not installed: none of them \
         is on PATH next to the others, nor in /usr/lib/postgresql/*/bin. \
         Install them (Debian/Ubuntu: sudo apt-get install postgresql)"
    )]
    ServerNotInstalled,
    /// `psql` is found neither next to the server programs nor on PATH.
    #[error(
        "psql is not installed (looked in {} and on PATH): \
         install it (Debian/Ubuntu: sudo apt-get install postgresql-client)",
        .bin_dir.display()
    )]
    PsqlNotInstalled {
        /// The directory of the server programs.
        bin_dir: PathBuf,
    },
    /// The tests run as root, and the server refuses root, but there is no user to run it as.
    #[error(
        "running as root but there is no postgres system user to run the server as (PostgreSQL \
         refuses to run as root): install the postgresql package, which creates the user, or run \
         the tests as a normal user"
    )]
    NoPostgresUser,
    /// No candidate directory for clusters can be created and reached by the server's user.
    #[error("no directory can hold a test cluster:{}", list(.tried))]
    NoClusterDir {
        /// Each directory tried, with why it cannot be used.
        tried: Vec<String>,
    },
    /// A file system operation failed.
    #[error("could not {action} {}", .path.display())]
    Io {
        /// What was being done, such as `create directory`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// No free TCP port could be bound on 127.0.0.1.
    #[error("could not find a free TCP port on 127.0.0.1")]
    FreePort(#[source] io::Error),
    /// The fault proxy could not bind its port or start its thread.
    #[error("the fault proxy could not start: {what}")]
    Proxy {
        /// What failed, such as `binding a port on 127.0.0.1`.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A program could not be started at all.
    #[error("could not run {}", .program.display())]
    Spawn {
        /// The program, such as `/usr/lib/postgresql/15/bin/pg_ctl` or `runuser`.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The server cannot load Citus (`shared_preload_libraries = 'citus'`).
    #[error(
        "Citus is not installed for this PostgreSQL: `scripts/citus.sh installed` builds it from \
         ../shared/vendor/citus and installs it (as root; .ci/run does), or install your \
         vendor's citus package"
    )]
    CitusNotInstalled,
    /// PgBouncer is not installed.
    #[error(
        "pgbouncer is not installed (looked on PATH and in /usr/sbin): install it \
         (Debian/Ubuntu: sudo apt-get install pgbouncer; .ci/run does when it runs as root)"
    )]
    PgBouncerNotInstalled,
    /// No PgBouncer of 1.21 or later could be found or built (`scripts/pgbouncer.sh modern`).
    #[error(
        "no PgBouncer 1.21 or later (max_prepared_statements) could be found or built: {reason} \
         (`scripts/pgbouncer.sh modern` builds 1.25.2 from ../shared/vendor/pgbouncer, or set \
         PGBOUNCER_MODERN to one)"
    )]
    PgBouncerModernMissing {
        /// What the script said.
        reason: String,
    },
    /// PgBouncer started but does not accept connections.
    #[error("pgbouncer on 127.0.0.1:{port} did not accept connections within {waited_secs} s{}", log_section(Some(.log.as_path()), .log_tail))]
    PgBouncerNotAccepting {
        /// Its port.
        port: u16,
        /// How long we waited, in seconds.
        waited_secs: u64,
        /// Its log.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}){}{}", colon(.output), log_section(.log.as_deref(), .log_tail))]
    Command {
        /// The command line as run.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed (stderr, then stdout), trimmed.
        output: String,
        /// The server log, when the command drives a server.
        log: Option<PathBuf>,
        /// The last lines of that log.
        log_tail: String,
    },
    /// Every port tried was taken by another process before the server could bind it.
    #[error(
        "the cluster in {} could not start: the {attempts} free ports tried were each taken \
         before the server bound them{}",
        .data_dir.display(),
        log_section(Some(.log), .log_tail)
    )]
    PortsTaken {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// How many ports were tried.
        attempts: u32,
        /// The server log.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// The server started but did not accept connections in time.
    #[error(
        "the cluster in {} does not accept connections on 127.0.0.1:{port} after {}s{}",
        .data_dir.display(),
        .waited_secs,
        log_section(Some(.log), .log_tail)
    )]
    NotAccepting {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// The port it should listen on.
        port: u16,
        /// How long we waited, in seconds.
        waited_secs: u64,
        /// The server log.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A row's shard is on no worker of the Citus cluster (on the coordinator, say).
    #[error("the shard of {table} holding {key} is on no worker (node port {port:?})")]
    ShardNotOnAWorker {
        /// The distributed table.
        table: String,
        /// The distribution column's value.
        key: String,
        /// The port of the node that holds it, if psql named one.
        port: Option<u16>,
    },
    /// `psql` ran SQL that failed, or could not connect.
    #[error("psql on database {database} of the cluster on 127.0.0.1:{port} failed: {stderr}")]
    Psql {
        /// The database connected to.
        database: String,
        /// The cluster's port.
        port: u16,
        /// What psql printed on stderr, trimmed.
        stderr: String,
    },
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    items.iter().map(|item| format!("\n  - {item}")).collect()
}

fn colon(text: &str) -> String {
    if text.is_empty() { String::new() } else { format!(": {text}") }
}

fn log_section(log: Option<&Path>, tail: &str) -> String {
    match log {
        Some(log) if !tail.is_empty() => {
            format!("\nlast lines of the server log {}:\n{tail}", log.display())
        }
        Some(log) => format!("\n(the server log {} is empty or missing)", log.display()),
        None => String::new(),
    }
}
