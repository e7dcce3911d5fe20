//! Helpers for the tests that run the migration runner against the shared test server: URLs
//! of per-test databases, migration directories, the runner's process, a schema dump.
//! Panics are the point here: a helper that cannot do its work fails the test that called it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;

/// Polls `query` (one boolean, asked of what PostgreSQL reports: `pg_stat_activity`,
/// `pg_locks`, a row) every 20 ms until it is true or `limit` passes; whether it came true.
/// Tests wait on the server's word with it, not on a fixed sleep.
pub async fn eventually(
    pool: &PgPool,
    query: &str,
    limit: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    until(limit, || {
        sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(pool)
    })
    .await
}

/// The query, for [`eventually`], whether a session of the `strata-migrate` runner on the
/// test's database matches `condition` (SQL over `pg_stat_activity`'s columns; `true` for
/// any): how the tests of a runner in another process learn that it connected, runs a
/// statement or waits on a lock.
pub fn runner_session(condition: &str) -> String {
    format!(
        "select exists (select from pg_stat_activity
                         where datname = current_database() and application_name = 'strata-migrate'
                           and ({condition}))"
    )
}

/// Asks `condition` every 20 ms until it is true or `limit` passes; whether it came true. The
/// one poll of the tests: [`eventually`] asks the server with it, others a count or a reply.
///
/// # Errors
/// `condition`'s first error.
pub async fn until<E, F: std::future::Future<Output = Result<bool, E>>>(
    limit: std::time::Duration,
    mut condition: impl FnMut() -> F,
) -> Result<bool, E> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition().await? {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(false)
}

/// Waits until a session of `application` on `pool`'s database (tests run side by side, each on
/// a database of its own) has waited on a lock in two different transactions
/// (`pg_stat_activity.xact_start` changed while `wait_event_type = 'Lock'`): its
/// `lock_timeout` expired and it tried again. Whether that happened within `limit`.
pub async fn retried_on_a_lock(
    pool: &PgPool,
    application: &str,
    limit: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    // The first transaction seen waiting; the poll's futures share it.
    let first: std::cell::RefCell<Option<String>> = std::cell::RefCell::default();
    until(limit, || async {
        let waiting: Option<String> = sqlx::query_scalar(
            "select xact_start::text from pg_stat_activity
              where application_name = $1 and wait_event_type = 'Lock' and xact_start is not null
                and datname = current_database()
              limit 1",
        )
        .bind(application)
        .fetch_optional(pool)
        .await?;
        let mut first = first.borrow_mut();
        Ok(match (first.as_ref(), waiting) {
            (None, Some(xact)) => {
                *first = Some(xact);
                false
            }
            (Some(seen), Some(xact)) => *seen != xact,
            _ => false,
        })
    })
    .await
}

/// The server every test uses, from `DATABASE_URL` (as `#[sqlx::test]` does).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server: run the tests with `just test`")
}

/// The URL of database `name` on the test server, with `password` if given (the user stays,
/// `postgres` when the server's URL names none).
pub fn url_for(name: &str, password: Option<&str>) -> String {
    let mut url = url::Url::parse(&server_url()).expect("DATABASE_URL is a URL");
    url.set_path(name);
    if let Some(password) = password {
        if url.username().is_empty() {
            url.set_username("postgres").expect("a URL with a host takes a user");
        }
        url.set_password(Some(password)).expect("a URL with a host takes a password");
    }
    url.to_string()
}

/// The URL of the database behind `pool`: on the test server, as [`url_for`] gives it; on a
/// server of the test's own ([`crate::PrivateCluster`], [`crate::CitusCluster`]: trust
/// authentication, no TLS), its own host and port.
pub async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .expect("current_database()");
    let on_server = url_for(&name, None);
    let options = pool.connect_options();
    let server = url::Url::parse(&on_server).expect("DATABASE_URL is a URL");
    let same = server.host_str() == Some(options.get_host())
        && server.port_or_known_default() == Some(options.get_port());
    if same {
        on_server
    } else {
        format!(
            "postgres://{}@{}:{}/{name}?sslmode=disable",
            options.get_username(),
            options.get_host(),
            options.get_port()
        )
    }
}

/// An empty directory of its own.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strata-runner-test-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A directory holding migration files `(name, sql)`.
pub fn write_migrations(files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir("source");
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).expect("write migration");
    }
    dir
}

/// A catalog dump of the user schema (tables, columns, indexes, constraints), one line per
/// object, sorted: equal dumps mean equal schemas. Our bookkeeping tables are left out.
pub async fn schema_dump(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select line from (
           select format('column %s.%s %s %s null=%s default=%s', table_name, ordinal_position,
                         column_name, data_type, is_nullable, column_default) as line
             from information_schema.columns
            where table_schema = 'public' and table_name not like '\\_%'
           union all
           select format('index %s valid=%s', pg_get_indexdef(i.indexrelid), i.indisvalid)
             from pg_index i join pg_class c on c.oid = i.indrelid
            where c.relnamespace = 'public'::regnamespace and c.relname not like '\\_%'
           union all
           select format('constraint %s on %s: %s', conname, conrelid::regclass, pg_get_constraintdef(oid))
             from pg_constraint
            where connamespace = 'public'::regnamespace and conrelid::regclass::text not like '\\_%'
           union all
           select format('sequence %s', c.relname)
             from pg_class c
            where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'
              and c.relname not like '\\_%'
           union all
           select format('function %s', p.oid::regprocedure)
             from pg_proc p where p.pronamespace = 'public'::regnamespace
           union all
           select format('type %s', t.typname)
             from pg_type t
            where t.typnamespace = 'public'::regnamespace and t.typtype in ('e', 'd', 'c')
              and not exists (select 1 from pg_class c where c.reltype = t.oid)
         ) dump order by line",
    )
    .fetch_all(pool)
    .await
    .expect("catalog dump")
}

/// The runner's binary `bin` (its tests pass `env!("CARGO_BIN_EXE_…")`) with `args` and extra
/// environment, in an empty working directory and with no inherited configuration.
pub fn command(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    command.args(args).current_dir(temp_dir("cwd")).env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("STRATA_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// Standard output and error of a run, as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
