//! What the runner is doing, as it happens, for a caller that shows it live (the command
//! line's progress bar): [`Settings::observer`](crate::Settings::observer) receives each
//! [`Progress`]. The tracing events are unchanged; this is the same news, typed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One piece of news from a running command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Waiting for the migration lock, which another runner holds.
    LockWait {
        /// How long so far.
        waited: Duration,
        /// Who holds it (pid, application, client, state), as `pg_stat_activity` tells.
        holder: String,
    },
    /// A migration starts.
    Migration {
        /// Its place in this run, from 1.
        index: usize,
        /// Migrations in this run.
        total: usize,
        /// Its version.
        version: i64,
        /// Its description.
        description: String,
        /// Applied (`true`) or reverted.
        up: bool,
    },
    /// A statement has been running for `elapsed`: the whole file, or one statement of a
    /// no-transaction file (`what` names it), with its phase and percentage where PostgreSQL
    /// reports them (`pg_stat_progress_create_index`, `pg_stat_progress_cluster`).
    Running {
        /// The file, or `file statement i/n`.
        what: String,
        /// How long it has run.
        elapsed: Duration,
        /// The phase PostgreSQL reports, such as `building index: scanning table`.
        phase: Option<String>,
        /// How far, where PostgreSQL counts blocks or tuples.
        percent: Option<i64>,
    },
    /// The running statement waits on a lock another session holds.
    Blocked {
        /// The file, or `file statement i/n`.
        what: String,
        /// The blocking session's pid.
        pid: i32,
        /// Its state (`idle in transaction` …).
        state: String,
        /// When its current query started.
        since: String,
        /// The start of its query text.
        query: String,
    },
    /// A `lock_timeout` expired: rolled back, and tried again.
    Retry {
        /// The migration.
        version: i64,
        /// This retry, from 1.
        retry: u32,
        /// Retries allowed.
        of: u32,
    },
    /// A migration finished.
    Done {
        /// Its version.
        version: i64,
        /// How long it took.
        elapsed: Duration,
    },
}

/// Receives [`Progress`] as it happens, on the runner's task: keep it quick.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Progress) + Send + Sync>);

impl Observer {
    /// An observer calling `tell` with each piece of news.
    pub fn new(tell: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(tell))
    }

    /// Passes `news` on.
    pub(crate) fn tell(&self, news: &Progress) {
        (self.0)(news);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

/// Tells `observer`, if there is one, what `news` makes.
pub(crate) fn tell(observer: Option<&Observer>, news: impl FnOnce() -> Progress) {
    if let Some(observer) = observer {
        observer.tell(&news());
    }
}
