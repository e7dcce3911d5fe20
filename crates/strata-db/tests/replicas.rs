//! Reads from a real streaming replica: a private primary and a replica made from it with
//! `pg_basebackup -R`, both from the installed binaries, on ports of their own. Tenant data is
//! written and read as the application's login role.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use strata_db::replicas::{self, Source};
use strata_db::users::{self, NewUser};
use strata_db::{Error, Pool, PoolSettings, ReadPool};
use strata_test_support::runner::until;
use strata_test_support::{APP_ROLE, PrivateCluster, TestResult, budget, login_role_options};

/// A migrated primary, its replica, and a read pool over both as the application's role.
struct Setup {
    primary: PrivateCluster,
    replica: PrivateCluster,
    reads: ReadPool,
}

async fn setup() -> Result<Setup, strata_test_support::BoxError> {
    let primary = PrivateCluster::start()?;
    // The runner refuses the maintenance database: a database of the application's own.
    primary.psql("postgres", "create database app")?;
    let url = primary.url("app");
    let config = strata_config::Loader::new(std::env::temp_dir(), [("DATABASE_URL", url.as_str())])
        .load()?;
    strata_migrate::run(&config, &strata_db::MIGRATOR).await?;
    let admin = PgPool::connect(&url).await?;
    let app: PgConnectOptions = login_role_options(&admin, APP_ROLE).await?;
    admin.close().await;
    // Made after the migrations and the role: the replica starts with both.
    let replica = primary.start_replica()?;
    let settings =
        || PoolSettings { acquire_timeout: Duration::from_secs(2), ..Default::default() };
    let on_replica = app.clone().port(replica.port());
    let reads =
        ReadPool::new(Pool::new(app, settings())?, vec![Pool::new(on_replica, settings())?]);
    Ok(Setup { primary, replica, reads })
}

async fn in_recovery(conn: &mut strata_db::ReadConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_is_in_recovery()").fetch_one(&mut **conn).await
}

#[tokio::test]
async fn reads_go_to_the_replica_and_writes_there_are_refused() -> TestResult {
    let s = setup().await?;
    let mut read = s.reads.acquire().await?;
    assert_eq!(read.source(), Source::Replica(0));
    assert!(in_recovery(&mut read).await?, "the connection is the replica's");
    let write =
        users::create(&mut *read, &NewUser { email: "a@b.example", display_name: "A" }).await;
    assert!(matches!(write, Err(Error::ReadOnly)), "{write:?}");
    drop(read);
    // The runner refuses the replica, and reads its history.
    let replica_url = s.replica.url("app");
    let config =
        strata_config::Loader::new(std::env::temp_dir(), [("DATABASE_URL", replica_url.as_str())])
            .load()?;
    let refused = strata_migrate::run(&config, &strata_db::MIGRATOR).await;
    assert!(matches!(refused, Err(strata_migrate::MigrateError::ReadOnly { .. })), "{refused:?}");
    let mut session = strata_migrate::Session::from_config(&config).await?;
    let lines = session.status(&strata_db::MIGRATOR).await;
    session.close().await;
    let lines = lines?;
    assert!(lines.iter().all(|l| l.state == strata_migrate::status::State::Applied), "{lines:?}");
    s.reads.close().await;
    Ok(())
}

#[tokio::test]
async fn read_your_writes_waits_for_the_replica_or_reads_the_primary() -> TestResult {
    let s = setup().await?;
    let mut write = s.reads.primary().acquire().await?;
    let user =
        users::create(&mut write, &NewUser { email: "c@d.example", display_name: "C" }).await?;
    let written = replicas::position(&mut write).await?;
    // Replaying: the replica serves the read, and sees the write.
    let mut read = s.reads.acquire_after(&written, Duration::from_secs(5)).await?;
    assert_eq!(read.source(), Source::Replica(0));
    assert_eq!(users::get(&mut *read, user.id).await?.email, "c@d.example");
    drop(read);

    // Replay paused: the next write never reaches the replica, and the read goes to the
    // primary once the bound passes.
    s.replica.pause_replay()?;
    let later =
        users::create(&mut write, &NewUser { email: "e@f.example", display_name: "E" }).await?;
    let written = replicas::position(&mut write).await?;
    let asked = Instant::now();
    let mut read = s.reads.acquire_after(&written, Duration::from_millis(200)).await?;
    let took = asked.elapsed();
    assert_eq!(read.source(), Source::Primary);
    assert!(took >= Duration::from_millis(150), "did not wait for the replica: {took:?}");
    assert!(took < Duration::from_secs(10), "a lagging read hung: {took:?}");
    budget::within(took < Duration::from_secs(2), format!("a lagging read took {took:?}"));
    assert_eq!(users::get(&mut *read, later.id).await?.email, "e@f.example");
    drop(read);
    // A read that tolerates lag still goes to the replica, which does not have the write.
    let mut lagging = s.reads.acquire().await?;
    assert_eq!(lagging.source(), Source::Replica(0));
    assert!(matches!(users::get(&mut *lagging, later.id).await, Err(Error::NotFound { .. })));
    drop(lagging);
    s.replica.resume_replay()?;
    let read = s.reads.acquire_after(&written, Duration::from_secs(5)).await?;
    assert_eq!(read.source(), Source::Replica(0), "caught up after the resume");
    drop(read);
    s.reads.close().await;
    Ok(())
}

#[tokio::test]
async fn a_stopped_replica_sends_reads_to_the_primary_until_it_returns() -> TestResult {
    let s = setup().await?;
    assert_eq!(s.reads.acquire().await?.source(), Source::Replica(0));
    s.replica.stop()?;
    // A connection opened before the stop fails at its first statement, retryably.
    let mut stale = s.reads.acquire().await?;
    if stale.source() == Source::Replica(0) {
        let failed = users::get(&mut *stale, strata_db::UserId::new()).await;
        assert!(failed.as_ref().is_err_and(Error::is_unavailable), "{failed:?}");
    }
    drop(stale);
    let asked = Instant::now();
    let mut read = s.reads.acquire().await?;
    assert_eq!(read.source(), Source::Primary);
    assert!(!in_recovery(&mut read).await?);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "a read past a stopped replica hung: {took:?}");
    budget::within(
        took < Duration::from_secs(3),
        format!("a read past a stopped replica: {took:?}"),
    );
    drop(read);
    // Left out meanwhile: no wait for the next reads.
    let asked = Instant::now();
    assert_eq!(s.reads.acquire().await?.source(), Source::Primary);
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(3), "a read waited for a replica left out: {took:?}");
    budget::within(
        took < Duration::from_millis(300),
        format!("a read once it is left out: {took:?}"),
    );

    s.replica.start_again()?;
    let back = until(Duration::from_secs(10), || async {
        Ok::<_, Error>(s.reads.acquire().await?.source() == Source::Replica(0))
    });
    assert!(back.await?, "reads never came back to the replica");
    let _ = &s.primary;
    s.reads.close().await;
    Ok(())
}
