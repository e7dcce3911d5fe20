//! Organizations and users against a freshly migrated database per test.

mod support;

use sqlx::PgPool;
use strata_db::PageRequest;
use strata_db::organizations::{self, NewOrganization};
use strata_db::users::{self, NewUser};
use strata_db::{Error, OrganizationId, UserId, constraints};
use strata_test_support::TestResult;

const ACME: NewOrganization<'static> = NewOrganization { slug: "acme", name: "Acme Corp" };

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn organization_round_trip(pool: PgPool) -> TestResult {
    let created = organizations::create(&pool, &ACME).await?;
    assert_eq!(created.slug, "acme");
    assert_eq!(created.id.into_uuid().get_version_num(), 7);
    assert_eq!(organizations::get(&pool, created.id).await?, created);
    assert_eq!(organizations::get_by_slug(&pool, "acme").await?, created);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn missing_rows_are_not_found(pool: PgPool) -> TestResult {
    let err =
        organizations::get(&pool, OrganizationId::new()).await.expect_err("the call must fail");
    assert!(matches!(err, Error::NotFound { entity: "organization" }), "{err:?}");
    let err = users::get(&pool, UserId::new()).await.expect_err("the call must fail");
    assert!(matches!(err, Error::NotFound { entity: "user" }), "{err:?}");
    let err =
        users::get_by_email(&pool, "nobody@example.com").await.expect_err("the call must fail");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn duplicate_slug_is_a_conflict_and_writes_nothing(pool: PgPool) -> TestResult {
    organizations::create(&pool, &ACME).await?;
    let err = organizations::create(&pool, &NewOrganization { slug: "acme", name: "Other" })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Conflict { constraint: constraints::ORGANIZATIONS_SLUG_KEY, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("slug already exists"), "{err}");
    assert_eq!(organizations::list(&pool, PageRequest::first(10)).await?.items.len(), 1);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn malformed_organizations_are_invalid(pool: PgPool) -> TestResult {
    let err = organizations::create(&pool, &NewOrganization { slug: "Not A Slug", name: "x" })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::ORGANIZATIONS_SLUG_FORMAT, .. }),
        "{err:?}"
    );
    let err = organizations::create(&pool, &NewOrganization { slug: "ok", name: "  " })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::ORGANIZATIONS_NAME_NOT_BLANK, .. }),
        "{err:?}"
    );
    assert!(organizations::list(&pool, PageRequest::first(10)).await?.items.is_empty());
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn email_is_unique_whatever_its_case(pool: PgPool) -> TestResult {
    let ada =
        users::create(&pool, &NewUser { email: "Ada@Example.com", display_name: "Ada" }).await?;
    assert_eq!(ada.email, "Ada@Example.com", "stored as given");
    assert_eq!(users::get_by_email(&pool, "ada@example.COM").await?, ada);
    let err = users::create(&pool, &NewUser { email: "ada@example.com", display_name: "Imposter" })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Conflict { constraint: constraints::USERS_EMAIL_KEY, .. }),
        "{err:?}"
    );
    assert_eq!(users::list(&pool, PageRequest::first(10)).await?.items, vec![ada]);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn malformed_users_are_invalid(pool: PgPool) -> TestResult {
    let err = users::create(&pool, &NewUser { email: "no-at-sign", display_name: "X" })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::USERS_EMAIL_FORMAT, .. }),
        "{err:?}"
    );
    let err = users::create(&pool, &NewUser { email: "x@example.com", display_name: "" })
        .await
        .expect_err("the call must fail");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::USERS_DISPLAY_NAME_NOT_BLANK, .. }),
        "{err:?}"
    );
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn lists_page_by_keyset(pool: PgPool) -> TestResult {
    let mut created = Vec::new();
    for i in 0..5 {
        let slug = format!("org-{i}");
        created.push(
            organizations::create(&pool, &NewOrganization { slug: &slug, name: "Org" }).await?,
        );
    }
    let first = organizations::list(&pool, PageRequest::first(2)).await?;
    let second = organizations::list(&pool, PageRequest { after: first.next, limit: 2 }).await?;
    let third = organizations::list(&pool, PageRequest { after: second.next, limit: 2 }).await?;
    assert_eq!(third.next, None, "the third page is the last");
    let pages: Vec<_> = [first.items, second.items, third.items].concat();
    assert_eq!(pages, created, "pages cover every row once, in creation order");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn updated_at_is_kept_by_the_database(pool: PgPool) -> TestResult {
    let org = organizations::create(&pool, &ACME).await?;
    sqlx::query(
        "update organizations set name = 'Renamed', updated_at = '2000-01-01' where id = $1",
    )
    .bind(org.id)
    .execute(&pool)
    .await?;
    let renamed = organizations::get(&pool, org.id).await?;
    assert_eq!(renamed.name, "Renamed");
    assert!(renamed.updated_at >= org.updated_at, "trigger overrides a stale client value");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn other_database_errors_keep_their_source(pool: PgPool) -> TestResult {
    pool.close().await;
    let err =
        organizations::get(&pool, OrganizationId::new()).await.expect_err("the call must fail");
    assert!(matches!(err, Error::Database(sqlx::Error::PoolClosed)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    Ok(())
}

async fn pid(conn: &mut strata_db::PooledConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("select pg_backend_pid()").fetch_one(conn).await
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_pool_reuses_connections_and_bounds_them(admin: PgPool) -> TestResult {
    use std::time::Duration;
    use strata_db::{Pool, PoolSettings};
    let settings = PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(200),
        ..PoolSettings::default()
    };
    // As the application's role, as a service connects.
    let ours = Pool::new(support::app_options(&admin).await?, settings)?;
    let first = {
        let mut conn = ours.acquire().await?;
        pid(&mut conn).await?
    };
    let again = {
        let mut conn = ours.acquire().await?;
        pid(&mut conn).await?
    };
    assert_eq!(first, again, "an idle connection is handed out again");
    let (one, two) = (ours.acquire().await?, ours.acquire().await?);
    assert_eq!(ours.size(), 2);
    let err = ours.acquire().await.expect_err("the pool is full");
    assert!(matches!(err, Error::Database(sqlx::Error::PoolTimedOut)), "{err:?}");
    drop(one);
    let mut three = ours.acquire().await?;
    organizations::create(&mut three, &ACME).await?;
    drop((two, three));

    // A transaction dropped without commit is rolled back before the next user's statement.
    {
        let mut conn = ours.acquire().await?;
        let mut tx = sqlx::Connection::begin(conn.raw_connection()).await?;
        organizations::create(&mut *tx, &NewOrganization { slug: "dropped", name: "x" }).await?;
    }
    let mut conn = ours.acquire().await?;
    let err = organizations::get_by_slug(&mut conn, "dropped").await.expect_err("rolled back");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    drop(conn);
    ours.close().await;
    assert!(matches!(ours.acquire().await, Err(Error::Database(sqlx::Error::PoolClosed))));
    Ok(())
}
