//! The schema tools' reports as text: `schema` (and `schema --check`), `verify`, `diff`,
//! `lint`, `generate`, `squash`; and `sum --check`, which has text only.

use std::fmt::Write as _;
use std::path::Path;

use anstyle::AnsiColor;
use serde::Serialize;
use strata_schema::{
    DiffReport, Difference, Generation, LintReport, Schema, Severity, SquashReport, VerifyReport,
};

use super::Render;
use crate::terminal::paint;

/// `schema`: the snapshot, one object per line.
impl Render for Schema {
    fn text(&self, out: &mut String) {
        out.push_str(&self.to_text());
    }
}

/// `schema --check FILE`: whether the file matches the database's schema, with the lines that
/// differ. JSON: the differences.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct SchemaCheck<'p> {
    /// The differences, `-` only in the file, `+` only in the database.
    pub(crate) differences: Vec<Difference>,
    /// The file.
    #[serde(skip)]
    pub(crate) path: &'p Path,
}

impl Render for SchemaCheck<'_> {
    fn text(&self, out: &mut String) {
        if self.differences.is_empty() {
            outln!(out, "{} matches the database's schema", self.path.display());
            return;
        }
        outln!(
            out,
            "{} is stale ({} difference(s); - only in the file, + only in the database); regenerate it with `just prepare`:",
            self.path.display(),
            self.differences.len()
        );
        for d in &self.differences {
            outln!(out, "{d}");
        }
    }
}

/// `verify`.
impl Render for VerifyReport {
    fn text(&self, out: &mut String) {
        outln!(
            out,
            "{} down file(s) undo their up file exactly: {:?}",
            self.verified.len(),
            self.verified
        );
        if !self.checkpoints.is_empty() {
            outln!(
                out,
                "checkpoints (applied only, not reversible by design): {:?}",
                self.checkpoints
            );
        }
        if !self.without_down.is_empty() {
            outln!(out, "without a .down.sql (applied only): {:?}", self.without_down);
        }
        if let Some(failure) = &self.failure {
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
    }
}

/// `diff`.
impl Render for DiffReport {
    fn text(&self, out: &mut String) {
        let through = self
            .applied_through
            .map_or("no migration".to_owned(), |v| format!("migrations through {v}"));
        if self.differences.is_empty() {
            outln!(out, "no drift: the database matches what its {through} produce");
        } else {
            outln!(
                out,
                "{} difference(s) from what its {through} produce (- made by the migrations, missing here; + here only):",
                self.differences.len()
            );
            for d in &self.differences {
                outln!(out, "  {d}");
            }
        }
    }
}

/// `lint`: each finding with its place, rule, locks and fix, then a count. JSON: the report.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct Linted<'r> {
    /// The report.
    pub(crate) report: &'r LintReport,
    /// How many files were linted.
    #[serde(skip)]
    pub(crate) files: usize,
}

impl Render for Linted<'_> {
    fn text(&self, out: &mut String) {
        for f in &self.report.findings {
            let severity = if f.severity == Severity::Error {
                paint(AnsiColor::Red, "error")
            } else {
                paint(AnsiColor::Yellow, "warning")
            };
            outln!(
                out,
                "{}:{}:{}: {severity} [{}] {}",
                f.file,
                f.line,
                f.column,
                f.rule,
                f.message
            );
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
        for i in &self.report.ignored {
            outln!(out, "{}: ignored [{}]: {}", i.file, i.rule, i.reason);
        }
        let errors = self.report.findings.iter().filter(|f| f.severity == Severity::Error).count();
        outln!(
            out,
            "{} file(s) linted: {errors} error(s), {} warning(s), {} ignored",
            self.files,
            self.report.findings.len() - errors,
            self.report.ignored.len()
        );
    }
}

/// `generate`: the files written, what they destroy, and what lint reports on them.
impl Render for Generation {
    fn text(&self, out: &mut String) {
        match self {
            Generation::Equal => {
                outln!(
                    out,
                    "no change: the history already gives the desired schema; nothing written"
                );
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
    }
}

/// `squash`: the checkpoint written, what it carries, and what was deleted.
impl Render for SquashReport {
    fn text(&self, out: &mut String) {
        outln!(
            out,
            "wrote {} ({} statement(s), {} table(s) of rows, {} sequence(s)) and {}",
            self.checkpoint.display(),
            self.statements,
            self.rows.len(),
            self.sequences,
            self.down.display()
        );
        outln!(
            out,
            "proven on scratch databases: the checkpoint gives the schema and the rows of the {} migration(s) it stands for, and where they were applied it is recorded, not run",
            self.replaced.len()
        );
        for (table, rows) in &self.rows {
            outln!(out, "  carries {rows} row(s) of {table}");
        }
        outln!(out, "deleted {} file(s) it replaces:", self.deleted.len());
        for path in &self.deleted {
            outln!(out, "  {}", path.display());
        }
        match self.database_applied {
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
    }
}

/// `sum --check FILE`: whether the file matches the migrations' sum, with the lines that
/// differ (text only, as the sum file is).
pub(crate) struct SumCheck<'a> {
    /// The file.
    pub(crate) path: &'a Path,
    /// Its text.
    pub(crate) file: &'a str,
    /// The sum of the migrations now.
    pub(crate) now: &'a str,
}

impl SumCheck<'_> {
    /// Whether the file matches.
    pub(crate) fn matches(&self) -> bool {
        self.file == self.now
    }
}

impl Render for SumCheck<'_> {
    fn text(&self, out: &mut String) {
        if self.matches() {
            outln!(out, "{} matches the migrations", self.path.display());
            return;
        }
        outln!(
            out,
            "{} does not match the migrations (- in the file, + now); regenerate it with `just prepare`:",
            self.path.display()
        );
        let (old, new): (Vec<&str>, Vec<&str>) =
            (self.file.lines().collect(), self.now.lines().collect());
        for line in old.iter().filter(|l| !new.contains(l)) {
            outln!(out, "- {line}");
        }
        for line in new.iter().filter(|l| !old.contains(l)) {
            outln!(out, "+ {line}");
        }
    }
}
