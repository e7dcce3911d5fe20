//! Every constraint the error mapping knows, provoked through the API (or, where the API
//! cannot break it, directly), asserting the variant and that nothing was written.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgPool};
use strata_db::PageRequest;
use strata_db::projects::{self, NewProject};
use strata_db::retry::with_retries;
use strata_db::{Error, Pool, Role, UserId, comments, constraints, memberships, tasks};
use strata_test_support::TestResult;
use strata_test_support::citus::each_on_citus;
use support::{app_pool, count, new_task, tenant, user};

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn membership_conflicts_and_unknown_users(admin: PgPool) -> TestResult {
    check_that_membership_conflicts_and_unknown_users(admin).await
}

/// The body of [`membership_conflicts_and_unknown_users`], on any server.
async fn check_that_membership_conflicts_and_unknown_users(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let bob = user(&mut conn, "bob@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let err = memberships::add(&mut tx, bob.id, Role::Admin).await.expect_err("twice");
    assert!(
        matches!(err, Error::Conflict { constraint: constraints::MEMBERSHIPS_PKEY, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    let err = memberships::add(&mut tx, UserId::new(), Role::Member).await.expect_err("ghost");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::MEMBERSHIPS_USER_ID_FKEY, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let changed = memberships::change_role(&mut tx, bob.id, Role::Admin).await?;
    assert_eq!(changed.role, Role::Admin);
    let err =
        memberships::change_role(&mut tx, UserId::new(), Role::Admin).await.expect_err("absent");
    assert!(matches!(err, Error::NotFound { entity: "membership" }), "{err:?}");
    let members = memberships::list(&mut tx, PageRequest::first(100)).await?.items;
    assert_eq!(members.iter().map(|m| m.role).collect::<Vec<_>>(), [Role::Owner, Role::Admin]);
    let err =
        memberships::change_role(&mut tx, t.owner.id, Role::Admin).await.expect_err("last owner");
    assert!(
        matches!(
            err,
            Error::Invalid {
                constraint: constraints::MEMBERSHIPS_OWNER_REQUIRED,
                message: "an organization keeps at least one owner"
            }
        ),
        "{err:?}"
    );
    tx.commit().await?;
    let bob_admin = strata_db::Scope::resolve(&mut conn, t.org.id, bob.id).await?;
    assert_eq!(bob_admin.role(), Role::Admin);
    let mut tx = bob_admin.begin(&mut conn).await?;
    let err =
        memberships::change_role(&mut tx, bob.id, Role::Owner).await.expect_err("self-promotion");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let err = memberships::change_role(&mut tx, t.owner.id, Role::Viewer)
        .await
        .expect_err("demote owner");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    tx.rollback().await?;
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn project_conflicts_and_malformed_projects(admin: PgPool) -> TestResult {
    check_that_project_conflicts_and_malformed_projects(admin).await
}

/// The body of [`project_conflicts_and_malformed_projects`], on any server.
async fn check_that_project_conflicts_and_malformed_projects(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let cases: [(NewProject<'_>, &str); 3] = [
        (NewProject { key: "OPS", name: "Again", description: "" }, constraints::PROJECTS_KEY_KEY),
        (
            NewProject { key: "ops", name: "Lower", description: "" },
            constraints::PROJECTS_KEY_FORMAT,
        ),
        (
            NewProject { key: "WEB", name: "", description: "" },
            constraints::PROJECTS_NAME_NOT_BLANK,
        ),
    ];
    for (new, expected) in cases {
        let mut tx = t.scope.begin(&mut conn).await?;
        let err = projects::create(&mut tx, &new).await.expect_err(expected);
        let constraint = match err {
            Error::Conflict { constraint, .. } | Error::Invalid { constraint, .. } => constraint,
            other => panic!("{expected}: {other:?}"),
        };
        assert_eq!(constraint, expected);
        tx.rollback().await?;
    }
    assert_eq!(count(&admin, "projects").await?, 1, "only OPS");
    let mut tx = t.scope.begin(&mut conn).await?;
    assert_eq!(projects::get_by_key(&mut tx, "OPS").await?.id, t.project.id);
    assert_eq!(projects::list(&mut tx, false, PageRequest::first(100)).await?.items.len(), 1);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_duplicate_task_number_is_a_conflict(admin: PgPool) -> TestResult {
    check_that_a_duplicate_task_number_is_a_conflict(admin).await
}

/// The body of [`a_duplicate_task_number_is_a_conflict`], on any server.
async fn check_that_a_duplicate_task_number_is_a_conflict(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    tasks::create(&mut tx, &new_task(t.project.id, "one")).await?;
    tx.commit().await?;
    // The counter makes this impossible through the API; a hand-made row shows the mapping.
    sqlx::query("update projects set next_task_number = 1").execute(&admin).await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let err = tasks::create(&mut tx, &new_task(t.project.id, "dup")).await.expect_err("dup");
    assert!(
        matches!(err, Error::Conflict { constraint: constraints::TASKS_NUMBER_KEY, .. }),
        "{err:?}"
    );
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_create_sent_again_with_its_id_is_a_conflict_and_takes_no_number(
    admin: PgPool,
) -> TestResult {
    check_that_a_create_sent_again_with_its_id_is_a_conflict_and_takes_no_number(admin).await
}

/// The body of [`a_create_sent_again_with_its_id_is_a_conflict_and_takes_no_number`], on any server.
async fn check_that_a_create_sent_again_with_its_id_is_a_conflict_and_takes_no_number(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let new = new_task(t.project.id, "once");
    let mut tx = t.scope.begin(&mut conn).await?;
    let first = tasks::create(&mut tx, &new).await?;
    tx.commit().await?;
    // What a caller does after an in-doubt commit: the same ID again.
    let mut tx = t.scope.begin(&mut conn).await?;
    let err = tasks::create(&mut tx, &new).await.expect_err("the same ID twice");
    assert!(matches!(err, Error::Conflict { constraint: constraints::TASKS_PKEY, .. }), "{err:?}");
    assert_eq!(err.retry(), strata_db::Retry::No);
    tx.rollback().await?;
    assert_eq!(count(&admin, "tasks").await?, 1);
    assert_eq!(count(&admin, "audit_events where entity = 'task'").await?, 1);
    // The refused create used no number: the next one follows the first.
    let mut tx = t.scope.begin(&mut conn).await?;
    let next = tasks::create(&mut tx, &new_task(t.project.id, "next")).await?;
    assert_eq!((first.number, next.number), (1, 2));
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn comments_by_members_edited_by_their_author(admin: PgPool) -> TestResult {
    check_that_comments_by_members_edited_by_their_author(admin).await
}

/// The body of [`comments_by_members_edited_by_their_author`], on any server.
async fn check_that_comments_by_members_edited_by_their_author(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let bob = user(&mut conn, "bob@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Discuss")).await?;
    let comment = comments::create(&mut tx, task.id, "First!").await?;
    assert_eq!((comment.author_id, comment.edited_at), (t.owner.id, None));
    let err = comments::create(&mut tx, task.id, "   ").await.expect_err("blank");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::COMMENTS_BODY_NOT_BLANK, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Discuss")).await?;
    let comment = comments::create(&mut tx, task.id, "First!").await?;
    let edited = comments::update(&mut tx, comment.id, "First, edited").await?;
    assert!(edited.edited_at.is_some());
    tx.commit().await?;
    let bob_scope = strata_db::Scope::resolve(&mut conn, t.org.id, bob.id).await?;
    let mut tx = bob_scope.begin(&mut conn).await?;
    let err = comments::update(&mut tx, comment.id, "hijack").await.expect_err("not author");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    let listed = comments::list(&mut tx, task.id, PageRequest::first(100)).await?.items;
    assert_eq!(listed.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["First, edited"]);
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn serialization_failures_are_retried(admin: PgPool) -> TestResult {
    check_that_serialization_failures_are_retried(admin).await
}

/// The body of [`serialization_failures_are_retried`], on any server.
async fn check_that_serialization_failures_are_retried(admin: PgPool) -> TestResult {
    sqlx::query("create table counter (n int not null)").execute(&admin).await?;
    sqlx::query("insert into counter values (0)").execute(&admin).await?;
    sqlx::query("grant select, update on counter to strata_app").execute(&admin).await?;
    let app = app_pool(&admin).await?;
    let tries = Arc::new(AtomicU32::new(0));
    // Two serializable transactions that read then write the same row: one must fail with
    // 40001 and be retried; both increments land.
    let run = |pool: Pool, tries: Arc<AtomicU32>| async move {
        with_retries(5, |_| {
            let pool = pool.clone();
            let tries = tries.clone();
            async move {
                tries.fetch_add(1, Ordering::SeqCst);
                let mut conn = pool.acquire().await?;
                let mut tx = conn.raw_connection().begin().await?;
                sqlx::query("set transaction isolation level serializable")
                    .execute(&mut *tx)
                    .await?;
                let n: i32 =
                    sqlx::query_scalar("select n from counter").fetch_one(&mut *tx).await?;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                sqlx::query("update counter set n = $1").bind(n + 1).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, Error>(())
            }
        })
        .await
    };
    let (a, b) = tokio::join!(run(app.clone(), tries.clone()), run(app.clone(), tries.clone()));
    a?;
    b?;
    let n: i32 = sqlx::query_scalar("select n from counter").fetch_one(&admin).await?;
    assert_eq!(n, 2, "both increments applied");
    assert!(tries.load(Ordering::SeqCst) >= 3, "at least one retry happened");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn summaries_cover_the_null_side_of_the_outer_join(admin: PgPool) -> TestResult {
    check_that_summaries_cover_the_null_side_of_the_outer_join(admin).await
}

/// The body of [`summaries_cover_the_null_side_of_the_outer_join`], on any server.
async fn check_that_summaries_cover_the_null_side_of_the_outer_join(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    projects::create(&mut tx, &NewProject { key: "EMPTY", name: "No tasks", description: "" })
        .await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "open")).await?;
    let done = tasks::create(&mut tx, &new_task(t.project.id, "closed")).await?;
    tasks::transition(&mut tx, done.id, done.version, tasks::TaskStatus::Done).await?;
    let summaries = projects::summaries(&mut tx).await?;
    let shape: Vec<(&str, i64, bool)> = summaries
        .iter()
        .map(|s| (s.key.as_str(), s.open_tasks, s.last_activity.is_some()))
        .collect();
    assert_eq!(shape, [("EMPTY", 0, false), ("OPS", 1, true)]);
    assert!(summaries[1].last_activity >= Some(task.updated_at));
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn removing_members_keeps_an_owner_and_their_tasks_assigned(admin: PgPool) -> TestResult {
    check_that_removing_members_keeps_an_owner_and_their_tasks_assigned(admin).await
}

/// The body of [`removing_members_keeps_an_owner_and_their_tasks_assigned`], on any server.
async fn check_that_removing_members_keeps_an_owner_and_their_tasks_assigned(
    admin: PgPool,
) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let bob = user(&mut conn, "bob@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "bob's")).await?;
    let task = tasks::assign(&mut tx, task.id, task.version, Some(bob.id)).await?;
    let err = memberships::remove(&mut tx, bob.id).await.expect_err("assigned");
    assert!(
        matches!(
            err,
            Error::Invalid {
                constraint: constraints::TASKS_ASSIGNEE_FKEY,
                message: "reassign the member's tasks first"
            }
        ),
        "{err:?}"
    );
    let err = memberships::remove(&mut tx, t.owner.id).await.expect_err("last owner");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::MEMBERSHIPS_OWNER_REQUIRED, .. }),
        "{err:?}"
    );
    tasks::assign(&mut tx, task.id, task.version, None).await?;
    memberships::remove(&mut tx, bob.id).await?;
    let err = memberships::remove(&mut tx, bob.id).await.expect_err("gone");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let history =
        strata_db::audit::history(&mut tx, strata_db::audit::Audited::Membership(bob.id)).await?;
    assert_eq!(history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["add", "remove"]);
    tx.commit().await?;
    let err = strata_db::Scope::resolve(&mut conn, t.org.id, bob.id).await.expect_err("removed");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn projects_users_and_comments_change_and_go(admin: PgPool) -> TestResult {
    check_that_projects_users_and_comments_change_and_go(admin).await
}

/// The body of [`projects_users_and_comments_change_and_go`], on any server.
async fn check_that_projects_users_and_comments_change_and_go(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let renamed = strata_db::users::update(
        &mut conn,
        t.owner.id,
        &strata_db::users::UserPatch { display_name: Some("Owner Two") },
    )
    .await?;
    assert_eq!(renamed.display_name, "Owner Two");
    let err = strata_db::users::update(
        &mut conn,
        t.owner.id,
        &strata_db::users::UserPatch { display_name: Some(" ") },
    )
    .await
    .expect_err("blank");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::USERS_DISPLAY_NAME_NOT_BLANK, .. }),
        "{err:?}"
    );

    let bob = user(&mut conn, "bob@example.com").await?;
    let carol = user(&mut conn, "carol@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let project = projects::update(
        &mut tx,
        t.project.id,
        &projects::ProjectPatch { name: Some("Operations 2"), description: None },
    )
    .await?;
    assert_eq!((project.name.as_str(), project.description.as_str()), ("Operations 2", ""));
    let err = projects::update(
        &mut tx,
        t.project.id,
        &projects::ProjectPatch { name: Some(""), description: None },
    )
    .await
    .expect_err("blank");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::PROJECTS_NAME_NOT_BLANK, .. }),
        "{err:?}"
    );
    tx.rollback().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    memberships::add(&mut tx, carol.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "talk")).await?;
    tx.commit().await?;
    let bob_scope = strata_db::Scope::resolve(&mut conn, t.org.id, bob.id).await?;
    let carol_scope = strata_db::Scope::resolve(&mut conn, t.org.id, carol.id).await?;
    let mut tx = bob_scope.begin(&mut conn).await?;
    let first = comments::create(&mut tx, task.id, "one").await?;
    let second = comments::create(&mut tx, task.id, "two").await?;
    tx.commit().await?;
    let mut tx = carol_scope.begin(&mut conn).await?;
    let err = comments::delete(&mut tx, first.id).await.expect_err("not hers");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    tx.rollback().await?;
    let mut tx = bob_scope.begin(&mut conn).await?;
    comments::delete(&mut tx, first.id).await?;
    tx.commit().await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    comments::delete(&mut tx, second.id).await?;
    let err = comments::delete(&mut tx, second.id).await.expect_err("gone");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(comments::list(&mut tx, task.id, PageRequest::first(100)).await?.items.is_empty());
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn the_database_keeps_an_owner_whoever_writes(admin: PgPool) -> TestResult {
    check_that_the_database_keeps_an_owner_whoever_writes(admin).await
}

/// The body of [`the_database_keeps_an_owner_whoever_writes`], on any server.
async fn check_that_the_database_keeps_an_owner_whoever_writes(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    // Statements of the caller's own, past the data layer's check: the trigger refuses.
    for sql in [
        "update memberships set role = 'admin' where organization_id = $1 and user_id = $2",
        "delete from memberships where organization_id = $1 and user_id = $2",
    ] {
        let mut tx = t.scope.begin(&mut conn).await?;
        let err: Error = sqlx::query(sql)
            .bind(t.org.id)
            .bind(t.owner.id)
            .execute(&mut tx)
            .await
            .expect_err(sql)
            .into();
        assert!(
            matches!(
                err,
                Error::Invalid { constraint: constraints::MEMBERSHIPS_OWNER_REQUIRED, .. }
            ),
            "{sql}: {err:?}"
        );
        tx.rollback().await?;
    }
    let owners = count(&admin, "memberships where role = 'owner'").await?;
    assert_eq!(owners, 1, "the owner is still there");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_member_who_has_written_comments_stays_a_member(admin: PgPool) -> TestResult {
    check_that_a_member_who_has_written_comments_stays_a_member(admin).await
}

/// The body of [`a_member_who_has_written_comments_stays_a_member`], on any server.
async fn check_that_a_member_who_has_written_comments_stays_a_member(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let bob = user(&mut conn, "bob@example.com").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    memberships::add(&mut tx, bob.id, Role::Member).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "Discuss")).await?;
    tx.commit().await?;
    let mut tx = strata_db::TenantTx::begin(&mut conn, t.org.id, bob.id).await?;
    comments::create(&mut tx, task.id, "bob was here").await?;
    tx.commit().await?;

    let mut tx = t.scope.begin(&mut conn).await?;
    let err = memberships::remove(&mut tx, bob.id).await.expect_err("bob has comments");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::COMMENTS_AUTHOR_FKEY, .. }),
        "{err:?}"
    );
    tx.rollback().await?;
    assert_eq!(count(&admin, "memberships").await?, 2, "bob is still a member");
    Ok(())
}

/// `Error::InvalidValue`'s field and problem, if that is what `result` is.
fn invalid_value<T>(result: Result<T, Error>) -> Option<(&'static str, strata_db::ValueProblem)> {
    match result {
        Err(Error::InvalidValue { field, problem }) => Some((field, problem)),
        _ => None,
    }
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn values_the_database_cannot_hold_are_refused_naming_the_field(admin: PgPool) -> TestResult {
    check_that_values_the_database_cannot_hold_are_refused_naming_the_field(admin).await
}

/// The body of [`values_the_database_cannot_hold_are_refused_naming_the_field`], on any server.
async fn check_that_values_the_database_cannot_hold_are_refused_naming_the_field(
    admin: PgPool,
) -> TestResult {
    use strata_db::ValueProblem::{DateOutOfRange, Nul, TooLong};
    use strata_db::input::{LABEL_MAX, TITLE_MAX};
    use strata_db::users::{self, NewUser};
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let tasks_before = count(&admin, "tasks").await?;

    let nul_email = NewUser { email: "a\0@b.c", display_name: "A" };
    assert_eq!(invalid_value(users::create(&mut conn, &nul_email).await), Some(("email", Nul)));
    let long = format!("{}@example.com", "x".repeat(10_000));
    let long_email = NewUser { email: &long, display_name: "A" };
    let refused = invalid_value(users::create(&mut conn, &long_email).await);
    assert!(matches!(refused, Some(("email", TooLong { .. }))), "{refused:?}");

    let mut tx = t.scope.begin(&mut conn).await?;
    let nul_title = tasks::create(&mut tx, &new_task(t.project.id, "a\0b")).await;
    assert_eq!(invalid_value(nul_title), Some(("title", Nul)));
    // 1.5 MB of distinct words: more than the title's search index could hold.
    let words: String = (0..150_000).map(|i| format!("w{i} ")).collect();
    let huge = tasks::create(&mut tx, &new_task(t.project.id, &words)).await;
    assert_eq!(invalid_value(huge), Some(("title", TooLong { max: TITLE_MAX })));
    let label = "l".repeat(10_000);
    let labels = [label];
    let new = strata_db::tasks::NewTask { labels: &labels, ..new_task(t.project.id, "labelled") };
    assert_eq!(
        invalid_value(tasks::create(&mut tx, &new).await),
        Some(("labels", TooLong { max: LABEL_MAX }))
    );
    let early = time::Date::from_calendar_date(-4800, time::Month::January, 1)?;
    let new = strata_db::tasks::NewTask { due_on: Some(early), ..new_task(t.project.id, "due") };
    assert_eq!(invalid_value(tasks::create(&mut tx, &new).await), Some(("due_on", DateOutOfRange)));
    let mut metadata = strata_db::tasks::TaskMetadata::default();
    metadata.extra.insert("k\0".to_owned(), serde_json::json!("v"));
    let new = strata_db::tasks::NewTask { metadata: &metadata, ..new_task(t.project.id, "meta") };
    assert_eq!(invalid_value(tasks::create(&mut tx, &new).await), Some(("metadata", Nul)));
    let filter = strata_db::tasks::TaskFilter { title_search: Some("a\0"), ..Default::default() };
    let listed = tasks::list(&mut tx, t.project.id, &filter, PageRequest::first(10));
    assert_eq!(invalid_value(listed.await), Some(("q", Nul)));
    assert_eq!(
        invalid_value(comments::create(&mut tx, strata_db::TaskId::new(), "\0").await),
        Some(("body", Nul))
    );
    tx.rollback().await?;
    assert_eq!(count(&admin, "tasks").await?, tasks_before, "nothing written");

    // What reaches the server anyway (a service's own SQL) is mapped by its SQLSTATE.
    let refused = strata_db::ValueProblem::Refused;
    for sql in [
        "select 'a' || chr(0)",   // 22021: no NUL in text
        "select 70000::smallint", // 22003: out of range
        "select to_tsvector('simple', string_agg('w' || i, ' ')) from generate_series(1, 150000) i",
    ] {
        let error = Error::from(sqlx::query(sql).execute(&mut conn).await.err().ok_or(sql)?);
        assert_eq!(invalid_value(Err::<(), _>(error)), Some(("input", refused)), "{sql}");
    }
    // 22008: a date before PostgreSQL's first, sent as a parameter.
    let early_date = sqlx::query("select $1::date").bind(early).execute(&mut conn).await;
    let error = Error::from(early_date.err().ok_or("a date before 4713 BC")?);
    assert_eq!(invalid_value(Err::<(), _>(error)), Some(("input", refused)), "date");
    // 54000: an index entry larger than a btree page holds (9,600 characters that do not
    // compress).
    let huge_email = "insert into users (id, email, display_name) \
         select gen_random_uuid(), string_agg(md5(i::text), '') || '@e.x', 'n' \
           from generate_series(1, 300) i";
    let error =
        Error::from(sqlx::query(huge_email).execute(&mut conn).await.err().ok_or("stored")?);
    assert_eq!(invalid_value(Err::<(), _>(error)), Some(("input", refused)), "index row size");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn a_patch_that_changes_nothing_changes_nothing(admin: PgPool) -> TestResult {
    check_that_a_patch_that_changes_nothing_changes_nothing(admin).await
}

/// The body of [`a_patch_that_changes_nothing_changes_nothing`], on any server.
async fn check_that_a_patch_that_changes_nothing_changes_nothing(admin: PgPool) -> TestResult {
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let t = tenant(&mut conn, "acme").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let task = tasks::create(&mut tx, &new_task(t.project.id, "still")).await?;
    tx.commit().await?;
    let audit_before = count(&admin, "audit_events").await?;
    let mut tx = t.scope.begin(&mut conn).await?;
    let same = tasks::update(&mut tx, task.id, task.version, &tasks::TaskPatch::default()).await?;
    assert_eq!((same.version, same.updated_at), (task.version, task.updated_at));
    let stale =
        tasks::update(&mut tx, task.id, task.version + 1, &tasks::TaskPatch::default()).await;
    assert!(matches!(stale, Err(Error::Stale { .. })), "{stale:?}");
    tx.commit().await?;
    assert_eq!(count(&admin, "audit_events").await?, audit_before, "no audit event");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn api_tokens_live_expire_and_are_revoked_once(admin: PgPool) -> TestResult {
    check_that_api_tokens_live_expire_and_are_revoked_once(admin).await
}

/// The body of [`api_tokens_live_expire_and_are_revoked_once`], on any server.
async fn check_that_api_tokens_live_expire_and_are_revoked_once(admin: PgPool) -> TestResult {
    use secrecy::ExposeSecret as _;
    use strata_db::tokens::{self, NewApiToken, TokenRefusal};
    let app = app_pool(&admin).await?;
    let mut conn = app.acquire().await?;
    let ada = user(&mut conn, "ada@example.com").await?;
    let in_a_day = time::OffsetDateTime::now_utc() + time::Duration::DAY;
    let new = |name| NewApiToken { user: ada.id, name, expires_at: in_a_day };

    // Every constraint of the table, through the API; nothing written.
    let err = tokens::issue(&mut conn, &new("  ")).await.expect_err("blank");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::API_TOKENS_NAME_NOT_BLANK, .. }),
        "{err:?}"
    );
    let ghost = NewApiToken { user: UserId::new(), name: "x", expires_at: in_a_day };
    let err = tokens::issue(&mut conn, &ghost).await.expect_err("no such user");
    assert!(
        matches!(err, Error::Invalid { constraint: constraints::API_TOKENS_USER_ID_FKEY, .. }),
        "{err:?}"
    );
    let past = NewApiToken { expires_at: in_a_day - time::Duration::days(2), ..new("old") };
    let err = tokens::issue(&mut conn, &past).await.expect_err("already expired");
    assert!(
        matches!(
            err,
            Error::Invalid { constraint: constraints::API_TOKENS_EXPIRES_AFTER_CREATED, .. }
        ),
        "{err:?}"
    );
    assert_eq!(count(&admin, "api_tokens").await?, 0);

    // Issued: the secret is not stored, only its hash; it authenticates its user.
    let issued = tokens::issue(&mut conn, &new("laptop")).await?;
    let secret = issued.secret.expose_secret().to_owned();
    assert!(!format!("{issued:?}").contains(&secret[40..]), "Debug shows the secret");
    let stored: Vec<u8> =
        sqlx::query_scalar("select secret_sha256 from api_tokens").fetch_one(&admin).await?;
    assert_eq!(stored.len(), 32);
    assert_eq!(tokens::authenticate(&mut conn, &secret).await?, ada.id);
    let refusal = |e: Error| match e {
        Error::Unauthenticated(why) => Some(why),
        _ => None,
    };
    let mut forged = secret.clone();
    let flipped = if secret.ends_with('0') { "1" } else { "0" };
    forged.replace_range(secret.len() - 1.., flipped);
    let err = tokens::authenticate(&mut conn, &forged).await.expect_err("forged");
    assert_eq!(refusal(err), Some(TokenRefusal::WrongSecret));

    // Two revocations at once: both see it revoked, and the first time stays.
    let (a, b) = (app.acquire(), app.acquire());
    let (mut a, mut b) = (a.await?, b.await?);
    let (first, second) = tokio::join!(
        tokens::revoke(&mut a, ada.id, issued.token.id),
        tokens::revoke(&mut b, ada.id, issued.token.id)
    );
    let (first, second) = (first?, second?);
    assert!(first.revoked_at.is_some() && first.revoked_at == second.revoked_at);
    let err = tokens::authenticate(&mut conn, &secret).await.expect_err("revoked");
    assert_eq!(refusal(err), Some(TokenRefusal::Revoked));
    let bob = user(&mut conn, "bob@example.com").await?;
    let err = tokens::revoke(&mut conn, bob.id, issued.token.id).await.expect_err("not his");
    assert!(matches!(err, Error::NotFound { entity: "token" }), "{err:?}");

    // Expiry, and paging through a user's tokens.
    let short = tokens::issue(&mut conn, &new("short")).await?;
    // Its life moved into the past (no column in the new values: Citus refuses a stable
    // function of a column in an update of a reference table).
    sqlx::query(
        "update api_tokens set created_at = now() - interval '2 days',
                               expires_at = now() - interval '1 day'
          where id = $1",
    )
    .bind(short.token.id.into_uuid())
    .execute(&admin)
    .await?;
    let err = tokens::authenticate(&mut conn, short.secret.expose_secret()).await.expect_err("old");
    assert_eq!(refusal(err), Some(TokenRefusal::Expired));
    let page = tokens::list(&mut conn, ada.id, PageRequest::first(1)).await?;
    assert_eq!(page.items.len(), 1);
    let rest = tokens::list(&mut conn, ada.id, PageRequest { after: page.next, limit: 10 }).await?;
    assert_eq!((rest.items.len(), rest.next), (1, None));
    assert_ne!(page.items[0].id, rest.items[0].id);
    Ok(())
}

/// Every mapping above on Citus (a coordinator and two workers of the test's own), where a
/// worker's error reaches the coordinator without its constraint's name, and the shards'
/// constraints carry the shard's id in theirs. Each scenario has a database of its own.
#[tokio::test]
async fn on_citus_every_mapping_holds() -> TestResult {
    let scenarios = strata_test_support::scenarios![
        check_that_membership_conflicts_and_unknown_users,
        check_that_project_conflicts_and_malformed_projects,
        check_that_a_duplicate_task_number_is_a_conflict,
        check_that_a_create_sent_again_with_its_id_is_a_conflict_and_takes_no_number,
        check_that_comments_by_members_edited_by_their_author,
        check_that_serialization_failures_are_retried,
        check_that_summaries_cover_the_null_side_of_the_outer_join,
        check_that_removing_members_keeps_an_owner_and_their_tasks_assigned,
        check_that_projects_users_and_comments_change_and_go,
        check_that_the_database_keeps_an_owner_whoever_writes,
        check_that_a_member_who_has_written_comments_stays_a_member,
        check_that_values_the_database_cannot_hold_are_refused_naming_the_field,
        check_that_a_patch_that_changes_nothing_changes_nothing,
        check_that_api_tokens_live_expire_and_are_revoked_once,
    ];
    each_on_citus(&scenarios, Some(&strata_db::MIGRATOR)).await
}
