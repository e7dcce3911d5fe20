//! What the writing commands may do: the settings of `[migrations]`, and each command's options.

use std::time::Duration;

use strata_config::MigrationsConfig;

use crate::runner::observe::Observer;

/// The `application_name` of the runner's session, visible in `pg_stat_activity`
/// ([`Session::APPLICATION_NAME`](crate::Session::APPLICATION_NAME)).
pub(crate) const APPLICATION_NAME: &str = "strata-migrate";

/// How many times a transaction whose `lock_timeout` expired is retried.
pub(crate) const LOCK_RETRIES: u32 = 4;
/// The first wait before such a retry; it doubles with each retry (plus jitter).
pub(crate) const RETRY_BASE: Duration = Duration::from_millis(500);

/// The settings every writing command runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// How long to wait for another runner's lock.
    pub lock_wait: Duration,
    /// `lock_timeout` inside each migration's transaction (and for each statement of a
    /// no-transaction file); a file's `-- lock_timeout:` directive overrides it.
    pub lock_timeout: Duration,
    /// `statement_timeout` for the migrations' SQL; `None` leaves the server's. A file's
    /// `-- statement_timeout:` directive overrides it.
    pub statement_timeout: Option<Duration>,
    /// Retries of a transaction whose `lock_timeout` expired.
    pub lock_retries: u32,
    /// The first backoff before such a retry.
    pub retry_base: Duration,
    /// Report a statement's progress and what it waits on once it has run this long.
    pub progress_after: Duration,
    /// Receives the run's progress as it happens (a live display); `None`: the tracing events
    /// alone.
    pub observer: Option<Observer>,
    /// [`strata_config::MigrationsConfig::development`]: whether `redo` may run; `None`: on a
    /// loopback host or a Unix socket only.
    pub development: Option<bool>,
    /// Let the writing commands write to `postgres`, `template0` or `template1`.
    pub allow_maintenance_database: bool,
}

impl Settings {
    /// The settings of `[migrations]`, with the default retries.
    pub fn from_config(config: &MigrationsConfig) -> Self {
        Self {
            lock_wait: config.lock_wait,
            lock_timeout: config.lock_timeout,
            statement_timeout: None,
            lock_retries: LOCK_RETRIES,
            retry_base: RETRY_BASE,
            progress_after: config.progress_after,
            observer: None,
            development: config.development,
            allow_maintenance_database: config.allow_maintenance_database,
        }
    }
}

/// What `up` is allowed to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// Apply only up to (and including) this version.
    pub target: Option<i64>,
    /// Print the plan's SQL instead of running it; takes no lock.
    pub dry_run: bool,
    /// Run even though the database has applied versions with no file.
    pub ignore_missing: bool,
    /// Apply pending versions older than the newest applied one.
    pub allow_out_of_order: bool,
    /// After applying, wait up to this long until every connected streaming replica has
    /// replayed the changes (`pg_stat_replication.replay_lsn`).
    pub wait_for_replicas: Option<Duration>,
}

impl UpOptions {
    /// The options of `[migrations]`: everything pending, for real.
    pub fn from_config(config: &MigrationsConfig) -> Self {
        Self::new(Settings::from_config(config))
    }

    /// Everything pending, for real, with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            target: None,
            dry_run: false,
            ignore_missing: false,
            allow_out_of_order: false,
            wait_for_replicas: None,
        }
    }
}

/// Which applied migrations `down` reverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// Every applied version above this one.
    To(i64),
    /// The newest N applied versions.
    Steps(usize),
}

/// What `down` is allowed to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// Which migrations to revert.
    pub target: DownTarget,
    /// Print the plan's SQL instead of running it; takes no lock.
    pub dry_run: bool,
}

impl DownOptions {
    /// Options to revert down to `target`.
    pub fn new(settings: Settings, target: DownTarget) -> Self {
        Self { settings, target, dry_run: false }
    }
}

/// What `redo` does: which migrations it reverts and applies again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedoOptions {
    /// Lock, lock timeout and retries; `development` says where it may run.
    pub settings: Settings,
    /// How many of the newest applied migrations.
    pub count: usize,
}

impl RedoOptions {
    /// Options to redo the newest `count` applied migrations.
    pub fn new(settings: Settings, count: usize) -> Self {
        Self { settings, count }
    }
}

/// What `baseline` marks applied without running it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BaselineOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// The last version the database already has.
    pub target: i64,
}

impl BaselineOptions {
    /// Options to mark every migration up to `target` applied.
    pub fn new(settings: Settings, target: i64) -> Self {
        Self { settings, target }
    }
}

/// How `repair` settles a failed (partial) migration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RepairOptions {
    /// Lock, lock timeout and retries.
    pub settings: Settings,
    /// Record a failed migration as applied (finished by hand) instead of removing its record
    /// (undone by hand, so the next `up` runs it again from the start).
    pub mark_applied: bool,
}

impl RepairOptions {
    /// Options to repair, removing failed migrations' records unless `mark_applied`.
    pub fn new(settings: Settings, mark_applied: bool) -> Self {
        Self { settings, mark_applied }
    }
}
