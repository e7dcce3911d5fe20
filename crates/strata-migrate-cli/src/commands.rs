//! One function per subcommand: each takes the global flags and its own, does its work through
//! the libraries, prints its report, and returns the exit code of a command that completed.

use std::future::Future;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use sqlx::migrate::Migrator;
use strata_config::{Config, DatabaseUrl};
use strata_db::MIGRATOR;
use strata_migrate::check::Kind;
use strata_migrate::status::State;
use strata_migrate::targets::{Outcome, TargetOptions, TargetReport};
use strata_migrate::{
    BaselineOptions, DownOptions, DownTarget, MigrateError, RedoOptions, RepairOptions, Session,
    Settings,
};
use strata_migrate_cli::exit;
use strata_schema::{Schema, SchemaError};

use crate::args::{Cli, GenerateArgs, Global, LintArgs, UpArgs};
use crate::error::CliError;
use crate::output::{
    self, Created, Linted, Render, SchemaCheck, Status, SumCheck, Summary, Targets,
};
use crate::setup::{Setup, load_config, migrations};

/// `up`: on the configured database, or on every target.
pub(crate) async fn up(global: &Global, args: UpArgs) -> Result<u8, CliError> {
    let setup = Setup::start(global, !args.dry_run)?;
    if let Some(targets) = targets(global, &setup.config).await? {
        let options = args.options(Settings::from_config(&setup.config.migrations));
        let reports =
            on_targets(global, &setup.config, &targets, async |s, m| s.up(m, &options).await)
                .await?;
        return Ok(if any_failed(&reports) { exit::MIGRATION } else { exit::OK });
    }
    let report = setup
        .on_session(global, "up", async |session, migrator, settings| {
            session.up(migrator, &args.options(settings)).await
        })
        .await?;
    output::print(&report, global.json())?;
    Ok(exit::OK)
}

/// `down`: to a version, or a number of steps.
pub(crate) async fn down(
    global: &Global,
    to: Option<i64>,
    steps: Option<usize>,
    dry_run: bool,
) -> Result<u8, CliError> {
    let setup = Setup::start(global, !dry_run)?.one_database(global)?;
    let target = match (to, steps) {
        (Some(to), _) => DownTarget::To(to),
        (None, Some(steps)) => DownTarget::Steps(steps),
        (None, None) => {
            return Err(CliError::Usage("down needs --to VERSION or --steps N".to_owned()));
        }
    };
    let report = setup
        .on_session(global, "down", async |session, migrator, settings| {
            let mut options = DownOptions::new(settings, target);
            options.dry_run = dry_run;
            session.down(migrator, &options).await
        })
        .await?;
    output::print(&report, global.json())?;
    Ok(exit::OK)
}

/// `redo`: the newest `count` reverted and applied again.
pub(crate) async fn redo(global: &Global, count: usize) -> Result<u8, CliError> {
    writing(global, "redo", async |session, migrator, settings| {
        session.redo(migrator, &RedoOptions::new(settings, count)).await
    })
    .await
}

/// `baseline --to VERSION`.
pub(crate) async fn baseline(global: &Global, to: i64) -> Result<u8, CliError> {
    writing(global, "baseline", async |session, migrator, settings| {
        session.baseline(migrator, &BaselineOptions::new(settings, to)).await
    })
    .await
}

/// `repair`.
pub(crate) async fn repair(global: &Global, mark_applied: bool) -> Result<u8, CliError> {
    writing(global, "repair", async |session, migrator, settings| {
        session.repair(migrator, &RepairOptions::new(settings, mark_applied)).await
    })
    .await
}

/// A writing command on the configured database alone (`redo`, `baseline`, `repair`): `work`
/// on its session ([`Setup::on_session`]), then its report printed.
async fn writing<T: Render + serde::Serialize>(
    global: &Global,
    verb: &str,
    work: impl AsyncFnOnce(&mut Session, &Migrator, Settings) -> Result<T, MigrateError>,
) -> Result<u8, CliError> {
    let setup = Setup::start(global, true)?.one_database(global)?;
    let report = setup.on_session(global, verb, work).await?;
    output::print(&report, global.json())?;
    Ok(exit::OK)
}

/// `status`: which database, then every migration; or a count per target.
pub(crate) async fn status(global: &Global) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?;
    if let Some(targets) = targets(global, &setup.config).await? {
        let reports =
            on_targets(global, &setup.config, &targets, async |s, m| s.status(m).await).await?;
        return Ok(if any_failed(&reports) { exit::MIGRATION } else { exit::OK });
    }
    let (lines, about) = setup
        .on_session(global, "status", async |session, migrator, settings| {
            let development = session.is_development(&settings);
            let about = (session.database().to_owned(), session.host().to_owned(), development);
            Ok((session.status(migrator).await?, about))
        })
        .await?;
    output::print(&Status { lines, about }, global.json())?;
    Ok(exit::OK)
}

/// `check`: exit 5 when a finding is one of `fail_on`.
pub(crate) async fn check(global: &Global, fail_on: Vec<Kind>) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?;
    let judge = async |session: &mut Session, migrator: &Migrator| {
        let lines = session.status(migrator).await?;
        Ok(strata_migrate::check::check(&lines, &fail_on))
    };
    if let Some(targets) = targets(global, &setup.config).await? {
        let reports = on_targets(global, &setup.config, &targets, judge).await?;
        let found =
            reports.iter().any(|r| matches!(&r.outcome, Outcome::Done { report } if report.failed));
        return Ok(match (any_failed(&reports), found) {
            (true, _) => exit::MIGRATION,
            (false, true) => exit::CHECK,
            (false, false) => exit::OK,
        });
    }
    let report = setup
        .on_session(global, "status", async |session, migrator, _| judge(session, migrator).await)
        .await?;
    output::print(&report, global.json())?;
    Ok(if report.failed { exit::CHECK } else { exit::OK })
}

/// `schema`: the database's schema, or with `check` whether that file matches it (exit 5
/// when not).
pub(crate) async fn schema(global: &Global, check: Option<&Path>) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let schema = setup
        .on_session(global, "status", async |session, _, _| {
            Ok(strata_schema::snapshot(session.raw_connection()).await)
        })
        .await??;
    let Some(path) = check else {
        output::print(&schema, global.json())?;
        return Ok(exit::OK);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("schema --check {}: {e}", path.display())))?;
    let differences = strata_schema::differences(&Schema::from_text(&text), &schema);
    let check = SchemaCheck { differences, path };
    output::print(&check, global.json())?;
    Ok(if check.differences.is_empty() { exit::OK } else { exit::CHECK })
}

/// `verify`: each down file undoes its up file, on a scratch database.
pub(crate) async fn verify(global: &Global, require_down: bool) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let migrator = migrations(global).await?;
    let migrator = migrator.as_ref().unwrap_or(&MIGRATOR);
    let report = until_ctrl_c(strata_schema::verify(&setup.config, migrator)).await?;
    output::print(&report, global.json())?;
    Ok(if report.failed(require_down) { exit::CHECK } else { exit::OK })
}

/// `diff`: the database against what its applied migrations produce.
pub(crate) async fn diff(global: &Global) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let migrator = migrations(global).await?;
    let migrator = migrator.as_ref().unwrap_or(&MIGRATOR);
    let report = until_ctrl_c(strata_schema::diff(&setup.config, migrator)).await?;
    output::print(&report, global.json())?;
    Ok(if report.differences.is_empty() { exit::OK } else { exit::CHECK })
}

/// `generate`: the migration to a desired schema, or with `--check` whether there is one.
pub(crate) async fn generate(global: &Global, args: GenerateArgs) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let source = global.source.clone().unwrap_or_else(|| PathBuf::from("migrations"));
    let desired = match args.to_url {
        Some(url) => strata_schema::Desired::Url(DatabaseUrl::new(url)),
        None => strata_schema::Desired::Files(args.to),
    };
    let name = args.name.unwrap_or_else(|| "check".to_owned());
    let mut options = strata_schema::GenerateOptions::new(name, source, desired);
    options.renames = args.rename;
    options.check = args.check;
    let generation = until_ctrl_c(strata_schema::generate(&setup.config, &options)).await?;
    output::print(&generation, global.json())?;
    let differs = matches!(generation, strata_schema::Generation::Differs { .. });
    Ok(if differs { exit::CHECK } else { exit::OK })
}

/// `squash --through VERSION`.
pub(crate) async fn squash(
    global: &Global,
    through: i64,
    name: String,
    no_database: bool,
) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let source = global.source.clone().unwrap_or_else(|| PathBuf::from("migrations"));
    let mut options = strata_schema::SquashOptions::new(source, through);
    options.name = name;
    options.check_database = !no_database;
    let report = until_ctrl_c(strata_schema::squash(&setup.config, &options)).await?;
    output::print(&report, global.json())?;
    Ok(exit::OK)
}

/// `lint`: the pending migrations (or all, or the named files).
pub(crate) async fn lint(global: &Global, args: LintArgs) -> Result<u8, CliError> {
    let setup = Setup::start(global, false)?.one_database(global)?;
    let config = &setup.config;
    let migrator = migrations(global).await?;
    let migrator = migrator.as_ref().unwrap_or(&MIGRATOR);
    let mut options = strata_schema::LintOptions::default();
    options.large_table_rows = args.large_table_rows;
    if let Some(path) = &args.ignores {
        options.ignore_file = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("--ignores {}: {e}", path.display())))?;
    }
    let has_url = config.migrations.url.is_some() || config.database.url.is_some();
    let mut session = if has_url { Some(Session::from_config(config).await?) } else { None };
    let files = &args.files;
    let pending: Option<Vec<i64>> = match (&mut session, args.all || !files.is_empty()) {
        (Some(session), false) => Some(
            session
                .status(migrator)
                .await?
                .into_iter()
                .filter(|l| l.state == State::Pending)
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
    output::print(&Linted { report: &report, files: chosen.len() }, global.json())?;
    Ok(if report.failed() { exit::CHECK } else { exit::OK })
}

/// `sum`: the sum file, or with `check` whether that file matches (exit 5 when not).
pub(crate) async fn sum(global: &Global, check: Option<&Path>) -> Result<u8, CliError> {
    let migrator = migrations(global).await?;
    let sum = strata_migrate::files::sum_file(migrator.as_ref().unwrap_or(&MIGRATOR));
    let Some(path) = check else {
        output::emit(&sum)?;
        return Ok(exit::OK);
    };
    let file = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("sum --check {}: {e}", path.display())))?;
    let check = SumCheck { path, file: &file, now: &sum };
    output::print_text(&check)?;
    Ok(if check.matches() { exit::OK } else { exit::CHECK })
}

/// `config`: the effective settings, or with `get` one value, for scripts (the URL whole,
/// password included: a script needs it to connect; an unset setting prints nothing).
pub(crate) fn config(global: &Global, get: Option<&str>) -> Result<u8, CliError> {
    let config = load_config(global)?;
    let settings = config.settings();
    let Some(key) = get else {
        output::print(&output::Settings(settings), global.json())?;
        return Ok(exit::OK);
    };
    if !settings.iter().any(|(k, _)| *k == key) {
        let keys: Vec<&str> = settings.iter().map(|(k, _)| *k).collect();
        return Err(CliError::Usage(format!(
            "config --get {key}: no such setting; the settings are {}",
            keys.join(", ")
        )));
    }
    let value = match key {
        "database.url" => config.database.url.as_ref().map(|u| u.expose().to_owned()),
        _ => settings.into_iter().find(|(k, _)| *k == key).and_then(|(_, v)| v),
    };
    output::emit(&value.map(|v| format!("{v}\n")).unwrap_or_default())?;
    Ok(exit::OK)
}

/// `completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<u8, CliError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "strata-migrate", &mut out);
    output::bytes(&out).map(|()| exit::OK)
}

/// `man`.
pub(crate) fn man() -> Result<u8, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(CliError::Output)?;
    output::bytes(&out).map(|()| exit::OK)
}

/// `new NAME`: a reversible pair of files in `dir`.
pub(crate) fn new(
    global: &Global,
    name: &str,
    no_transaction: bool,
    dir: &Path,
) -> Result<u8, CliError> {
    let paths = crate::new::create(dir, name, no_transaction)?;
    output::print(&Created(paths.into()), global.json())?;
    Ok(exit::OK)
}

/// The databases of `--targets FILE` or `--targets-query SQL`, with `--parallel` and
/// `--fail-fast`; `None` without either.
async fn targets(global: &Global, config: &Config) -> Result<Option<TargetOptions>, CliError> {
    let urls = match (&global.targets, &global.targets_query) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| CliError::Usage(format!("--targets {}: {e}", file.display())))?;
            strata_migrate::targets::parse_targets(&text)?
        }
        (None, Some(sql)) => strata_migrate::targets::query_targets(config, sql).await?,
        (None, None) => return Ok(None),
    };
    let mut targets = TargetOptions::new(urls);
    targets.parallel = global.parallel;
    targets.fail_fast = global.fail_fast;
    Ok(Some(targets))
}

/// Runs `work` on every target with the migrations of `--source`, prints the reports (a
/// line of each's [`Summary`] in text), and returns them.
async fn on_targets<T: Summary + serde::Serialize>(
    global: &Global,
    config: &Config,
    targets: &TargetOptions,
    work: impl AsyncFn(&mut Session, &Migrator) -> Result<T, MigrateError>,
) -> Result<Vec<TargetReport<T>>, CliError> {
    let source = migrations(global).await?;
    let migrator = source.as_ref().unwrap_or(&MIGRATOR);
    let reports =
        strata_migrate::targets::on_targets(config, targets, async |s| work(s, migrator).await)
            .await;
    output::print(&Targets(&reports), global.json())?;
    Ok(reports)
}

/// Whether the command failed on any target.
fn any_failed<T>(reports: &[TargetReport<T>]) -> bool {
    reports.iter().any(TargetReport::failed)
}

/// A command on scratch databases, stopped by Ctrl-C: its future is dropped, which drops the
/// scratch database it made ([`strata_migrate::scratch::with_scratch`]).
async fn until_ctrl_c<T>(
    work: impl Future<Output = Result<T, SchemaError>>,
) -> Result<T, CliError> {
    tokio::select! {
        result = work => Ok(result?),
        _ = tokio::signal::ctrl_c() => Err(CliError::ScratchInterrupted),
    }
}
