//! The service over real HTTP: bound to 127.0.0.1:0, called with hyper's client, on a real
//! PostgreSQL (a database of its own per test), connected as the application's login role
//! (neither superuser nor BYPASSRLS); the superuser only migrates and makes the role.

mod common;

use common::*;
#[sqlx::test(migrations = false)]
async fn every_error_has_its_status_and_a_problem_body(admin: PgPool) -> TestResult {
    check_that_every_error_has_its_status_and_a_problem_body(admin).await
}

/// The body of [`every_error_has_its_status_and_a_problem_body`], on any server.
async fn check_that_every_error_has_its_status_and_a_problem_body(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "acme").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);

    let ok = service.get(&task, &w.owner).await?;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["title"], "the acme secret plan");
    let created = ok.json["created_at"].as_str().unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{}",
        ok.text
    );
    assert!(ok.headers.contains_key("x-request-id"));

    let missing = format!("/organizations/{}/tasks/{}", w.org, uuid::Uuid::now_v7());
    assert_problem(&service.get(&missing, &w.owner).await?, StatusCode::NOT_FOUND);

    let stranger = service.sign_up("eve@example.com", "Eve").await?.id();
    assert_problem(&service.get(&task, &stranger).await?, StatusCode::FORBIDDEN);
    assert_problem(
        &service.call(Method::GET, &task, None, None, None).await?,
        StatusCode::UNAUTHORIZED,
    );

    let projects = format!("/organizations/{}/projects", w.org);
    let again = service.post(&projects, &w.owner, json!({ "key": "OPS", "name": "Again" })).await?;
    assert_problem(&again, StatusCode::CONFLICT);
    assert!(again.text.contains("already exists"), "{}", again.text);

    let patch = |version| {
        service.call(Method::PATCH, &task, Some(&w.owner), version, Some(json!({ "priority": 1 })))
    };
    assert_problem(&patch(None).await?, StatusCode::PRECONDITION_REQUIRED);
    assert_problem(&patch(Some(7)).await?, StatusCode::PRECONDITION_FAILED);
    let patched = patch(Some(1)).await?;
    assert_eq!((patched.status, patched.json["priority"].as_i64()), (StatusCode::OK, Some(1)));
    assert_eq!(patched.headers[header::ETAG], "\"2\"");

    let blank = service
        .call(Method::PATCH, &task, Some(&w.owner), Some(2), Some(json!({ "title": "  " })))
        .await?;
    assert_problem(&blank, StatusCode::UNPROCESSABLE_ENTITY);
    let transition = format!("{task}/transition");
    let to = |status: &str, version| {
        service.call(
            Method::POST,
            &transition,
            Some(&w.owner),
            Some(version),
            Some(json!({ "status": status })),
        )
    };
    assert_eq!(to("done", 2).await?.status, StatusCode::OK);
    let invalid = to("in_progress", 3).await?;
    assert_problem(&invalid, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.json["type"].as_str().unwrap_or_default().ends_with("invalid-transition"));
    let wrong_shape = service
        .call(
            Method::POST,
            &transition,
            Some(&w.owner),
            Some(3),
            Some(json!({ "status": "someday" })),
        )
        .await?;
    assert_problem(&wrong_shape, StatusCode::UNPROCESSABLE_ENTITY);
    let malformed = service.call(Method::POST, &projects, Some(&w.owner), None, None).await?;
    assert_problem(&malformed, StatusCode::BAD_REQUEST);
    let bad_id = service.get(&format!("/organizations/{}/tasks/7", w.org), &w.owner).await?;
    assert_problem(&bad_id, StatusCode::BAD_REQUEST);

    // Delete and restore, each with the version.
    let deleted = service.call(Method::DELETE, &task, Some(&w.owner), Some(3), None).await?;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_problem(&service.get(&task, &w.owner).await?, StatusCode::NOT_FOUND);
    let restored = service
        .call(Method::POST, &format!("{task}/restore"), Some(&w.owner), Some(4), None)
        .await?;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
    assert_eq!(service.get(&task, &w.owner).await?.status, StatusCode::OK);

    // Members, assignment and comments.
    let members = format!("/organizations/{}/members", w.org);
    let added =
        service.post(&members, &w.owner, json!({ "user_id": stranger, "role": "member" })).await?;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let assigned = service
        .call(
            Method::POST,
            &format!("{task}/assign"),
            Some(&w.owner),
            Some(5),
            Some(json!({ "assignee_id": stranger })),
        )
        .await?;
    assert_eq!(
        (assigned.status, assigned.json["assignee_id"].as_str()),
        (StatusCode::OK, Some(stranger.as_str()))
    );
    let comment =
        service.post(&format!("{task}/comments"), &stranger, json!({ "body": "on it" })).await?;
    assert_eq!(comment.status, StatusCode::CREATED, "{}", comment.text);
    let listed = service.get(&format!("{task}/comments"), &w.owner).await?;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(1), "{}", listed.text);
    let viewer = service
        .call(
            Method::PATCH,
            &format!("{members}/{stranger}"),
            Some(&w.owner),
            None,
            Some(json!({ "role": "viewer" })),
        )
        .await?;
    assert_eq!(viewer.status, StatusCode::OK, "{}", viewer.text);
    let refused =
        service.post(&format!("{task}/comments"), &stranger, json!({ "body": "again" })).await?;
    assert_problem(&refused, StatusCode::FORBIDDEN);
    assert_eq!(service.get("/healthz", &w.owner).await?.status, StatusCode::OK);
    assert_eq!(service.get("/readyz", &w.owner).await?.status, StatusCode::OK);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn two_updates_of_one_version_at_once_one_wins_one_is_stale(admin: PgPool) -> TestResult {
    check_that_two_updates_of_one_version_at_once_one_wins_one_is_stale(admin).await
}

/// The body of [`two_updates_of_one_version_at_once_one_wins_one_is_stale`], on any server.
async fn check_that_two_updates_of_one_version_at_once_one_wins_one_is_stale(
    admin: PgPool,
) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "race").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);
    for round in 0..10_i64 {
        let version = round + 1;
        let update = |title: String| {
            service.call(
                Method::PATCH,
                &task,
                Some(&w.owner),
                Some(version),
                Some(json!({ "title": title })),
            )
        };
        let (a, b) = tokio::join!(update(format!("a{round}")), update(format!("b{round}")));
        let mut statuses = [a?.status, b?.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED], "round {round}");
    }
    let last = service.get(&task, &w.owner).await?;
    assert_eq!(last.headers[header::ETAG], "\"11\"", "ten updates won, ten lost");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_create_retried_with_its_id_is_a_conflict_not_a_second_task(admin: PgPool) -> TestResult {
    check_that_a_create_retried_with_its_id_is_a_conflict_not_a_second_task(admin).await
}

/// The body of [`a_create_retried_with_its_id_is_a_conflict_not_a_second_task`], on any server.
async fn check_that_a_create_retried_with_its_id_is_a_conflict_not_a_second_task(
    admin: PgPool,
) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "retry").await?;
    let tasks = format!("/organizations/{}/projects/{}/tasks", w.org, w.project);
    let id = uuid::Uuid::now_v7();
    let body = json!({ "id": id, "title": "sent twice" });
    let first = service.post(&tasks, &w.owner, body.clone()).await?;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["id"], id.to_string());
    // The client lost the first answer and sends the same request again.
    let again = service.post(&tasks, &w.owner, body).await?;
    assert_problem(&again, StatusCode::CONFLICT);
    let stored: i64 = sqlx::query_scalar("select count(*) from tasks where id = $1")
        .bind(id)
        .fetch_one(&admin)
        .await?;
    assert_eq!(stored, 1);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn paging_through_a_thousand_tasks_sees_each_once_in_order(admin: PgPool) -> TestResult {
    check_that_paging_through_a_thousand_tasks_sees_each_once_in_order(admin).await
}

/// The body of [`paging_through_a_thousand_tasks_sees_each_once_in_order`], on any server.
async fn check_that_paging_through_a_thousand_tasks_sees_each_once_in_order(
    admin: PgPool,
) -> TestResult {
    let settings = PoolSettings { max_connections: 8, ..PoolSettings::default() };
    let service =
        Service::start(service_pool(&admin, &url_of(&admin).await, settings).await?).await?;
    let w = world(&service, "pages").await?;
    let tasks = format!("/organizations/{}/projects/{}/tasks", w.org, w.project);
    for batch in 0..(999 / 9) {
        let creates = (0..9)
            .map(|i| service.post(&tasks, &w.owner, json!({ "title": format!("t{batch}-{i}") })));
        for reply in futures_util::future::join_all(creates).await {
            assert_eq!(reply?.status, StatusCode::CREATED);
        }
    }
    let mut numbers = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &after {
            Some(cursor) => format!("{tasks}?limit=64&after={cursor}"),
            None => format!("{tasks}?limit=64"),
        };
        let page = service.get(&query, &w.owner).await?;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        pages += 1;
        numbers.extend(
            page.json["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["number"].as_i64()),
        );
        match page.json["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(numbers, (1..=1000).collect::<Vec<i64>>(), "every task once, in number order");
    assert_eq!(pages, 16, "1000 tasks at 64 a page");
    let bad = service.get(&format!("{tasks}?after=nonsense"), &w.owner).await?;
    assert_problem(&bad, StatusCode::BAD_REQUEST);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn another_tenants_task_is_not_found_and_never_shown(admin: PgPool) -> TestResult {
    check_that_another_tenants_task_is_not_found_and_never_shown(admin).await
}

/// The body of [`another_tenants_task_is_not_found_and_never_shown`], on any server.
async fn check_that_another_tenants_task_is_not_found_and_never_shown(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let acme = world(&service, "acme").await?;
    let globex = world(&service, "globex").await?;
    // Globex's owner asks, in Globex, for Acme's task: row-level security hides it.
    let path = format!("/organizations/{}/tasks/{}", globex.org, acme.task);
    let reply = service.get(&path, &globex.owner).await?;
    assert_problem(&reply, StatusCode::NOT_FOUND);
    assert!(!reply.text.contains("acme"), "{}", reply.text);
    // In Acme, where Globex's owner is no member: refused before anything is read.
    let path = format!("/organizations/{}/tasks/{}", acme.org, acme.task);
    let reply = service.get(&path, &globex.owner).await?;
    assert_problem(&reply, StatusCode::FORBIDDEN);
    assert!(!reply.text.contains("secret plan"), "{}", reply.text);
    let listed = service
        .get(
            &format!("/organizations/{}/projects/{}/tasks", globex.org, acme.project),
            &globex.owner,
        )
        .await?;
    assert_eq!(listed.json["items"], json!([]), "{}", listed.text);
    Ok(())
}

#[tokio::test]
async fn readiness_fails_while_the_database_is_stopped_and_recovers() -> TestResult {
    let cluster = PrivateCluster::start()?;
    // The runner refuses the maintenance database: a database of the application's own.
    cluster.psql("postgres", "create database app")?;
    let url = cluster.url("app");
    let admin = PgPool::connect(&url).await?;
    let settings =
        PoolSettings { acquire_timeout: Duration::from_secs(1), ..PoolSettings::default() };
    let mut service = Service::start(service_pool(&admin, &url, settings).await?).await?;
    admin.close().await;
    assert_eq!(service.get("/readyz", "-").await?.status, StatusCode::OK);

    cluster.stop()?;
    let down = service.get("/readyz", "-").await?;
    assert_problem(&down, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers[header::RETRY_AFTER], "1");
    assert_eq!(service.get("/healthz", "-").await?.status, StatusCode::OK, "the process is fine");
    let users = service.sign_up("a@b.example", "A").await?;
    assert_problem(&users, StatusCode::SERVICE_UNAVAILABLE);

    cluster.start_again()?;
    service.until_ok("/readyz", "-", "ready after the restart").await?;
    service.shut_down().await?;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_graceful_shutdown_lets_the_request_in_flight_finish(admin: PgPool) -> TestResult {
    let mut service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "drain").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);
    // Hold the task's row so that an update waits in the database.
    let mut blocker = admin.begin().await?;
    sqlx::query("select 1 from tasks where id = $1::uuid for update")
        .bind(&w.task)
        .execute(&mut *blocker)
        .await?;
    let in_flight = {
        let (http, url) = (service.http.clone(), format!("{}{task}", service.base));
        let bearer = format!("Bearer {}", service.token_for(&w.owner).await?);
        tokio::spawn(async move {
            let request = Request::builder()
                .method(Method::PATCH)
                .uri(url)
                .header(header::AUTHORIZATION, bearer)
                .header(header::IF_MATCH, "\"1\"")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(json!({ "title": "finished" }).to_string())))?;
            let response = http.request(request).await?;
            Ok::<_, BoxError>(response.status())
        })
    };
    // Wait until the update is waiting on the lock, then ask the server to stop.
    let waiting = "select exists (select from pg_locks where not granted)";
    let waited = eventually(&admin, waiting, Duration::from_secs(10)).await?;
    assert!(waited, "the update never waited");
    let stop = service.stop.take().ok_or("stopped twice")?;
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::net::TcpStream::connect(service.base.trim_start_matches("http://")).await;
    assert!(refused.is_err(), "the listener still accepts after the shutdown began");
    blocker.rollback().await?;
    assert_eq!(in_flight.await??, StatusCode::OK, "the request in flight completed");
    service.shut_down().await?;
    let title: String = sqlx::query_scalar("select title from tasks where id = $1::uuid")
        .bind(&w.task)
        .fetch_one(&admin)
        .await?;
    assert_eq!(title, "finished");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn hostile_input_gets_a_problem_never_a_500(admin: PgPool) -> TestResult {
    check_that_hostile_input_gets_a_problem_never_a_500(admin).await
}

/// The body of [`hostile_input_gets_a_problem_never_a_500`], on any server.
async fn check_that_hostile_input_gets_a_problem_never_a_500(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "acme").await?;
    let (org, project, task, owner) = (&w.org, &w.project, &w.task, w.owner.as_str());
    let tasks_path = format!("/organizations/{org}/projects/{project}/tasks");
    let words: String = (0..250_000).map(|i| format!("w{i} ")).collect();
    let long = "x".repeat(10_000);

    // Values PostgreSQL cannot store or index: 422, naming the field.
    let refused: Vec<(&str, String, Value, &str)> = vec![
        ("POST", "/users".to_owned(), json!({"email": "a\u{0}@b.c", "display_name": "A"}), "email"),
        (
            "POST",
            "/users".to_owned(),
            json!({"email": format!("{long}@b.c"), "display_name": "A"}),
            "email",
        ),
        (
            "POST",
            "/users".to_owned(),
            json!({"email": "n@b.c", "display_name": "A\u{0}"}),
            "display_name",
        ),
        ("POST", "/organizations".to_owned(), json!({"slug": "nul", "name": "N\u{0}"}), "name"),
        (
            "POST",
            format!("/organizations/{org}/projects"),
            json!({"key": "NUL", "name": "N\u{0}"}),
            "name",
        ),
        ("POST", tasks_path.clone(), json!({"title": "a\u{0}b"}), "title"),
        ("POST", tasks_path.clone(), json!({"title": words}), "title"),
        ("POST", tasks_path.clone(), json!({"title": "t", "description": "\u{0}"}), "description"),
        ("POST", tasks_path.clone(), json!({"title": "t", "labels": ["\u{0}"]}), "labels"),
        ("POST", tasks_path.clone(), json!({"title": "t", "labels": [long]}), "labels"),
        (
            "POST",
            tasks_path.clone(),
            json!({"title": "t", "metadata": {"k\u{0}": "v"}}),
            "metadata",
        ),
        (
            "POST",
            tasks_path.clone(),
            json!({"title": "t", "metadata": {"k": "v\u{0}"}}),
            "metadata",
        ),
        ("POST", tasks_path.clone(), json!({"title": "t", "due_on": "-4800-01-01"}), "due_on"),
        (
            "POST",
            format!("/organizations/{org}/tasks/{task}/comments"),
            json!({"body": "\u{0}"}),
            "body",
        ),
    ];
    for (method, path, body, field) in refused {
        let method = Method::from_bytes(method.as_bytes())?;
        let reply = service.call(method, &path, Some(owner), None, Some(body)).await?;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reply.json["detail"].as_str().is_some_and(|d| d.contains(field)),
            "{field}: {}",
            reply.text
        );
    }
    for query in ["q=a%00", "label=%00"] {
        let reply = service.get(&format!("{tasks_path}?{query}"), owner).await?;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // Query strings that do not parse: 400 problems, like every other refusal.
    for query in ["limit=-1", "limit=abc", "order=random()", "assignee=not-a-uuid", "colour=red"] {
        let reply = service.get(&format!("{tasks_path}?{query}"), owner).await?;
        assert_problem(&reply, StatusCode::BAD_REQUEST);
    }
    let reply = service
        .get(&format!("/organizations/{org}/projects?include_archived=maybe"), owner)
        .await?;
    assert_problem(&reply, StatusCode::BAD_REQUEST);

    // Unknown fields are refused by name; a PATCH of them changes nothing.
    let reply = service.post(&tasks_path, owner, json!({"title": "t", "colour": "red"})).await?;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.text.contains("colour"), "{}", reply.text);
    let task_path = format!("/organizations/{org}/tasks/{task}");
    let reply = service
        .call(Method::PATCH, &task_path, Some(owner), Some(1), Some(json!({"colour": "red"})))
        .await?;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    let reply =
        service.call(Method::PATCH, &task_path, Some(owner), Some(1), Some(json!({}))).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers[header::ETAG], "\"1\"", "an empty PATCH made a new version");

    // Unknown routes and methods, and a body over the limit: problems too.
    assert_problem(&service.get("/nowhere", owner).await?, StatusCode::NOT_FOUND);
    let reply = service.call(Method::DELETE, "/users", Some(owner), None, None).await?;
    assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED);
    let big = json!({"title": "x".repeat(3 * 1024 * 1024)});
    assert_problem(&service.post(&tasks_path, owner, big).await?, StatusCode::PAYLOAD_TOO_LARGE);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn members_projects_and_comments_page_like_tasks(admin: PgPool) -> TestResult {
    check_that_members_projects_and_comments_page_like_tasks(admin).await
}

/// The body of [`members_projects_and_comments_page_like_tasks`], on any server.
async fn check_that_members_projects_and_comments_page_like_tasks(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "acme").await?;
    let (org, owner) = (&w.org, w.owner.as_str());
    // 5 members, 5 projects, 5 comments (the world has 1 member and 1 project already).
    for i in 0..4 {
        let body = json!({"email": format!("m{i}@acme.example"), "display_name": "M"});
        let user = service.call(Method::POST, "/users", None, None, Some(body)).await?;
        let member = json!({"user_id": user.id(), "role": "member"});
        let added = service.post(&format!("/organizations/{org}/members"), owner, member).await?;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
        let project = json!({"key": format!("P{i}"), "name": "P"});
        let made = service.post(&format!("/organizations/{org}/projects"), owner, project).await?;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    }
    let comments = format!("/organizations/{org}/tasks/{}/comments", w.task);
    for i in 0..5 {
        let said = service.post(&comments, owner, json!({"body": format!("note {i}")})).await?;
        assert_eq!(said.status, StatusCode::CREATED, "{}", said.text);
    }
    for (list, key) in [
        (format!("/organizations/{org}/members"), "user_id"),
        (format!("/organizations/{org}/projects"), "key"),
        (comments.clone(), "id"),
    ] {
        // Pages of 2: 2, 2, 1, each row once, in order, and the last page says so.
        let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let path = match &after {
                Some(a) => format!("{list}?limit=2&after={a}"),
                None => format!("{list}?limit=2"),
            };
            let page = service.get(&path, owner).await?;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
            let items = page.json["items"].as_array().ok_or("items")?;
            assert!(items.len() <= 2, "{}", page.text);
            seen.extend(items.iter().map(|i| i[key].as_str().unwrap_or_default().to_owned()));
            pages += 1;
            match page.json["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!((seen.len(), pages), (5, 3), "{list}: {seen:?}");
        assert_eq!(seen, sorted, "{list}: out of order or twice");
        let too_many = service.get(&format!("{list}?limit=0"), owner).await?;
        assert_problem(&too_many, StatusCode::UNPROCESSABLE_ENTITY);
    }
    Ok(())
}

/// The same HTTP scenarios on Citus (a coordinator and two workers of the test's own): the
/// service connects to the coordinator as the application's role; each scenario gets a
/// database of its own, which the service's start migrates and so distributes.
#[tokio::test]
async fn on_citus_the_http_scenarios_hold() -> TestResult {
    let scenarios = strata_test_support::scenarios![
        check_that_every_error_has_its_status_and_a_problem_body,
        check_that_two_updates_of_one_version_at_once_one_wins_one_is_stale,
        check_that_a_create_retried_with_its_id_is_a_conflict_not_a_second_task,
        check_that_paging_through_a_thousand_tasks_sees_each_once_in_order,
        check_that_another_tenants_task_is_not_found_and_never_shown,
        check_that_hostile_input_gets_a_problem_never_a_500,
        check_that_members_projects_and_comments_page_like_tasks,
    ];
    strata_test_support::citus::each_on_citus(&scenarios, None).await
}

/// On Citus, the worker that holds a tenant's shard stops: that tenant's requests are 503
/// with `Retry-After` (the coordinator answers, the worker does not), and succeed again once
/// the worker is back.
#[tokio::test]
async fn on_citus_a_stopped_worker_is_a_503_for_its_tenants_and_recovers() -> TestResult {
    let cluster = strata_test_support::CitusCluster::start()?;
    let url = cluster.create_database("app")?;
    let admin = PgPool::connect(&url).await?;
    let settings =
        PoolSettings { acquire_timeout: Duration::from_secs(1), ..PoolSettings::default() };
    let mut service = Service::start(service_pool(&admin, &url, settings).await?).await?;
    let w = world(&service, "acme").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);
    assert_eq!(service.get(&task, &w.owner).await?.status, StatusCode::OK);
    admin.close().await;
    let worker = cluster.worker_holding("app", "tasks", &w.org)?;

    worker.stop()?;
    let down = service.get(&task, &w.owner).await?;
    assert_problem(&down, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers[header::RETRY_AFTER], "1");
    assert_eq!(service.get("/healthz", "-").await?.status, StatusCode::OK, "the process is fine");

    worker.start_again()?;
    service.until_ok(&task, &w.owner, "served after the worker came back").await?;
    service.shut_down().await?;
    Ok(())
}
