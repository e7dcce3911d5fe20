//! `--dry-run`: prints a command's [`Plan`], the exact SQL the executor would send for it, in
//! order, with the transaction boundaries and the session settings in force. Nothing is
//! changed and no lock is taken. Everything here comes from the plan; where the executor's
//! bookkeeping binds values only known when it runs, they show as `<…>`.

use crate::runner::options::APPLICATION_NAME;
use crate::runner::plan::{Direction, How, Plan, Statements};
use crate::tools::files;

/// The script of `plan`.
pub(crate) fn script(plan: &Plan<'_>, lock_key: i64) -> String {
    let (command, verb) = match plan.direction {
        Direction::Up => ("up", "apply"),
        Direction::Down => ("down", "revert"),
    };
    let total = plan.steps.len();
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "-- strata-migrate {command} --dry-run: {total} migration(s) to {verb}; nothing has been changed."
    ));
    line(format!(
        "-- Session: application_name = '{APPLICATION_NAME}', client_connection_check_interval = '1000ms' (PostgreSQL 14+)."
    ));
    line(format!(
        "-- Lock: SELECT pg_try_advisory_lock({lock_key}); polled for up to {} ms; then the tracking tables are created if missing.",
        plan.settings.lock_wait.as_millis()
    ));
    line(format!(
        "-- A transaction whose lock_timeout expires (SQLSTATE 55P03) is rolled back and retried up to {} time(s).",
        plan.settings.lock_retries
    ));
    let up = plan.direction == Direction::Up;
    for (index, step) in plan.steps.iter().enumerate() {
        let m = step.migration;
        line(format!("\n-- [{}/{total}] {}", index + 1, files::file_name(m)));
        match &step.how {
            How::Transaction { begin, .. } => {
                for part in begin.split("; ") {
                    line(format!("{part};"));
                }
                line(m.sql.as_str().trim_end().to_owned());
                line(if up {
                    format!(
                        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, true, '\\x{}', <elapsed ns>);",
                        m.version,
                        literal(&m.description),
                        hex::encode(&*m.checksum)
                    )
                } else {
                    format!("DELETE FROM _sqlx_migrations WHERE version = {};", m.version)
                });
                line(event(up, m.version));
                line("COMMIT;".to_owned());
            }
            How::Record { replaced } => {
                line(format!(
                    "-- A checkpoint: this database applied the {replaced} migration(s) it stands for, so it is recorded, not run."
                ));
                line(format!(
                    "UPDATE _sqlx_migrations SET checksum = '\\x{}', description = {} WHERE version = {};",
                    hex::encode(&*m.checksum),
                    literal(&m.description),
                    m.version
                ));
                line(format!(
                    "INSERT INTO _strata_migration_events (kind, version, ...) VALUES ('baseline', {}, ...);",
                    m.version
                ));
            }
            How::Statements(statements) => {
                no_transaction(&mut line, up, m, statements);
                line(if up {
                    format!(
                        "UPDATE _sqlx_migrations SET success = true, execution_time = <elapsed ns> WHERE version = {};\nDELETE FROM _strata_migration_progress WHERE version = {0};",
                        m.version
                    )
                } else {
                    format!("DELETE FROM _sqlx_migrations WHERE version = {};", m.version)
                });
                line(event(up, m.version));
            }
        }
    }
    line(format!("\nSELECT pg_advisory_unlock({lock_key});"));
    out
}

fn no_transaction(
    line: &mut impl FnMut(String),
    up: bool,
    m: &sqlx::migrate::Migration,
    statements: &Statements<'_>,
) {
    let total = statements.all.len();
    line("-- no-transaction: each statement runs and commits on its own; progress is recorded with each.".to_owned());
    match statements.resume_at {
        Some(done) => line(format!("-- resuming a partial run: {done} statement(s) done.")),
        None if up => line(format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)\n    VALUES ({}, {}, false, '\\x{}', -1);\nINSERT INTO _strata_migration_progress (version, checksum, statements_done, statements_total)\n    VALUES ({0}, '\\x{2}', 0, {total});",
            m.version,
            literal(&m.description),
            hex::encode(&*m.checksum)
        )),
        None => {}
    }
    for (index, planned) in statements.to_run() {
        if let Some(set) = &planned.set {
            let why = if planned.alone && planned.timeouts.lock.is_zero() {
                " -- none for CONCURRENTLY: it waits for older transactions without blocking traffic"
            } else {
                ""
            };
            line(format!("{set};{why}"));
        }
        let alone = if planned.alone { " on its own" } else { "" };
        line(format!(
            "-- statement {}/{total} (line {}){alone}",
            index + 1,
            planned.statement.line
        ));
        line(planned.statement.text.to_owned());
        let last = index + 1 == total;
        if up && !(last && planned.alone) {
            line(format!("{};", crate::runner::events::progress_sql(m.version, index + 1)));
        }
    }
    if let Some(reset) = &statements.reset_after {
        line(format!("{reset};"));
    }
}

fn event(up: bool, version: i64) -> String {
    let kind = if up { "apply" } else { "revert" };
    format!(
        "INSERT INTO _strata_migration_events (kind, version, ...) VALUES ('{kind}', {version}, ...);"
    )
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
