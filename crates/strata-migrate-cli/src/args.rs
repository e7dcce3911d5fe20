//! The command line's grammar: the global flags, the subcommands and their flags, as clap
//! parses them. Nothing here runs anything.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use strata_migrate::check::Kind;
use strata_migrate::{Settings, UpOptions};

use crate::terminal::When;

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a migration failed, the recorded history does not match the files, or the output
     could not be written
  2  bad command-line usage
  3  the configuration is invalid, the database cannot be reached, or the connection was
     lost during a migration (running the command again goes on from there)
  4  the migration lock was not obtained within migrations.lock_wait
  5  `check` found something it was told to fail on
130  interrupted by Ctrl-C (SIGINT): the running statement was cancelled, and what it left
     is printed
143  stopped by SIGTERM, likewise";

/// Applies and inspects the schema migrations of a PostgreSQL database.
///
/// Settings come from strata.toml (or $STRATA_CONFIG), `STRATA_<SECTION>__<KEY>` variables and
/// DATABASE_URL; see the strata-config README.
#[derive(Parser)]
#[command(name = "strata-migrate", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The flags every subcommand takes (`global`: before or after the subcommand's name).
#[derive(Args)]
pub(crate) struct Global {
    /// Database URL; overrides DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Read migrations from this directory instead of those built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) source: Option<PathBuf>,
    /// Output format of the commands that report.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Run `up`, `status` or `check` on every database of FILE (one URL per line; `#`
    /// comments), each with its own session, lock and report.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "targets_query")]
    pub(crate) targets: Option<PathBuf>,
    /// As --targets, with the URLs from a query's first column, run on the configured
    /// database (a catalog of shards).
    #[arg(long, global = true, value_name = "SQL")]
    pub(crate) targets_query: Option<String>,
    /// With --targets: how many databases at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 4)]
    pub(crate) parallel: usize,
    /// With --targets: start no other database once one failed.
    #[arg(long, global = true)]
    pub(crate) fail_fast: bool,
    /// A live progress display of the running migration on standard error: at a terminal
    /// with text output (auto), always, or never (log lines instead).
    #[arg(long, global = true, value_enum, default_value_t = When::Auto)]
    pub(crate) progress: When,
    /// Colour in status and findings: at a terminal unless NO_COLOR is set (auto), always,
    /// or never.
    #[arg(long, global = true, value_enum, default_value_t = clap::ColorChoice::Auto)]
    pub(crate) color: clap::ColorChoice,
    /// Let up, down, redo, baseline and repair write to a maintenance database (postgres,
    /// template0, template1), which they refuse by default.
    #[arg(long, global = true)]
    pub(crate) allow_maintenance_database: bool,
}

/// The subcommands.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Apply pending migrations, in version order.
    Up(UpArgs),
    /// Revert applied migrations with their .down.sql files, newest first.
    #[command(group(ArgGroup::new("target").required(true).args(["to", "steps"])))]
    Down {
        /// Revert every applied version above this one (0: all).
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        /// Revert the newest N applied versions.
        #[arg(long, value_name = "N")]
        steps: Option<usize>,
        /// Print the SQL that would run; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert the newest N applied migrations with their .down.sql and apply them again, under
    /// one hold of the lock: the loop of writing a migration. Development databases only (a
    /// loopback host or a Unix socket, or migrations.development = true).
    Redo {
        /// How many of the newest applied migrations.
        #[arg(long, value_name = "N", default_value_t = 1)]
        count: usize,
    },
    /// List every migration with its state; read-only, takes no lock.
    Status,
    /// Exit 5 when the migrations are not as they should be (for CI and deploy gates).
    Check {
        /// What to fail on (comma-separated); default: all.
        #[arg(long, value_delimiter = ',', default_values_t = Kind::ALL)]
        fail_on: Vec<Kind>,
    },
    /// Mark every migration up to VERSION applied without running it; recorded.
    Baseline {
        /// The last version that the database already has.
        #[arg(long, value_name = "VERSION")]
        to: i64,
    },
    /// Accept the current checksum of edited applied files and settle failed migrations;
    /// recorded.
    Repair {
        /// Record a failed migration as applied (you finished it by hand) instead of removing
        /// its record (you undid it, and the next `up` runs it again from the start).
        #[arg(long)]
        mark_applied: bool,
    },
    /// Print the database's schema, one object per line, sorted (what schema.sql holds); with
    /// --check FILE, exit 5 when FILE differs from it.
    Schema {
        /// Compare with this file instead of printing.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Prove each .down.sql undoes its .up.sql, on a scratch database (dropped afterwards):
    /// up, down, compare; up again, compare. Exit 5 on the first that does not.
    Verify {
        /// A migration without a .down.sql fails the verification too.
        #[arg(long)]
        require_down: bool,
    },
    /// Compare the database with the schema its applied migrations produce (built on a
    /// scratch database); exit 5 when they differ.
    Diff,
    /// Write the migration that takes the history (--source, default migrations/) to a desired
    /// schema, safe under traffic, after proving it on scratch databases: its up gives exactly
    /// the desired schema, its down gives back the previous one. Nothing is written otherwise.
    Generate(GenerateArgs),
    /// Squash the files through VERSION into one checkpoint migration, after proving it on
    /// scratch databases (same schema, same rows as the files; recorded, not run, where the
    /// files were applied), and delete the files it replaces. Refused while the configured
    /// database has one of them failed or pending.
    Squash {
        /// The last version the checkpoint stands for.
        #[arg(long, value_name = "VERSION")]
        through: i64,
        /// The checkpoint's name.
        #[arg(long, default_value = "checkpoint")]
        name: String,
        /// Do not look at the configured database (a history no database has applied yet).
        #[arg(long)]
        no_database: bool,
    },
    /// Lint the pending migrations (or --all, or the named files) with squawk's rules, told
    /// what the runner does and, with a database, how big the tables are. Exit 5 when errors
    /// remain.
    Lint(LintArgs),
    /// Print the sum file of the migrations (a hash of all, then each file's checksum); with
    /// --check FILE, exit 5 when FILE differs (a migration added, edited or removed since).
    Sum {
        /// Compare with this file instead of printing.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Print the effective settings (defaults, strata.toml or $STRATA_CONFIG, STRATA_* variables,
    /// DATABASE_URL, --database-url), passwords hidden; connects to nothing.
    Config {
        /// Print only this setting's value (e.g. database.url), for scripts. The URL is printed
        /// whole, password included, because a script needs it to connect: send it to a
        /// program, not to a log. An unset setting prints nothing.
        #[arg(long, value_name = "KEY")]
        get: Option<String>,
    },
    /// Print the completion script of SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `man -l -` reads it).
    Man,
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
}

/// The flags of `generate`.
#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// The migration's name (lowercase letters, digits and _).
    #[arg(required_unless_present = "check")]
    pub(crate) name: Option<String>,
    /// Only compare the history with the desired schema: exit 5 when they differ, with the
    /// lines that do; write nothing.
    #[arg(long)]
    pub(crate) check: bool,
    /// The desired schema: a .sql file or a directory of them (pg_dump --schema-only
    /// output works).
    #[arg(long, value_name = "PATH", default_value = "schema", conflicts_with = "to_url")]
    pub(crate) to: PathBuf,
    /// The desired schema is this live database's (read only): to adopt an existing one.
    #[arg(long, value_name = "URL")]
    pub(crate) to_url: Option<String>,
    /// A rename, not a drop and an add: TABLE=NEW_NAME or TABLE.COLUMN=NEW_NAME
    /// (repeatable).
    #[arg(long, value_name = "OLD=NEW")]
    pub(crate) rename: Vec<String>,
}

/// The flags of `lint`.
#[derive(Args)]
pub(crate) struct LintArgs {
    /// Every migration, not only the pending ones (no database needed).
    #[arg(long)]
    pub(crate) all: bool,
    /// `FILE RULE: reason` lines: ignores for files already applied (they cannot take
    /// comments).
    #[arg(long, value_name = "FILE")]
    pub(crate) ignores: Option<PathBuf>,
    /// With a database: a table with at least this many rows makes a finding an error.
    #[arg(long, value_name = "ROWS", default_value_t = 100_000.0)]
    pub(crate) large_table_rows: f64,
    /// Only these files (names as in the migrations directory).
    pub(crate) files: Vec<String>,
}

/// The flags of `up`.
#[derive(Args)]
pub(crate) struct UpArgs {
    /// Apply only up to (and including) this version.
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<i64>,
    /// Print the SQL that would run, with transaction boundaries and settings; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Apply pending versions older than the newest applied one.
    #[arg(long)]
    pub(crate) allow_out_of_order: bool,
    /// Apply even though the database has applied versions whose files are gone.
    #[arg(long)]
    pub(crate) ignore_missing: bool,
    /// Then wait up to DURATION (e.g. 30s) until every streaming replica has replayed them.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) wait_for_replicas: Option<std::time::Duration>,
    /// Retries of a migration whose lock_timeout expired (exponential backoff, jitter).
    #[arg(long, value_name = "N")]
    pub(crate) lock_retries: Option<u32>,
}

impl UpArgs {
    /// The library's options, on `settings`.
    pub(crate) fn options(&self, mut settings: Settings) -> UpOptions {
        settings.lock_retries = self.lock_retries.unwrap_or(settings.lock_retries);
        let mut options = UpOptions::new(settings);
        options.target = self.to;
        options.dry_run = self.dry_run;
        options.ignore_missing = self.ignore_missing;
        options.allow_out_of_order = self.allow_out_of_order;
        options.wait_for_replicas = self.wait_for_replicas;
        options
    }
}

/// `--format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    // (No doc comments: clap would print them as a list in `--help`.)
    Text,
    Json,
}

impl Global {
    /// Whether the output is JSON.
    pub(crate) fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Whether `--targets` or `--targets-query` was given.
    pub(crate) fn has_targets(&self) -> bool {
        self.targets.is_some() || self.targets_query.is_some()
    }
}
