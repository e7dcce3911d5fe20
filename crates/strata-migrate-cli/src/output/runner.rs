//! The runner's reports as text: `up`, `down`, `redo`, `status`, `check`, `baseline`,
//! `repair`, a line per target with `--targets`, the files `new` created, and `config`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anstyle::AnsiColor;
use serde::Serialize;
use strata_migrate::check::CheckReport;
use strata_migrate::report::{BaselineReport, DownReport, RedoReport, RepairReport, UpReport};
use strata_migrate::status::{MigrationStatus, State};
use strata_migrate::targets::{Outcome, TargetReport};
use strata_migrate_cli::exit;

use super::Render;
use crate::terminal::paint;

/// `up`: each migration applied, then a count; with `--dry-run` the script.
impl Render for UpReport {
    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn text(&self, out: &mut String) {
        if dry_run(self.dry_run_sql.as_deref(), out) {
            return;
        }
        let total = self.applied.len();
        for (index, m) in self.applied.iter().enumerate() {
            let retries = match m.retries {
                0 => String::new(),
                n => format!(", {n} lock-timeout retries"),
            };
            let statements =
                m.statements.map(|n| format!(", {n} statement(s)")).unwrap_or_default();
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
                self.lock_wait_ms
            ),
        }
        if let Some(replicas) = self.replicas_caught_up {
            outln!(out, "{replicas} streaming replica(s) have replayed it");
        }
    }
}

/// `down`: each migration reverted, then a count; with `--dry-run` the script.
impl Render for DownReport {
    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn text(&self, out: &mut String) {
        if dry_run(self.dry_run_sql.as_deref(), out) {
            return;
        }
        for m in &self.reverted {
            outln!(out, "reverted {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
        }
        outln!(out, "{} migration(s) reverted", self.reverted.len());
    }
}

/// With `--dry-run`, the script is the whole text: appends it, and says whether there was one.
fn dry_run(script: Option<&str>, out: &mut String) -> bool {
    out.push_str(script.unwrap_or_default());
    script.is_some()
}

/// `redo`: what was reverted, then applied again.
impl Render for RedoReport {
    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn text(&self, out: &mut String) {
        for m in &self.reverted {
            outln!(out, "reverted {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
        }
        for m in &self.applied {
            outln!(out, "applied {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
        }
        match self.reverted.len() {
            0 => outln!(out, "nothing to redo: no migration is applied"),
            n => outln!(out, "{n} migration(s) reverted and applied again"),
        }
    }
}

/// `status`: which database (and whether `redo` may run there), then every migration. JSON:
/// the migrations alone.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct Status {
    /// Every migration.
    pub(crate) lines: Vec<MigrationStatus>,
    /// The database's name, its host, and whether it is a development one.
    #[serde(skip)]
    pub(crate) about: (String, String, bool),
}

impl Render for Status {
    fn text(&self, out: &mut String) {
        let (database, host, development) = &self.about;
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
        for l in &self.lines {
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
        let count = |state| self.lines.iter().filter(|l| l.state == state).count();
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
    }
}

/// `check`: each finding, failing or noted, then the verdict.
impl Render for CheckReport {
    fn text(&self, out: &mut String) {
        for f in &self.found {
            let fails = if self.fail_on.contains(&f.kind) {
                paint(AnsiColor::Red, "FAIL")
            } else {
                paint(AnsiColor::Yellow, "note")
            };
            let kind = serde_json::to_value(f.kind).ok();
            let kind = kind.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
            outln!(out, "{fails}: {} {} is {kind}", f.version, f.description);
        }
        if self.failed {
            outln!(out, "{}", paint(AnsiColor::Red, "check failed"));
        } else {
            outln!(out, "{}", paint(AnsiColor::Green, "check passed"));
        }
    }
}

/// `baseline`: the versions marked applied.
impl Render for BaselineReport {
    fn text(&self, out: &mut String) {
        for v in &self.marked {
            outln!(out, "marked {v} applied (not run)");
        }
        outln!(out, "{} migration(s) baselined", self.marked.len());
    }
}

/// `repair`: each change recorded.
impl Render for RepairReport {
    fn text(&self, out: &mut String) {
        for a in &self.actions {
            outln!(out, "{}: {}", a.version, a.action);
        }
        outln!(out, "{} repair(s) recorded", self.actions.len());
    }
}

/// `new`: the files created.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct Created(pub(crate) Vec<PathBuf>);

impl Render for Created {
    fn text(&self, out: &mut String) {
        for path in &self.0 {
            outln!(out, "created {}", path.display());
        }
    }
}

/// `config`: every setting, `key = value`, in the order strata-config lists them. JSON: an
/// object of them.
pub(crate) struct Settings(pub(crate) Vec<(&'static str, Option<String>)>);

impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let object: serde_json::Map<String, serde_json::Value> =
            self.0.iter().map(|(k, v)| ((*k).to_owned(), v.clone().into())).collect();
        object.serialize(serializer)
    }
}

impl Render for Settings {
    fn text(&self, out: &mut String) {
        for (key, value) in &self.0 {
            outln!(out, "{key} = {}", value.as_deref().unwrap_or("(not set)"));
        }
    }
}

/// A report's one line in the output of `--targets`.
pub(crate) trait Summary {
    /// What happened on one target, in a few words.
    fn summary(&self) -> String;
}

/// `--targets`: one line per target (its URL, password hidden, and what happened), then a
/// count. JSON: an array of the targets, each with its outcome.
pub(crate) struct Targets<'r, T>(pub(crate) &'r [TargetReport<T>]);

impl<T: Summary + Serialize> Render for Targets<'_, T> {
    fn text(&self, out: &mut String) {
        let (mut done, mut failed, mut skipped) = (0, 0, 0);
        for r in self.0 {
            match &r.outcome {
                Outcome::Done { report } => {
                    done += 1;
                    outln!(out, "{}: {}", r.target, report.summary());
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
        outln!(out, "{} target(s): {done} done, {failed} failed, {skipped} skipped", self.0.len());
    }
}

impl<T: Serialize> Serialize for Targets<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(TargetJson::of))
    }
}

/// One target's report as JSON: the target, and its outcome (`done` with the report,
/// `failed` with the message and the exit code the error alone would give, or `skipped`).
#[derive(Serialize)]
struct TargetJson<'r, T> {
    target: &'r str,
    #[serde(flatten)]
    outcome: OutcomeJson<'r, T>,
}

/// [`Outcome`] as JSON.
#[derive(Serialize)]
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
impl Summary for UpReport {
    fn summary(&self) -> String {
        match self.applied.len() {
            0 if self.dry_run_sql.is_some() => format!("would apply {:?}", self.planned),
            0 => "up to date".to_owned(),
            n => {
                let versions: Vec<i64> = self.applied.iter().map(|a| a.version).collect();
                format!("applied {n} migration(s) {versions:?}")
            }
        }
    }
}

/// The states of one target's migrations, counted.
impl Summary for Vec<MigrationStatus> {
    fn summary(&self) -> String {
        let count = |state: State| self.iter().filter(|l| l.state == state).count();
        format!(
            "{} applied, {} pending, {} failed, {} changed, {} missing",
            count(State::Applied),
            count(State::Pending),
            count(State::Failed),
            count(State::ChecksumChanged),
            count(State::FileMissing)
        )
    }
}

/// What `check` found on one target.
impl Summary for CheckReport {
    fn summary(&self) -> String {
        if self.found.is_empty() {
            return "ok".to_owned();
        }
        let found: Vec<String> =
            self.found.iter().map(|f| format!("{} {}", f.kind, f.version)).collect();
        let verdict = if self.failed { "fails" } else { "passes" };
        format!("{verdict}: {}", found.join(", "))
    }
}
