//! Tasks: the happy paths, each error path (asserting the variant and that nothing was
//! written), and the concurrency guarantees.

mod support;

use std::collections::BTreeSet;

use sqlx::PgPool;
use strata_db::PageRequest;
use strata_db::tasks::{
    self, ImportTask, TaskFilter, TaskMetadata, TaskOrder, TaskPatch, TaskStatus,
};
use strata_db::{Error, Role, Scope, TaskId, audit, constraints, memberships};
use strata_test_support::{CitusCluster, TestResult};
use support::{app_pool, citus_admin, count, new_task, tenant, user};

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn create_numbers_tasks_and_records_audit_and_outbox(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let labels = vec!["infra".to_owned()];
    let metadata = TaskMetadata { estimate: Some(3), ..TaskMetadata::default() };
    let mut tx = t.scope.begin(&mut conn).await?;
    let first = tasks::create(&mut tx, &new_task(t.project.id, "First")).await?;
    let mut second = new_task(t.project.id, "Second");
    second.labels = &labels;
    second.metadata = &metadata;
    let second = tasks::create(&mut tx, &second).await?;
    assert_eq!((first.number, second.number), (1, 2));
    assert_eq!(second.metadata, metadata);
    assert_eq!(tasks::get(&mut tx, second.id).await?, second);
    assert_eq!(tasks::get_by_key(&mut tx, "OPS-2").await?, second);
    let history = audit::history(&mut tx, audit::Audited::Task(first.id)).await?;
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].action.as_str(), history[0].actor_id), ("create", t.owner.id));
    assert!(history[0].before.is_none() && history[0].after.is_some());
    tx.commit().await?;
    let topics: Vec<String> =
        sqlx::query_scalar("select topic from outbox_events where aggregate_id = $1")
            .bind(first.id)
            .fetch_all(&admin)
            .await?;
    assert_eq!(topics, ["task.created"]);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn bad_input_is_refused_and_nothing_is_written(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let stranger = user(&mut conn, "stranger@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let err = tasks::create(&mut tx, &new_task(t.project.id, " ")).await.expect_err("blank");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::TASKS_TITLE_NOT_BLANK, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    let mut task = new_task(t.project.id, "x");
    task.priority = 9;
    let err = tasks::create(&mut tx, &task).await.expect_err("priority");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::TASKS_PRIORITY_RANGE, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    let mut task = new_task(t.project.id, "x");
    task.assignee_id = Some(stranger.id);
    let err = tasks::create(&mut tx, &task).await.expect_err("non-member");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::TASKS_ASSIGNEE_FKEY, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    let err = tasks::create(&mut tx, &new_task(strata_db::ProjectId::new(), "x"))
        .await
        .expect_err("no project");
    assert!(matches!(err, Error::NotFound { entity: "project" }), "{err:?}");
    let err = tasks::get_by_key(&mut tx, "OPS").await.expect_err("bad key");
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    tx.commit().await?;

    assert_eq!(count(&admin, "tasks").await?, 0);
    assert_eq!(count(&admin, "outbox_events").await?, 0);
    let next: i32 =
        sqlx::query_scalar("select next_task_number from projects").fetch_one(&admin).await?;
    assert_eq!(next, 1, "refused creations used no number");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn archived_projects_take_no_tasks(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    strata_db::projects::set_archived(&mut tx, t.project.id, true).await?;
    let err = tasks::create(&mut tx, &new_task(t.project.id, "x")).await.expect_err("archived");
    assert!(matches!(err, Error::BadInput { message: "the project is archived" }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn archived_projects_take_no_imports(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    strata_db::projects::set_archived(&mut tx, t.project.id, true).await?;
    let rows = [ImportTask { title: "x".to_owned(), ..ImportTask::default() }];
    let err = tasks::import(&mut tx, t.project.id, rows).await.expect_err("archived");
    assert!(matches!(err, Error::BadInput { message: "the project is archived" }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_failed_import_leaves_nothing_and_the_callers_transaction_usable(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let first = tasks::create(&mut tx, &new_task(t.project.id, "before")).await?;
    // The blank title is in the third chunk: two chunks were inserted before it failed.
    let rows = (0..5_000).map(|i| ImportTask {
        title: if i == 4_500 { " ".to_owned() } else { format!("imported {i}") },
        ..ImportTask::default()
    });
    let err = tasks::import(&mut tx, t.project.id, rows).await.expect_err("blank title");
    assert!(matches!(err, Error::Invalid { constraint: "tasks_title_not_blank", .. }), "{err:?}");
    let after = tasks::create(&mut tx, &new_task(t.project.id, "after")).await?;
    tx.commit().await?;
    assert_eq!((first.number, after.number), (1, 2), "the import used no numbers");
    let (count, audits): (i64, i64) = sqlx::query_as(
        "select (select count(*) from tasks),
                (select count(*) from audit_events where action = 'import')",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!((count, audits), (2, 0), "no row of the import remains");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn an_import_past_the_largest_task_number_is_refused_before_it_writes(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    sqlx::query("update projects set next_task_number = 2147483646").execute(&admin).await?;
    let rows =
        (0..2).map(|i| ImportTask { title: format!("imported {i}"), ..ImportTask::default() });
    let mut tx = t.scope.begin(&mut conn).await?;
    let err = tasks::import(&mut tx, t.project.id, rows).await.expect_err("overflow");
    assert!(
        matches!(err, Error::BadInput { message: "the project's task numbers would overflow" }),
        "{err:?}"
    );
    tx.commit().await?;
    let count: i64 = sqlx::query_scalar("select count(*) from tasks").fetch_one(&admin).await?;
    assert_eq!(count, 0);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn an_import_in_its_own_transaction_is_atomic_and_advances_the_counter(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    // Each import alone in its tenant transaction, committed after it.
    let rows =
        (0..3).map(|i| ImportTask { title: format!("imported {i}"), ..ImportTask::default() });
    let mut tx = t.scope.begin(&mut conn).await?;
    let report = tasks::import(&mut tx, t.project.id, rows).await?;
    tx.commit().await?;
    assert_eq!((report.first_number, report.last_number), (Some(1), Some(3)));
    let bad =
        [ImportTask { title: "fine".to_owned(), ..ImportTask::default() }, ImportTask::default()];
    let mut tx = t.scope.begin(&mut conn).await?;
    tasks::import(&mut tx, t.project.id, bad).await.expect_err("blank title");
    tx.commit().await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let next = tasks::create(&mut tx, &new_task(t.project.id, "next")).await?;
    tx.commit().await?;
    assert_eq!(next.number, 4, "the counter moved past the import, and not past the failed one");
    let count: i64 = sqlx::query_scalar("select count(*) from tasks").fetch_one(&admin).await?;
    assert_eq!(count, 4);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn concurrent_creators_get_contiguous_numbers(admin: PgPool) -> TestResult {
    contiguous_numbers(&admin, 100).await
}

/// Eight creators at once in one project, `each` tasks each: the numbers are 1 to 8 × `each`,
/// no gaps, no duplicates.
async fn contiguous_numbers(admin: &PgPool, each: i32) -> TestResult {
    let app = app_pool(admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    drop(conn);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let pool = app.clone();
        let (scope, project) = (t.scope, t.project.id);
        workers.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            let mut conn = pool.acquire().await?;
            for i in 0..each {
                let title = format!("worker {worker} task {i}");
                let mut tx = scope.begin(&mut conn).await?;
                numbers.push(tasks::create(&mut tx, &new_task(project, &title)).await?.number);
                tx.commit().await?;
            }
            Ok::<_, Error>(numbers)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=8 * each).collect::<Vec<i32>>(), "no gaps, no duplicates");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn concurrent_updates_of_one_version_let_exactly_one_win(admin: PgPool) -> TestResult {
    one_winner_of_eight_updates(&admin).await
}

/// Eight writers update one task from the same version at once: one wins, seven are told
/// their version is stale, and the audit log shows one change.
async fn one_winner_of_eight_updates(admin: &PgPool) -> TestResult {
    let app = app_pool(admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Contested")).await?;
    tx.commit().await?;
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (pool, scope, id, version) = (app.clone(), t.scope, task.id, task.version);
        writers.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let mut tx = scope.begin(&mut conn).await?;
            let patch =
                TaskPatch { title: Some(format!("by writer {writer}")), ..TaskPatch::default() };
            let result = tasks::update(&mut tx, id, version, &patch).await;
            tx.commit().await?;
            Ok::<_, Error>(result)
        }));
    }
    let (mut wins, mut stale) = (0, 0);
    for writer in writers {
        match writer.await?? {
            Ok(updated) => {
                wins += 1;
                assert_eq!(updated.version, task.version + 1);
            }
            Err(Error::Stale { expected, actual }) => {
                stale += 1;
                assert_eq!((expected, actual), (task.version, task.version + 1));
            }
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!((wins, stale), (1, 7));
    let mut tx = t.scope.begin(&mut conn).await?;
    let history = audit::history(&mut tx, audit::Audited::Task(task.id)).await?;
    let updates = history.iter().filter(|e| e.action == "update").count();
    assert_eq!(updates, 1, "the audit log shows exactly one change");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn status_follows_the_transition_table(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let allowed: BTreeSet<(String, String)> =
        sqlx::query_as("select from_status::text, to_status::text from task_status_transitions")
            .fetch_all(&admin)
            .await?
            .into_iter()
            .collect();
    for from in TaskStatus::ALL {
        for to in TaskStatus::ALL {
            let in_table = allowed.contains(&(from.as_str().to_owned(), to.as_str().to_owned()));
            assert_eq!(from.can_become(to), in_table, "{from:?} -> {to:?}");
        }
    }
    let mut tx = t.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Flow")).await?;
    let task = tasks::transition(&mut tx, task.id, task.version, TaskStatus::InProgress).await?;
    let task = tasks::transition(&mut tx, task.id, task.version, TaskStatus::Done).await?;
    assert_eq!((task.status, task.version), (TaskStatus::Done, 3));
    let err = tasks::transition(&mut tx, task.id, task.version, TaskStatus::Blocked)
        .await
        .expect_err("done -> blocked");
    assert!(
        matches!(&err, Error::InvalidTransition { message } if message.contains("from done to blocked")),
        "{err:?}"
    );
    tx.rollback().await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn assign_delete_restore_and_stale_versions(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let bob = user(&mut conn, "bob@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Work")).await?;
    let task = tasks::assign(&mut tx, task.id, task.version, Some(bob.id)).await?;
    assert_eq!(task.assignee_id, Some(bob.id));
    let err = tasks::assign(&mut tx, task.id, 1, None).await.expect_err("stale");
    assert!(matches!(err, Error::Stale { expected: 1, actual: 2 }), "{err:?}");

    let deleted = tasks::delete(&mut tx, task.id, task.version).await?;
    assert!(deleted.deleted_at.is_some());
    let err = tasks::get(&mut tx, task.id).await.expect_err("deleted");
    assert!(matches!(err, Error::NotFound { entity: "task" }), "{err:?}");
    let err = tasks::delete(&mut tx, task.id, deleted.version).await.expect_err("twice");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let restored = tasks::restore(&mut tx, task.id, deleted.version).await?;
    assert!(restored.deleted_at.is_none());
    assert_eq!(tasks::get(&mut tx, task.id).await?.version, 4, "create, assign, delete, restore");
    let err =
        tasks::update(&mut tx, TaskId::new(), 1, &TaskPatch::default()).await.expect_err("absent");
    assert!(matches!(err, Error::NotFound { entity: "task" }), "{err:?}");
    tx.commit().await?;
    let topics: Vec<String> =
        sqlx::query_scalar("select topic from outbox_events where aggregate_id = $1 order by id")
            .bind(task.id)
            .fetch_all(&admin)
            .await?;
    assert_eq!(topics, ["task.created", "task.assigned", "task.deleted", "task.restored"]);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn patch_changes_only_what_it_names(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let mut new = new_task(t.project.id, "Old title");
    let due = time::macros::date!(2030 - 01 - 01);
    new.due_on = Some(due);
    let task = tasks::create(&mut tx, &new).await?;
    let patch = TaskPatch { title: Some("New title".into()), ..TaskPatch::default() };
    let patched = tasks::update(&mut tx, task.id, task.version, &patch).await?;
    assert_eq!(
        (patched.title.as_str(), patched.due_on, patched.priority),
        ("New title", Some(due), 2)
    );
    let patch = TaskPatch { due_on: Some(None), ..TaskPatch::default() };
    let cleared = tasks::update(&mut tx, task.id, patched.version, &patch).await?;
    assert_eq!((cleared.title.as_str(), cleared.due_on), ("New title", None));
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn viewers_and_strangers_are_forbidden(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let viewer = user(&mut conn, "viewer@example.com").await?;
    let stranger = user(&mut conn, "stranger@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, viewer.id, Role::Viewer).await?;
    tx.commit().await?;
    let err = Scope::resolve(&mut conn, t.org.id, stranger.id).await.expect_err("stranger");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let viewer_scope = Scope::resolve(&mut conn, t.org.id, viewer.id).await?;
    assert_eq!(viewer_scope.role(), Role::Viewer);
    let mut tx = viewer_scope.begin(&mut conn).await?;
    let err = tasks::create(&mut tx, &new_task(t.project.id, "x")).await.expect_err("viewer");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = memberships::add(&mut tx, stranger.id, Role::Owner).await.expect_err("viewer");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    tx.commit().await?;
    assert_eq!(count(&admin, "tasks").await?, 0);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn another_tenants_task_is_not_found(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let a = tenant(&mut conn, "alpha").await?;
    let b = tenant(&mut conn, "beta").await?;
    let mut tx = a.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &new_task(a.project.id, "Alpha's")).await?;
    tx.commit().await?;
    let mut tx = b.scope.begin(&mut conn).await?;
    let err = tasks::get(&mut tx, task.id).await.expect_err("other tenant");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = tasks::update(&mut tx, task.id, 1, &TaskPatch::default()).await.expect_err("x");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = tasks::create(&mut tx, &new_task(a.project.id, "into alpha")).await.expect_err("x");
    assert!(matches!(err, Error::NotFound { entity: "project" }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn list_filters_and_pages_in_both_orders(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let bug = vec!["bug".to_owned()];
    for i in 1..=30i16 {
        let title = if i % 3 == 0 { format!("database outage {i}") } else { format!("chore {i}") };
        let mut new = new_task(t.project.id, &title);
        new.priority = i % 5;
        if i % 2 == 0 {
            new.labels = &bug;
        }
        new.due_on = Some(time::macros::date!(2030 - 01 - 01) + time::Duration::days(i.into()));
        let task = tasks::create(&mut tx, &new).await?;
        if i % 4 == 0 {
            tasks::transition(&mut tx, task.id, task.version, TaskStatus::InProgress).await?;
        }
    }
    for order in [TaskOrder::Number, TaskOrder::Priority] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = tasks::list(
                &mut tx,
                t.project.id,
                &TaskFilter { order, ..TaskFilter::default() },
                PageRequest { after: cursor.as_ref(), limit: 7 },
            )
            .await?;
            seen.extend(page.items.iter().map(|t| (t.priority, t.number)));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 30, "{order:?}");
        let mut sorted = seen.clone();
        match order {
            TaskOrder::Number => sorted.sort_by_key(|&(_, n)| n),
            TaskOrder::Priority => sorted.sort(),
        }
        assert_eq!(seen, sorted, "{order:?} order kept across pages");
    }
    let filter =
        TaskFilter { label: Some("bug"), title_search: Some("outage"), ..TaskFilter::default() };
    let page = tasks::list(&mut tx, t.project.id, &filter, PageRequest::first(100)).await?;
    let numbers: Vec<i32> = page.items.iter().map(|t| t.number).collect();
    assert_eq!(numbers, [6, 12, 18, 24, 30]);
    let filter = TaskFilter { statuses: &[TaskStatus::InProgress], ..TaskFilter::default() };
    let page = tasks::list(&mut tx, t.project.id, &filter, PageRequest::first(100)).await?;
    assert_eq!(page.items.iter().map(|t| t.number).collect::<Vec<_>>(), [4, 8, 12, 16, 20, 24, 28]);
    let filter = TaskFilter {
        due_before: Some(time::macros::date!(2030 - 01 - 04)),
        ..TaskFilter::default()
    };
    let page = tasks::list(&mut tx, t.project.id, &filter, PageRequest::first(100)).await?;
    assert_eq!(page.items.iter().map(|t| t.number).collect::<Vec<_>>(), [1, 2]);

    let first =
        tasks::list(&mut tx, t.project.id, &TaskFilter::default(), PageRequest::first(5)).await?;
    let err = tasks::list(
        &mut tx,
        t.project.id,
        &TaskFilter { order: TaskOrder::Priority, ..TaskFilter::default() },
        PageRequest { after: first.next.as_ref(), limit: 5 },
    )
    .await
    .expect_err("cursor of the other order");
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    let other = strata_db::projects::create(
        &mut tx,
        &strata_db::projects::NewProject { key: "WEB", name: "Web", description: "" },
    )
    .await?;
    let err = tasks::list(
        &mut tx,
        other.id,
        &TaskFilter::default(),
        PageRequest { after: first.next.as_ref(), limit: 5 },
    )
    .await
    .expect_err("cursor of another project");
    assert!(
        matches!(err, Error::BadInput { message: "the page cursor belongs to another project" }),
        "{err:?}"
    );
    let err = tasks::list(&mut tx, t.project.id, &TaskFilter::default(), PageRequest::first(0))
        .await
        .expect_err("empty page");
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn keyset_pages_see_every_row_once_under_concurrent_inserts(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    tasks::import(
        &mut tx,
        t.project.id,
        (0..500).map(|i| ImportTask { title: format!("t{i}"), ..ImportTask::default() }),
    )
    .await?;
    tx.commit().await?;
    let (pool2, scope, project) = (app.clone(), t.scope, t.project.id);
    let inserter = tokio::spawn(async move {
        let mut conn = pool2.acquire().await?;
        for i in 0..200 {
            let title = format!("late {i}");
            let mut tx = scope.begin(&mut conn).await?;
            tasks::create(&mut tx, &new_task(project, &title)).await?;
            tx.commit().await?;
        }
        Ok::<_, Error>(())
    });
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let mut tx = t.scope.begin(&mut conn).await?;
        let page = tasks::list(
            &mut tx,
            t.project.id,
            &TaskFilter::default(),
            PageRequest { after: cursor.as_ref(), limit: 25 },
        )
        .await?;
        tx.commit().await?;
        seen.extend(page.items.iter().map(|t| t.number));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    inserter.await??;
    let unique: BTreeSet<i32> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert!((1..=500).all(|n| unique.contains(&n)), "every row present at the start seen");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn imported_rows_keep_their_fields_with_and_without_labels_and_metadata(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let metadata = TaskMetadata {
        source: Some("jira".to_owned()),
        extra: serde_json::json!({"key": "X-1"}).as_object().cloned().unwrap_or_default(),
        ..TaskMetadata::default()
    };
    let due = time::Date::from_calendar_date(2027, time::Month::January, 31)?;
    let rows = [
        ImportTask {
            title: "full".to_owned(),
            description: "with everything".to_owned(),
            priority: 1,
            assignee_id: Some(t.owner.id),
            labels: vec!["a".to_owned(), "b \"quoted\", {braced}".to_owned()],
            metadata: metadata.clone(),
            due_on: Some(due),
        },
        ImportTask { title: "bare".to_owned(), ..ImportTask::default() },
    ];
    let mut tx = t.scope.begin(&mut conn).await?;
    tasks::import(&mut tx, t.project.id, rows).await?;
    let key = |n| format!("{}-{n}", t.project.key);
    let full = tasks::get_by_key(&mut tx, &key(1)).await?;
    let bare = tasks::get_by_key(&mut tx, &key(2)).await?;
    tx.commit().await?;
    assert_eq!(
        (full.title.as_str(), full.description.as_str(), full.priority, full.assignee_id),
        ("full", "with everything", 1, Some(t.owner.id))
    );
    assert_eq!(full.labels, ["a", "b \"quoted\", {braced}"]);
    assert_eq!((full.metadata, full.due_on), (metadata, Some(due)));
    assert!(bare.labels.is_empty() && bare.due_on.is_none() && bare.assignee_id.is_none());
    assert_eq!(bare.metadata, TaskMetadata::default());
    let stored: String = sqlx::query_scalar("select metadata::text from tasks where number = 2")
        .fetch_one(&admin)
        .await?;
    assert_eq!(stored, "{}", "empty metadata is stored as an empty object, not NULL");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn bulk_import_of_100k_tasks(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    tasks::create(&mut tx, &new_task(t.project.id, "before the import")).await?;
    let rows = (0..100_000).map(|i| ImportTask {
        title: format!("imported {i}"),
        priority: (i % 5) as i16,
        labels: vec!["import".to_owned()],
        ..ImportTask::default()
    });
    let report = tasks::import(&mut tx, t.project.id, rows).await?;
    tx.commit().await?;
    assert_eq!(
        (report.count, report.first_number, report.last_number),
        (100_000, Some(2), Some(100_001))
    );
    let (n, min, max): (i64, i32, i32) =
        sqlx::query_as("select count(*), min(number), max(number) from tasks")
            .fetch_one(&admin)
            .await?;
    assert_eq!((n, min, max), (100_001, 1, 100_001), "contiguous");
    let title: String = sqlx::query_scalar("select title from tasks where number = 100001")
        .fetch_one(&admin)
        .await?;
    assert_eq!(title, "imported 99999", "numbers follow input order");
    let imports: i64 =
        sqlx::query_scalar("select count(*) from audit_events where action = 'import'")
            .fetch_one(&admin)
            .await?;
    let total: i64 = sqlx::query_scalar(
        "select sum((after->>'count')::bigint)::bigint from audit_events where action = 'import'",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!((imports, total), (50, 100_000), "one audit event per chunk of 2,000");
    let events: i64 =
        sqlx::query_scalar("select count(*) from outbox_events where topic = 'tasks.imported'")
            .fetch_one(&admin)
            .await?;
    assert_eq!(events, 50);
    Ok(())
}

/// Task numbering and the one winner among racing updates on Citus (a coordinator and two
/// workers of the test's own), where the migrations distribute the tables.
#[tokio::test]
async fn on_citus_numbers_stay_contiguous_and_one_update_wins() -> TestResult {
    let cluster = CitusCluster::start()?;
    contiguous_numbers(&citus_admin(&cluster, "numbering").await?, 25).await?;
    one_winner_of_eight_updates(&citus_admin(&cluster, "updates").await?).await
}
