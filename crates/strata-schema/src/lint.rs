//! `lint`: squawk's rules (its Rust crates), told what the runner does and, given a database,
//! how big the tables are.
//!
//! - The runner sets `lock_timeout` (and `statement_timeout` when asked) itself, so squawk's
//!   timeout rules are off; `prefer-robust-stmts` applies to no-transaction files only, the
//!   ones a rerun resumes in the middle of.
//! - A statement on a table created earlier in the same file is exempt: nobody uses it yet.
//! - `CONCURRENTLY` in a transactional file is an error (the runner wraps the file in a
//!   transaction), and so is transaction control in a no-transaction file.
//! - With a database, a finding on a table at or above `large_table_rows` rows is an error and
//!   one on a smaller (or new) table a warning; without one, every finding is an error.
//! - `-- strata-lint: ignore RULE: reason` on the lines above a statement ignores that rule for
//!   it; the reason is required. Files that are applied already cannot take comments (their
//!   checksums would change): an ignore file lists `FILE RULE: reason` lines for them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::PgConnection;
use sqlx::migrate::Migration;
use squawk_linter::{Linter, Rule};

use crate::error::SchemaError;
use strata_migrate::lexer;

mod citus;

/// The rules enabled: those about locks, rewrites and scans under traffic, and about
/// changes that break the code still running. Each has a test that triggers it.
pub const RULES: [Rule; 16] = [
    Rule::RequireConcurrentIndexCreation,
    Rule::RequireConcurrentIndexDeletion,
    Rule::ConstraintMissingNotValid,
    Rule::AddingFieldWithDefault,
    Rule::AddingForeignKeyConstraint,
    Rule::ChangingColumnType,
    Rule::AddingNotNullableField,
    Rule::AddingSerialPrimaryKeyField,
    Rule::DisallowedUniqueConstraint,
    Rule::AddingRequiredField,
    Rule::BanDropDatabase,
    Rule::RenamingColumn,
    Rule::RenamingTable,
    Rule::BanDropColumn,
    Rule::BanDropTable,
    Rule::PreferRobustStmts,
];

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Fails the lint (exit 5).
    Error,
    /// Reported only.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct LintFinding {
    /// The migration file.
    pub file: String,
    /// 1-based line and column of the statement's offending part.
    pub line: usize,
    /// See `line`.
    pub column: usize,
    /// The rule, as squawk names it (`require-concurrent-index-creation`), or one of the
    /// runner's own (`transaction-control-in-no-transaction-file`, `ignore-without-reason`).
    pub rule: String,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What it locks, and for how long, when that is the point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locks: Option<&'static str>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The table, with its size when a database was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// An ignored finding, with its reason.
#[derive(Debug, Clone, Serialize)]
pub struct Ignored {
    /// The file.
    pub file: String,
    /// The rule.
    pub rule: String,
    /// Why.
    pub reason: String,
}

/// What `lint` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LintReport {
    /// The findings, file by file, in line order.
    pub findings: Vec<LintFinding>,
    /// What ignores silenced.
    pub ignored: Vec<Ignored>,
}

impl LintReport {
    /// Whether an error remains.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Lint settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LintOptions {
    /// With a database: a table with at least this many rows makes a finding an error.
    pub large_table_rows: f64,
    /// `FILE RULE: reason` lines: ignores for files that cannot take comments.
    pub ignore_file: String,
}

impl Default for LintOptions {
    fn default() -> Self {
        Self { large_table_rows: 100_000.0, ignore_file: String::new() }
    }
}

/// What a rule's statement locks, and for how long.
fn locks(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::RequireConcurrentIndexCreation | Rule::DisallowedUniqueConstraint => {
            "SHARE lock on the table (writes wait) for the whole index build"
        }
        Rule::RequireConcurrentIndexDeletion => "ACCESS EXCLUSIVE lock on the table while it drops",
        Rule::ConstraintMissingNotValid | Rule::AddingNotNullableField => {
            "ACCESS EXCLUSIVE lock on the table while every row is checked"
        }
        Rule::AddingForeignKeyConstraint => {
            "SHARE ROW EXCLUSIVE lock on both tables while every row is checked"
        }
        Rule::ChangingColumnType
        | Rule::AddingFieldWithDefault
        | Rule::AddingSerialPrimaryKeyField => {
            "ACCESS EXCLUSIVE lock on the table while it is rewritten"
        }
        _ => return None,
    })
}

/// The table a statement works on (`alter table X`, `create index … on X`), lowercased and
/// without quotes or schema.
fn target_table(statement: &str) -> Option<String> {
    let words: Vec<String> = statement
        .split(|c: char| c.is_whitespace() || c == '(')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let after = |at: usize| {
        words[at..]
            .iter()
            .find(|w| !matches!(w.as_str(), "if" | "not" | "exists" | "only" | "concurrently"))
            .map(|name| bare_name(name))
    };
    let table = words.iter().position(|w| w == "table");
    let on = words.iter().position(|w| w == "on");
    match (words.first().map(String::as_str), words.get(1).map(String::as_str)) {
        (Some("alter" | "drop"), Some("table")) => table.and_then(|t| after(t + 1)),
        (Some("create"), _) => on.and_then(|o| after(o + 1)),
        _ => None,
    }
}

/// A table's name without schema or quotes.
fn bare_name(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).trim_matches('"').to_owned()
}

/// The tables a file creates.
fn created_tables(statements: &[lexer::Statement<'_>]) -> BTreeSet<String> {
    statements
        .iter()
        .filter_map(|s| {
            let lower = s.text.to_lowercase();
            let rest = lower.strip_prefix("create table")?;
            let rest = rest.trim_start().strip_prefix("if not exists").unwrap_or(rest);
            let name =
                rest.split(|c: char| c.is_whitespace() || c == '(').find(|w| !w.is_empty())?;
            Some(bare_name(name))
        })
        .collect()
}

/// The `-- strata-lint: ignore RULE: reason` directives in the comment lines right above
/// `statement` (or, for a finding, the ignores file's lines for this file).
fn ignores_above(sql: &str, statement_line: usize) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = sql.lines().collect();
    let mut out = Vec::new();
    let mut at = statement_line.saturating_sub(1);
    while at > 0 {
        at -= 1;
        let line = lines.get(at).map_or("", |l| l.trim());
        let Some(comment) = line.strip_prefix("--") else { break };
        if let Some(rest) = comment.trim().strip_prefix("strata-lint: ignore") {
            let (rule, reason) = match rest.split_once(':') {
                Some((rule, reason)) => {
                    (rule.trim(), Some(reason.trim()).filter(|r| !r.is_empty()))
                }
                None => (rest.trim(), None),
            };
            out.push((rule.to_owned(), reason.map(str::to_owned)));
        }
    }
    out
}

/// About how many rows table `name` has, `None` when there is no such table.
///
/// `reltuples` when the table was ever analyzed or vacuumed; otherwise it is -1 (a table
/// filled by a bulk load or a restore and not yet analyzed), and the planner's own estimate
/// stands in: it sizes such a table from its pages, as it does when it plans a query on it.
async fn table_rows(conn: &mut PgConnection, name: &str) -> Result<Option<f64>, SchemaError> {
    let found: Option<(String, f32)> = sqlx::query_as(
        "select c.oid::regclass::text, c.reltuples from pg_class c where c.oid = to_regclass($1)",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(SchemaError::db("reading table sizes"))?;
    let Some((relation, reltuples)) = found else { return Ok(None) };
    if reltuples >= 0.0 {
        return Ok(Some(f64::from(reltuples)));
    }
    // `relation` is the regclass's own text: quoted and schema-qualified as needed.
    let plan: sqlx::types::JsonValue = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "explain (format json) select from only {relation}"
    )))
    .fetch_one(&mut *conn)
    .await
    .map_err(SchemaError::db("estimating the size of a table never analyzed"))?;
    let rows = plan[0]["Plan"]["Plan Rows"].as_f64();
    Ok(rows)
}

/// A finding before ignores and severity are applied.
struct Found {
    /// Byte offset in the file.
    offset: usize,
    /// The statement's first line.
    statement_line: usize,
    rule: String,
    message: String,
    locks: Option<&'static str>,
    help: Option<String>,
    table: Option<String>,
    /// An error whatever the table's size (a rule about correctness, not about locks).
    always_error: bool,
}

impl Found {
    /// A finding on statement `s` of `sql`.
    fn on(sql: &str, s: &lexer::Statement<'_>, rule: &str, message: String, help: String) -> Self {
        Self {
            offset: s.text.as_ptr() as usize - sql.as_ptr() as usize,
            statement_line: s.line,
            rule: rule.to_owned(),
            message,
            locks: None,
            help: Some(help),
            table: target_table(s.text),
            always_error: false,
        }
    }
}

/// Lints `migrations` (in order); with `database`, table sizes decide each finding's severity.
///
/// # Errors
///
/// [`SchemaError::Lex`] for a file that cannot be split into statements;
/// [`SchemaError::Database`] when the table sizes cannot be read.
pub async fn lint(
    migrations: &[&Migration],
    mut database: Option<&mut PgConnection>,
    options: &LintOptions,
) -> Result<LintReport, SchemaError> {
    let mut report = LintReport::default();
    let file_ignores: Vec<(String, String, String)> = options
        .ignore_file
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (file, rest) = line.split_once(char::is_whitespace)?;
            let (rule, reason) = rest.split_once(':')?;
            Some((file.to_owned(), rule.trim().to_owned(), reason.trim().to_owned()))
        })
        .collect();
    let mut sizes: BTreeMap<String, Option<f64>> = BTreeMap::new();
    let citus = match &mut database {
        Some(conn) => citus::Layout::read(conn).await?,
        None => None,
    };
    for m in migrations {
        let file = strata_migrate::files::file_name(m);
        let sql = m.sql.as_str();
        let statements =
            lexer::split(sql).map_err(|source| SchemaError::Lex { version: m.version, source })?;
        let created = created_tables(&statements);
        let rules = RULES.into_iter().filter(|r| m.no_tx || *r != Rule::PreferRobustStmts);
        let mut linter = Linter::from(rules);
        linter.settings.assume_in_transaction = !m.no_tx;
        let parsed = squawk_syntax::SourceFile::parse(sql);
        let mut found = Vec::new();
        for violation in linter.lint(&parsed, sql) {
            let offset = usize::from(violation.text_range.start());
            let statement = statements.iter().find(|s| {
                let start = s.text.as_ptr() as usize - sql.as_ptr() as usize;
                (start..=start + s.text.len()).contains(&offset)
            });
            let table = statement.and_then(|s| target_table(s.text));
            if table.as_ref().is_some_and(|t| created.contains(t)) {
                continue;
            }
            found.push(Found {
                offset,
                statement_line: statement.map_or(1, |s| s.line),
                rule: violation.code.to_string(),
                message: violation.message,
                locks: locks(violation.code),
                help: violation.help,
                table,
                always_error: false,
            });
        }
        for s in statements.iter().filter(|s| s.concurrently && !m.no_tx) {
            found.push(Found::on(
                sql,
                s,
                "concurrently-in-transactional-file",
                "CONCURRENTLY cannot run inside the transaction the runner wraps this file in"
                    .to_owned(),
                "make `-- no-transaction` the file's first line (a file not applied anywhere yet)"
                    .to_owned(),
            ));
        }
        if m.no_tx {
            for s in &statements {
                let first = s.text.split_whitespace().next().unwrap_or("");
                let first = first.trim_end_matches(';').to_lowercase();
                if matches!(
                    first.as_str(),
                    "begin" | "commit" | "rollback" | "savepoint" | "start" | "end"
                ) {
                    let mut finding = Found::on(
                        sql,
                        s,
                        "transaction-control-in-no-transaction-file",
                        "a -- no-transaction file runs each statement on its own: transaction control breaks its resume".to_owned(),
                        "move the statements that belong together into a transactional file".to_owned(),
                    );
                    finding.table = None;
                    found.push(finding);
                }
            }
        }
        if let Some(citus) = citus.as_ref().filter(|c| !c.applied(m.version)) {
            found.extend(statements.iter().flat_map(|s| citus::check(citus, sql, s)));
        }
        for Found { offset, statement_line, rule, message, locks, help, table, always_error } in
            found
        {
            let mut ignored = false;
            for (ignored_rule, reason) in ignores_above(sql, statement_line) {
                if ignored_rule != rule {
                    continue;
                }
                match reason {
                    Some(reason) => {
                        report.ignored.push(Ignored {
                            file: file.clone(),
                            rule: rule.clone(),
                            reason,
                        });
                        ignored = true;
                    }
                    None => report.findings.push(LintFinding {
                        file: file.clone(),
                        line: statement_line.saturating_sub(1),
                        column: 1,
                        rule: "ignore-without-reason".to_owned(),
                        severity: Severity::Error,
                        message: format!("the ignore of {rule} gives no reason"),
                        locks: None,
                        help: Some(format!("-- strata-lint: ignore {rule}: why it is safe here")),
                        table: None,
                    }),
                }
            }
            if let Some((_, _, reason)) =
                file_ignores.iter().find(|(f, r, _)| *f == file && *r == rule)
            {
                report.ignored.push(Ignored {
                    file: file.clone(),
                    rule: rule.clone(),
                    reason: reason.clone(),
                });
                ignored = true;
            }
            if ignored {
                continue;
            }
            let before = &sql[..offset.min(sql.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let (severity, table) = match (&mut database, table) {
                (Some(conn), Some(name)) => {
                    if !sizes.contains_key(&name) {
                        sizes.insert(name.clone(), table_rows(conn, &name).await?);
                    }
                    match sizes.get(&name).copied().flatten() {
                        Some(rows) if rows >= options.large_table_rows => {
                            (Severity::Error, Some(format!("{name} (about {rows:.0} rows)")))
                        }
                        Some(rows) => {
                            (Severity::Warning, Some(format!("{name} (about {rows:.0} rows)")))
                        }
                        None => {
                            (Severity::Warning, Some(format!("{name} (not in the database yet)")))
                        }
                    }
                }
                (_, table) => (Severity::Error, table),
            };
            let severity = if always_error { Severity::Error } else { severity };
            report.findings.push(LintFinding {
                file: file.clone(),
                line,
                column,
                rule,
                severity,
                message,
                locks,
                help,
                table,
            });
        }
    }
    Ok(report)
}
