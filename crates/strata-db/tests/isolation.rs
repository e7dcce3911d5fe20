//! Tenant isolation by row-level security, proven with a role that is not a superuser
//! (a superuser bypasses RLS), and the transaction-local setting that must never leak.

mod support;

use sqlx::{Connection, PgConnection, PgPool};
use strata_db::tasks::{self, ImportTask};
use strata_db::{Error, Scope};
use support::{new_task, tenant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Rows of `tasks` visible with no tenant filter at all, as `strata_app`.
async fn visible_tasks(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from tasks").fetch_one(conn).await
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn a_query_without_tenant_filter_sees_only_its_tenant(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    for (t, n) in [(&a, 3), (&b, 5)] {
        let mut tx = t.scope.begin(&mut conn).await?;
        let rows = (0..n).map(|i| ImportTask { title: format!("t{i}"), ..ImportTask::default() });
        tasks::import(&mut tx, &t.scope, t.project.id, rows).await?;
        tx.commit().await?;
    }

    let mut tx = a.scope.begin(&mut conn).await?;
    sqlx::query("set local role strata_app").execute(&mut *tx).await?;
    assert_eq!(visible_tasks(&mut tx).await?, 3, "alpha sees its 3, not beta's 5");
    let foreign: Option<i64> =
        sqlx::query_scalar("select count(*) from projects where organization_id = $1")
            .bind(b.org.id)
            .fetch_optional(&mut *tx)
            .await?;
    assert_eq!(foreign, Some(0), "even asking for beta's rows by id returns nothing");
    tx.rollback().await?;

    // After the transaction the setting is gone ('' rather than NULL): fail closed.
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('strata.organization_id', true)")
            .fetch_one(&mut *conn)
            .await?;
    assert_eq!(setting.as_deref(), Some(""));
    let mut tx = conn.begin().await?;
    sqlx::query("set local role strata_app").execute(&mut *tx).await?;
    assert_eq!(visible_tasks(&mut tx).await?, 0, "no tenant set: no rows");
    tx.rollback().await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn writing_into_another_tenant_is_forbidden(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    sqlx::query("set local role strata_app").execute(&mut *tx).await?;
    let err: Error = sqlx::query(
        "insert into projects (id, organization_id, key, name) values (gen_random_uuid(), $1, 'EVIL', 'x')",
    )
    .bind(b.org.id)
    .execute(&mut *tx)
    .await
    .expect_err("RLS refuses a row of another tenant")
    .into();
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn the_setting_never_leaks_to_the_next_user_of_a_pooled_connection(
    pool: PgPool,
) -> TestResult {
    let mut conn = pool.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    tasks::create(&mut tx, &a.scope, &new_task(a.project.id, "secret")).await?;
    tx.commit().await?;
    drop(conn);
    // One connection in the pool: the next acquire gets the same session back.
    let single = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await?;
    for _ in 0..3 {
        let mut conn = single.acquire().await?;
        let mut tx = a.scope.begin(&mut conn).await?;
        sqlx::query("set local role strata_app").execute(&mut *tx).await?;
        assert_eq!(visible_tasks(&mut tx).await?, 1);
        tx.commit().await?;
    }
    let mut conn = single.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("set local role strata_app").execute(&mut *tx).await?;
    assert_eq!(visible_tasks(&mut tx).await?, 0, "the next user sees nothing");
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn random_tenants_and_rows_never_cross(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
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
        assert_eq!(tasks::import(&mut tx, &t.scope, t.project.id, import).await?.count, rows);
        tx.commit().await?;
        tenants.push((t, rows as i64));
    }
    for _ in 0..30 {
        let (t, rows) = &tenants[next(tenants.len() as u64) as usize];
        let mut tx = t.scope.begin(&mut conn).await?;
        sqlx::query("set local role strata_app").execute(&mut *tx).await?;
        let orgs: Vec<uuid::Uuid> =
            sqlx::query_scalar("select distinct organization_id from tasks")
                .fetch_all(&mut *tx)
                .await?;
        assert_eq!(visible_tasks(&mut tx).await?, *rows);
        assert!(orgs.iter().all(|o| *o == t.org.id.into_uuid()), "only its own organization");
        tx.rollback().await?;
    }
    let _ = Scope::resolve(&mut conn, tenants[0].0.org.id, tenants[0].0.owner.id).await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn get_confines_itself_in_one_statement_and_restores_the_setting(pool: PgPool) -> TestResult {
    let mut conn = pool.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &a.scope, &new_task(a.project.id, "alpha's")).await?;
    tx.commit().await?;

    // A session that is not a superuser, outside any transaction.
    sqlx::query("set role strata_app").execute(&mut *conn).await?;
    assert_eq!(
        tasks::get(&mut conn, &a.scope, task.id).await?.id,
        task.id,
        "one statement, under RLS"
    );
    let err =
        tasks::get(&mut conn, &b.scope, task.id).await.expect_err("beta cannot read alpha's task");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('strata.organization_id', true)")
            .fetch_one(&mut *conn)
            .await?;
    assert_eq!(setting.as_deref(), Some(""), "nothing left behind after the statement");
    assert_eq!(visible_tasks(&mut conn).await?, 0);

    // Inside a transaction scoped to the same tenant, the setting is put back afterwards.
    let mut tx = a.scope.begin(&mut conn).await?;
    tasks::get(&mut tx, &a.scope, task.id).await?;
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('strata.organization_id', true)")
            .fetch_one(&mut *tx)
            .await?;
    assert_eq!(setting, Some(a.org.id.to_string()));
    tx.rollback().await?;

    // Inside a transaction scoped to another tenant, it refuses rather than widen it.
    let mut tx = b.scope.begin(&mut conn).await?;
    let err = tasks::get(&mut tx, &a.scope, task.id).await.expect_err("beta's transaction");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    tx.rollback().await?;
    sqlx::query("reset role").execute(&mut *conn).await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_migrate::MIGRATOR")]
async fn creating_an_organization_inside_a_scoped_transaction_keeps_its_scope(
    pool: PgPool,
) -> TestResult {
    let mut conn = pool.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    let new = strata_db::organizations::NewOrganization { slug: "gamma", name: "Gamma" };
    strata_db::organizations::create_with_owner(&mut tx, &new, a.owner.id).await?;
    let setting: Option<String> =
        sqlx::query_scalar("select current_setting('strata.organization_id', true)")
            .fetch_one(&mut *tx)
            .await?;
    assert_eq!(setting, Some(a.org.id.to_string()), "the caller's transaction is still alpha's");
    tx.commit().await?;
    Ok(())
}
