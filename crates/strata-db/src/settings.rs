//! The server settings every pooled connection must have (`database.statement_timeout`,
//! `database.idle_in_transaction_timeout`), sent the way the pooler in front lets them pass,
//! and checked on every new connection with one round trip.
//!
//! | `database.pooler` | how they reach the server | checked |
//! |---|---|---|
//! | `none` | start-up parameters (`options`), at no cost | read back after connecting |
//! | `session` | `SET` after connecting (PgBouncer refuses `options`, or drops it) | in the same message |
//! | `transaction` | `SET LOCAL` in the `BEGIN` of every transaction strata opens | in the same message |
//! | `transaction`, `pooler_prepared_statements` | as `transaction`; a bare statement runs outside a transaction, so `statement_timeout` must be the role's own on the server | read back outside `SET LOCAL` |
//!
//! In transaction mode a session's `SET` would land on whichever server connection the pooler
//! picked and stay there for its other clients, while this client's next transaction runs
//! elsewhere without it; `SET LOCAL` travels with each transaction and ends with it. It rides in
//! the `BEGIN` message, so it costs no round trip.
//!
//! The statements here are the one place strata-db writes SQL text at run time: `SET` takes no
//! parameters, and sqlx's `begin_with` sends one simple-protocol message. Setting the values
//! with `set_config($1, $2, true)` after `BEGIN` instead would cost a round trip per
//! transaction, through a pooler where a bare statement already costs four. The text holds only
//! setting names from [`strata_config::DatabaseConfig::server_settings`] (constants) and
//! integers.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgConnection, Row};
use strata_config::{Pooler, ServerSetting};

/// Reads back both settings in the server's base unit (milliseconds).
const READ_BACK: &str = "select name, setting from pg_settings \
     where name in ('statement_timeout', 'idle_in_transaction_session_timeout')";

/// The settings of one pool and the pooler they must pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerSettings {
    settings: Vec<ServerSetting>,
    pooler: Pooler,
    /// The transaction-mode pooler keeps prepared statements: bare statements run outside a
    /// transaction ([`strata_config::DatabaseConfig::pooler_prepared_statements`]).
    prepared: bool,
}

impl ServerSettings {
    /// `settings` (from [`strata_config::DatabaseConfig::server_settings`]) through `pooler`.
    pub(crate) fn new(settings: Vec<ServerSetting>, pooler: Pooler, prepared: bool) -> Self {
        Self { settings, pooler, prepared: prepared && pooler == Pooler::Transaction }
    }

    /// The `BEGIN` of a transaction through a transaction-mode pooler, carrying the settings
    /// as `SET LOCAL`; `None` where a plain `BEGIN` will do.
    pub(crate) fn begin(&self) -> Option<Arc<str>> {
        (self.pooler == Pooler::Transaction && !self.settings.is_empty())
            .then(|| format!("begin; {}", self.set("set local", |_| true).join("; ")).into())
    }

    /// Sets (where the pooler needs it) and checks the settings on a new connection, in one
    /// simple-protocol message.
    ///
    /// # Errors
    ///
    /// The connection's error; or a configuration error naming the setting whose value did
    /// not take, and what to change, when the server reports another value.
    pub(crate) async fn apply(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.settings.is_empty() {
            return Ok(());
        }
        let mut statements = Vec::new();
        match self.pooler {
            Pooler::None => {}
            Pooler::Session => statements.extend(self.set("set", |_| true)),
            // The settings a bare statement needs are read as the session has them: with
            // prepared statements kept, a bare statement runs outside any transaction.
            Pooler::Transaction => {
                statements.push("begin".to_owned());
                statements.extend(self.set("set local", |s| !self.outside_transactions(s)));
            }
        }
        statements.push(READ_BACK.to_owned());
        if self.pooler == Pooler::Transaction {
            statements.push("commit".to_owned());
        }
        let message = statements.join("; ");
        let rows = sqlx::raw_sql(AssertSqlSafe(message)).fetch_all(&mut *conn).await?;
        let mut reported = Vec::with_capacity(rows.len());
        for row in rows {
            reported.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
        }
        self.check(&reported)
    }

    /// `verb name = value` for every setting that `which` picks.
    fn set(&self, verb: &str, which: impl Fn(&ServerSetting) -> bool) -> Vec<String> {
        self.settings
            .iter()
            .filter(|s| which(s))
            .map(|s| format!("{verb} {} = {}", s.name, s.millis))
            .collect()
    }

    /// Whether `setting` must hold outside strata's transactions too, where no `SET LOCAL`
    /// reaches: `statement_timeout` for the bare statements of a pooler that keeps prepared
    /// statements (`idle_in_transaction_session_timeout` only matters inside a transaction).
    fn outside_transactions(&self, setting: &ServerSetting) -> bool {
        self.prepared && setting.name == "statement_timeout"
    }

    /// Compares what the server reports, as `(name, setting)` pairs, with the settings.
    fn check(&self, reported: &[(String, String)]) -> Result<(), sqlx::Error> {
        for wanted in &self.settings {
            let found = reported.iter().find(|(name, _)| name == wanted.name);
            let found = found.map_or("nothing", |(_, value)| value.as_str());
            if found != wanted.millis.to_string() {
                return Err(sqlx::Error::Configuration(self.not_taken(wanted, found).into()));
            }
        }
        Ok(())
    }

    /// Why `wanted` reads `found` on the server, and what to do.
    fn not_taken(&self, wanted: &ServerSetting, found: &str) -> String {
        let head = format!(
            "{key} did not reach the server: a new connection reports {name} = {found} ms, not \
             {millis} ms",
            key = wanted.key,
            name = wanted.name,
            millis = wanted.millis,
        );
        if self.outside_transactions(wanted) {
            return format!(
                "{head}. With database.pooler_prepared_statements, a bare statement runs outside \
                 any transaction, where strata's SET LOCAL does not reach: give the role that \
                 timeout on the server (ALTER ROLE … SET {name} = {millis}), or set {key} = \"0s\"",
                name = wanted.name,
                millis = wanted.millis,
                key = wanted.key,
            );
        }
        match self.pooler {
            Pooler::None => format!(
                "{head}. Something between strata and the server dropped the start-up parameter \
                 `options` that carries it: PgBouncer does with `ignore_startup_parameters = \
                 options`. Set database.pooler to the pooler's mode (\"session\" or \
                 \"transaction\"), and strata sets it after connecting"
            ),
            Pooler::Session | Pooler::Transaction => format!(
                "{head} after strata set it: something resets it (a pooler's \
                 `server_reset_query`, or a pooler in another mode than database.pooler = \
                 \"{}\")",
                self.pooler.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pooler: Pooler) -> ServerSettings {
        with_prepared(pooler, false)
    }

    fn with_prepared(pooler: Pooler, prepared: bool) -> ServerSettings {
        let setting = |name, key, millis| ServerSetting { name, key, millis };
        ServerSettings::new(
            vec![
                setting("statement_timeout", "database.statement_timeout", 30_000),
                setting(
                    "idle_in_transaction_session_timeout",
                    "database.idle_in_transaction_timeout",
                    60_000,
                ),
            ],
            pooler,
            prepared,
        )
    }

    #[test]
    fn only_a_transaction_pooler_needs_its_own_begin() {
        assert_eq!(
            settings(Pooler::Transaction).begin().as_deref(),
            Some(
                "begin; set local statement_timeout = 30000; \
                 set local idle_in_transaction_session_timeout = 60000"
            )
        );
        assert_eq!(settings(Pooler::Session).begin(), None);
        assert_eq!(settings(Pooler::None).begin(), None);
        assert_eq!(ServerSettings::new(Vec::new(), Pooler::Transaction, false).begin(), None);
        // Prepared statements kept: transactions still carry both.
        assert_eq!(
            with_prepared(Pooler::Transaction, true).begin(),
            settings(Pooler::Transaction).begin()
        );
    }

    #[test]
    fn a_value_that_did_not_take_names_its_key_and_the_pooler_parameter() {
        let reported = |timeout: &str| {
            vec![
                ("statement_timeout".to_owned(), timeout.to_owned()),
                ("idle_in_transaction_session_timeout".to_owned(), "60000".to_owned()),
            ]
        };
        assert!(settings(Pooler::None).check(&reported("30000")).is_ok());
        let error = settings(Pooler::None).check(&reported("0")).err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        for part in
            ["database.statement_timeout", "statement_timeout = 0 ms", "ignore_startup_parameters"]
        {
            assert!(error.contains(part), "{part} missing from {error}");
        }
        let error = settings(Pooler::Session).check(&reported("5")).err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("server_reset_query"));
        let prepared = with_prepared(Pooler::Transaction, true);
        let error = prepared.check(&reported("0")).err().map(|e| e.to_string());
        assert!(error.unwrap_or_default().contains("ALTER ROLE … SET statement_timeout = 30000"));
    }
}
