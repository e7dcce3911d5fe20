//! The server errors the runner reacts to, by SQLSTATE, in one place.

/// `lock_not_available`: `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// `active_sql_transaction`: the statement cannot run inside a transaction block
/// (`CREATE INDEX CONCURRENTLY`, `VACUUM` …), raised before it does anything.
const ACTIVE_SQL_TRANSACTION: &str = "25001";
/// `undefined_table`: a relation the statement names does not exist.
const UNDEFINED_TABLE: &str = "42P01";
/// `invalid_transaction_termination`: a procedure tried to commit inside our transaction.
const INVALID_TRANSACTION_TERMINATION: &str = "2D000";

fn code(error: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    error.as_database_error().and_then(|db| db.code())
}

/// The statement's `lock_timeout` expired: it was cancelled and may be retried.
pub(crate) fn is_lock_timeout(error: &sqlx::Error) -> bool {
    code(error).is_some_and(|c| c == LOCK_NOT_AVAILABLE)
}

/// The statement cannot run inside a transaction block.
pub(crate) fn cannot_run_in_transaction(error: &sqlx::Error) -> bool {
    code(error).is_some_and(|c| c == ACTIVE_SQL_TRANSACTION)
}

/// The statement must run outside our transaction: it cannot run in one, or it manages
/// transactions itself. Either way the server refused before changing anything.
pub(crate) fn needs_no_transaction(error: &sqlx::Error) -> bool {
    code(error).is_some_and(|c| c == ACTIVE_SQL_TRANSACTION || c == INVALID_TRANSACTION_TERMINATION)
}

/// A table the statement names does not exist (the tracking tables, on a new database).
pub(crate) fn is_undefined_table(error: &sqlx::Error) -> bool {
    code(error).is_some_and(|c| c == UNDEFINED_TABLE)
}

pub(crate) use strata_config::is_connection_lost as connection_lost;
