//! Through PgBouncer (1.18, Debian's package) in transaction mode, in front of the test server:
//! a PgBouncer of the test's own, with two server connections for eight clients, so clients
//! share server connections as they do in production.
//!
//! First what goes wrong without care (sqlx's named, cached statements collide between clients
//! on a shared server connection), then the data layer with `database.pooler = "transaction"`:
//! eight workers running its real operations, with 0 errors and 0 wrong rows.
//!
//! Then the server settings (`database.statement_timeout`, `idle_in_transaction_timeout`)
//! through both modes, with and without `options` in PgBouncer's
//! `ignore_startup_parameters`: each connection has the configured value, or the caller gets
//! an error that names the setting and the pooler parameter, at once.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Row};
use strata_config::{DatabaseConfig, DatabaseUrl, Pooler};
use strata_db::PageRequest;
use strata_db::tasks::{self, TaskFilter};
use strata_db::users::{self, NewUser};
use strata_db::{
    Error, Pool, PoolSettings, PooledConnection, Retry, TenantTx, comments, organizations,
};
use strata_test_support::{APP_ROLE, PgBouncer, PoolMode, TestResult, login_role_options};
use support::{new_task, tenant};

/// Clients at once.
const WORKERS: usize = 8;
/// Operations each worker runs.
const ROUNDS: usize = 40;

/// PgBouncer in transaction mode in front of the test's server, with 2 server connections.
fn bouncer(admin: &PgPool) -> Result<PgBouncer, strata_test_support::BoxError> {
    Ok(PgBouncer::start(admin.connect_options().get_port(), PoolMode::Transaction, 2)?)
}

/// What the workers of one test saw: right results, wrong ones, and errors.
#[derive(Debug, Default)]
struct Tally {
    ok: AtomicU64,
    wrong: AtomicU64,
    errors: AtomicU64,
}

impl Tally {
    /// Counts one result: `Ok(true)` right, `Ok(false)` wrong, `Err` an error.
    fn record<E>(&self, result: Result<bool, E>) {
        let counter = match result {
            Ok(true) => &self.ok,
            Ok(false) => &self.wrong,
            Err(_) => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(ok, wrong, errors)` so far.
    fn counts(&self) -> (u64, u64, u64) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (load(&self.ok), load(&self.wrong), load(&self.errors))
    }
}

async fn database(admin: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("select current_database()").fetch_one(admin).await
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn sqlx_statements_as_they_are_collide_through_transaction_mode(admin: PgPool) -> TestResult {
    let bouncer = bouncer(&admin)?;
    login_role_options(&admin, APP_ROLE).await?;
    let url = bouncer.url(APP_ROLE, &database(&admin).await?);
    let stock = PgPoolOptions::new().max_connections(WORKERS as u32).connect(&url).await?;
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (stock, tally) = (stock.clone(), tally.clone());
            tokio::spawn(async move {
                for i in 0..ROUNDS {
                    let n = i64::try_from(w * 1000 + i).unwrap_or_default();
                    // Two statements, so that every client names `sqlx_s_1` and `sqlx_s_2`.
                    let first = sqlx::query_scalar::<_, i64>("select $1::bigint + 0")
                        .bind(n)
                        .fetch_one(&stock)
                        .await;
                    let second = sqlx::query_scalar::<_, i64>("select $1::bigint * 1")
                        .bind(n)
                        .fetch_one(&stock)
                        .await;
                    for result in [first, second] {
                        tally.record(result.map(|got| got == n));
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let (_, wrong, errors) = tally.counts();
    println!("stock sqlx through transaction mode: {errors} errors, {wrong} wrong rows");
    assert!(errors + wrong > 0, "sqlx's named statements did not collide: the test shows nothing");

    // Unnamed statements outside a transaction: `Parse` and `Bind` are two round trips, and
    // the pooler gives them to whichever server connection is free, so a `Bind` meets another
    // client's statement ("bind message supplies 1 parameters, but prepared statement \"\"
    // requires 2"). With one statement text for all, the mix-up would go unseen.
    let options = url.parse::<sqlx::postgres::PgConnectOptions>()?.statement_cache_capacity(0);
    let unnamed =
        PgPoolOptions::new().max_connections(WORKERS as u32).connect_with(options).await?;
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (unnamed, tally) = (unnamed.clone(), tally.clone());
            tokio::spawn(async move {
                for i in 0..ROUNDS {
                    let n = i64::try_from(w * 1000 + i).unwrap_or_default();
                    // Half the workers send a statement of one parameter, half of two.
                    let query = if w % 2 == 0 {
                        sqlx::query_scalar::<_, i64>("select $1::bigint").bind(n)
                    } else {
                        sqlx::query_scalar::<_, i64>("select $1::bigint + $2::bigint")
                            .bind(n)
                            .bind(0_i64)
                    };
                    let result = query.persistent(false).fetch_one(&unnamed).await;
                    tally.record(result.map(|got| got == n));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let (_, wrong, errors) = tally.counts();
    println!(
        "unnamed statements outside a transaction: {errors} errors, {wrong} wrong rows of {}",
        WORKERS * ROUNDS
    );
    assert!(errors + wrong > 0, "every Bind met its own Parse: the test shows nothing");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_data_layer_through_transaction_mode_has_no_errors_and_no_wrong_rows(
    admin: PgPool,
) -> TestResult {
    let bouncer = bouncer(&admin)?;
    let config = config_through(&admin, &bouncer, Pooler::Transaction).await?;
    let (ok, wrong, errors) = workload(&config).await?;
    println!(
        "strata-db through 1.18 in transaction mode: {ok} rounds, {errors} errors, {wrong} wrong"
    );
    assert_eq!((errors, wrong), (0, 0));
    assert_eq!(ok, (WORKERS * ROUNDS) as u64);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn named_statements_through_a_pooler_that_keeps_them(admin: PgPool) -> TestResult {
    // PgBouncer 1.25.2, built from ../shared/vendor when no 1.21 or later is installed.
    let port = admin.connect_options().get_port();
    let modern = || {
        PgBouncer::builder(port, PoolMode::Transaction)
            .modern()
            .max_prepared_statements(200)
            .start()
    };
    let refusing = modern()?;
    let mut config = config_through(&admin, &refusing, Pooler::Transaction).await?;
    config.pooler_prepared_statements = true;

    // A bare statement runs outside any transaction: without the role's own timeout, each
    // new connection refuses, naming what to do.
    let error = refused(&config).await?;
    assert!(error.to_string().contains("ALTER ROLE … SET statement_timeout = 30000"), "{error}");
    drop(refusing);
    let database = database(&admin).await?;
    let give_timeout =
        format!("alter role {APP_ROLE} in database \"{database}\" set statement_timeout = '30s'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(give_timeout)).execute(&admin).await?;
    // A PgBouncer whose server connections log in after that (a running one keeps the
    // sessions it has until its RECONNECT).
    let bouncer = modern()?;
    let mut config = config_through(&admin, &bouncer, Pooler::Transaction).await?;
    config.pooler_prepared_statements = true;

    let (ok, wrong, errors) = workload(&config).await?;
    println!(
        "strata-db through 1.25.2, prepared statements kept: {ok} rounds, {errors} errors, {wrong} wrong"
    );
    assert_eq!((errors, wrong), (0, 0));
    assert_eq!(ok, (WORKERS * ROUNDS) as u64);

    let pool = Pool::from_config(&config)?;
    let mut conn = pool.acquire().await?;
    let t = tenant(&mut conn, "named").await?;
    let task = {
        let mut tx = t.scope.begin(&mut conn).await?;
        let task = tasks::create(&mut tx, &new_task(t.project.id, "named")).await?;
        tx.commit().await?;
        task
    };
    for _ in 0..3 {
        tasks::get(&mut t.scope.on(&mut conn), task.id).await?;
    }
    // Named and cached by sqlx on this connection (through 1.18 the cache stays empty).
    let cached = sqlx::Connection::cached_statements_size(conn.raw_connection());
    assert!(cached >= 2, "{cached} statements cached");
    drop(conn);
    pool.close().await;
    Ok(())
}

/// `WORKERS` workers, `ROUNDS` rounds each, of the data layer's real operations through
/// `config`'s pool; `(ok, wrong, errors)`.
async fn workload(
    config: &DatabaseConfig,
) -> Result<(u64, u64, u64), strata_test_support::BoxError> {
    let mut config = config.clone();
    config.max_connections = WORKERS as u32;
    config.acquire_timeout = Duration::from_secs(5);
    let pool = Pool::from_config(&config)?;
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let pool = pool.clone();
            let tally = tally.clone();
            tokio::spawn(async move {
                let count = |result: Result<bool, strata_db::Error>| {
                    if let Err(error) = &result {
                        eprintln!("worker {w}: {error}");
                    }
                    tally.record(result);
                };
                let setup = async {
                    let mut conn = pool.acquire().await?;
                    tenant(&mut conn, &format!("w{w}")).await
                };
                let t = match setup.await {
                    Ok(t) => t,
                    Err(error) => return count(Err(error)),
                };
                for i in 0..ROUNDS {
                    let title = format!("worker {w} task {i}");
                    let round = async {
                        let mut conn = pool.acquire().await?;
                        // A write in a tenant transaction, then reads outside any transaction
                        // (each runs in one of its own), then a list in a transaction.
                        let mut tx = TenantTx::begin(&mut conn, t.org.id, t.owner.id).await?;
                        let task = tasks::create(&mut tx, &new_task(t.project.id, &title)).await?;
                        comments::create(&mut tx, task.id, &title).await?;
                        tx.commit().await?;
                        let read = tasks::get(&mut t.scope.on(&mut conn), task.id).await?;
                        let org = organizations::get(&mut conn, t.org.id).await?;
                        let email = format!("w{w}-{i}@example.com");
                        let user =
                            users::create(&mut conn, &NewUser { email: &email, display_name: "U" })
                                .await?;
                        let mut tx = TenantTx::begin(&mut conn, t.org.id, t.owner.id).await?;
                        let page = tasks::list(
                            &mut tx,
                            t.project.id,
                            &TaskFilter::default(),
                            PageRequest::first(500),
                        )
                        .await?;
                        let notes =
                            comments::list(&mut tx, task.id, PageRequest::first(50)).await?.items;
                        tx.commit().await?;
                        Ok::<_, strata_db::Error>(
                            read.title == title
                                && org.id == t.org.id
                                && user.email == email
                                && page.items.len() == i + 1
                                && page.items.iter().all(|p| p.project_id == t.project.id)
                                && notes.len() == 1
                                && notes[0].body == title,
                        )
                    };
                    count(round.await);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    pool.close().await;
    Ok(tally.counts())
}

/// A data-layer configuration through `bouncer` as the application's role, with the default
/// timeouts (`statement_timeout` 30 s, `idle_in_transaction_timeout` 60 s).
async fn config_through(
    admin: &PgPool,
    bouncer: &PgBouncer,
    pooler: Pooler,
) -> Result<DatabaseConfig, strata_test_support::BoxError> {
    login_role_options(admin, APP_ROLE).await?;
    let mut config = DatabaseConfig::default();
    config.url = Some(DatabaseUrl::new(bouncer.url(APP_ROLE, &database(admin).await?)));
    config.pooler = pooler;
    // Long, so that a caller who waited for it would stand out from one refused at once.
    config.acquire_timeout = Duration::from_secs(30);
    Ok(config)
}

/// `show NAME` through a strata connection (through a transaction pooler, in the transaction
/// strata opens for a bare statement).
async fn show(conn: &mut PooledConnection, name: &str) -> Result<String, sqlx::Error> {
    let sql = match name {
        "statement_timeout" => "show statement_timeout",
        _ => "show idle_in_transaction_session_timeout",
    };
    sqlx::query_scalar(sql).fetch_one(conn).await
}

/// A pool of `config` that must fail at once, and its error.
async fn refused(config: &DatabaseConfig) -> Result<Error, strata_test_support::BoxError> {
    let pool = Pool::from_config(config)?;
    let started = Instant::now();
    let error = pool.acquire().await.err().ok_or("a connection without its settings")?;
    let waited = started.elapsed();
    // Not the 30 s acquire timeout: the refusal ends the wait.
    assert!(waited < Duration::from_secs(15), "waited {waited:?} for {error}");
    Ok(error)
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn session_mode_keeps_the_configured_timeouts(admin: PgPool) -> TestResult {
    let port = admin.connect_options().get_port();
    for ignore_options in [false, true] {
        let bouncer =
            PgBouncer::builder(port, PoolMode::Session).ignore_options(ignore_options).start()?;
        let pool = Pool::from_config(&config_through(&admin, &bouncer, Pooler::Session).await?)?;
        let mut conn = pool.acquire().await?;
        assert_eq!(show(&mut conn, "statement_timeout").await?, "30s", "{ignore_options}");
        assert_eq!(show(&mut conn, "idle_in_transaction_session_timeout").await?, "1min");
        drop(conn);
        pool.close().await;
    }
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_pooler_that_refuses_options_is_named_at_once(admin: PgPool) -> TestResult {
    // database.pooler left at "none": strata sends the timeouts as start-up parameters.
    let bouncer =
        PgBouncer::builder(admin.connect_options().get_port(), PoolMode::Session).start()?;
    let error = refused(&config_through(&admin, &bouncer, Pooler::None).await?).await?;
    let message = error.to_string();
    assert!(matches!(error, Error::Connect(_)), "{error:?}");
    assert!(message.contains("unsupported startup parameter: options"), "{message}");
    assert!(message.contains("database.pooler"), "{message}");
    assert_eq!(error.retry(), Retry::No, "{error:?}");
    assert!(bouncer.log().contains("unsupported startup parameter"), "{}", bouncer.log());
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_pooler_that_drops_options_is_an_error_not_a_silent_default(admin: PgPool) -> TestResult {
    // The usual workaround: `options` ignored. The start-up parameters are accepted and
    // dropped, and the server would run without the timeout.
    let bouncer = PgBouncer::builder(admin.connect_options().get_port(), PoolMode::Session)
        .ignore_options(true)
        .start()?;
    let error = refused(&config_through(&admin, &bouncer, Pooler::None).await?).await?;
    let message = error.to_string();
    for part in [
        "database.statement_timeout",
        "statement_timeout = 0 ms",
        "ignore_startup_parameters",
        "database.pooler",
    ] {
        assert!(message.contains(part), "{part:?} missing: {message}");
    }
    assert_eq!(error.retry(), Retry::No, "{error:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn transaction_mode_sets_the_timeouts_in_every_transaction(admin: PgPool) -> TestResult {
    let port = admin.connect_options().get_port();
    for ignore_options in [false, true] {
        let bouncer = PgBouncer::builder(port, PoolMode::Transaction)
            .ignore_options(ignore_options)
            .start()?;
        let mut config = config_through(&admin, &bouncer, Pooler::Transaction).await?;
        let pool = Pool::from_config(&config)?;
        let mut conn = pool.acquire().await?;
        // A bare statement, in the transaction strata opens for it.
        assert_eq!(show(&mut conn, "statement_timeout").await?, "30s");
        assert_eq!(show(&mut conn, "idle_in_transaction_session_timeout").await?, "1min");
        // A tenant transaction of the data layer.
        let t = tenant(&mut conn, &format!("tx-settings-{ignore_options}")).await?;
        let mut tx = t.scope.begin(&mut conn).await?;
        let inside: String =
            sqlx::query_scalar("show statement_timeout").fetch_one(&mut tx).await?;
        tx.commit().await?;
        assert_eq!(inside, "30s");
        drop(conn);
        pool.close().await;

        // The setting is LOCAL: another client of the same pooler, sharing its 2 server
        // connections, runs with the server's own (0) after strata's transactions.
        let url = bouncer.url(APP_ROLE, &database(&admin).await?);
        let mut other = sqlx::PgConnection::connect(&url).await?;
        for _ in 0..4 {
            let row = sqlx::raw_sql("show statement_timeout").fetch_one(&mut other).await?;
            let theirs: String = row.try_get(0)?;
            assert_eq!(theirs, "0", "strata's setting leaked to another client");
        }

        // And the server enforces it.
        config.statement_timeout = Duration::from_millis(200);
        let pool = Pool::from_config(&config)?;
        let mut conn = pool.acquire().await?;
        let error = Error::from(
            sqlx::query("select pg_sleep(5)").execute(&mut conn).await.err().ok_or("slept 5 s")?,
        );
        assert_eq!(error.retry(), Retry::Safe, "{error:?}");
        assert!(error.to_string().contains("statement timeout"), "{error}");
        drop(conn);
        pool.close().await;
    }
    Ok(())
}

/// Where [`a_migration_under_load_costs_at_most_one_safe_error_per_connection`] sends the
/// workload.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// Straight to the server: named, cached statements.
    Direct,
    /// PgBouncer 1.18 in transaction mode: unnamed statements.
    Unnamed,
    /// PgBouncer 1.25.2 in transaction mode with `max_prepared_statements`: named, cached
    /// statements, which PgBouncer shares between its clients on each server connection.
    Prepared,
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_migration_under_load_costs_at_most_one_safe_error_per_connection(
    admin: PgPool,
) -> TestResult {
    let port = admin.connect_options().get_port();
    let database = database(&admin).await?;
    let give_timeout =
        format!("alter role {APP_ROLE} in database \"{database}\" set statement_timeout = '30s'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(give_timeout)).execute(&admin).await?;
    let app = login_role_options(&admin, APP_ROLE).await?;
    // Each run changes the type of a column that the data layer's reads return, as a
    // migration would: a cached plan of them must not change its result type (0A000).
    let migrations = [
        "alter table tasks alter column title type varchar(500)",
        "alter table tasks alter column title type text",
        "alter table tasks alter column title type varchar(400)",
    ];
    for (path, migration) in
        [Path::Direct, Path::Unnamed, Path::Prepared].into_iter().zip(migrations)
    {
        let bouncer = match path {
            Path::Direct => None,
            Path::Unnamed => Some(PgBouncer::start(port, PoolMode::Transaction, 2)?),
            Path::Prepared => Some(
                PgBouncer::builder(port, PoolMode::Transaction)
                    .modern()
                    .max_prepared_statements(200)
                    .start()?,
            ),
        };
        let pool = match &bouncer {
            Some(bouncer) => {
                let mut config = config_through(&admin, bouncer, Pooler::Transaction).await?;
                config.pooler_prepared_statements = matches!(path, Path::Prepared);
                config.max_connections = WORKERS as u32;
                Pool::from_config(&config)?
            }
            None => {
                let settings =
                    PoolSettings { max_connections: WORKERS as u32, ..Default::default() };
                Pool::new(app.clone(), settings)?
            }
        };
        let mut conn = pool.acquire().await?;
        let t = tenant(&mut conn, &format!("{path:?}").to_lowercase()).await?;
        let mut ids = Vec::new();
        for i in 0..WORKERS {
            let mut tx = t.scope.begin(&mut conn).await?;
            ids.push(
                tasks::create(&mut tx, &new_task(t.project.id, &format!("task {i}"))).await?.id,
            );
            tx.commit().await?;
        }
        drop(conn);

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let migrated = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let (pool, stop, migrated) = (pool.clone(), stop.clone(), migrated.clone());
                let (scope, project) = (t.scope, t.project.id);
                tokio::spawn(async move {
                    // (ok after the migration, safe errors, other errors, wrong results)
                    let mut seen = (0_u64, Vec::new(), Vec::new(), 0_u64);
                    while !stop.load(Ordering::Relaxed) {
                        let after = migrated.load(Ordering::Relaxed);
                        let round = async {
                            let mut conn = pool.acquire().await?;
                            let task = tasks::get(&mut scope.on(&mut conn), id).await?;
                            let mut tx = scope.begin(&mut conn).await?;
                            let page = tasks::list(
                                &mut tx,
                                project,
                                &TaskFilter::default(),
                                PageRequest::first(50),
                            )
                            .await?;
                            tx.commit().await?;
                            Ok::<_, Error>(
                                task.title == format!("task {i}") && page.items.len() == WORKERS,
                            )
                        };
                        match round.await {
                            Ok(true) => seen.0 += u64::from(after),
                            Ok(false) => seen.3 += 1,
                            Err(error) if error.retry() == Retry::Safe => {
                                seen.1.push(error.to_string());
                            }
                            Err(error) => seen.2.push(error.to_string()),
                        }
                    }
                    seen
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::raw_sql(migration).execute(&admin).await?;
        migrated.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.store(true, Ordering::Relaxed);
        let (mut ok_after, mut safe, mut other, mut wrong) = (0, Vec::new(), Vec::new(), 0);
        for worker in workers {
            let seen = worker.await?;
            ok_after += seen.0;
            safe.extend(seen.1);
            other.extend(seen.2);
            wrong += seen.3;
        }
        println!(
            "{path:?}, `{migration}` under load: {} safe errors, {ok_after} rounds after it",
            safe.len()
        );
        assert!(other.is_empty(), "{path:?}: errors not marked safe: {other:?}");
        assert_eq!(wrong, 0, "{path:?}: wrong results");
        let stale = |e: &String| {
            ["cached plan must not change result type", "has wrong type", "function result type"]
                .iter()
                .any(|stale| e.contains(stale))
        };
        assert!(safe.iter().all(stale), "{safe:?}");
        // One per connection that held the stale statements (each is then replaced), and for
        // a pooler that shares them, once per statement text on the connections made after.
        assert!(safe.len() <= 2 * WORKERS, "{path:?}: {} safe errors: {safe:?}", safe.len());
        if matches!(path, Path::Unnamed) {
            // Planned afresh each time: only a statement in flight as the migration commits
            // (parsed before, executed after) can meet the change.
            assert!(safe.len() <= WORKERS, "{safe:?}");
        }
        assert!(ok_after > 0, "{path:?}: nothing succeeded after the migration");
        pool.close().await;
    }
    Ok(())
}
