//! Progress of long statements: once one has run longer than `migrations.progress_after`, a
//! second connection reports, every few seconds, how far it got (`pg_stat_progress_create_index`,
//! `pg_stat_progress_cluster`: phase, blocks and tuples, a percentage) and what it waits on
//! (`pg_blocking_pids`, with the blocker's pid, state, and the start of its query text, which
//! never holds bound parameters). Reports are tracing events: text on a terminal, JSON with
//! `log.format = "json"`.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, FromRow, PgConnection};

use crate::runner::observe::{Observer, Progress, tell};

/// How to watch the runner's session.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    /// How the runner connected (for a second connection).
    pub options: PgConnectOptions,
    /// The runner's backend.
    pub pid: i32,
    /// Report once a statement has run this long, then every this long (at most 5 s).
    pub after: Duration,
    /// Receives the reports too.
    pub observer: Option<Observer>,
}

#[derive(FromRow)]
struct Phase {
    command: String,
    phase: String,
    blocks_done: i64,
    blocks_total: i64,
    tuples_done: i64,
    tuples_total: i64,
}

#[derive(FromRow)]
struct Blocker {
    pid: i32,
    state: String,
    since: String,
    query: String,
}

/// Runs `work`, reporting on it while it runs longer than `watch.after`.
pub(crate) async fn watched<T>(
    watch: Option<&Watch>,
    what: &str,
    work: impl Future<Output = T>,
) -> T {
    let Some(watch) = watch else { return work.await };
    let started = Instant::now();
    let reporter = async {
        tokio::time::sleep(watch.after).await;
        let Ok(mut monitor) =
            watch.options.clone().application_name("strata-migrate progress").connect().await
        else {
            return std::future::pending::<()>().await;
        };
        loop {
            report(&mut monitor, watch, what, started.elapsed()).await;
            tokio::time::sleep(watch.after.min(Duration::from_secs(5))).await;
        }
    };
    tokio::select! {
        result = work => result,
        () = reporter => unreachable!("the reporter never ends"),
    }
}

async fn report(monitor: &mut PgConnection, watch: &Watch, what: &str, elapsed: Duration) {
    let (pid, observer) = (watch.pid, watch.observer.as_ref());
    let progress: Option<Phase> = sqlx::query_as(
        "select command, phase, blocks_done, blocks_total, tuples_done, tuples_total
           from pg_stat_progress_create_index where pid = $1
         union all
         select command, phase, heap_blks_scanned, heap_blks_total, heap_tuples_written, 0::bigint
           from pg_stat_progress_cluster where pid = $1",
    )
    .bind(pid)
    .fetch_optional(&mut *monitor)
    .await
    .ok()
    .flatten();
    let elapsed_s = elapsed.as_secs();
    let of = |done: i64, total: i64| (total > 0).then(|| done * 100 / total);
    tell(observer, || Progress::Running {
        what: what.to_owned(),
        elapsed,
        phase: progress.as_ref().map(|p| p.phase.clone()),
        percent: progress.as_ref().and_then(|p| {
            of(p.blocks_done, p.blocks_total).or_else(|| of(p.tuples_done, p.tuples_total))
        }),
    });
    match progress {
        Some(p) => {
            let percent =
                of(p.blocks_done, p.blocks_total).or_else(|| of(p.tuples_done, p.tuples_total));
            tracing::info!(
                statement = what,
                elapsed_s,
                command = %p.command,
                phase = %p.phase,
                blocks_done = p.blocks_done,
                blocks_total = p.blocks_total,
                tuples_done = p.tuples_done,
                tuples_total = p.tuples_total,
                percent = percent,
                "still running"
            );
        }
        None => tracing::info!(statement = what, elapsed_s, "still running"),
    }
    let blockers: Vec<Blocker> = sqlx::query_as(
        "select a.pid, coalesce(a.state, '') as state,
                coalesce(to_char(a.query_start, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '') as since,
                left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80) as query
           from pg_stat_activity a where a.pid = any(pg_blocking_pids($1))",
    )
    .bind(pid)
    .fetch_all(&mut *monitor)
    .await
    .unwrap_or_default();
    for b in blockers {
        tell(observer, || Progress::Blocked {
            what: what.to_owned(),
            pid: b.pid,
            state: b.state.clone(),
            since: b.since.clone(),
            query: b.query.clone(),
        });
        tracing::warn!(
            statement = what,
            elapsed_s,
            blocker.pid = b.pid,
            blocker.state = %b.state,
            blocker.since = %b.since,
            blocker.query = %b.query,
            "waiting on a lock another session holds"
        );
    }
}
