//! A short service flow on strata-db: migrate, create an organization with its owner, a
//! project and tasks, page through them, move one, and relay the outbox.
//!
//! The flow runs on one pool and one URL for brevity. A service connects as a login role
//! without superuser or `BYPASSRLS` (a member of `strata_app`, as `just up` prints), and the
//! relay as a member of `strata_relay`: row-level security lets only the relay read the outbox
//! (a superuser URL, as here in development, bypasses it).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/strata cargo run -p strata-db --example service_flow
//! ```
//! (`just demo` does this against the database of `just db-up`.)

use std::time::Duration;

use strata_db::PageRequest;
use strata_db::organizations::{self, NewOrganization};
use strata_db::outbox;
use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask, TaskFilter, TaskOrder, TaskStatus};
use strata_db::users::{self, NewUser};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = strata_config::Config::load()?;
    strata_config::init_tracing(&config.log)?;
    strata_migrate::run(&config, &strata_db::MIGRATOR).await?;

    let pool = strata_db::Pool::from_config(&config.database)?;
    let mut conn = pool.acquire().await?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("ada-{}@example.com", &run[20..]);
    let ada = users::create(&mut conn, &NewUser { email: &email, display_name: "Ada" }).await?;
    let slug = format!("demo-{}", &run[20..]);
    let (org, scope) = organizations::create_with_owner(
        &mut conn,
        &NewOrganization { slug: &slug, name: "Demo" },
        ada.id,
    )
    .await?;
    println!("organization {} ({}) owned by {}", org.slug, org.id, ada.id);

    let mut tx = scope.begin(&mut conn).await?;
    let ops =
        projects::create(&mut tx, &NewProject { key: "OPS", name: "Operations", description: "" })
            .await?;
    let imported = tasks::import(
        &mut tx,
        ops.id,
        (1..=12).map(|i| ImportTask {
            title: format!("Runbook step {i}"),
            priority: (i % 5) as i16,
            ..ImportTask::default()
        }),
    )
    .await?;
    println!("imported {} tasks into OPS", imported.count);
    let first = tasks::get_by_key(&mut tx, "OPS-1").await?;
    let moved = tasks::transition(&mut tx, first.id, first.version, TaskStatus::InProgress).await?;
    println!("OPS-{} is now {:?} (version {})", moved.number, moved.status, moved.version);
    tx.commit().await?;

    let mut cursor = None;
    let mut page_number = 0;
    loop {
        let mut tx = scope.begin(&mut conn).await?;
        let page = tasks::list(
            &mut tx,
            ops.id,
            &TaskFilter { order: TaskOrder::Priority, ..TaskFilter::default() },
            PageRequest { after: cursor.as_ref(), limit: 5 },
        )
        .await?;
        tx.commit().await?;
        page_number += 1;
        let keys: Vec<String> =
            page.items.iter().map(|t| format!("OPS-{} (p{})", t.number, t.priority)).collect();
        println!("page {page_number}: {}", keys.join(", "));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    loop {
        let batch = outbox::claim(&mut conn, 50, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            break;
        }
        for event in &batch {
            println!("relay {} {} {}", event.topic, event.aggregate_id, event.payload);
        }
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        outbox::mark_delivered(&mut conn, &ids).await?;
    }
    Ok(())
}
