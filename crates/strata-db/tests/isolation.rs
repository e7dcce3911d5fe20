//! Tenant isolation by row-level security, proven as the application's role (a superuser
//! bypasses RLS), and the transaction-local setting that must never leak.

mod support;

use sqlx::{Connection, PgExecutor, PgPool};
use strata_db::tasks::{self, ImportTask};
use strata_db::{Error, Pool, PoolSettings, Role, Scope, TenantTx};
use strata_test_support::{CitusCluster, TestResult};
use support::{app_options, app_pool, citus_admin, count, new_task, tenant};

/// Rows of `tasks` visible with no tenant filter at all.
async fn visible_tasks(conn: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from tasks").fetch_one(conn).await
}

/// The tenant setting of the connection's current transaction ('' once it has been reset).
async fn setting(conn: impl PgExecutor<'_>) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select current_setting('strata.organization_id', true)")
        .fetch_one(conn)
        .await
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_application_role_is_subject_to_row_level_security(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let (superuser, bypass_rls): (bool, bool) =
        sqlx::query_as("select rolsuper, rolbypassrls from pg_roles where rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
    assert_eq!((superuser, bypass_rls), (false, false), "the tests would prove nothing");
    let member: bool =
        sqlx::query_scalar("select pg_has_role(current_user, 'strata_app', 'member')")
            .fetch_one(&mut conn)
            .await?;
    assert!(member, "the role has the application's privileges");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_query_without_tenant_filter_sees_only_its_tenant(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    for (t, n) in [(&a, 3), (&b, 5)] {
        let mut tx = t.scope.begin(&mut conn).await?;
        let rows = (0..n).map(|i| ImportTask { title: format!("t{i}"), ..ImportTask::default() });
        tasks::import(&mut tx, t.project.id, rows).await?;
        tx.commit().await?;
    }

    let mut tx = a.scope.begin(&mut conn).await?;
    assert_eq!(visible_tasks(&mut tx).await?, 3, "alpha sees its 3, not beta's 5");
    let foreign: Option<i64> =
        sqlx::query_scalar("select count(*) from projects where organization_id = $1")
            .bind(b.org.id)
            .fetch_optional(&mut tx)
            .await?;
    assert_eq!(foreign, Some(0), "even asking for beta's rows by id returns nothing");
    tx.rollback().await?;

    // After the transaction the setting is gone ('' rather than NULL): fail closed.
    assert_eq!(setting(&mut conn).await?.as_deref(), Some(""));
    let mut tx = conn.raw_connection().begin().await?;
    assert_eq!(visible_tasks(&mut *tx).await?, 0, "no tenant set: no rows");
    tx.rollback().await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn writing_into_another_tenant_is_forbidden(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    let err: Error = sqlx::query(
        "insert into projects (id, organization_id, key, name) values (gen_random_uuid(), $1, 'EVIL', 'x')",
    )
    .bind(b.org.id)
    .execute(&mut tx)
    .await
    .expect_err("RLS refuses a row of another tenant")
    .into();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    tx.rollback().await?;
    assert_eq!(count(&admin, "projects").await?, 2, "only the two OPS projects");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_setting_never_leaks_to_the_next_user_of_a_pooled_connection(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    tasks::create(&mut tx, &new_task(a.project.id, "secret")).await?;
    tx.commit().await?;
    drop(conn);
    // One connection in the pool: the next acquire gets the same session back.
    let settings = PoolSettings { max_connections: 1, ..PoolSettings::default() };
    let single = Pool::new(app_options(&admin).await?, settings)?;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut conn = single.acquire().await?;
        let mut tx = a.scope.begin(&mut conn).await?;
        assert_eq!(visible_tasks(&mut tx).await?, 1);
        sessions.push(
            sqlx::query_scalar::<_, i32>("select pg_backend_pid()").fetch_one(&mut tx).await?,
        );
        tx.commit().await?;
    }
    let mut conn = single.acquire().await?;
    sessions.push(sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut conn).await?);
    assert!(sessions.windows(2).all(|w| w[0] == w[1]), "one session throughout: {sessions:?}");
    let mut tx = conn.raw_connection().begin().await?;
    assert_eq!(visible_tasks(&mut *tx).await?, 0, "the next user sees nothing");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn random_tenants_and_rows_never_cross(admin: PgPool) -> TestResult {
    tenants_never_cross(&admin).await
}

/// Six tenants with a pseudo-random number of tasks each; thirty reads without any tenant
/// filter, each in one tenant's transaction, see exactly that tenant's rows.
async fn tenants_never_cross(admin: &PgPool) -> TestResult {
    let app = app_pool(admin).await?;
    let mut conn = app.acquire().await?;
    // A small deterministic generator: the same "random" case every run, many shapes.
    let mut state: u64 = 0x5eed_cafe;
    let mut next = move |bound: u64| {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let mut tenants = Vec::new();
    for i in 0..6 {
        let t = tenant(&mut conn, &format!("tenant-{i}")).await?;
        let rows = next(40);
        let mut tx = t.scope.begin(&mut conn).await?;
        let import =
            (0..rows).map(|r| ImportTask { title: format!("r{r}"), ..ImportTask::default() });
        assert_eq!(tasks::import(&mut tx, t.project.id, import).await?.count, rows);
        tx.commit().await?;
        tenants.push((t, rows as i64));
    }
    for _ in 0..30 {
        let (t, rows) = &tenants[next(tenants.len() as u64) as usize];
        let mut tx = t.scope.begin(&mut conn).await?;
        let orgs: Vec<uuid::Uuid> =
            sqlx::query_scalar("select distinct organization_id from tasks")
                .fetch_all(&mut tx)
                .await?;
        assert_eq!(visible_tasks(&mut tx).await?, *rows);
        assert!(orgs.iter().all(|o| *o == t.org.id.into_uuid()), "only its own organization");
        tx.rollback().await?;
    }
    let scope = Scope::resolve(&mut conn, tenants[0].0.org.id, tenants[0].0.owner.id).await?;
    assert_eq!(scope.role(), Role::Owner);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn get_confines_itself_in_one_statement_and_restores_the_setting(
    admin: PgPool,
) -> TestResult {
    get_confines_itself(&admin).await
}

/// `tasks::get` outside a transaction sets the tenant for its one statement, and inside one
/// puts the setting back; it refuses a transaction scoped to another tenant.
async fn get_confines_itself(admin: &PgPool) -> TestResult {
    let app = app_pool(admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &new_task(a.project.id, "alpha's")).await?;
    tx.commit().await?;

    // Outside any transaction, as the application's role.
    assert_eq!(
        tasks::get(&mut a.scope.on(&mut conn), task.id).await?.id,
        task.id,
        "one statement, under RLS"
    );
    let err = tasks::get(&mut b.scope.on(&mut conn), task.id)
        .await
        .expect_err("beta cannot read alpha's task");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(setting(&mut conn).await?.as_deref(), Some(""), "nothing left behind");
    assert_eq!(visible_tasks(&mut conn).await?, 0);

    // Inside a transaction scoped to the same tenant, the setting is put back afterwards.
    let mut tx = a.scope.begin(&mut conn).await?;
    tasks::get(&mut tx, task.id).await?;
    assert_eq!(setting(&mut tx).await?, Some(a.org.id.to_string()));
    tx.rollback().await?;

    // Inside a transaction scoped to another tenant, it refuses rather than widen it.
    let mut outer = conn.raw_connection().begin().await?;
    TenantTx::begin(&mut outer, b.org.id, b.owner.id).await?.commit().await?;
    assert_eq!(setting(&mut *outer).await?, Some(b.org.id.to_string()), "beta's transaction");
    let err = tasks::get(&mut a.scope.on(&mut outer), task.id).await.expect_err("beta's");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    outer.rollback().await?;

    // Nor can a tenant transaction for alpha be opened inside it.
    let mut outer = conn.raw_connection().begin().await?;
    TenantTx::begin(&mut outer, b.org.id, b.owner.id).await?.commit().await?;
    let err = TenantTx::begin(&mut outer, a.org.id, a.owner.id).await.expect_err("beta's");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    outer.rollback().await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn creating_an_organization_inside_a_scoped_transaction_keeps_its_scope(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    // A caller's transaction scoped to alpha (the tenant transaction is a savepoint in it).
    let mut tx = conn.raw_connection().begin().await?;
    TenantTx::begin(&mut tx, a.org.id, a.owner.id).await?.commit().await?;
    let new = strata_db::organizations::NewOrganization { slug: "gamma", name: "Gamma" };
    let (gamma, _) = strata_db::organizations::create_with_owner(&mut tx, &new, a.owner.id).await?;
    assert_eq!(
        setting(&mut *tx).await?,
        Some(a.org.id.to_string()),
        "the caller's transaction is still alpha's"
    );
    tx.commit().await?;
    let scope = Scope::resolve(&mut conn, gamma.id, a.owner.id).await?;
    assert_eq!(scope.role(), Role::Owner, "gamma was created with its owner");
    Ok(())
}

/// Row-level security on Citus (a coordinator and two workers of the test's own): evaluated on
/// the workers' shards, where the tenant arrives by `SET LOCAL`; 0 rows of another tenant,
/// with and without a filter, and `strata_task_by_id`'s borrowed tenant put back.
#[tokio::test]
async fn on_citus_tenants_never_cross() -> TestResult {
    let cluster = CitusCluster::start()?;
    tenants_never_cross(&citus_admin(&cluster, "random").await?).await?;
    get_confines_itself(&citus_admin(&cluster, "get").await?).await
}
