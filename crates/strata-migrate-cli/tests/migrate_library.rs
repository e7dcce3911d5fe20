//! The library API services call at start-up: `run`, and a `Session` that never keeps the
//! migration lock after a failure (sqlx's `Migrator::run` on a pooled connection does).

mod support;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, PgPool};
use strata_config::{Config, Loader};
use strata_db::MIGRATOR;
use strata_migrate::{MigrateError, Session, UpOptions};
use strata_test_support::TestResult;
use support::{eventually, url_of, write_migrations};

fn config_for(url: &str) -> Result<strata_config::Config, strata_config::ConfigError> {
    Loader::new(std::env::temp_dir(), [("DATABASE_URL", url)]).load()
}

#[sqlx::test(migrations = false)]
async fn run_applies_the_embedded_migrations_once(pool: PgPool) -> TestResult {
    let config = config_for(&url_of(&pool).await)?;
    let report = strata_migrate::run(&config, &MIGRATOR).await?;
    let expected = MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()).count();
    assert_eq!(report.applied.len(), expected);
    let again = strata_migrate::run(&config, &MIGRATOR).await?;
    assert!(again.applied.is_empty());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failed_up_releases_the_lock_on_a_session_that_stays_open(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("2_b.up.sql", "create table b (id int);\nselect 1/0;\n"),
    ]);
    let migrator = Migrator::new(dir.as_path()).await?;
    let config = config_for(&url_of(&pool).await)?;
    let mut session = Session::from_config(&config).await?;
    let options = UpOptions::from_config(&config.migrations);
    let err = session.up(&migrator, &options).await.expect_err("2 fails");
    assert!(
        matches!(&err, MigrateError::Migration { version: 2, message, .. } if message.contains("SQLSTATE 22012")),
        "{err}"
    );
    let held: i64 = sqlx::query_scalar(
        "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()",
    )
    .fetch_one(session.raw_connection())
    .await?;
    assert_eq!(held, 0, "the lock is released although the session is still open");
    // Another runner gets the lock at once.
    let mut other = Session::from_config(&config).await?;
    let mut quick = UpOptions::from_config(&config.migrations);
    quick.settings.lock_wait = std::time::Duration::from_millis(100);
    let err = other.up(&migrator, &quick).await.expect_err("2 still fails");
    assert!(matches!(err, MigrateError::Migration { version: 2, .. }), "{err}");
    session.close().await;
    other.close().await;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_session_asks_the_server_to_check_for_a_vanished_client(pool: PgPool) -> TestResult {
    let config = config_for(&url_of(&pool).await)?;
    let mut session = Session::from_config(&config).await?;
    let interval: String = sqlx::query_scalar("show client_connection_check_interval")
        .fetch_one(session.raw_connection())
        .await?;
    assert_eq!(interval, "1s", "set on the session itself, for its whole life");
    let application: String =
        sqlx::query_scalar("show application_name").fetch_one(session.raw_connection()).await?;
    assert_eq!(application, strata_migrate::Session::APPLICATION_NAME);
    session.close().await;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn migrations_url_wins_over_database_url(pool: PgPool) -> TestResult {
    // The service's URL leads nowhere; the runner's own one is the test database.
    let vars = [
        ("DATABASE_URL", "postgres://service:service-pw@127.0.0.1:9/nowhere".to_owned()),
        ("STRATA_MIGRATIONS__URL", url_of(&pool).await),
        ("STRATA_DATABASE__PASSWORD", "service-pw".to_owned()),
    ];
    let config = Loader::new(std::env::temp_dir(), vars).load()?;
    let report = strata_migrate::run(&config, &MIGRATOR).await?;
    assert!(!report.applied.is_empty());
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await?;
    let applied: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&pool).await?;
    assert_eq!(applied, i64::try_from(report.applied.len())?, "applied in {database}");
    Ok(())
}

#[test]
fn behind_a_transaction_mode_pooler_the_runner_needs_its_own_url() -> TestResult {
    let vars = [
        ("DATABASE_URL", "postgres://app@127.0.0.1:6432/strata"),
        ("STRATA_DATABASE__POOLER", "transaction"),
        ("STRATA_DATABASE__STATEMENT_TIMEOUT", "0s"),
    ];
    let config = Loader::new(std::env::temp_dir(), vars).load()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let err = runtime.block_on(strata_migrate::run(&config, &MIGRATOR)).expect_err("refused");
    assert!(matches!(err, MigrateError::NeedsSession), "{err}");
    assert!(err.to_string().contains("set migrations.url"), "{err}");
    assert_eq!(strata_migrate_cli::exit::code(&err), strata_migrate_cli::exit::CONNECT);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_scratch_database_goes_with_its_work_when_the_work_is_dropped(
    pool: PgPool,
) -> TestResult {
    let config = config_for(&url_of(&pool).await)?;
    // Work that never ends, stopped once its scratch database exists, as the command line
    // stops `verify` on Ctrl-C: by dropping its future.
    let work = strata_migrate::scratch::with_scratch(&config, "dropped", async |_: &Config| {
        std::future::pending::<Result<(), MigrateError>>().await
    });
    let exists = format!(
        "select exists (select from pg_database where datname like 'strata\\_dropped\\_{}\\_%')",
        std::process::id()
    );
    tokio::select! {
        ended = work => return Err(format!("the pending work ended: {ended:?}").into()),
        made = eventually(&pool, &exists, Duration::from_secs(20)) => {
            assert!(made?, "no scratch database was made");
        }
    }
    let left: bool = sqlx::query_scalar(AssertSqlSafe(exists)).fetch_one(&pool).await?;
    assert!(!left, "the scratch database outlived its dropped work");
    Ok(())
}
