//! What the service's tests share: a running service and its client (callers authenticate
//! with API tokens issued through the data layer), its pool as the application's login role,
//! a small world, and the check of a problem body.

#![allow(dead_code, unused_imports)] // each test file uses its part

pub use std::collections::HashMap;
pub use std::sync::Mutex;
pub use std::time::{Duration, Instant};

pub use axum::body::Bytes;
pub use axum::http::{HeaderMap, Method, Request, StatusCode, header};
pub use http_body_util::{BodyExt, Full};
pub use hyper_util::client::legacy::Client as HyperClient;
pub use hyper_util::client::legacy::connect::HttpConnector;
pub use hyper_util::rt::TokioExecutor;
pub use secrecy::ExposeSecret as _;
pub use serde_json::{Value, json};
pub use sqlx::PgPool;
pub use sqlx::postgres::PgConnectOptions;
pub use strata_db::{Pool, PoolSettings, UserId, tokens};
pub use strata_test_support::runner::{eventually, url_of};
pub use strata_test_support::{APP_ROLE, BoxError, PrivateCluster, TestResult, login_role_options};
pub use tokio::sync::oneshot;
pub use tokio::task::JoinHandle;
pub use tracker_service::App;

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn id(&self) -> String {
        self.json["id"].as_str().unwrap_or_default().to_owned()
    }
}

/// A running service and a client for it.
pub struct Service {
    pub base: String,
    pub http: HyperClient<HttpConnector, Full<Bytes>>,
    pub stop: Option<oneshot::Sender<()>>,
    pub served: Option<JoinHandle<std::io::Result<()>>>,
    pub pool: Pool,
    /// An API token per user id, issued on first use.
    pub tokens: Mutex<HashMap<String, String>>,
}

impl Service {
    pub async fn start(pool: Pool) -> Result<Self, BoxError> {
        Self::start_with(pool, &strata_config::Config::default()).await
    }

    /// The service on the test's database (migrated, the application's login role), with
    /// `[http]` and `[auth]` of `config`.
    pub async fn on(admin: &PgPool, config: &strata_config::Config) -> Result<Self, BoxError> {
        let pool = service_pool(admin, &url_of(admin).await, PoolSettings::default()).await?;
        Self::start_with(pool, config).await
    }

    /// The service with `[http]` and `[auth]` of `config`.
    pub async fn start_with(pool: Pool, config: &strata_config::Config) -> Result<Self, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let app = App::new(pool.clone(), config)?;
        let served = tokio::spawn(tracker_service::serve(listener, app, shutdown));
        let http = HyperClient::builder(TokioExecutor::new()).build_http();
        let tokens = Mutex::new(HashMap::new());
        Ok(Self { base, http, stop: Some(stop), served: Some(served), pool, tokens })
    }

    /// The bearer token of a user (issued through the data layer on first use, as
    /// `tracker-service issue-token` does); anything that is not a user id is sent as is.
    pub async fn token_for(&self, caller: &str) -> Result<String, BoxError> {
        let Ok(user) = caller.parse::<uuid::Uuid>() else { return Ok(caller.to_owned()) };
        if let Some(token) = self.tokens.lock().map_err(|_| "poisoned")?.get(caller) {
            return Ok(token.clone());
        }
        let mut conn = self.pool.acquire().await?;
        let new = tokens::NewApiToken {
            user: UserId::from_uuid(user),
            name: "test",
            expires_at: time::OffsetDateTime::now_utc() + time::Duration::HOUR,
        };
        let token = tokens::issue(&mut conn, &new).await?.secret.expose_secret().to_owned();
        self.tokens.lock().map_err(|_| "poisoned")?.insert(caller.to_owned(), token.clone());
        Ok(token)
    }

    /// Sends a request as `caller` (if any), with `If-Match: "<version>"` (if any).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        caller: Option<&str>,
        if_match: Option<i64>,
        body: Option<Value>,
    ) -> Result<Reply, BoxError> {
        let mut headers = Vec::new();
        if let Some(caller) = caller {
            let token = self.token_for(caller).await?;
            headers.push((header::AUTHORIZATION.as_str().to_owned(), format!("Bearer {token}")));
        }
        if let Some(version) = if_match {
            headers.push((header::IF_MATCH.as_str().to_owned(), format!("\"{version}\"")));
        }
        let headers: Vec<(&str, &str)> =
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.send(method, path, &headers, body.map(|b| b.to_string())).await
    }

    /// Signs a user up (`POST /users`, no caller).
    pub async fn sign_up(&self, email: &str, display_name: &str) -> Result<Reply, BoxError> {
        let body = json!({ "email": email, "display_name": display_name });
        self.call(Method::POST, "/users", None, None, Some(body)).await
    }

    /// Sends a request with exactly these headers (a JSON body gets its content type).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Reply, BoxError> {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(text) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(text))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.http.request(request.body(body)?).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, headers, text, json })
    }

    pub async fn get(&self, path: &str, caller: &str) -> Result<Reply, BoxError> {
        self.call(Method::GET, path, Some(caller), None, None).await
    }

    /// GETs `path` as `caller` until it answers 200; fails naming `what` with the last reply
    /// when 10 s pass first (a server coming back after a restart).
    pub async fn until_ok(&self, path: &str, caller: &str, what: &str) -> Result<(), BoxError> {
        let last = std::cell::RefCell::new(String::new());
        let ok = strata_test_support::runner::until(Duration::from_secs(10), || async {
            let reply = self.get(path, caller).await?;
            last.replace(reply.text);
            Ok::<_, BoxError>(reply.status == StatusCode::OK)
        })
        .await?;
        if ok {
            Ok(())
        } else {
            Err(format!("{what}: not 200 within 10 s: {}", last.into_inner()).into())
        }
    }

    pub async fn post(&self, path: &str, caller: &str, body: Value) -> Result<Reply, BoxError> {
        self.call(Method::POST, path, Some(caller), None, Some(body)).await
    }

    /// Asks for a graceful stop and waits for the server to end.
    pub async fn shut_down(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.served.take() {
            Some(served) => served.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Migrates the test's database (`url`, the superuser's, as a deploy does) with strata-migrate
/// and returns the service's pool on it, as the application's login role.
pub async fn service_pool(
    admin: &PgPool,
    url: &str,
    settings: PoolSettings,
) -> Result<Pool, BoxError> {
    let config =
        strata_config::Loader::new(std::env::temp_dir(), [("DATABASE_URL", url)]).load()?;
    strata_migrate::run(&config, &strata_db::MIGRATOR).await?;
    let options: PgConnectOptions = login_role_options(admin, APP_ROLE).await?;
    Ok(Pool::new(options, settings)?)
}

/// A user, an organization it owns, a project and a task: their ids.
pub struct World {
    pub owner: String,
    pub org: String,
    pub project: String,
    pub task: String,
}

pub async fn world(service: &Service, slug: &str) -> Result<World, BoxError> {
    let user = service.sign_up(&format!("owner@{slug}.example"), "Owner").await?;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.text);
    let owner = user.id();
    let org =
        service.post("/organizations", &owner, json!({ "slug": slug, "name": "Org" })).await?;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    let org = org.id();
    let project = service
        .post(
            &format!("/organizations/{org}/projects"),
            &owner,
            json!({ "key": "OPS", "name": "Operations" }),
        )
        .await?;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    let project = project.id();
    let task = service
        .post(
            &format!("/organizations/{org}/projects/{project}/tasks"),
            &owner,
            json!({ "title": format!("the {slug} secret plan") }),
        )
        .await?;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.text);
    assert_eq!(task.headers[header::ETAG], "\"1\"");
    Ok(World { owner, org, project, task: task.id() })
}

/// A problem body: the content type, the status inside, and no trace of SQL.
pub fn assert_problem(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/problem+json", "{}", reply.text);
    assert_eq!(reply.json["status"], status.as_u16(), "{}", reply.text);
    let lower = reply.text.to_lowercase();
    for leak in ["select ", "insert ", "sqlstate", "constraint ", "postgres://"] {
        assert!(!lower.contains(leak), "{leak:?} in {}", reply.text);
    }
}
