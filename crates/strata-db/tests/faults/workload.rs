//! The workload of the scenario tests: writers that retry as `Error::retry` says, and an
//! outbox consumer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_db::tasks::{self, NewTask, TaskMetadata, TaskPatch};
use strata_db::{Error, OutboxEventId, Pool, ProjectId, Retry, Scope, TaskId, constraints, outbox};
use tokio::sync::watch;

/// What one worker was told, and what it saw on the way.
#[derive(Default)]
pub(super) struct Told {
    /// Tasks acknowledged as created, with the title of their last acknowledged write and
    /// the version it left.
    pub(super) tasks: HashMap<TaskId, (String, i32)>,
    pub(super) creates: u64,
    pub(super) updates: u64,
    /// Failures by what `retry()` said.
    pub(super) safe: u64,
    pub(super) in_doubt: u64,
    /// Failures a retry could not explain (`Retry::No` without an in-doubt attempt before it).
    pub(super) unexpected: Vec<String>,
    /// The longest single attempt, acquire to commit.
    pub(super) longest_attempt: Duration,
    /// When each failure came, since the start.
    pub(super) failures: Vec<Duration>,
}

/// When each write was acknowledged, since the start, for the throughput timeline.
pub(super) type Timeline = Arc<Mutex<Vec<Duration>>>;

/// One attempt of a write: a whole transaction on a fresh check-out.
pub(super) enum Write<'a> {
    Create(&'a NewTask<'a>),
    Update { id: TaskId, version: i32, title: &'a str },
}

async fn attempt(pool: &Pool, scope: Scope, write: &Write<'_>) -> Result<(String, i32), Error> {
    let mut conn = pool.acquire().await?;
    let mut tx = scope.begin(&mut conn).await?;
    let task = match write {
        Write::Create(new) => tasks::create(&mut tx, new).await?,
        Write::Update { id, version, title } => {
            let patch = TaskPatch { title: Some((*title).to_owned()), ..TaskPatch::default() };
            tasks::update(&mut tx, *id, *version, &patch).await?
        }
    };
    tx.commit().await?;
    Ok((task.title, task.version))
}

/// Runs one write until it has a definite answer: `Some(version)` once it is known to be
/// applied, `None` when it was refused for a reason a retry cannot fix (recorded).
async fn write_until_known(
    pool: &Pool,
    scope: Scope,
    write: &Write<'_>,
    told: &mut Told,
    start: Instant,
) -> Option<i32> {
    let mut in_doubt = false;
    loop {
        let started = Instant::now();
        let result = attempt(pool, scope, write).await;
        told.longest_attempt = told.longest_attempt.max(started.elapsed());
        let error = match result {
            Ok((_, version)) => return Some(version),
            Err(error) => error,
        };
        told.failures.push(start.elapsed());
        match error.retry() {
            Retry::Safe => told.safe += 1,
            Retry::InDoubt => {
                told.in_doubt += 1;
                in_doubt = true;
            }
            Retry::No => {
                return match (&error, write) {
                    // The in-doubt create had landed: its ID is taken.
                    (Error::Conflict { constraint, .. }, Write::Create(_))
                        if in_doubt && *constraint == constraints::TASKS_PKEY =>
                    {
                        Some(1)
                    }
                    // The in-doubt update had landed: the version moved on by one.
                    (Error::Stale { expected, actual }, Write::Update { .. })
                        if in_doubt && *actual == expected + 1 =>
                    {
                        Some(*actual)
                    }
                    _ => {
                        told.unexpected.push(format!("{error:?}"));
                        None
                    }
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One worker: creates a task in its project, then updates it a few times, and again, until
/// `stop`; every write runs until its outcome is known.
pub(super) async fn worker(
    pool: Pool,
    scope: Scope,
    project: ProjectId,
    index: usize,
    stop: watch::Receiver<bool>,
    timeline: Timeline,
    start: Instant,
) -> Told {
    let metadata = TaskMetadata::default();
    let mut told = Told::default();
    let mut n = 0u64;
    while !*stop.borrow() {
        n += 1;
        let id = TaskId::new();
        let title = format!("w{index}-{n}");
        let new = NewTask {
            id,
            project_id: project,
            title: &title,
            description: "",
            priority: 2,
            assignee_id: None,
            labels: &[],
            metadata: &metadata,
            due_on: None,
        };
        let Some(mut version) =
            write_until_known(&pool, scope, &Write::Create(&new), &mut told, start).await
        else {
            continue;
        };
        told.creates += 1;
        told.tasks.insert(id, (title.clone(), version));
        push(&timeline, start);
        for k in 1..=3 {
            if *stop.borrow() {
                break;
            }
            let title = format!("{title}.{k}");
            let write = Write::Update { id, version, title: &title };
            let Some(applied) = write_until_known(&pool, scope, &write, &mut told, start).await
            else {
                break;
            };
            version = applied;
            told.updates += 1;
            told.tasks.insert(id, (title, version));
            push(&timeline, start);
        }
    }
    told
}

fn push(timeline: &Timeline, start: Instant) {
    if let Ok(mut times) = timeline.lock() {
        times.push(start.elapsed());
    }
}

/// What the outbox consumer did.
#[derive(Default)]
pub(super) struct Delivered {
    /// Deliveries per event (more than one: delivered again after a lost claim or mark).
    pub(super) times: HashMap<OutboxEventId, u32>,
    /// Rows `mark_delivered` reported marked, summed over acknowledged calls.
    pub(super) marked: u64,
    pub(super) errors: u64,
}

/// Claims, "delivers" (counts) and marks outbox events until `stop`, then until none is left.
pub(super) async fn consumer(pool: Pool, mut stop: watch::Receiver<bool>) -> Delivered {
    let mut delivered = Delivered::default();
    let mut idle_after_stop = 0;
    loop {
        let round = async {
            let mut conn = pool.acquire().await?;
            let events = outbox::claim(&mut conn, 100, Duration::from_secs(1)).await?;
            // Delivered once claimed: what a relay sends before it marks.
            for event in &events {
                *delivered.times.entry(event.id).or_default() += 1;
            }
            let ids: Vec<OutboxEventId> = events.iter().map(|e| e.id).collect();
            let marked = outbox::mark_delivered(&mut conn, &ids).await?;
            Ok::<_, Error>((ids.len(), marked))
        };
        match round.await {
            Ok((claimed, marked)) => {
                delivered.marked += marked;
                if claimed == 0 {
                    if *stop.borrow() {
                        idle_after_stop += 1;
                        // Three empty rounds a lease apart: nothing is left, claimed or not.
                        if idle_after_stop >= 3 {
                            return delivered;
                        }
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                    } else {
                        drop(tokio::time::timeout(Duration::from_millis(20), stop.changed()).await);
                    }
                } else {
                    idle_after_stop = 0;
                }
            }
            Err(_) => {
                delivered.errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
