//! Workload 6: what the HTTP layer costs. A task fetched through tracker-service over HTTP on
//! loopback (hyper's client, keep-alive), against the same data path without HTTP: the tenant
//! transaction the handler opens (`TenantTx::begin`, `tasks::get`, `commit`) and the JSON it
//! writes. No target yet; the row is there to watch.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use strata_db::Scope;
use uuid::Uuid;

use crate::calls::DirectGet;
use crate::database::strata_pool;
use crate::fixture::{Fixture, issue_token};
use crate::plan::Plan;
use crate::stats::{Sample, Worker, drive};
use crate::table::Row;

/// A get of one of `ids` in turn, over HTTP, as the organization's owner.
struct HttpGet {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: Arc<str>,
    /// `Bearer <the actor's API token>`.
    bearer: Arc<str>,
    scope: Scope,
    ids: Arc<Vec<Uuid>>,
}

impl Worker for HttpGet {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = self.ids[i as usize % self.ids.len()];
        let uri =
            format!("{}/organizations/{}/tasks/{id}", self.base, self.scope.organization_id());
        let request = Request::get(uri).header("authorization", &*self.bearer).body(Empty::new())?;
        let response = self.client.request(request).await?;
        anyhow::ensure!(response.status() == StatusCode::OK, "status {}", response.status());
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(!body.is_empty());
        Ok(())
    }
}

/// Runs workload 6 at 1 and 8 callers, the service's pool and the direct one of 8 each.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let service_pool = strata_pool(&f.url, 8)?;
    let direct_pool = strata_pool(&f.url, 8)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base: Arc<str> = format!("http://{}", listener.local_addr()?).into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bearer: Arc<str> = format!("Bearer {}", issue_token(&service_pool, f.scope).await?).into();
    let app = tracker_service::App::new(service_pool, &strata_config::Config::default())?;
    let served = tokio::spawn(tracker_service::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let http = |n: usize| -> Vec<HttpGet> {
        (0..n)
            .map(|_| HttpGet {
                client: client.clone(),
                base: base.clone(),
                bearer: bearer.clone(),
                scope: f.scope,
                ids: f.ids.clone(),
            })
            .collect()
    };
    let direct = |n: usize| -> Vec<DirectGet> {
        (0..n)
            .map(|_| DirectGet { pool: direct_pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    drive(http(8), Duration::from_millis(300)).await?;
    drive(direct(8), Duration::from_millis(300)).await?;
    let (mut h1, mut d1, mut h8, mut d8) =
        (Sample::default(), Sample::default(), Sample::default(), Sample::default());
    for _ in 0..plan.rounds {
        h1.absorb(drive(http(1), plan.round).await?);
        d1.absorb(drive(direct(1), plan.round).await?);
        h8.absorb(drive(http(8), plan.round).await?);
        d8.absorb(drive(direct(8), plan.round).await?);
    }
    let _ = stop.send(());
    served.await??;
    direct_pool.close().await;
    let note = "HTTP/1.1 keep-alive on loopback, JSON body; the direct path runs the handler's \
                transaction (begin with the membership check, get, commit) and serializes the task"
        .to_owned();
    Ok(vec![
        Row::new(
            "6. get a task over HTTP (tracker-service), 1 caller",
            &h1,
            "the same transaction, no HTTP",
            &d1,
            "-",
            note.clone(),
        ),
        Row::new(
            "6. get a task over HTTP (tracker-service), 8 callers",
            &h8,
            "the same transaction, no HTTP",
            &d8,
            "-",
            note,
        ),
    ])
}
