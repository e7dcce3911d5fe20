//! Running the migrator binary against the per-test database of `#[sqlx::test]`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;

/// The server every test uses, from `DATABASE_URL` (as `#[sqlx::test]` does).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server: run the tests with `just test`")
}

/// The URL of database `name` on the test server, with `password` if given.
pub fn url_for(name: &str, password: Option<&str>) -> String {
    let server = server_url();
    let (without_query, query) = match server.split_once('?') {
        Some((url, query)) => (url.to_owned(), format!("?{query}")),
        None => (server.clone(), String::new()),
    };
    let (scheme, rest) = without_query.split_once("://").expect("DATABASE_URL has a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = match (password, authority.rsplit_once('@')) {
        (Some(pw), Some((userinfo, host))) => {
            let user = userinfo.split(':').next().unwrap_or(userinfo);
            format!("{user}:{pw}@{host}")
        }
        (Some(pw), None) => format!("postgres:{pw}@{authority}"),
        (None, _) => authority.to_owned(),
    };
    format!("{scheme}://{authority}/{name}{query}")
}

/// The URL of the database behind `pool`.
pub async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .expect("current_database()");
    url_for(&name, None)
}

/// An empty directory of its own.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strata-e2e-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs `strata-migrate` with `args` and extra environment, in an empty working directory
/// and with no inherited configuration.
pub fn migrate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata-migrate-e2e"));
    command.args(args).current_dir(temp_dir("cwd")).env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key == "DATABASE_URL" || key.starts_with("STRATA_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("run strata-migrate")
}

/// Standard output and error of a run, as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
