//! The data sets of `--scale`: a database per table size, made once server-side and reused
//! while it holds them, and the callers of a get by ID on one.

use std::sync::Arc;

use strata_db::projects::{self, NewProject};
use strata_db::{Pool, ProjectId, Scope};
use uuid::Uuid;

use crate::calls::StrataGet;
use crate::database::{fresh_database, strata_pool, url_with_db};
use crate::peer::DeadpoolGet;
use crate::peer::task::TENANT_GET_SQL;

/// Tasks per project in the data sets: the 1M-task project of the paging curve.
pub(super) const PROJECT_TASKS: u64 = 1_000_000;
/// Bumped when the generator changes, so older data sets are made again.
const GENERATOR: i32 = 1;

/// A data set: a database with `tasks` tasks in projects of at most [`PROJECT_TASKS`].
pub(super) struct DataSet {
    /// The database's URL.
    pub(super) url: String,
    /// Tasks in the table.
    pub(super) tasks: u64,
    /// The organization's owner, in the organization.
    pub(super) scope: Scope,
    /// Its projects `S0`, `S1`, …
    pub(super) projects: Vec<ProjectId>,
    /// A shuffled sample of task IDs.
    pub(super) ids: Arc<Vec<Uuid>>,
}

/// The database for `size` tasks, made unless it already holds them.
pub(super) async fn data_set(server: &str, size: u64) -> anyhow::Result<DataSet> {
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
pub(super) async fn vacuum(url: &str) -> anyhow::Result<()> {
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
    let scope = strata_test_support::fixture::tenant(&mut conn, "scale").await?.scope;
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

/// `n` callers of `tasks::get` on `pool`.
pub(super) fn strata_gets(pool: &Pool, set: &DataSet, n: usize) -> Vec<StrataGet> {
    (0..n)
        .map(|_| StrataGet { pool: pool.clone(), scope: set.scope, ids: set.ids.clone() })
        .collect()
}

/// `n` callers of the same statement through deadpool-postgres.
pub(super) fn deadpool_gets(
    pool: &deadpool_postgres::Pool,
    set: &DataSet,
    n: usize,
) -> Vec<DeadpoolGet> {
    let org = set.scope.organization_id().into_uuid();
    (0..n)
        .map(|_| DeadpoolGet { pool: pool.clone(), sql: TENANT_GET_SQL, org, ids: set.ids.clone() })
        .collect()
}
