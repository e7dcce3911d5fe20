//! What the workspace's end-to-end tests share: the built binaries, a fresh database, and a
//! plain HTTP/1.1 client (one request per connection, enough for a journey).
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_e2e::BoxError> {
//! let db = strata_e2e::FreshDatabase::create("strata_e2e_demo").await?;
//! let out = strata_e2e::run_binary("strata-migrate", &["--database-url", db.owner_url(), "up"], &[])?;
//! assert!(out.status.success());
//! # Ok(()) }
//! ```

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::PgPool;
use strata_test_support::runner::{server_url, url_for};

pub use strata_test_support::{BoxError, TestResult};

/// The path of a workspace binary, built beside the test (`cargo test --workspace` builds every
/// member's binaries into the same directory).
///
/// # Errors
///
/// When it is not built, saying what to run.
pub fn binary(name: &str) -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/journey-… → target/<profile>/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).ok_or("no target directory")?;
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built: run `cargo test --workspace` (or `cargo build -p {name}`) first",
            path.display()
        )
        .into())
    }
}

/// Runs a workspace binary to its end, without the caller's `DATABASE_URL`, `STRATA_*` or
/// `RUST_LOG`.
///
/// # Errors
///
/// When it is not built or cannot start.
pub fn run_binary(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Output, BoxError> {
    Ok(command(name, args, env)?.output()?)
}

/// [`run_binary`] as a command, for one that runs in the background.
///
/// # Errors
///
/// When it is not built.
pub fn command(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Command, BoxError> {
    Ok(strata_test_support::runner::command(&binary(name)?.to_string_lossy(), args, env))
}

/// A database of the test's own on the test server (`DATABASE_URL`), made empty, dropped on
/// [`FreshDatabase::drop_now`].
pub struct FreshDatabase {
    name: String,
    owner_url: String,
    /// The superuser on it, for setup and checks only.
    pub admin: PgPool,
}

impl FreshDatabase {
    /// Drops any database `name` and makes it again, empty.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses.
    pub async fn create(name: &str) -> Result<Self, BoxError> {
        let server = PgPool::connect(&server_url()).await?;
        for sql in [
            format!("drop database if exists {name} with (force)"),
            format!("create database {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&server).await?;
        }
        server.close().await;
        let owner_url = url_for(name, None);
        let admin = PgPool::connect(&owner_url).await?;
        Ok(Self { name: name.to_owned(), owner_url, admin })
    }

    /// The superuser's URL of it: the owner the migrations run as.
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }

    /// Closes the pool and drops the database.
    ///
    /// # Errors
    ///
    /// When the server refuses.
    pub async fn drop_now(self) -> Result<(), BoxError> {
        self.admin.close().await;
        let server = PgPool::connect(&server_url()).await?;
        let sql = format!("drop database if exists {} with (force)", self.name);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&server).await?;
        server.close().await;
        Ok(())
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body as JSON (`null` when it is not).
    pub json: serde_json::Value,
    /// The body as text.
    pub text: String,
}

/// Sends one HTTP/1.1 request to `address` (`127.0.0.1:port`), with the caller's bearer token
/// when there is one, and reads the whole answer.
///
/// # Errors
///
/// When the connection fails or the answer is not HTTP.
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    caller: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Reply, BoxError> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(serde_json::Value::to_string).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = caller {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, text) = answer.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    // The service answers with a length, not chunks, for these small bodies.
    let text = text.to_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Ok(Reply { status, json, text })
}
