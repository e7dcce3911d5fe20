//! What the command line prints: human text, or JSON with `--format json`. Each command's
//! output is built whole and written at once (one write, not one per line), and a reader that
//! went away (`strata-migrate status | head`) ends the output quietly instead of a panic.

use std::fmt::Write as _;
use std::io::Write as _;

use anstyle::AnsiColor;
use strata_migrate::check::CheckReport;
use strata_migrate::report::{BaselineReport, DownReport, RedoReport, RepairReport, UpReport};
use strata_migrate::status::{MigrationStatus, State};
use strata_migrate::targets::{Outcome, TargetReport};
use strata_schema::{
    DiffReport, Generation, LintReport, Schema, Severity, SquashReport, VerifyReport,
};

use strata_migrate_cli::exit;

use crate::error::CliError;
use crate::terminal::paint;

/// Appends a line to a `String` (writing to a `String` cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

pub(crate) fn up(report: &UpReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    warnings(&report.warnings);
    if let Some(sql) = &report.dry_run_sql {
        return emit(sql);
    }
    let total = report.applied.len();
    for (index, m) in report.applied.iter().enumerate() {
        let retries = match m.retries {
            0 => String::new(),
            n => format!(", {n} lock-timeout retries"),
        };
        let statements = m.statements.map(|n| format!(", {n} statement(s)")).unwrap_or_default();
        outln!(
            out,
            "[{}/{total}] {} {} {} ({:.1} ms{retries}{statements}){}",
            index + 1,
            if m.recorded { "recorded" } else { "applied" },
            m.version,
            m.description,
            m.duration_ms,
            if m.recorded {
                ", not run: this database applied the files the checkpoint stands for"
            } else {
                ""
            }
        );
    }
    match total {
        0 => outln!(out, "nothing to apply: the database is up to date"),
        n => outln!(
            out,
            "{n} migration(s) applied; the database is up to date (waited {:.0} ms for the lock)",
            report.lock_wait_ms
        ),
    }
    if let Some(replicas) = report.replicas_caught_up {
        outln!(out, "{replicas} streaming replica(s) have replayed it");
    }
    emit(&out)
}

pub(crate) fn down(report: &DownReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    warnings(&report.warnings);
    if let Some(sql) = &report.dry_run_sql {
        return emit(sql);
    }
    for m in &report.reverted {
        outln!(out, "reverted {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
    }
    outln!(out, "{} migration(s) reverted", report.reverted.len());
    emit(&out)
}

/// `redo`: what was reverted, then applied again.
pub(crate) fn redo(report: &RedoReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    warnings(&report.warnings);
    for m in &report.reverted {
        outln!(out, "reverted {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
    }
    for m in &report.applied {
        outln!(out, "applied {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
    }
    match report.reverted.len() {
        0 => outln!(out, "nothing to redo: no migration is applied"),
        n => outln!(out, "{n} migration(s) reverted and applied again"),
    }
    emit(&out)
}

/// `status`: which database (and whether `redo` may run there), then every migration.
pub(crate) fn status(
    lines: &[MigrationStatus],
    (database, host, development): &(String, String, bool),
    json: bool,
) -> Result<(), CliError> {
    if json {
        return print_json(&lines);
    }
    let mut out = String::new();
    let kind = if *development {
        "a development database (redo allowed)"
    } else {
        "not a development database (redo refused)"
    };
    outln!(out, "database {database} on {host}: {kind}");
    outln!(
        out,
        "{:<16} {:<17} {:<26} {:>10}  DESCRIPTION",
        "VERSION",
        "STATE",
        "APPLIED AT",
        "DURATION"
    );
    for l in lines {
        let at = l
            .applied_at
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "-".to_owned());
        let duration = l.duration_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        let mut remark = l.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        if l.out_of_order {
            remark.push_str(" (out of order: older than the newest applied)");
        }
        let color = match l.state {
            State::Applied | State::InCheckpoint => AnsiColor::Green,
            State::Pending => AnsiColor::Yellow,
            _ => AnsiColor::Red,
        };
        outln!(
            out,
            "{:<16} {} {:<26} {:>10}  {}{remark}",
            l.version,
            paint(color, &format!("{:<17}", l.state.as_str())),
            at,
            duration,
            l.description
        );
    }
    let count = |state| lines.iter().filter(|l| l.state == state).count();
    outln!(
        out,
        "{} applied, {} pending, {} checksum changed, {} file missing, {} failed{}",
        count(State::Applied),
        count(State::Pending),
        count(State::ChecksumChanged),
        count(State::FileMissing),
        count(State::Failed),
        match count(State::InCheckpoint) {
            0 => String::new(),
            n => format!(", {n} in a checkpoint"),
        }
    );
    emit(&out)
}

pub(crate) fn check(report: &CheckReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    for f in &report.found {
        let fails = if report.fail_on.contains(&f.kind) {
            paint(AnsiColor::Red, "FAIL")
        } else {
            paint(AnsiColor::Yellow, "note")
        };
        let kind = serde_json::to_value(f.kind).ok();
        let kind = kind.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        outln!(out, "{fails}: {} {} is {kind}", f.version, f.description);
    }
    if report.failed {
        outln!(out, "{}", paint(AnsiColor::Red, "check failed"));
    } else {
        outln!(out, "{}", paint(AnsiColor::Green, "check passed"));
    }
    emit(&out)
}

pub(crate) fn baseline(report: &BaselineReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    for v in &report.marked {
        outln!(out, "marked {v} applied (not run)");
    }
    outln!(out, "{} migration(s) baselined", report.marked.len());
    emit(&out)
}

pub(crate) fn repair(report: &RepairReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    for a in &report.actions {
        outln!(out, "{}: {}", a.version, a.action);
    }
    outln!(out, "{} repair(s) recorded", report.actions.len());
    emit(&out)
}

pub(crate) fn created(paths: &[std::path::PathBuf], json: bool) -> Result<(), CliError> {
    if json {
        return print_json(&paths);
    }
    let mut out = String::new();
    for path in paths {
        outln!(out, "created {}", path.display());
    }
    emit(&out)
}

fn warnings(warnings: &[String]) {
    for w in warnings {
        anstream::eprintln!("{}: {w}", paint(AnsiColor::Yellow, "warning"));
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    emit(&(text + "\n"))
}

/// Writes `text` to standard output in one go. A closed pipe (the reader stopped early) is not
/// an error; any other failure is, so a truncated `> file` never looks like success.
///
/// Colour codes are stripped where colour is off (`--color=never`, `NO_COLOR`, not a
/// terminal).
fn emit(text: &str) -> Result<(), CliError> {
    bytes(text.as_bytes())
}

/// [`emit`] for generated bytes (a completion script, a man page).
pub(crate) fn bytes(text: &[u8]) -> Result<(), CliError> {
    let mut stdout = anstream::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

/// `config`: every setting, or one value with `--get`.
pub(crate) fn config(
    config: &strata_config::Config,
    get: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let settings = config.settings();
    if let Some(key) = get {
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
        return emit(&value.map(|v| format!("{v}\n")).unwrap_or_default());
    }
    if json {
        let object: serde_json::Map<String, serde_json::Value> =
            settings.into_iter().map(|(k, v)| (k.to_owned(), v.into())).collect();
        return print_json(&object);
    }
    let mut out = String::new();
    for (key, value) in settings {
        outln!(out, "{key} = {}", value.as_deref().unwrap_or("(not set)"));
    }
    emit(&out)
}

/// One line per target (its URL, password hidden, and what happened), then a count; or the
/// reports as a JSON array.
pub(crate) fn targets<T: serde::Serialize>(
    reports: &[TargetReport<T>],
    json: bool,
    summary: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    if json {
        let reports: Vec<TargetJson<'_, T>> = reports.iter().map(TargetJson::of).collect();
        return print_json(&reports);
    }
    let mut out = String::new();
    let (mut done, mut failed, mut skipped) = (0, 0, 0);
    for r in reports {
        match &r.outcome {
            Outcome::Done { report } => {
                done += 1;
                outln!(out, "{}: {}", r.target, summary(report));
            }
            Outcome::Failed { error, .. } => {
                failed += 1;
                outln!(out, "{}: FAILED: {error}", r.target);
            }
            Outcome::Skipped => {
                skipped += 1;
                outln!(out, "{}: skipped (an earlier target failed; --fail-fast)", r.target);
            }
        }
    }
    outln!(out, "{} target(s): {done} done, {failed} failed, {skipped} skipped", reports.len());
    emit(&out)
}

/// One target's report as JSON: the target, and its outcome (`done` with the report,
/// `failed` with the message and the exit code the error alone would give, or `skipped`).
#[derive(serde::Serialize)]
struct TargetJson<'r, T> {
    target: &'r str,
    #[serde(flatten)]
    outcome: OutcomeJson<'r, T>,
}

/// [`Outcome`] as JSON.
#[derive(serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum OutcomeJson<'r, T> {
    Done { report: &'r T },
    Failed { error: String, exit_code: u8 },
    Skipped,
}

impl<'r, T> TargetJson<'r, T> {
    fn of(report: &'r TargetReport<T>) -> Self {
        let outcome = match &report.outcome {
            Outcome::Done { report } => OutcomeJson::Done { report },
            Outcome::Failed { error } => {
                OutcomeJson::Failed { error: error.to_string(), exit_code: exit::code(error) }
            }
            Outcome::Skipped => OutcomeJson::Skipped,
        };
        Self { target: &report.target, outcome }
    }
}

/// What `up` did on one target.
pub(crate) fn up_summary(report: &UpReport) -> String {
    match report.applied.len() {
        0 if report.dry_run_sql.is_some() => format!("would apply {:?}", report.planned),
        0 => "up to date".to_owned(),
        n => {
            let versions: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
            format!("applied {n} migration(s) {versions:?}")
        }
    }
}

/// The states of one target's migrations, counted.
#[allow(clippy::ptr_arg, reason = "called with &T, and the report type T is a Vec")]
pub(crate) fn status_summary(lines: &Vec<MigrationStatus>) -> String {
    let count = |state: State| lines.iter().filter(|l| l.state == state).count();
    format!(
        "{} applied, {} pending, {} failed, {} changed, {} missing",
        count(State::Applied),
        count(State::Pending),
        count(State::Failed),
        count(State::ChecksumChanged),
        count(State::FileMissing)
    )
}

/// What `check` found on one target.
pub(crate) fn check_summary(report: &CheckReport) -> String {
    if report.found.is_empty() {
        return "ok".to_owned();
    }
    let found: Vec<String> =
        report.found.iter().map(|f| format!("{} {}", f.kind, f.version)).collect();
    let verdict = if report.failed { "fails" } else { "passes" };
    format!("{verdict}: {}", found.join(", "))
}

/// `schema`: the snapshot, or with `check` the differences from that file (exit 5 when any).
pub(crate) fn schema(
    schema: &Schema,
    check: Option<&std::path::Path>,
    json: bool,
) -> Result<u8, CliError> {
    let Some(path) = check else {
        if json {
            print_json(schema)?;
        } else {
            emit(&schema.to_text())?;
        }
        return Ok(exit::OK);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("schema --check {}: {e}", path.display())))?;
    let differences = strata_schema::differences(&Schema::from_text(&text), schema);
    if json {
        print_json(&differences)?;
    } else if differences.is_empty() {
        emit(&format!("{} matches the database's schema\n", path.display()))?;
    } else {
        let mut out = format!(
            "{} is stale ({} difference(s); - only in the file, + only in the database); regenerate it with `just prepare`:\n",
            path.display(),
            differences.len()
        );
        for d in &differences {
            outln!(out, "{d}");
        }
        emit(&out)?;
    }
    Ok(if differences.is_empty() { exit::OK } else { exit::CHECK })
}

/// `verify`.
pub(crate) fn verify(report: &VerifyReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    outln!(
        out,
        "{} down file(s) undo their up file exactly: {:?}",
        report.verified.len(),
        report.verified
    );
    if !report.checkpoints.is_empty() {
        outln!(
            out,
            "checkpoints (applied only, not reversible by design): {:?}",
            report.checkpoints
        );
    }
    if !report.without_down.is_empty() {
        outln!(out, "without a .down.sql (applied only): {:?}", report.without_down);
    }
    if let Some(failure) = &report.failure {
        outln!(
            out,
            "migration {} ({}): after {}, the schema differs (- expected, + found):",
            failure.version,
            failure.description,
            failure.stage
        );
        for d in &failure.differences {
            outln!(out, "  {d}");
        }
    }
    emit(&out)
}

/// `diff`.
pub(crate) fn diff(report: &DiffReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let through = report
        .applied_through
        .map_or("no migration".to_owned(), |v| format!("migrations through {v}"));
    let mut out = String::new();
    if report.differences.is_empty() {
        outln!(out, "no drift: the database matches what its {through} produce");
    } else {
        outln!(
            out,
            "{} difference(s) from what its {through} produce (- made by the migrations, missing here; + here only):",
            report.differences.len()
        );
        for d in &report.differences {
            outln!(out, "  {d}");
        }
    }
    emit(&out)
}

/// `sum`: the sum file, or with `check` whether that file matches (exit 5 when not).
pub(crate) fn sum(sum: &str, check: Option<&std::path::Path>) -> Result<u8, CliError> {
    let Some(path) = check else {
        emit(sum)?;
        return Ok(exit::OK);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("sum --check {}: {e}", path.display())))?;
    if text == sum {
        emit(&format!("{} matches the migrations\n", path.display()))?;
        return Ok(exit::OK);
    }
    let mut out = format!(
        "{} does not match the migrations (- in the file, + now); regenerate it with `just prepare`:\n",
        path.display()
    );
    let (old, new): (Vec<&str>, Vec<&str>) = (text.lines().collect(), sum.lines().collect());
    for line in old.iter().filter(|l| !new.contains(l)) {
        outln!(out, "- {line}");
    }
    for line in new.iter().filter(|l| !old.contains(l)) {
        outln!(out, "+ {line}");
    }
    emit(&out)?;
    Ok(exit::CHECK)
}

/// `lint`: each finding with its place, rule, locks and fix, then a count.
pub(crate) fn lint(report: &LintReport, files: usize, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    for f in &report.findings {
        let severity = if f.severity == Severity::Error {
            paint(AnsiColor::Red, "error")
        } else {
            paint(AnsiColor::Yellow, "warning")
        };
        outln!(out, "{}:{}:{}: {severity} [{}] {}", f.file, f.line, f.column, f.rule, f.message);
        if let Some(table) = &f.table {
            outln!(out, "    table: {table}");
        }
        if let Some(locks) = f.locks {
            outln!(out, "    locks: {locks}");
        }
        if let Some(help) = &f.help {
            outln!(out, "    fix: {help}");
        }
    }
    for i in &report.ignored {
        outln!(out, "{}: ignored [{}]: {}", i.file, i.rule, i.reason);
    }
    let errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    outln!(
        out,
        "{files} file(s) linted: {errors} error(s), {} warning(s), {} ignored",
        report.findings.len() - errors,
        report.ignored.len()
    );
    emit(&out)
}

/// `generate`: the files written, what they destroy, and what lint reports on them.
pub(crate) fn generated(generation: &Generation, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(generation);
    }
    let mut out = String::new();
    match generation {
        Generation::Equal => {
            outln!(out, "no change: the history already gives the desired schema; nothing written");
        }
        Generation::Differs { differences } => {
            outln!(
                out,
                "the history does not give the desired schema ({} line(s); - desired only, + history only):",
                differences.len()
            );
            for line in differences {
                outln!(out, "  {line}");
            }
            outln!(out, "run `just generate NAME` to write the migration");
        }
        Generation::Written { files, drops_data, down_drops_data, lint } => {
            for file in files {
                outln!(out, "wrote {} ({} statement(s))", file.path.display(), file.statements);
            }
            outln!(
                out,
                "proven on a scratch database: the up files give the desired schema, the down files give back the previous one"
            );
            if !drops_data.is_empty() {
                outln!(
                    out,
                    "{}: the up files drop data: {}",
                    paint(AnsiColor::Yellow, "warning"),
                    drops_data.join(", ")
                );
            }
            if !down_drops_data.is_empty() {
                outln!(out, "the down files drop data: {}", down_drops_data.join(", "));
            }
            for f in &lint.findings {
                outln!(out, "reported: {}:{}: [{}] {}", f.file, f.line, f.rule, f.message);
                if let Some(locks) = f.locks {
                    outln!(out, "    locks: {locks}");
                }
            }
        }
    }
    emit(&out)
}

/// `squash`: the checkpoint written, what it carries, and what was deleted.
pub(crate) fn squashed(report: &SquashReport, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(report);
    }
    let mut out = String::new();
    outln!(
        out,
        "wrote {} ({} statement(s), {} table(s) of rows, {} sequence(s)) and {}",
        report.checkpoint.display(),
        report.statements,
        report.rows.len(),
        report.sequences,
        report.down.display()
    );
    outln!(
        out,
        "proven on scratch databases: the checkpoint gives the schema and the rows of the {} migration(s) it stands for, and where they were applied it is recorded, not run",
        report.replaced.len()
    );
    for (table, rows) in &report.rows {
        outln!(out, "  carries {rows} row(s) of {table}");
    }
    outln!(out, "deleted {} file(s) it replaces:", report.deleted.len());
    for path in &report.deleted {
        outln!(out, "  {}", path.display());
    }
    match report.database_applied {
        Some(0) => outln!(
            out,
            "the configured database has applied none of them: it will run the checkpoint"
        ),
        Some(n) => outln!(
            out,
            "the configured database has applied all {n}: `up` records the checkpoint there without running it"
        ),
        None => outln!(out, "the configured database was not looked at (--no-database)"),
    }
    emit(&out)
}
