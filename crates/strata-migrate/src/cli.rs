//! The `strata-migrate` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sqlx::migrate::Migrator;
use strata_config::{Config, DatabaseUrl, Origin};

use crate::{MIGRATOR, MigrateError, MigrationStatus, Session, State, UpOptions, UpReport, exit};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a migration failed, or the recorded history does not match the files
  2  bad command-line usage
  3  the configuration is invalid or the database cannot be reached
  4  the migration lock was not obtained within migrations.lock_wait
  5  `check` found something it was told to fail on";

/// Applies and inspects the schema migrations of a PostgreSQL database.
///
/// Settings come from strata.toml (or $STRATA_CONFIG), STRATA_<SECTION>__<KEY> variables and
/// DATABASE_URL; see the strata-config README.
#[derive(Parser)]
#[command(name = "strata-migrate", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Database URL; overrides DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Read migrations from this directory instead of those built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    source: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply every pending migration, in version order.
    Up {
        /// Apply even though the database has applied versions whose files are gone.
        #[arg(long)]
        ignore_missing: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Create a timestamped reversible pair `<version>_<NAME>.up.sql` / `.down.sql`.
    New {
        /// Lowercase letters, digits and _ (e.g. add_tasks_due_date).
        name: String,
        /// Start both files with `-- no-transaction` (for CREATE INDEX CONCURRENTLY).
        #[arg(long)]
        no_transaction: bool,
        /// Where to write them.
        #[arg(long, default_value = "migrations")]
        dir: PathBuf,
    },
    /// List every migration with its state; read-only, takes no lock.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Parses the arguments, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(exit::MIGRATION);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line; returns the exit code of a command that completed.
///
/// # Errors
///
/// Any [`MigrateError`]; its [`MigrateError::exit_code`] is the process's.
pub async fn run(cli: Cli) -> Result<u8, MigrateError> {
    if let Command::New { name, no_transaction, dir } = &cli.command {
        for path in crate::new::create(dir, name, *no_transaction)? {
            println!("created {}", path.display());
        }
        return Ok(exit::OK);
    }
    let mut config = Config::load()?;
    if let Some(url) = cli.database_url {
        let origin = Origin::Flag { flag: "--database-url".to_owned() };
        config.database.override_url(DatabaseUrl::new(url), origin)?;
    }
    strata_config::init_tracing(&config.log)?;
    let source;
    let migrator: &Migrator = match &cli.source {
        Some(dir) => {
            source = Migrator::new(dir.as_path())
                .await
                .map_err(|e| MigrateError::Source { dir: dir.clone(), message: e.to_string() })?;
            &source
        }
        None => &MIGRATOR,
    };
    let mut session = Session::from_config(&config).await?;
    let result = match cli.command {
        Command::Up { ignore_missing, format } => {
            let mut options = UpOptions::from_config(&config.migrations);
            options.ignore_missing = ignore_missing;
            let outcome = session.up(migrator, &options).await;
            if let Ok(report) = &outcome {
                print_up(report, format);
            }
            outcome.map(|_| exit::OK)
        }
        Command::New { .. } => Ok(exit::OK),
        Command::Status { format } => {
            let outcome = crate::status(session.connection(), migrator).await;
            if let Ok(lines) = &outcome {
                print_status(lines, format);
            }
            outcome.map(|_| exit::OK)
        }
    };
    session.close().await;
    result
}

fn print_up(report: &UpReport, format: Format) {
    match format {
        Format::Json => println!("{}", to_json(report)),
        Format::Text => {
            for m in &report.applied {
                println!("applied {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
            }
            match report.applied.len() {
                0 => println!("nothing to apply: the database is up to date"),
                n => println!("{n} migration(s) applied; the database is up to date"),
            }
        }
    }
}

fn print_status(lines: &[MigrationStatus], format: Format) {
    if let Format::Json = format {
        println!("{}", to_json(&lines));
        return;
    }
    println!(
        "{:<16} {:<17} {:<26} {:>10}  DESCRIPTION",
        "VERSION", "STATE", "APPLIED AT", "DURATION"
    );
    for l in lines {
        let at = l
            .applied_at
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "-".to_owned());
        let duration = l.duration_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        println!(
            "{:<16} {:<17} {:<26} {:>10}  {}",
            l.version,
            l.state.as_str(),
            at,
            duration,
            l.description
        );
    }
    let count = |state| lines.iter().filter(|l| l.state == state).count();
    println!(
        "{} applied, {} pending, {} checksum changed, {} file missing, {} failed",
        count(State::Applied),
        count(State::Pending),
        count(State::ChecksumChanged),
        count(State::FileMissing),
        count(State::Failed)
    );
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
