//! Workloads 1–4: the data layer against tokio-postgres and deadpool-postgres.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use strata_config::{DatabaseConfig, DatabaseUrl, SslMode};
use strata_db::organizations::{self, NewOrganization};
use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask, NewTask, TaskFilter, TaskMetadata, TaskOrder};
use strata_db::users::{self, NewUser};
use strata_db::{Pool, ProjectId, Scope, TaskId};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use crate::plan::Plan;
use crate::stats::{Sample, Worker, drive, repeat, rss_kib};
use crate::table::Row;

const GET_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from tasks where organization_id = $1 and id = $2 and deleted_at is null";
/// What `tasks::get` sends: the tenant-scoped read through `strata_task_by_id`, for peers that
/// run the very same statement (what the data layer adds over the driver, without the cost of
/// the tenant scope itself).
pub(crate) const TENANT_GET_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from strata_task_by_id($1, $2)";
const LIST_SQL: &str =
    "select id, organization_id, project_id, number, title, description, status::text,
        priority, assignee_id, labels, metadata, due_on, version, deleted_at, created_at, updated_at
   from tasks where organization_id = $1 and project_id = $2 and deleted_at is null and number > $3
  order by number limit $4";

/// The URL of database `name` on the server of `server`.
pub fn url_with_db(server: &str, name: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) => {
            url.set_path(name);
            url.to_string()
        }
        Err(_) => server.to_owned(),
    }
}

/// Drops and recreates database `name`, migrated; returns its URL.
pub async fn fresh_database(server: &str, name: &str, migrate: bool) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&url_with_db(server, "postgres")).await?;
    let drop = format!("drop database if exists {name} with (force)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await?;
    let create = format!("create database {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut admin).await?;
    let url = url_with_db(server, name);
    if migrate {
        migrate_database(&url).await?;
    }
    Ok(url)
}

/// Applies this project's migrations to the database at `url`.
pub(crate) async fn migrate_database(url: &str) -> anyhow::Result<()> {
    let config = database_config(url, 2);
    let mut session = strata_migrate::Session::connect(&config).await?;
    let options =
        strata_migrate::UpOptions::from_config(&strata_config::Config::default().migrations);
    session.up(&strata_migrate::MIGRATOR, &options).await?;
    session.close().await;
    Ok(())
}

fn database_config(url: &str, max: u32) -> DatabaseConfig {
    let mut config = DatabaseConfig::default();
    config.url = Some(DatabaseUrl::new(url));
    config.max_connections = max;
    config.min_connections = max;
    // The peers connect with `NoTls`; without this, sqlx's `prefer` would encrypt every
    // message on a server that has TLS on, and the ratio would measure rustls.
    config.ssl_mode = Some(SslMode::Disable);
    config
}

/// The data layer's own pool, as a service builds it from strata-config.
pub(crate) fn strata_pool(url: &str, size: u32) -> anyhow::Result<Pool> {
    Ok(Pool::from_config(&database_config(url, size))?)
}

/// sqlx's stock pool with strata-config's settings, to show what the own pool saves.
async fn stock_pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    let config = database_config(url, size);
    let options = sqlx::postgres::PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout);
    Ok(options.connect_with(config.connect_options()?).await?)
}

async fn peer_client(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The bench database: a project of 10,000 tasks in one organization.
pub(crate) struct Fixture {
    pub(crate) url: String,
    pub(crate) scope: Scope,
    pub(crate) project: ProjectId,
    pub(crate) ids: Arc<Vec<Uuid>>,
}

async fn fixture(server: &str) -> anyhow::Result<Fixture> {
    fixture_of(server, "strata_bench", 10_000).await
}

/// A fixture of 200 tasks in database `name`, for the bench's own tests.
#[cfg(test)]
pub(crate) async fn small_fixture(server: &str, name: &str) -> anyhow::Result<Fixture> {
    fixture_of(server, name, 200).await
}

/// Database `name`, recreated and migrated, with one project of `tasks` tasks.
pub(crate) async fn fixture_of(server: &str, name: &str, tasks: usize) -> anyhow::Result<Fixture> {
    fixture_in(fresh_database(server, name, true).await?, tasks).await
}

/// One organization with one project of `tasks` tasks, in the migrated database at `url`.
pub(crate) async fn fixture_in(url: String, tasks: usize) -> anyhow::Result<Fixture> {
    let pool = strata_pool(&url, 2)?;
    let mut conn = pool.acquire().await?;
    let scope = organization(&mut conn, "bench").await?;
    let mut tx = scope.begin(&mut conn).await?;
    let project =
        projects::create(&mut tx, &NewProject { key: "OPS", name: "Ops", description: "" }).await?;
    let rows = (0..tasks).map(|i| ImportTask {
        title: format!("Task number {i} with a realistic title"),
        description: "Some description text that a task would carry around.".repeat(2),
        priority: (i % 5) as i16,
        labels: vec!["bench".to_owned(), format!("l{}", i % 7)],
        ..ImportTask::default()
    });
    tasks::import(&mut tx, project.id, rows).await?;
    tx.commit().await?;
    let ids: Vec<Uuid> =
        sqlx::query_scalar("select id from tasks order by random()").fetch_all(&mut conn).await?;
    drop(conn);
    pool.close().await;
    Ok(Fixture { url, scope, project: project.id, ids: Arc::new(ids) })
}

/// A user `<slug>@example.com` and organization `slug`, which the user owns: the owner's scope.
pub(crate) async fn organization(
    conn: &mut strata_db::PooledConnection,
    slug: &str,
) -> anyhow::Result<Scope> {
    let email = format!("{slug}@example.com");
    let owner =
        users::create(&mut *conn, &NewUser { email: &email, display_name: "Bench" }).await?;
    let new = NewOrganization { slug, name: "Bench" };
    Ok(organizations::create_with_owner(conn, &new, owner.id).await?.1)
}

/// Runs workloads 1–4, 6 and 7.
pub async fn run(server: &str, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let f = fixture(server).await?;
    let mut rows = Vec::new();
    if plan.runs(1) {
        rows.extend(gets(&f, plan).await?);
    }
    if plan.runs(2) {
        rows.extend(lists(&f, plan).await?);
    }
    if plan.runs(4) {
        rows.extend(creates(&f, plan).await?);
    }
    if plan.runs(3) {
        rows.extend(imports(&f, plan).await?);
    }
    if plan.runs(6) {
        rows.extend(crate::http::gets(&f, plan).await?);
    }
    if plan.runs(7) {
        rows.extend(crate::pooler::gets(&f, plan).await?);
    }
    if plan.runs(12) {
        rows.extend(crate::load::run(&f, plan).await?);
    }
    Ok(rows)
}

pub(crate) struct StrataGet {
    pub(crate) pool: Pool,
    pub(crate) scope: Scope,
    pub(crate) ids: Arc<Vec<Uuid>>,
}

impl Worker for StrataGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.ids[i as usize % self.ids.len()]);
        let mut conn = self.pool.acquire().await?;
        tasks::get(&mut self.scope.on(&mut conn), id).await?;
        Ok(())
    }
}

/// The same plain query as the peers, through the data layer's pool and sqlx (no RLS
/// function): what the pool and the driver cost on their own.
struct BareGet {
    pool: Pool,
    org: Uuid,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for BareGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        use sqlx::Row as _;
        let id = self.ids[i as usize % self.ids.len()];
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(GET_SQL).bind(self.org).bind(id).fetch_one(&mut conn).await?;
        let _decoded = (
            row.try_get::<Uuid, _>(0)?,
            row.try_get::<Uuid, _>(1)?,
            row.try_get::<Uuid, _>(2)?,
            row.try_get::<i32, _>(3)?,
            row.try_get::<String, _>(4)?,
            row.try_get::<String, _>(5)?,
            row.try_get::<String, _>(6)?,
            row.try_get::<i16, _>(7)?,
            row.try_get::<Option<Uuid>, _>(8)?,
            row.try_get::<Vec<String>, _>(9)?,
            row.try_get::<serde_json::Value, _>(10)?,
            row.try_get::<Option<time::Date>, _>(11)?,
            row.try_get::<i32, _>(12)?,
            row.try_get::<Option<time::OffsetDateTime>, _>(13)?,
            row.try_get::<time::OffsetDateTime, _>(14)?,
            row.try_get::<time::OffsetDateTime, _>(15)?,
        );
        Ok(())
    }
}

struct StockGet {
    pool: PgPool,
    scope: Scope,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for StockGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.ids[i as usize % self.ids.len()]);
        let mut conn = self.pool.acquire().await?;
        tasks::get(&mut self.scope.on(&mut *conn), id).await?;
        Ok(())
    }
}

struct PeerGet {
    client: Client,
    statement: Statement,
    org: Uuid,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for PeerGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = self.ids[i as usize % self.ids.len()];
        let row = self.client.query_one(&self.statement, &[&self.org, &id]).await?;
        PeerTask::from_row(&row)?;
        Ok(())
    }
}

pub(crate) struct DeadpoolGet {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) sql: &'static str,
    pub(crate) org: Uuid,
    pub(crate) ids: Arc<Vec<Uuid>>,
}

impl Worker for DeadpoolGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = self.ids[i as usize % self.ids.len()];
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(self.sql).await?;
        let row = client.query_one(&statement, &[&self.org, &id]).await?;
        PeerTask::from_row(&row)?;
        Ok(())
    }
}

async fn peer_gets(f: &Fixture, n: usize, sql: &str) -> anyhow::Result<Vec<PeerGet>> {
    let mut workers = Vec::new();
    for _ in 0..n {
        let client = peer_client(&f.url).await?;
        let statement = client.prepare(sql).await?;
        workers.push(PeerGet {
            client,
            statement,
            org: f.scope.organization_id().into_uuid(),
            ids: f.ids.clone(),
        });
    }
    Ok(workers)
}

pub(crate) fn deadpool(url: &str, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    Ok(deadpool_postgres::Pool::builder(manager).max_size(size).build()?)
}

async fn gets(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let org = f.scope.organization_id().into_uuid();
    let pool1 = strata_pool(&f.url, 1)?;
    let pool8 = strata_pool(&f.url, 8)?;
    let stock8 = stock_pool(&f.url, 8).await?;
    let dp = deadpool(&f.url, 8)?;
    let ours = |pool: &Pool, n: usize| -> Vec<StrataGet> {
        (0..n)
            .map(|_| StrataGet { pool: pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    let (mut s1, mut p1) = (Sample::default(), Sample::default());
    let (mut s8, mut stock, mut d8, mut p8) =
        (Sample::default(), Sample::default(), Sample::default(), Sample::default());
    let (mut bare8, mut same1, mut same8) =
        (Sample::default(), Sample::default(), Sample::default());
    // Open every pool's connections before timing anything.
    drive(ours(&pool1, 1), Duration::from_millis(200)).await?;
    drive(ours(&pool8, 8), Duration::from_millis(200)).await?;
    for _ in 0..plan.rounds {
        s1.absorb(drive(ours(&pool1, 1), plan.round).await?);
        p1.absorb(drive(peer_gets(f, 1, GET_SQL).await?, plan.round).await?);
        same1.absorb(drive(peer_gets(f, 1, TENANT_GET_SQL).await?, plan.round).await?);
        s8.absorb(drive(ours(&pool8, 8), plan.round).await?);
        let dps = |sql| -> Vec<DeadpoolGet> {
            (0..8).map(|_| DeadpoolGet { pool: dp.clone(), sql, org, ids: f.ids.clone() }).collect()
        };
        d8.absorb(drive(dps(GET_SQL), plan.round).await?);
        same8.absorb(drive(dps(TENANT_GET_SQL), plan.round).await?);
        let stocks: Vec<StockGet> = (0..8)
            .map(|_| StockGet { pool: stock8.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect();
        stock.absorb(drive(stocks, plan.round).await?);
        p8.absorb(drive(peer_gets(f, 8, GET_SQL).await?, plan.round).await?);
        let bares: Vec<BareGet> =
            (0..8).map(|_| BareGet { pool: pool8.clone(), org, ids: f.ids.clone() }).collect();
        bare8.absorb(drive(bares, plan.round).await?);
    }
    let rls = "1 round trip, tenant set for the statement, under RLS".to_owned();
    Ok(vec![
        Row::new(
            "1. get by id, 1 task (strata Pool of 1)",
            &s1,
            "tokio-postgres",
            &p1,
            "≥ 0.9×",
            rls.clone(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "deadpool-postgres",
            &d8,
            "≥ 0.9×",
            rls.clone(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "tokio-postgres ×8",
            &p8,
            "-",
            "dedicated connections".into(),
        ),
        Row::new(
            "1. get by id, 1 task (strata Pool of 1)",
            &s1,
            "tokio-postgres, same statement",
            &same1,
            "-",
            "both call strata_task_by_id: the data layer against the driver".into(),
        ),
        Row::new(
            "1. get by id, 8 tasks (strata Pool of 8)",
            &s8,
            "deadpool-postgres, same statement",
            &same8,
            "-",
            "both call strata_task_by_id: the data layer against the driver".into(),
        ),
        Row::new(
            "1. get by id, 8 tasks (stock sqlx PgPool)",
            &stock,
            "deadpool-postgres",
            &d8,
            "-",
            "pings on acquire and release".into(),
        ),
        Row::new(
            "1. same plain query, strata Pool + sqlx, no RLS, 8 tasks",
            &bare8,
            "deadpool-postgres",
            &d8,
            "-",
            "the pool and the driver alone".into(),
        ),
    ])
}

async fn lists(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 1)?;
    let client = peer_client(&f.url).await?;
    let statement = client.prepare(LIST_SQL).await?;
    let times = if plan.quick { 3 } else { 8 };
    let mut results = Vec::new();
    for page in [500u32, 10_000] {
        // One untimed listing each first: connecting and preparing are not listing.
        strata_listing(&pool, f, page).await?;
        peer_listing(&client, &statement, f, page).await?;
        let (mut s, mut p) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            s.absorb(repeat(times, 10_000.0, |_| strata_listing(&pool, f, page)).await?);
            p.absorb(
                repeat(times, 10_000.0, |_| peer_listing(&client, &statement, f, page)).await?,
            );
        }
        if std::env::var_os("STRATA_BENCH_TRACE").is_some() {
            eprintln!("page {page}: strata {:?}", s.latencies);
            eprintln!("page {page}: peer {:?}", p.latencies);
        }
        let name = if page == 500 {
            "2. list 10,000 rows, keyset pages of 500"
        } else {
            "2. list 10,000 rows, one call"
        };
        results.push(Row::new(
            name,
            &s,
            "tokio-postgres",
            &p,
            "≥ 1.0×",
            "rows/s, every column decoded".into(),
        ));
    }
    Ok(results)
}

/// A project's 10,000 tasks through the data layer, `page` at a time, in a tenant transaction.
async fn strata_listing(pool: &Pool, f: &Fixture, page: u32) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut tx = f.scope.begin(&mut conn).await?;
    let (mut cursor, mut seen) = (None, 0);
    loop {
        let got = tasks::list(
            &mut tx,
            f.project,
            &TaskFilter::default(),
            TaskOrder::Number,
            cursor.as_ref(),
            page,
        )
        .await?;
        seen += got.items.len();
        match got.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tx.commit().await?;
    anyhow::ensure!(seen == 10_000, "listed {seen}");
    Ok(())
}

/// The same listing through tokio-postgres, every column decoded into a struct.
async fn peer_listing(
    client: &Client,
    statement: &Statement,
    f: &Fixture,
    page: u32,
) -> anyhow::Result<()> {
    let (org, project) = (f.scope.organization_id().into_uuid(), f.project.into_uuid());
    let (mut after, mut seen) = (0i32, 0);
    loop {
        let rows = client.query(statement, &[&org, &project, &after, &i64::from(page)]).await?;
        let decoded: Vec<PeerTask> =
            rows.iter().map(PeerTask::from_row).collect::<Result<_, _>>()?;
        seen += decoded.len();
        match decoded.last() {
            Some(last) if decoded.len() == page as usize => after = last.number,
            _ => break,
        }
    }
    anyhow::ensure!(seen == 10_000, "listed {seen}");
    Ok(())
}

/// A task as the peer decodes it: every column, as `strata_db::tasks::Task` holds them.
#[expect(dead_code, reason = "decoded to cost what the data layer's decoding costs, not read")]
struct PeerTask {
    id: Uuid,
    organization_id: Uuid,
    project_id: Uuid,
    number: i32,
    title: String,
    description: String,
    status: String,
    priority: i16,
    assignee_id: Option<Uuid>,
    labels: Vec<String>,
    metadata: serde_json::Value,
    due_on: Option<time::Date>,
    version: i32,
    deleted_at: Option<time::OffsetDateTime>,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
}

impl PeerTask {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            organization_id: row.try_get(1)?,
            project_id: row.try_get(2)?,
            number: row.try_get(3)?,
            title: row.try_get(4)?,
            description: row.try_get(5)?,
            status: row.try_get(6)?,
            priority: row.try_get(7)?,
            assignee_id: row.try_get(8)?,
            labels: row.try_get(9)?,
            metadata: row.try_get(10)?,
            due_on: row.try_get(11)?,
            version: row.try_get(12)?,
            deleted_at: row.try_get(13)?,
            created_at: row.try_get(14)?,
            updated_at: row.try_get(15)?,
        })
    }
}

pub(crate) struct StrataCreate {
    pub(crate) pool: Pool,
    pub(crate) scope: Scope,
    /// The projects to create in, one after the other.
    pub(crate) projects: Vec<ProjectId>,
}

static NO_METADATA: std::sync::LazyLock<TaskMetadata> =
    std::sync::LazyLock::new(TaskMetadata::default);

impl Worker for StrataCreate {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let title = format!("created {i}");
        let new = NewTask {
            id: TaskId::new(),
            project_id: self.projects[i as usize % self.projects.len()],
            title: &title,
            description: "",
            priority: 2,
            assignee_id: None,
            labels: &[],
            metadata: &NO_METADATA,
            due_on: None,
        };
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.scope.begin(&mut conn).await?;
        tasks::create(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(())
    }
}

struct PeerCreate {
    client: Client,
    statements: [Statement; 3],
    org: Uuid,
    actor: Uuid,
    project: Uuid,
}

const PEER_INSERT_TASK: &str = "with n as (update projects set next_task_number = next_task_number + 1
      where organization_id = $1 and id = $2 returning next_task_number - 1 as number)
   insert into tasks (id, organization_id, project_id, number, title) select $3, $1, $2, n.number, $4 from n
   returning number";
const PEER_INSERT_AUDIT: &str =
    "insert into audit_events (id, organization_id, actor_id, entity, entity_id, action, after)
   select $1, $2, $3, 'task', $4, 'create', to_jsonb(t) from tasks t where t.id = $4";
const PEER_INSERT_OUTBOX: &str =
    "insert into outbox_events (id, organization_id, topic, aggregate_id, payload)
   values ($1, $2, 'task.created', $3, jsonb_build_object('task_id', $3::uuid))";

impl Worker for PeerCreate {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = Uuid::now_v7();
        let title = format!("peer {i}");
        let tx = self.client.transaction().await?;
        tx.query_one(&self.statements[0], &[&self.org, &self.project, &id, &title]).await?;
        tx.execute(&self.statements[1], &[&Uuid::now_v7(), &self.org, &self.actor, &id]).await?;
        tx.execute(&self.statements[2], &[&Uuid::now_v7(), &self.org, &id]).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn creates(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 8)?;
    let mut rows = Vec::new();
    for n in [1usize, 8] {
        let (mut s, mut p) = (Sample::default(), Sample::default());
        for _ in 0..plan.rounds {
            let workers = (0..n)
                .map(|_| StrataCreate {
                    pool: pool.clone(),
                    scope: f.scope,
                    projects: vec![f.project],
                })
                .collect();
            s.absorb(drive(workers, plan.round).await?);
            let mut peers = Vec::new();
            for _ in 0..n {
                let client = peer_client(&f.url).await?;
                let statements = [
                    client.prepare(PEER_INSERT_TASK).await?,
                    client.prepare(PEER_INSERT_AUDIT).await?,
                    client.prepare(PEER_INSERT_OUTBOX).await?,
                ];
                peers.push(PeerCreate {
                    client,
                    statements,
                    org: f.scope.organization_id().into_uuid(),
                    actor: f.scope.actor().into_uuid(),
                    project: f.project.into_uuid(),
                });
            }
            p.absorb(drive(peers, plan.round).await?);
        }
        rows.push(Row::new(
            &format!("4. create task + audit + outbox, {n} concurrent"),
            &s,
            "tokio-postgres, 3 statements in a tx",
            &p,
            "≤ 1 round trip per statement",
            "strata 4 round trips (BEGIN, membership check and tenant in one, 1 statement, COMMIT); peer 5".into(),
        ));
    }
    Ok(rows)
}

async fn imports(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 1)?;
    let client = peer_client(&f.url).await?;
    let sizes: &[usize] = if plan.quick { &[100_000] } else { &[100_000, 1_000_000] };
    let mut rows = Vec::new();
    let mut project_number = 0;
    for &n in sizes {
        let (mut s, mut p) = (Sample::default(), Sample::default());
        let mut peak_kib = 0u64;
        let rounds = if plan.quick { 1 } else { 2 };
        for _ in 0..rounds {
            project_number += 1;
            let key = format!("I{project_number}");
            let mut conn = pool.acquire().await?;
            let mut tx = f.scope.begin(&mut conn).await?;
            let project = projects::create(
                &mut tx,
                &NewProject { key: &key, name: "Import", description: "" },
            )
            .await?;
            tx.commit().await?;
            let watch = MemoryWatch::start();
            let started = std::time::Instant::now();
            let mut tx = f.scope.begin(&mut conn).await?;
            let input = (0..n).map(|i| ImportTask {
                title: format!("imported task {i}"),
                priority: (i % 5) as i16,
                ..ImportTask::default()
            });
            let report = tasks::import(&mut tx, project.id, input).await?;
            tx.commit().await?;
            let took = started.elapsed();
            anyhow::ensure!(report.count == n as u64, "imported {}", report.count);
            s.absorb(Sample { latencies: vec![took], elapsed: took, units_per_op: n as f64 });
            peak_kib = peak_kib.max(watch.stop());
            p.absorb(repeat(1, n as f64, |_| peer_copy(&client, f, n)).await?);
        }
        rows.push(Row::new(
            &format!("3. bulk import {n} tasks"),
            &s,
            "tokio-postgres binary COPY",
            &p,
            "≥ 0.8×, flat memory",
            format!("rows/s; peak RSS growth {:.1} MiB", peak_kib as f64 / 1024.0),
        ));
    }
    Ok(rows)
}

async fn peer_copy(client: &Client, f: &Fixture, n: usize) -> anyhow::Result<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let project = Uuid::now_v7();
    let key = format!("P{}", &project.simple().to_string()[24..]).to_uppercase();
    let key: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).take(10).collect();
    client
        .execute(
            "insert into projects (id, organization_id, key, name) values ($1, $2, $3, 'peer')",
            &[&project, &f.scope.organization_id().into_uuid(), &key],
        )
        .await?;
    let sink = client
        .copy_in("copy tasks (id, organization_id, project_id, number, title, priority) from stdin binary")
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::UUID, Type::UUID, Type::UUID, Type::INT4, Type::TEXT, Type::INT2],
    );
    tokio::pin!(writer);
    let org = f.scope.organization_id().into_uuid();
    for i in 0..n {
        let title = format!("imported task {i}");
        writer
            .as_mut()
            .write(&[&Uuid::now_v7(), &org, &project, &(i as i32 + 1), &title, &((i % 5) as i16)])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Samples resident memory in the background; `stop` returns the peak growth in KiB.
struct MemoryWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    base: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemoryWatch {
    fn start() -> Self {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let base = rss_kib();
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { stop, peak, base, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}
