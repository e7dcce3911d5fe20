//! `--dry-run`: the exact SQL a command would run, in order, with the transaction
//! boundaries and the session settings in force. Nothing is changed and no lock is taken.

use std::fmt::Write as _;

use sqlx::migrate::{Migration, MigrationType};

use crate::plan::UpPlan;
use crate::{APPLICATION_NAME, MigrateError, Settings, directive, hex, history, notx};

/// The script of `up`.
pub(crate) fn up(
    plan: &UpPlan<'_>,
    settings: &Settings,
    lock_key: i64,
) -> Result<String, MigrateError> {
    let mut out = header("up", plan.steps.len(), "apply", settings, lock_key);
    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        let m = step.migration;
        let _ = writeln!(out, "\n-- [{}/{total}] {}", index + 1, history::file_name(m));
        if m.no_tx {
            no_transaction(&mut out, m, step.resume, settings)?;
            let _ = writeln!(
                out,
                "UPDATE _sqlx_migrations SET success = true, execution_time = <elapsed ns> WHERE version = {};",
                m.version
            );
        } else {
            begin(&mut out, m, settings)?;
            let _ = writeln!(out, "{}", m.sql.as_str().trim_end());
            let _ = writeln!(
                out,
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, true, '\\x{}', <elapsed ns>);",
                m.version,
                literal(&m.description),
                hex(&m.checksum)
            );
            let _ = writeln!(
                out,
                "INSERT INTO _strata_migration_events (kind, version, ...) VALUES ('apply', {}, ...);",
                m.version
            );
            let _ = writeln!(out, "COMMIT;");
        }
    }
    footer(&mut out, lock_key);
    Ok(out)
}

/// The script of `down`: the `.down.sql` files, newest first.
pub(crate) fn down(
    downs: &[&Migration],
    settings: &Settings,
    lock_key: i64,
) -> Result<String, MigrateError> {
    let mut out = header("down", downs.len(), "revert", settings, lock_key);
    for (index, m) in downs.iter().enumerate() {
        let _ = writeln!(out, "\n-- [{}/{}] {}", index + 1, downs.len(), history::file_name(m));
        if m.no_tx {
            no_transaction(&mut out, m, None, settings)?;
        } else {
            begin(&mut out, m, settings)?;
            let _ = writeln!(out, "{}", m.sql.as_str().trim_end());
        }
        let _ = writeln!(out, "DELETE FROM _sqlx_migrations WHERE version = {};", m.version);
        let _ = writeln!(
            out,
            "INSERT INTO _strata_migration_events (kind, version, ...) VALUES ('revert', {}, ...);",
            m.version
        );
        if !m.no_tx {
            let _ = writeln!(out, "COMMIT;");
        }
    }
    footer(&mut out, lock_key);
    Ok(out)
}

fn header(command: &str, count: usize, verb: &str, settings: &Settings, lock_key: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- strata-migrate {command} --dry-run: {count} migration(s) to {verb}; nothing has been changed."
    );
    let _ = writeln!(
        out,
        "-- Session: application_name = '{APPLICATION_NAME}', client_connection_check_interval = '1000ms' (PostgreSQL 14+)."
    );
    let _ = writeln!(
        out,
        "-- Lock: SELECT pg_try_advisory_lock({lock_key}); polled for up to {} ms; then the tracking tables are created if missing.",
        settings.lock_wait.as_millis()
    );
    let _ = writeln!(
        out,
        "-- A transaction whose lock_timeout expires (SQLSTATE 55P03) is rolled back and retried up to {} time(s).",
        settings.lock_retries
    );
    out
}

fn footer(out: &mut String, lock_key: i64) {
    let _ = writeln!(out, "\nSELECT pg_advisory_unlock({lock_key});");
}

fn begin(out: &mut String, m: &Migration, settings: &Settings) -> Result<(), MigrateError> {
    let timeout = directive::effective_lock_timeout(m, settings.lock_timeout)?;
    let _ = writeln!(out, "BEGIN;");
    let _ = writeln!(out, "SET LOCAL lock_timeout = '{}ms';", timeout.as_millis());
    Ok(())
}

fn no_transaction(
    out: &mut String,
    m: &Migration,
    resume: Option<usize>,
    settings: &Settings,
) -> Result<(), MigrateError> {
    let statements = notx::statements(m)?;
    let total = statements.len();
    let _ = writeln!(
        out,
        "-- no-transaction: each statement runs and commits on its own; progress is recorded after each."
    );
    let resume_at = resume.unwrap_or(0);
    if resume.is_some() {
        let _ = writeln!(out, "-- resuming a partial run: {resume_at} statement(s) done.");
    } else if m.migration_type != MigrationType::ReversibleDown {
        let _ = writeln!(
            out,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, false, '\\x{}', -1);",
            m.version,
            literal(&m.description),
            hex(&m.checksum)
        );
    }
    let timeouts = notx::StatementTimeouts::with_default(m, settings.lock_timeout)?;
    let mut current = None;
    for (index, statement) in statements.iter().enumerate().skip(resume_at) {
        let timeout = timeouts.of_statement(statement);
        if current != Some(timeout) {
            let why = if timeout.is_zero() {
                " -- none for CONCURRENTLY: it waits for older transactions without blocking traffic"
            } else {
                ""
            };
            let _ = writeln!(out, "SET lock_timeout = '{}ms';{why}", timeout.as_millis());
            current = Some(timeout);
        }
        let _ = writeln!(out, "-- statement {}/{total} (line {})", index + 1, statement.line);
        let _ = writeln!(out, "{}", statement.text);
    }
    let _ = writeln!(out, "RESET lock_timeout;");
    Ok(())
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
