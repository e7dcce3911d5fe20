//! `--scale`: how the cost grows with the data and with the callers.
//!
//! - get by id and the first page of a list, with 10k, 1M and 5M tasks in the table (p50, p99),
//!   strata against deadpool-postgres running the same statement;
//! - paging: the first page and the page at 90% depth of a 1M-task project;
//! - importing 1M tasks into an empty table and into the 5M one;
//! - callers from 1 to 64 on a pool of 8, strata against deadpool-postgres;
//! - creates spread over 1, 8 and 64 projects at 8 callers, against tokio-postgres running the
//!   same transaction.
//!
//! `--quick` uses 10k, 100k and 300k tasks. The data sets are made once, server-side
//! (`INSERT … SELECT generate_series`, in 100k-row batches: no rows cross the socket, about 3×
//! faster than a client `COPY` of the same rows), and reused while their databases hold them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask, TaskFilter, TaskOrder};
use strata_db::{Pool, ProjectId, Scope};
use uuid::Uuid;

use crate::calls::{StrataCreate, StrataGet};
use crate::database::{fresh_database, strata_pool, url_with_db};
use crate::fixture::organization;
use crate::peer::same_create::SameCreate;
use crate::peer::task::TENANT_GET_SQL;
use crate::peer::{DeadpoolGet, deadpool};
use crate::plan::Plan;
use crate::stats::{Sample, Summary, Worker, drive};

/// Tasks per project in the data sets: the 1M-task project of the paging curve.
const PROJECT_TASKS: u64 = 1_000_000;
/// Bumped when the generator changes, so older data sets are made again.
const GENERATOR: i32 = 1;

/// Everything `--scale` measured, for the JSON, the charts and the targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scale {
    /// One point per table size.
    pub sizes: Vec<SizePoint>,
    /// Tasks in the project paged through.
    pub paged_project_tasks: u64,
    /// The first page of 50.
    pub first_page: Summary,
    /// The page of 50 at 90% depth.
    pub deep_page: Summary,
    /// Tasks imported in each import.
    pub import_tasks: u64,
    /// The import into an empty table (rows/s in `throughput`).
    pub import_empty: Summary,
    /// The import into the largest table.
    pub import_full: Summary,
    /// Tasks in the largest table.
    pub import_full_table: u64,
    /// One point per number of callers.
    pub callers: Vec<CallersPoint>,
    /// One point per number of projects the creates go to.
    pub creates: Vec<CreatesPoint>,
}

/// Get and list at one table size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizePoint {
    /// Tasks in the table.
    pub tasks: u64,
    /// `tasks::get`, 4 callers on a pool of 4.
    pub get: Summary,
    /// deadpool-postgres (4) on the same statement.
    pub get_peer: Summary,
    /// The first page of 50 of a project, 4 callers.
    pub list: Summary,
}

/// Gets at one number of callers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallersPoint {
    /// Concurrent callers.
    pub callers: usize,
    /// strata's pool of 8.
    pub strata: Summary,
    /// deadpool-postgres's pool of 8, same statement.
    pub deadpool: Summary,
}

/// Creates spread over some projects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatesPoint {
    /// Projects the 8 callers spread their creates over.
    pub projects: usize,
    /// Throughput and latency.
    pub creates: Summary,
    /// tokio-postgres running the same transaction over the same projects, 8 connections
    /// (absent in runs from before it was measured).
    #[serde(default)]
    pub peer: Option<Summary>,
}

/// A data set: a database with `tasks` tasks in projects of at most [`PROJECT_TASKS`].
struct DataSet {
    url: String,
    tasks: u64,
    scope: Scope,
    projects: Vec<ProjectId>,
    /// A shuffled sample of task IDs.
    ids: Arc<Vec<Uuid>>,
}

/// How big the data sets and how long the rounds of a `--scale` run are.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Tasks in each table, smallest first.
    pub tables: &'static [u64],
    /// Tasks per import.
    pub import: u64,
    /// One timed round.
    pub round: Duration,
}

impl Sizes {
    /// The sizes of a full run, or of `--quick`.
    pub fn of(plan: Plan) -> Self {
        if plan.quick {
            Self {
                tables: &[10_000, 100_000, 300_000],
                import: 100_000,
                round: Duration::from_secs(1),
            }
        } else {
            Self {
                tables: &[10_000, 1_000_000, 5_000_000],
                import: 1_000_000,
                round: Duration::from_secs(2),
            }
        }
    }
}

/// Runs every `--scale` workload.
pub async fn run(server: &str, plan: Plan) -> anyhow::Result<Scale> {
    run_with(server, plan, Sizes::of(plan)).await
}

/// Runs every `--scale` workload at `sizes`.
async fn run_with(server: &str, plan: Plan, sizes: Sizes) -> anyhow::Result<Scale> {
    let round = sizes.round;
    let mut points = Vec::new();
    let mut sets = Vec::new();
    for &size in sizes.tables {
        let started = Instant::now();
        let set = data_set(server, size).await?;
        eprintln!("scale: {size} tasks ready in {:.1} s", started.elapsed().as_secs_f64());
        points.push(size_point(&set, plan, round).await?);
        sets.push(set);
    }
    let (small, largest) = (&sets[0], &sets[sets.len() - 1]);
    let paged = sets.iter().find(|s| s.tasks >= PROJECT_TASKS).unwrap_or(largest);
    let paged_project_tasks = paged.tasks.min(PROJECT_TASKS);
    let (first_page, deep_page) = paging(paged, paged_project_tasks, plan, round).await?;
    let import_tasks = sizes.import;
    let import_empty = import_into_empty(server, import_tasks).await?;
    let import_full = import(largest, import_tasks).await?;
    let callers = sweep(small, plan, round).await?;
    let creates = creates(small, plan, round).await?;
    Ok(Scale {
        sizes: points,
        paged_project_tasks,
        first_page,
        deep_page,
        import_tasks,
        import_empty,
        import_full,
        import_full_table: largest.tasks,
        callers,
        creates,
    })
}

/// The database for `size` tasks, made unless it already holds them.
async fn data_set(server: &str, size: u64) -> anyhow::Result<DataSet> {
    let name = format!("strata_bench_scale_{size}");
    let url = url_with_db(server, &name);
    if holds(&url, size).await {
        vacuum(&url).await?;
    } else {
        generate(server, &name, size).await?;
    }
    let admin = sqlx::PgPool::connect(&url).await?;
    let (org, owner): (Uuid, Uuid) =
        sqlx::query_as("select organization_id, user_id from memberships limit 1")
            .fetch_one(&admin)
            .await?;
    let projects: Vec<Uuid> =
        sqlx::query_scalar("select id from projects where key like 'S%' order by key")
            .fetch_all(&admin)
            .await?;
    // Every k-th task, shuffled: a sample spread over the whole table.
    let every = (size / 20_000).max(1) as i32;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "select id from (select id from tasks where number % $1 = 0) s order by random()",
    )
    .bind(every)
    .fetch_all(&admin)
    .await?;
    admin.close().await;
    let pool = strata_pool(&url, 1)?;
    let mut conn = pool.acquire().await?;
    let scope = Scope::resolve(
        &mut conn,
        strata_db::OrganizationId::from_uuid(org),
        strata_db::UserId::from_uuid(owner),
    )
    .await?;
    drop(conn);
    pool.close().await;
    Ok(DataSet {
        url,
        tasks: size,
        scope,
        projects: projects.into_iter().map(ProjectId::from_uuid).collect(),
        ids: Arc::new(ids),
    })
}

/// `VACUUM tasks`, so that no earlier run's dead rows are cleaned up while this one measures.
async fn vacuum(url: &str) -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect(url).await?;
    sqlx::raw_sql("vacuum tasks").execute(&admin).await?;
    admin.close().await;
    Ok(())
}

/// Whether the database at `url` holds a data set of `size` tasks by this generator.
async fn holds(url: &str, size: u64) -> bool {
    let Ok(admin) = sqlx::PgPool::connect(url).await else { return false };
    let made: Result<(i32, i64), _> =
        sqlx::query_as("select generator, tasks from bench_dataset").fetch_one(&admin).await;
    admin.close().await;
    made.is_ok_and(|(generator, tasks)| generator == GENERATOR && tasks as u64 == size)
}

/// Makes the data set: an owner, an organization, projects `S0`, `S1`, … of up to 1M tasks.
async fn generate(server: &str, name: &str, size: u64) -> anyhow::Result<()> {
    let url = fresh_database(server, name, true).await?;
    let pool = strata_pool(&url, 1)?;
    let mut conn = pool.acquire().await?;
    let scope = organization(&mut conn, "scale").await?;
    let mut tx = scope.begin(&mut conn).await?;
    let count = size.div_ceil(PROJECT_TASKS);
    let mut projects = Vec::new();
    for p in 0..count {
        let key = format!("S{p}");
        let new = NewProject { key: &key, name: "Scale", description: "" };
        projects.push(projects::create(&mut tx, &new).await?.id);
    }
    tx.commit().await?;
    drop(conn);
    pool.close().await;
    let admin = sqlx::PgPool::connect(&url).await?;
    let org = scope.organization_id().into_uuid();
    for (index, project) in projects.iter().enumerate() {
        let tasks = (size - index as u64 * PROJECT_TASKS).min(PROJECT_TASKS) as i64;
        let mut from = 1i64;
        while from <= tasks {
            let to = (from + 99_999).min(tasks);
            // Time-ordered IDs, as `TaskId::new()` makes: the project's index, then the number.
            sqlx::query(
                "insert into tasks (id, organization_id, project_id, number, title, description,
                                    priority, labels)
                 select format('%s-%s-7%s-8%s-%s', lpad(to_hex($3::int), 8, '0'),
                               substr(lpad(to_hex(n), 16, '0'), 1, 4),
                               substr(lpad(to_hex(n), 16, '0'), 6, 3),
                               substr(lpad(to_hex(n), 16, '0'), 10, 3),
                               lpad(to_hex(n), 12, '0'))::uuid,
                        $1, $2, n, 'Task number ' || n || ' with a realistic title',
                        repeat('Some description text that a task would carry around.', 2),
                        (n % 5)::int2, array['bench', 'l' || (n % 7)]
                   from generate_series($4::int, $5::int) n",
            )
            .bind(org)
            .bind(project.into_uuid())
            .bind(index as i32)
            .bind(from as i32)
            .bind(to as i32)
            .execute(&admin)
            .await?;
            from = to + 1;
        }
        sqlx::query("update projects set next_task_number = $2 + 1 where id = $1")
            .bind(project.into_uuid())
            .bind(tasks as i32)
            .execute(&admin)
            .await?;
    }
    // Two statements: VACUUM cannot share a simple query (an implicit transaction).
    sqlx::raw_sql("vacuum analyze tasks").execute(&admin).await?;
    sqlx::raw_sql("create table bench_dataset (generator int not null, tasks bigint not null)")
        .execute(&admin)
        .await?;
    sqlx::query("insert into bench_dataset values ($1, $2)")
        .bind(GENERATOR)
        .bind(size as i64)
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Gets (strata and deadpool on the same statement) and first pages at one size.
async fn size_point(set: &DataSet, plan: Plan, round: Duration) -> anyhow::Result<SizePoint> {
    let pool = strata_pool(&set.url, 4)?;
    let peer = deadpool(&set.url, 4)?;
    let gets = || strata_gets(&pool, set, 4);
    let peers = || deadpool_gets(&peer, set, 4);
    let lists = || -> Vec<FirstPage> {
        (0..4)
            .map(|_| FirstPage { pool: pool.clone(), scope: set.scope, project: set.projects[0] })
            .collect()
    };
    // Warm the pools and the cache.
    drive(gets(), Duration::from_millis(300)).await?;
    drive(peers(), Duration::from_millis(300)).await?;
    let (mut get, mut get_peer, mut list) =
        (Sample::default(), Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        get.absorb(drive(gets(), round).await?);
        get_peer.absorb(drive(peers(), round).await?);
        list.absorb(drive(lists(), round).await?);
    }
    pool.close().await;
    Ok(SizePoint {
        tasks: set.tasks,
        get: get.summary(),
        get_peer: get_peer.summary(),
        list: list.summary(),
    })
}

/// `n` callers of `tasks::get` on `pool`.
fn strata_gets(pool: &Pool, set: &DataSet, n: usize) -> Vec<StrataGet> {
    (0..n)
        .map(|_| StrataGet { pool: pool.clone(), scope: set.scope, ids: set.ids.clone() })
        .collect()
}

/// `n` callers of the same statement through deadpool-postgres.
fn deadpool_gets(pool: &deadpool_postgres::Pool, set: &DataSet, n: usize) -> Vec<DeadpoolGet> {
    let org = set.scope.organization_id().into_uuid();
    (0..n)
        .map(|_| DeadpoolGet { pool: pool.clone(), sql: TENANT_GET_SQL, org, ids: set.ids.clone() })
        .collect()
}

/// The first page of 50 of a project, in number order, in a tenant transaction.
struct FirstPage {
    pool: Pool,
    scope: Scope,
    project: ProjectId,
}

impl Worker for FirstPage {
    async fn call(&mut self, _: u64) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        let page =
            tasks::list(&mut tx, self.project, &TaskFilter::default(), TaskOrder::Number, None, 50)
                .await?;
        tx.commit().await?;
        anyhow::ensure!(page.items.len() == 50, "a short page");
        Ok(())
    }
}

/// One page of 50 after `cursor`.
struct PageAt {
    pool: Pool,
    scope: Scope,
    project: ProjectId,
    cursor: Option<tasks::Cursor>,
}

impl Worker for PageAt {
    async fn call(&mut self, _: u64) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        let filter = TaskFilter::default();
        let page = tasks::list(
            &mut tx,
            self.project,
            &filter,
            TaskOrder::Number,
            self.cursor.as_ref(),
            50,
        )
        .await?;
        tx.commit().await?;
        anyhow::ensure!(page.items.len() == 50, "a short page");
        Ok(())
    }
}

/// The first page and the page at 90% depth of the data set's first project, 1 caller.
async fn paging(
    set: &DataSet,
    project_tasks: u64,
    plan: Plan,
    round: Duration,
) -> anyhow::Result<(Summary, Summary)> {
    let pool = strata_pool(&set.url, 1)?;
    let project = set.projects[0];
    // Walk to 90% depth the way a client would, 10,000 at a time, keeping the cursor.
    let mut cursor = None;
    let mut seen = 0u64;
    {
        let mut conn = pool.acquire().await?;
        let mut tx = set.scope.begin(&mut conn).await?;
        while seen < project_tasks * 9 / 10 {
            let step = (project_tasks * 9 / 10 - seen).min(10_000) as u32;
            let filter = TaskFilter::default();
            let page =
                tasks::list(&mut tx, project, &filter, TaskOrder::Number, cursor.as_ref(), step)
                    .await?;
            seen += page.items.len() as u64;
            cursor = page.next;
        }
        tx.commit().await?;
    }
    let at = |cursor: Option<tasks::Cursor>| {
        vec![PageAt { pool: pool.clone(), scope: set.scope, project, cursor }]
    };
    drive(at(None), Duration::from_millis(300)).await?;
    let (mut first, mut deep) = (Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        first.absorb(drive(at(None), round).await?);
        deep.absorb(drive(at(cursor.clone()), round).await?);
    }
    pool.close().await;
    Ok((first.summary(), deep.summary()))
}

/// `n` tasks to import.
fn import_rows(n: u64) -> impl Iterator<Item = ImportTask> {
    (0..n).map(|i| ImportTask {
        title: format!("imported task {i}"),
        priority: (i % 5) as i16,
        ..ImportTask::default()
    })
}

/// Imports `n` tasks into a new project of the data set, timed, then rolls back: the table
/// keeps its size for the next run.
async fn import(set: &DataSet, n: u64) -> anyhow::Result<Summary> {
    let pool = strata_pool(&set.url, 1)?;
    let mut conn = pool.acquire().await?;
    let mut tx = set.scope.begin(&mut conn).await?;
    let key = "IMPORT";
    let project =
        projects::create(&mut tx, &NewProject { key, name: "Import", description: "" }).await?;
    let started = Instant::now();
    let report = tasks::import(&mut tx, project.id, import_rows(n)).await?;
    let took = started.elapsed();
    tx.rollback().await?;
    drop(conn);
    pool.close().await;
    // The rolled-back rows are dead tuples: vacuum them now, untimed, or autovacuum does it
    // during the next run's lookups (seen: p99 at 5M 1.48× that at 10k, against 0.93×).
    vacuum(&set.url).await?;
    anyhow::ensure!(report.count == n, "imported {}", report.count);
    Ok(Sample { latencies: vec![took], elapsed: took, units_per_op: n as f64 }.summary())
}

/// Imports `n` tasks into a fresh, empty database.
async fn import_into_empty(server: &str, n: u64) -> anyhow::Result<Summary> {
    let url = fresh_database(server, "strata_bench_scale_empty", true).await?;
    let pool = strata_pool(&url, 1)?;
    let mut conn = pool.acquire().await?;
    let scope = organization(&mut conn, "empty").await?;
    drop(conn);
    pool.close().await;
    let set = DataSet { url, tasks: 0, scope, projects: Vec::new(), ids: Arc::default() };
    import(&set, n).await
}

/// Callers from 1 to 64 on pools of 8: strata against deadpool-postgres, same statement,
/// alternating round by round.
async fn sweep(set: &DataSet, plan: Plan, round: Duration) -> anyhow::Result<Vec<CallersPoint>> {
    let pool = strata_pool(&set.url, 8)?;
    let peer = deadpool(&set.url, 8)?;
    let mut points = Vec::new();
    for callers in [1usize, 2, 4, 8, 16, 32, 64] {
        let ours = || strata_gets(&pool, set, callers);
        let theirs = || deadpool_gets(&peer, set, callers);
        drive(ours(), Duration::from_millis(200)).await?;
        drive(theirs(), Duration::from_millis(200)).await?;
        let (mut s, mut d) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            s.absorb(drive(ours(), round).await?);
            d.absorb(drive(theirs(), round).await?);
        }
        points.push(CallersPoint { callers, strata: s.summary(), deadpool: d.summary() });
    }
    pool.close().await;
    Ok(points)
}

/// 8 callers creating tasks spread over 1, 8 and 64 projects (made on first use).
async fn creates(set: &DataSet, plan: Plan, round: Duration) -> anyhow::Result<Vec<CreatesPoint>> {
    let pool = strata_pool(&set.url, 8)?;
    let mut targets = Vec::new();
    {
        let mut conn = pool.acquire().await?;
        let mut tx = set.scope.begin(&mut conn).await?;
        let existing = projects::list(&mut tx, false, None, 100).await?.items;
        for p in 0..64 {
            let key = format!("C{p}");
            let id = match existing.iter().find(|e| e.key == key) {
                Some(found) => found.id,
                None => {
                    let new = NewProject { key: &key, name: "Creates", description: "" };
                    projects::create(&mut tx, &new).await?.id
                }
            };
            targets.push(id);
        }
        tx.commit().await?;
    }
    let mut points = Vec::new();
    for spread in [1usize, 8, 64] {
        let workers = || -> Vec<StrataCreate> {
            (0..8)
                .map(|w| {
                    // Each caller starts at another project of the spread.
                    let mut projects = targets[..spread].to_vec();
                    projects.rotate_left(w % spread);
                    StrataCreate { pool: pool.clone(), scope: set.scope, projects }
                })
                .collect()
        };
        let (mut sample, mut peer) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            sample.absorb(drive(workers(), round).await?);
            // Connected and prepared before the clock starts, as the pool's connections are.
            let mut peers = Vec::new();
            for w in 0..8 {
                let mut projects = targets[..spread].to_vec();
                projects.rotate_left(w % spread);
                peers.push(SameCreate::connect(&set.url, set.scope, projects).await?);
            }
            peer.absorb(drive(peers, round).await?);
        }
        points.push(CreatesPoint {
            projects: spread,
            creates: sample.summary(),
            peer: Some(peer.summary()),
        });
    }
    pool.close().await;
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CI runs of the sweep: every curve at tiny sizes and short rounds, its targets and
    /// its charts, against the test server (`DATABASE_URL`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_sweep_measures_every_curve_and_draws_it() -> anyhow::Result<()> {
        let server = strata_test_support::runner::server_url();
        let round = Duration::from_millis(100);
        let plan = Plan { quick: true, rounds: 1, round, only: &[] };
        let sizes = Sizes { tables: &[1_000, 3_000], import: 2_000, round };
        let scale = run_with(&server, plan, sizes).await?;
        assert_eq!(scale.sizes.iter().map(|p| p.tasks).collect::<Vec<_>>(), [1_000, 3_000]);
        assert!(scale.sizes.iter().all(|p| p.get.ops > 0 && p.get_peer.ops > 0 && p.list.ops > 0));
        assert_eq!(
            scale.callers.iter().map(|p| p.callers).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64]
        );
        assert!(scale.callers.iter().all(|p| p.strata.ops > 0 && p.deadpool.ops > 0));
        assert_eq!(scale.creates.iter().map(|p| p.projects).collect::<Vec<_>>(), [1, 8, 64]);
        assert!(
            scale.creates.iter().all(|p| p.creates.ops > 0 && p.peer.is_some_and(|s| s.ops > 0))
        );
        assert_eq!((scale.paged_project_tasks, scale.import_full_table), (3_000, 3_000));
        assert!(scale.import_empty.throughput > 0.0 && scale.import_full.throughput > 0.0);
        assert_eq!(crate::targets(&scale).len(), 6);
        let dir = std::env::temp_dir().join(format!("strata-bench-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let charts = crate::charts::write(&scale, &dir, "smoke", "a test")?;
        assert_eq!(charts.len(), 5);
        for chart in &charts {
            let svg = std::fs::read_to_string(chart)?;
            assert!(svg.starts_with("<svg") && svg.contains("a test"), "{}", chart.display());
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
