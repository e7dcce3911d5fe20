//! `strata-migrate`: the command line over the library's public API. Parsing, output, exit
//! codes and flag hints live here; the library knows nothing of them.

mod new;
mod output;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use sqlx::migrate::Migrator;
use strata_config::{Config, DatabaseUrl, Origin};

use strata_migrate::cancel::Canceller;
use strata_migrate::check::Kind;
use strata_migrate::targets::TargetOptions;
use strata_migrate::{
    BaselineOptions, DownOptions, DownTarget, MIGRATOR, MigrateError, RedoOptions, RepairOptions,
    Session, Settings, UpOptions,
};
use strata_migrate_cli::exit;

use strata_schema::SchemaError;

use crate::terminal::{Interrupted, Live, When};

const EXIT_CODES: &str = "\
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
struct Cli {
    /// Database URL; overrides DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Read migrations from this directory instead of those built into the binary.
    #[arg(long, global = true, value_name = "DIR")]
    source: Option<PathBuf>,
    /// Output format of the commands that report.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Run `up`, `status` or `check` on every database of FILE (one URL per line; `#`
    /// comments), each with its own session, lock and report.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "targets_query")]
    targets: Option<PathBuf>,
    /// As --targets, with the URLs from a query's first column, run on the configured
    /// database (a catalog of shards).
    #[arg(long, global = true, value_name = "SQL")]
    targets_query: Option<String>,
    /// With --targets: how many databases at once.
    #[arg(long, global = true, value_name = "N", default_value_t = 4)]
    parallel: usize,
    /// With --targets: start no other database once one failed.
    #[arg(long, global = true)]
    fail_fast: bool,
    /// A live progress display of the running migration on standard error: at a terminal
    /// with text output (auto), always, or never (log lines instead).
    #[arg(long, global = true, value_enum, default_value_t = When::Auto)]
    progress: When,
    /// Colour in status and findings: at a terminal unless NO_COLOR is set (auto), always,
    /// or never.
    #[arg(long, global = true, value_enum, default_value_t = clap::ColorChoice::Auto)]
    color: clap::ColorChoice,
    /// Let up, down, redo, baseline and repair write to a maintenance database (postgres,
    /// template0, template1), which they refuse by default.
    #[arg(long, global = true)]
    allow_maintenance_database: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Generate {
        /// The migration's name (lowercase letters, digits and _).
        #[arg(required_unless_present = "check")]
        name: Option<String>,
        /// Only compare the history with the desired schema: exit 5 when they differ, with the
        /// lines that do; write nothing.
        #[arg(long)]
        check: bool,
        /// The desired schema: a .sql file or a directory of them (pg_dump --schema-only
        /// output works).
        #[arg(long, value_name = "PATH", default_value = "schema", conflicts_with = "to_url")]
        to: PathBuf,
        /// The desired schema is this live database's (read only): to adopt an existing one.
        #[arg(long, value_name = "URL")]
        to_url: Option<String>,
        /// A rename, not a drop and an add: TABLE=NEW_NAME or TABLE.COLUMN=NEW_NAME
        /// (repeatable).
        #[arg(long, value_name = "OLD=NEW")]
        rename: Vec<String>,
    },
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
    Lint {
        /// Every migration, not only the pending ones (no database needed).
        #[arg(long)]
        all: bool,
        /// `FILE RULE: reason` lines: ignores for files already applied (they cannot take
        /// comments).
        #[arg(long, value_name = "FILE")]
        ignores: Option<PathBuf>,
        /// With a database: a table with at least this many rows makes a finding an error.
        #[arg(long, value_name = "ROWS", default_value_t = 100_000.0)]
        large_table_rows: f64,
        /// Only these files (names as in the migrations directory).
        files: Vec<String>,
    },
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

/// The flags of `up`.
#[derive(Args)]
struct UpArgs {
    /// Apply only up to (and including) this version.
    #[arg(long, value_name = "VERSION")]
    to: Option<i64>,
    /// Print the SQL that would run, with transaction boundaries and settings; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply pending versions older than the newest applied one.
    #[arg(long)]
    allow_out_of_order: bool,
    /// Apply even though the database has applied versions whose files are gone.
    #[arg(long)]
    ignore_missing: bool,
    /// Then wait up to DURATION (e.g. 30s) until every streaming replica has replayed them.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    wait_for_replicas: Option<std::time::Duration>,
    /// Retries of a migration whose lock_timeout expired (exponential backoff, jitter).
    #[arg(long, value_name = "N")]
    lock_retries: Option<u32>,
}

impl UpArgs {
    /// The library's options, on `settings`.
    fn options(&self, mut settings: Settings) -> UpOptions {
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Parses the arguments, runs the command, and returns its exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    terminal::color(cli.color);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(exit::MIGRATION);
        }
    };
    let context = Context::of(&cli.command);
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", e.explain(&context));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line; returns the exit code of a command that completed.
async fn run(cli: Cli) -> Result<u8, CliError> {
    if let Command::Sum { check } = &cli.command {
        let migrator = migrations(&cli).await?;
        let sum = strata_migrate::files::sum_file(migrator.as_ref().unwrap_or(&MIGRATOR));
        return output::sum(&sum, check.as_deref());
    }
    if let Command::Completions { shell } = &cli.command {
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "strata-migrate", &mut out);
        return output::bytes(&out).map(|()| exit::OK);
    }
    if let Command::Man = &cli.command {
        let mut out = Vec::new();
        clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(CliError::Output)?;
        return output::bytes(&out).map(|()| exit::OK);
    }
    if let Command::New { name, no_transaction, dir } = &cli.command {
        let paths = new::create(dir, name, *no_transaction)?;
        output::created(&paths, cli.format == Format::Json)?;
        return Ok(exit::OK);
    }
    let mut config = Config::load().map_err(MigrateError::from)?;
    if let Some(url) = cli.database_url.clone() {
        let origin = Origin::Flag { flag: "--database-url".to_owned() };
        config.database.override_url(DatabaseUrl::new(url), origin).map_err(MigrateError::from)?;
        // The flag names the database to work on, directly: it is the runner's URL too.
        config.migrations.url = config.database.url.clone();
    }
    if let Command::Config { get } = &cli.command {
        output::config(&config, get.as_deref(), cli.format == Format::Json)?;
        return Ok(exit::OK);
    }
    if cli.format == Format::Json {
        // Machine-readable output: the log events (progress reports included) as JSON too.
        config.log.format = strata_config::LogFormat::Json;
    }
    let no_targets = cli.targets.is_none() && cli.targets_query.is_none();
    let mut signals =
        if no_targets && cli.command.writes() { terminal::Signals::catch() } else { None };
    let live = if no_targets && cli.command.writes() {
        Live::start(cli.progress, cli.format == Format::Json)
    } else {
        None
    };
    if live.is_some() {
        // The display says what the log lines would; errors are printed at the end.
        config.log.filter = "error".to_owned();
    }
    strata_config::init_tracing(&config.log).map_err(MigrateError::from)?;
    if cli.targets.is_some() || cli.targets_query.is_some() {
        return on_targets(cli, &config).await;
    }
    if let Command::Lint { all, ignores, large_table_rows, files } = &cli.command {
        let migrator = migrations(&cli).await?;
        let migrator = migrator.as_ref().unwrap_or(&MIGRATOR);
        let mut options = strata_schema::LintOptions::default();
        options.large_table_rows = *large_table_rows;
        if let Some(path) = ignores {
            options.ignore_file = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--ignores {}: {e}", path.display())))?;
        }
        let has_url = config.migrations.url.is_some() || config.database.url.is_some();
        let mut session = if has_url { Some(Session::from_config(&config).await?) } else { None };
        let pending: Option<Vec<i64>> = match (&mut session, *all || !files.is_empty()) {
            (Some(session), false) => Some(
                session
                    .status(migrator)
                    .await?
                    .into_iter()
                    .filter(|l| l.state == strata_migrate::status::State::Pending)
                    .map(|l| l.version)
                    .collect(),
            ),
            (None, false) => {
                return Err(CliError::Usage(
                    "lint of the pending migrations needs a database; or pass --all or files"
                        .to_owned(),
                ));
            }
            (_, true) => None,
        };
        let chosen: Vec<&sqlx::migrate::Migration> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .filter(|m| pending.as_ref().is_none_or(|p| p.contains(&m.version)))
            .filter(|m| {
                files.is_empty()
                    || files.iter().any(|f| f.ends_with(&strata_migrate::files::file_name(m)))
            })
            .collect();
        let report =
            strata_schema::lint(&chosen, session.as_mut().map(Session::raw_connection), &options).await;
        if let Some(session) = session {
            session.close().await;
        }
        let report = report?;
        output::lint(&report, chosen.len(), cli.format == Format::Json)?;
        return Ok(if report.failed() { exit::CHECK } else { exit::OK });
    }
    if let Command::Verify { require_down } = &cli.command {
        let migrator = migrations(&cli).await?;
        let report =
            until_ctrl_c(strata_schema::verify(&config, migrator.as_ref().unwrap_or(&MIGRATOR)))
                .await?;
        output::verify(&report, cli.format == Format::Json)?;
        return Ok(if report.failed(*require_down) { exit::CHECK } else { exit::OK });
    }
    if let Command::Generate { name, check, to, to_url, rename } = &cli.command {
        let source = cli.source.clone().unwrap_or_else(|| PathBuf::from("migrations"));
        let desired = match to_url {
            Some(url) => strata_schema::Desired::Url(DatabaseUrl::new(url.clone())),
            None => strata_schema::Desired::Files(to.clone()),
        };
        let name = name.clone().unwrap_or_else(|| "check".to_owned());
        let mut options = strata_schema::GenerateOptions::new(name, source, desired);
        options.renames = rename.clone();
        options.check = *check;
        let generation = until_ctrl_c(strata_schema::generate(&config, &options)).await?;
        output::generated(&generation, cli.format == Format::Json)?;
        let differs = matches!(generation, strata_schema::Generation::Differs { .. });
        return Ok(if differs { exit::CHECK } else { exit::OK });
    }
    if let Command::Squash { through, name, no_database } = &cli.command {
        let source = cli.source.clone().unwrap_or_else(|| PathBuf::from("migrations"));
        let mut options = strata_schema::SquashOptions::new(source, *through);
        options.name = name.clone();
        options.check_database = !no_database;
        let report = until_ctrl_c(strata_schema::squash(&config, &options)).await?;
        output::squashed(&report, cli.format == Format::Json)?;
        return Ok(exit::OK);
    }
    if let Command::Diff = &cli.command {
        let migrator = migrations(&cli).await?;
        let report =
            until_ctrl_c(strata_schema::diff(&config, migrator.as_ref().unwrap_or(&MIGRATOR)))
                .await?;
        output::diff(&report, cli.format == Format::Json)?;
        return Ok(if report.differences.is_empty() { exit::OK } else { exit::CHECK });
    }
    // Reading the files overlaps connecting (mostly waiting on the server: TCP, TLS,
    // authentication, back-end start-up).
    let (source, session) = tokio::join!(migrations(&cli), Session::from_config(&config));
    let source = source?;
    let mut session = session?;
    let migrator = source.as_ref().unwrap_or(&MIGRATOR);
    let mut settings = Settings::from_config(&config.migrations);
    settings.allow_maintenance_database |= cli.allow_maintenance_database;
    if let Some(live) = &live {
        settings.observer = Some(live.observer());
        // The display shows the phase within a second rather than after five.
        settings.progress_after = settings.progress_after.min(Duration::from_secs(1));
    }
    let canceller = session.canceller();
    let verb = cli.command.verb();
    let result =
        command(&mut session, migrator, cli.command, settings, cli.format, signals.as_mut()).await;
    if let Some(live) = live {
        live.finish();
    }
    session.close().await;
    match result {
        Err(CliError::Interrupted(interrupted)) => {
            report_interruption(&config, migrator, &canceller, &interrupted, verb).await;
            Ok(interrupted.signal.exit_code())
        }
        other => other,
    }
}

/// Says what an interrupted command left: whether the server stopped its statement and
/// ended its session, whether the migration lock is free, the migrations not applied, and
/// what to run next.
async fn report_interruption(
    config: &Config,
    migrator: &Migrator,
    canceller: &Canceller,
    interrupted: &Interrupted,
    verb: &str,
) {
    let mut out = vec![format!("interrupted by {}", interrupted.signal.name())];
    if let Some(error) = &interrupted.error {
        out.push(format!("  the cancelled statement: {error}"));
    } else if !interrupted.cancelled {
        out.push(
            "  no statement was running (waiting for the lock, or between statements)".to_owned(),
        );
    }
    match canceller.settle(Duration::from_secs(5)).await {
        Ok(settled) => {
            out.push(if settled.ended {
                format!(
                    "  the server ended this runner's session (pid {}): no statement of it runs, its transaction rolled back, and it holds no lock",
                    canceller.pid()
                )
            } else {
                format!(
                    "  the server has not yet ended this runner's session (pid {}); it does within about a second of the connection closing",
                    canceller.pid()
                )
            });
            out.push(if settled.lock_free {
                "  the migration lock is free".to_owned()
            } else {
                "  the migration lock is held by another session (another runner)".to_owned()
            });
        }
        Err(e) => out.push(format!("  could not read what the session left: {e}")),
    }
    match Session::from_config(config).await {
        Ok(mut session) => {
            if let Ok(lines) = session.status(migrator).await {
                let waiting: Vec<String> = lines
                    .iter()
                    .filter(|l| {
                        !matches!(
                            l.state,
                            strata_migrate::status::State::Applied
                                | strata_migrate::status::State::InCheckpoint
                        )
                    })
                    .map(|l| {
                        let note = l.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                        format!("  {} {}: {}{note}", l.version, l.description, l.state.as_str())
                    })
                    .collect();
                if waiting.is_empty() {
                    out.push("  every migration is applied".to_owned());
                } else {
                    out.extend(waiting);
                }
            }
            session.close().await;
        }
        Err(e) => out.push(format!("  could not read the migrations' state: {e}")),
    }
    out.push(format!("  next: run `strata-migrate {verb}` again when ready"));
    eprintln!("{}", out.join("\n"));
}

/// The migrations of `--source`, if given.
async fn migrations(cli: &Cli) -> Result<Option<Migrator>, MigrateError> {
    match &cli.source {
        Some(dir) => strata_migrate::files::read_migrations(dir).await.map(Some),
        None => Ok(None),
    }
}

/// `up`, `status` or `check` on every database of a targets file.
async fn on_targets(cli: Cli, config: &Config) -> Result<u8, CliError> {
    let targets = match (&cli.targets, &cli.targets_query) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::Usage(format!("--targets {}: {e}", file.display())))?;
            strata_migrate::targets::parse_targets(&text)?
        }
        (None, Some(sql)) => strata_migrate::targets::query_targets(config, sql).await?,
        (None, None) => return Err(CliError::Usage("--targets needs a file".to_owned())),
    };
    let source = migrations(&cli).await?;
    let migrator = source.as_ref().unwrap_or(&MIGRATOR);
    let json = cli.format == Format::Json;
    let mut targets = TargetOptions::new(targets);
    targets.parallel = cli.parallel;
    targets.fail_fast = cli.fail_fast;
    let any_failed = |failed: bool| if failed { exit::MIGRATION } else { exit::OK };
    match cli.command {
        Command::Up(up) => {
            let options = up.options(Settings::from_config(&config.migrations));
            let reports = strata_migrate::targets::on_targets(config, &targets, async |s| {
                s.up(migrator, &options).await
            })
            .await;
            output::targets(&reports, json, output::up_summary)?;
            Ok(any_failed(reports.iter().any(|r| r.failed())))
        }
        Command::Status => {
            let reports = strata_migrate::targets::on_targets(config, &targets, async |s| {
                s.status(migrator).await
            })
            .await;
            output::targets(&reports, json, output::status_summary)?;
            Ok(any_failed(reports.iter().any(|r| r.failed())))
        }
        Command::Check { fail_on } => {
            let reports = strata_migrate::targets::on_targets(config, &targets, async |s| {
                let lines = s.status(migrator).await?;
                Ok(strata_migrate::check::check(&lines, &fail_on))
            })
            .await;
            output::targets(&reports, json, output::check_summary)?;
            let found = reports.iter().any(
                |r| matches!(&r.outcome, strata_migrate::targets::Outcome::Done { report } if report.failed),
            );
            match (reports.iter().any(|r| r.failed()), found) {
                (true, _) => Ok(exit::MIGRATION),
                (false, true) => Ok(exit::CHECK),
                (false, false) => Ok(exit::OK),
            }
        }
        _ => Err(CliError::Usage("--targets works with up, status and check".to_owned())),
    }
}

async fn command(
    session: &mut Session,
    migrator: &Migrator,
    command: Command,
    settings: Settings,
    format: Format,
    signals: Option<&mut terminal::Signals>,
) -> Result<u8, CliError> {
    let json = format == Format::Json;
    let canceller = session.canceller();
    match command {
        Command::Up(up) => {
            let options = up.options(settings);
            let report = guarded(&canceller, signals, session.up(migrator, &options)).await?;
            output::up(&report, json)?;
        }
        Command::Redo { count } => {
            let report = guarded(
                &canceller,
                signals,
                session.redo(migrator, &RedoOptions::new(settings, count)),
            )
            .await?;
            output::redo(&report, json)?;
        }
        Command::Down { to, steps, dry_run } => {
            let target = match (to, steps) {
                (Some(to), _) => DownTarget::To(to),
                (None, Some(steps)) => DownTarget::Steps(steps),
                (None, None) => {
                    return Err(CliError::Usage("down needs --to VERSION or --steps N".to_owned()));
                }
            };
            let mut options = DownOptions::new(settings, target);
            options.dry_run = dry_run;
            let report = guarded(&canceller, signals, session.down(migrator, &options)).await?;
            output::down(&report, json)?;
        }
        Command::Status => {
            let development = session.is_development(&settings);
            let about = (session.database().to_owned(), session.host().to_owned(), development);
            let lines = session.status(migrator).await?;
            output::status(&lines, &about, json)?;
        }
        Command::Check { fail_on } => {
            let lines = session.status(migrator).await?;
            let report = strata_migrate::check::check(&lines, &fail_on);
            output::check(&report, json)?;
            if report.failed {
                return Ok(exit::CHECK);
            }
        }
        Command::Baseline { to } => {
            let report = guarded(
                &canceller,
                signals,
                session.baseline(migrator, &BaselineOptions::new(settings, to)),
            )
            .await?;
            output::baseline(&report, json)?;
        }
        Command::Repair { mark_applied } => {
            let report = guarded(
                &canceller,
                signals,
                session.repair(migrator, &RepairOptions::new(settings, mark_applied)),
            )
            .await?;
            output::repair(&report, json)?;
        }
        Command::Schema { check } => {
            let schema = strata_schema::snapshot(session.raw_connection()).await?;
            return output::schema(&schema, check.as_deref(), json);
        }
        Command::Verify { .. } | Command::Diff | Command::Lint { .. } => {}
        Command::Generate { .. } | Command::Squash { .. } => {}
        Command::New { .. } | Command::Config { .. } | Command::Sum { .. } => {}
        Command::Completions { .. } | Command::Man => {}
    }
    Ok(exit::OK)
}

/// A command on scratch databases, stopped by Ctrl-C: its future is dropped, which drops the
/// scratch database it made ([`strata_migrate::scratch::with_scratch`]).
async fn until_ctrl_c<T>(
    work: impl std::future::Future<Output = Result<T, SchemaError>>,
) -> Result<T, CliError> {
    tokio::select! {
        result = work => Ok(result?),
        _ = tokio::signal::ctrl_c() => Err(CliError::ScratchInterrupted),
    }
}

/// A writing command's work, stopped by Ctrl-C or SIGTERM ([`terminal::interruptible`]).
async fn guarded<T>(
    canceller: &Canceller,
    signals: Option<&mut terminal::Signals>,
    work: impl std::future::Future<Output = Result<T, MigrateError>>,
) -> Result<T, CliError> {
    match terminal::interruptible(canceller, signals, work).await {
        Ok(result) => Ok(result?),
        Err(interrupted) => Err(CliError::Interrupted(Box::new(interrupted))),
    }
}

impl Command {
    /// Whether the command writes (and so shows the live display at a terminal).
    fn writes(&self) -> bool {
        match self {
            Self::Up(up) => !up.dry_run,
            Self::Down { dry_run, .. } => !dry_run,
            Self::Redo { .. } | Self::Baseline { .. } | Self::Repair { .. } => true,
            _ => false,
        }
    }

    /// The subcommand's name, for the advice after an interruption.
    fn verb(&self) -> &'static str {
        match self {
            Self::Up(_) => "up",
            Self::Down { .. } => "down",
            Self::Redo { .. } => "redo",
            Self::Baseline { .. } => "baseline",
            Self::Repair { .. } => "repair",
            _ => "status",
        }
    }
}

/// What stops a command: the library's error, or the command line's own.
#[derive(Debug, thiserror::Error)]
enum CliError {
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
    /// Ctrl-C or SIGTERM stopped a writing command (reported by `run`, never printed as an
    /// error).
    #[error("interrupted by {}", .0.signal.name())]
    Interrupted(Box<Interrupted>),
    /// Ctrl-C stopped a command on a scratch database (`verify`, `diff`, `generate`,
    /// `squash`); dropping its work dropped the database.
    #[error("interrupted (Ctrl-C); the scratch database was dropped")]
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
struct Context {
    /// `up --to N`, `down --to N`, `baseline --to N`: the flag as given.
    target: Option<String>,
}

impl Context {
    fn of(command: &Command) -> Self {
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
    fn exit_code(&self) -> u8 {
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
    fn explain(&self, context: &Context) -> String {
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
