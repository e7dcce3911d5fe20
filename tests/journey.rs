//! The journey a team makes on day one, end to end, with the real binaries: a fresh database;
//! `strata-migrate up` as the schema's owner; `tracker-service` serving over HTTP as a login
//! role without superuser or BYPASSRLS; a user, an organization, a project and a task made over
//! HTTP; then the same task read through the data layer, its audit event and its outbox event,
//! and the schema compared with the committed snapshot.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use strata_db::{
    OrganizationId, Pool, PoolSettings, TaskId, TenantTx, UserId, audit, outbox, tasks,
};
use strata_e2e::{BoxError, FreshDatabase, http, run_binary};
use strata_test_support::runner::until;
use strata_test_support::{APP_ROLE, RELAY_ROLE, login_role_options, login_role_url};

/// A free port on 127.0.0.1 for the service.
fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The service's process, stopped (SIGTERM, then reaped) when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-s", "TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_migrated_served_and_read_back() -> Result<(), BoxError> {
    let db = FreshDatabase::create("strata_e2e_journey").await?;

    // The runner's binary, as the schema's owner.
    let up = run_binary(
        "strata-migrate",
        &["--database-url", db.owner_url(), "--progress", "never", "up"],
        &[],
    )?;
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    let status = run_binary(
        "strata-migrate",
        &["--database-url", db.owner_url(), "--format", "json", "status"],
        &[],
    )?;
    let lines: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    let states: Vec<&str> = lines
        .as_array()
        .ok_or("status is a list")?
        .iter()
        .filter_map(|l| l["state"].as_str())
        .collect();
    assert!(!states.is_empty() && states.iter().all(|s| *s == "applied"), "{states:?}");

    // The service's binary, as the application's login role; it runs the (no-op) migrations
    // at start-up as the owner.
    let service_url = login_role_url(&db.admin, APP_ROLE).await?;
    let address = format!("127.0.0.1:{}", free_port()?);
    let child = strata_e2e::command(
        "tracker-service",
        &[],
        &[
            ("DATABASE_URL", service_url.as_str()),
            ("STRATA_MIGRATIONS__URL", db.owner_url()),
            ("STRATA_HTTP__LISTEN", address.as_str()),
            ("RUST_LOG", "warn"),
        ],
    )?
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()?;
    let served = Served(child);
    let ready = until(Duration::from_secs(30), || async {
        let reply = http(&address, "GET", "/readyz", None, None);
        Ok::<_, BoxError>(reply.is_ok_and(|reply| reply.status == 200))
    });
    if !ready.await? {
        return Err("the service never became ready".into());
    }

    // Over HTTP, as a client would.
    let user = http(
        &address,
        "POST",
        "/users",
        None,
        Some(&json!({"email": "ada@example.com", "display_name": "Ada"})),
    )?;
    assert_eq!(user.status, 201, "{}", user.text);
    let user_id = user.json["id"].as_str().ok_or("a user id")?.to_owned();
    // The first token, as an operator issues it; the header alone is refused.
    let refused = http(&address, "GET", &format!("/users/{user_id}"), None, None)?;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let issued = run_binary(
        "tracker-service",
        &["issue-token", "--user", &user_id, "--name", "journey", "--expires-in", "1h"],
        &[("DATABASE_URL", service_url.as_str()), ("RUST_LOG", "warn")],
    )?;
    assert!(issued.status.success(), "issue-token: {}", String::from_utf8_lossy(&issued.stderr));
    let token = String::from_utf8(issued.stdout)?.trim().to_owned();
    assert!(token.starts_with("strata_"), "the token alone on stdout");
    let me = http(&address, "GET", &format!("/users/{user_id}"), Some(&token), None)?;
    assert_eq!(me.status, 200, "{}", me.text);
    let org = http(
        &address,
        "POST",
        "/organizations",
        Some(&token),
        Some(&json!({"slug": "acme", "name": "Acme"})),
    )?;
    assert_eq!(org.status, 201, "{}", org.text);
    let org_id = org.json["id"].as_str().ok_or("an organization id")?.to_owned();
    let project = http(
        &address,
        "POST",
        &format!("/organizations/{org_id}/projects"),
        Some(&token),
        Some(&json!({"key": "OPS", "name": "Operations"})),
    )?;
    assert_eq!(project.status, 201, "{}", project.text);
    let project_id = project.json["id"].as_str().ok_or("a project id")?.to_owned();
    let task = http(
        &address,
        "POST",
        &format!("/organizations/{org_id}/projects/{project_id}/tasks"),
        Some(&token),
        Some(&json!({"title": "Ship the journey"})),
    )?;
    assert_eq!(task.status, 201, "{}", task.text);
    assert_eq!(task.json["number"], 1, "{}", task.text);
    let task_id = task.json["id"].as_str().ok_or("a task id")?.to_owned();
    drop(served);

    // Through the data layer, as the same least-privilege role: the task, its audit event.
    let pool = Pool::new(login_role_options(&db.admin, APP_ROLE).await?, PoolSettings::default())?;
    let mut conn = pool.acquire().await?;
    let (org, user, task) = (
        OrganizationId::from_uuid(org_id.parse()?),
        UserId::from_uuid(user_id.parse()?),
        TaskId::from_uuid(task_id.parse()?),
    );
    let mut tx = TenantTx::begin(&mut conn, org, user).await?;
    let read = tasks::get(&mut tx, task).await?;
    assert_eq!((read.title.as_str(), read.number), ("Ship the journey", 1));
    let history = audit::history(&mut tx, audit::Audited::Task(task)).await?;
    assert_eq!(history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["create"]);
    tx.commit().await?;
    drop(conn);
    pool.close().await;

    // The outbox, as the relay's role: the task's event, once.
    let relay =
        Pool::new(login_role_options(&db.admin, RELAY_ROLE).await?, PoolSettings::default())?;
    let mut conn = relay.acquire().await?;
    let events = outbox::claim(&mut conn, 100, Duration::from_secs(30)).await?;
    let created: Vec<_> = events.iter().filter(|e| e.topic == "task.created").collect();
    assert_eq!(created.len(), 1, "{events:?}");
    assert_eq!(created[0].aggregate_id, task.into_uuid());
    drop(conn);
    relay.close().await;

    // The schema the migrations made is the committed snapshot.
    let snapshot = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.sql");
    let check = run_binary(
        "strata-migrate",
        &["--database-url", db.owner_url(), "schema", "--check", snapshot],
        &[],
    )?;
    assert!(check.status.success(), "schema: {}", String::from_utf8_lossy(&check.stdout));
    db.drop_now().await
}
