//! Across the crates: the migrator binary applies the embedded migrations to an empty database,
//! and the data layer works on the result, through its pool, as the application's role.

mod support;

use sqlx::PgPool;
use strata_db::{Pool, PoolSettings, TenantTx, organizations, projects};
use strata_test_support::TestResult;
use strata_test_support::fixture::{self, Tenant};
use support::{applied_versions, embedded_versions, migrate, text, url_of};

#[sqlx::test(migrations = false)]
async fn up_then_status_then_the_data_layer_works(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let out = migrate(&["--database-url", &url, "up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("applied 20261126000001 organizations and users"),
        "{}",
        text(&out)
    );
    assert_eq!(applied_versions(&pool).await?, embedded_versions());

    let out = migrate(&["status", "--format", "json"], &[("DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let lines = lines.as_array().ok_or("status --format json is an array")?;
    assert_eq!(lines.len(), embedded_versions().len());
    for (line, version) in lines.iter().zip(embedded_versions()) {
        assert_eq!(line["version"], version);
        assert_eq!(line["state"], "applied");
        assert!(line["applied_at"].is_string());
    }

    let out = migrate(&["up"], &[("DATABASE_URL", &url)]);
    assert!(text(&out).contains("nothing to apply"), "{}", text(&out));

    // The data layer on the migrated database, through its pool, as the application's role.
    let db = Pool::new(pool.connect_options().as_ref().clone(), PoolSettings::default())?;
    let mut conn = db.acquire().await?;
    sqlx::query("set role strata_app").execute(&mut conn).await?;
    // A user, an organization it owns and its project OPS, through the data layer.
    let Tenant { org, owner, project, .. } = fixture::tenant(&mut conn, "acme").await?;
    assert_eq!(organizations::get(&mut conn, org.id).await?.slug, "acme");
    let mut tx = TenantTx::begin(&mut conn, org.id, owner.id).await?;
    assert_eq!(projects::get(&mut tx, project.id).await?.key, "OPS");
    tx.commit().await?;
    let outside: i64 =
        sqlx::query_scalar("select count(*) from projects").fetch_one(&mut conn).await?;
    assert_eq!(outside, 0, "row-level security applies outside a tenant transaction");
    Ok(())
}
