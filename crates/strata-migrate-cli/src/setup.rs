//! What a command starts from: the configuration (with `--database-url`), logging, and for a
//! writing command at a terminal the live display and the signals; then, for the commands on
//! the configured database, its session, the migrations and the settings, and the one way a
//! command runs there ([`Setup::on_session`]): stopped by Ctrl-C or SIGTERM, the session
//! closed on every path, and what an interruption left said.

use std::time::Duration;

use sqlx::migrate::Migrator;
use strata_config::{Config, DatabaseUrl, Origin};
use strata_db::MIGRATOR;
use strata_migrate::cancel::Canceller;
use strata_migrate::status::State;
use strata_migrate::{MigrateError, Session, Settings};

use crate::args::Global;
use crate::error::CliError;
use crate::terminal::{self, Interrupted, Live, Signals};

/// The configuration, with `--database-url` over the other sources: the runner's URL too.
pub(crate) fn load_config(global: &Global) -> Result<Config, CliError> {
    let mut config = Config::load().map_err(MigrateError::from)?;
    if let Some(url) = global.database_url.clone() {
        let origin = Origin::Flag { flag: "--database-url".to_owned() };
        config.database.override_url(DatabaseUrl::new(url), origin).map_err(MigrateError::from)?;
        // The flag names the database to work on, directly: it is the runner's URL too.
        config.migrations.url = config.database.url.clone();
    }
    Ok(config)
}

/// The migrations of `--source`, if given.
pub(crate) async fn migrations(global: &Global) -> Result<Option<Migrator>, MigrateError> {
    match &global.source {
        Some(dir) => strata_migrate::files::read_migrations(dir).await.map(Some),
        None => Ok(None),
    }
}

/// A command's configuration, with logging installed, and for a writing command (on one
/// database, not `--targets`) the live display and the signals it is stopped by.
pub(crate) struct Setup {
    /// The configuration.
    pub(crate) config: Config,
    live: Option<Live>,
    signals: Option<Signals>,
}

impl Setup {
    /// Loads the configuration and installs logging: JSON log events with `--format json`;
    /// only errors under the live display, which says what the log lines would.
    pub(crate) fn start(global: &Global, writes: bool) -> Result<Self, CliError> {
        let mut config = load_config(global)?;
        if global.json() {
            // Machine-readable output: the log events (progress reports included) as JSON too.
            config.log.format = strata_config::LogFormat::Json;
        }
        let writes = writes && !global.has_targets();
        let signals = if writes { Signals::catch() } else { None };
        let live = if writes { Live::start(global.progress, global.json()) } else { None };
        if live.is_some() {
            // The display says what the log lines would; errors are printed at the end.
            config.log.filter = "error".to_owned();
        }
        strata_config::init_tracing(&config.log).map_err(MigrateError::from)?;
        Ok(Self { config, live, signals })
    }

    /// Refuses `--targets` for a command that runs on one database.
    pub(crate) fn one_database(self, global: &Global) -> Result<Self, CliError> {
        if global.has_targets() {
            return Err(CliError::Usage("--targets works with up, status and check".to_owned()));
        }
        Ok(self)
    }

    /// Runs `work` on the configured database's session with the migrations and the
    /// settings (`--allow-maintenance-database`, the live display), then closes the session.
    /// A writing command's work is stopped by Ctrl-C or SIGTERM
    /// ([`terminal::interruptible`]): what it left is printed, and the error is
    /// [`CliError::Interrupted`]. `verb` names the command in that advice.
    pub(crate) async fn on_session<T>(
        mut self,
        global: &Global,
        verb: &str,
        work: impl AsyncFnOnce(&mut Session, &Migrator, Settings) -> Result<T, MigrateError>,
    ) -> Result<T, CliError> {
        // Reading the files overlaps connecting (mostly waiting on the server: TCP, TLS,
        // authentication, back-end start-up).
        let (source, session) =
            tokio::join!(migrations(global), Session::from_config(&self.config));
        let source = source?;
        let mut session = session?;
        let migrator = source.as_ref().unwrap_or(&MIGRATOR);
        let mut settings = Settings::from_config(&self.config.migrations);
        settings.allow_maintenance_database |= global.allow_maintenance_database;
        if let Some(live) = &self.live {
            settings.observer = Some(live.observer());
            // The display shows the phase within a second rather than after five.
            settings.progress_after = settings.progress_after.min(Duration::from_secs(1));
        }
        let canceller = session.canceller();
        let work = work(&mut session, migrator, settings);
        let result = terminal::interruptible(&canceller, self.signals.as_mut(), work).await;
        if let Some(live) = self.live.take() {
            live.finish();
        }
        session.close().await;
        match result {
            Ok(result) => Ok(result?),
            Err(interrupted) => {
                report_interruption(&self.config, migrator, &canceller, &interrupted, verb).await;
                Err(CliError::Interrupted(Box::new(interrupted)))
            }
        }
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
                    .filter(|l| !matches!(l.state, State::Applied | State::InCheckpoint))
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
