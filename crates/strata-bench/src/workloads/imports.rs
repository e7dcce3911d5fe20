//! Workload 3: a bulk import through the data layer (`tasks::import`) against tokio-postgres's
//! binary `COPY`, with the peak growth of resident memory while the data layer imports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strata_db::projects::{self, NewProject};
use strata_db::tasks::{self, ImportTask};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::database::strata_pool;
use crate::fixture::Fixture;
use crate::peer::peer_client;
use crate::plan::Plan;
use crate::stats::{Sample, repeat, rss_kib};
use crate::table::Row;

/// Runs workload 3.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let pool = strata_pool(&f.url, 1)?;
    let client = peer_client(&f.url).await?;
    let sizes: &[usize] = if plan.quick { &[100_000] } else { &[100_000, 1_000_000] };
    let mut rows = Vec::new();
    let mut project_number = 0;
    for &n in sizes {
        let (mut s, mut p) = (Sample::default(), Sample::default());
        let mut peak_kib = 0u64;
        let rounds = if plan.quick { 1 } else { 2 };
        for _ in 0..rounds {
            project_number += 1;
            let key = format!("I{project_number}");
            let mut conn = pool.acquire().await?;
            let mut tx = f.scope.begin(&mut conn).await?;
            let project = projects::create(
                &mut tx,
                &NewProject { key: &key, name: "Import", description: "" },
            )
            .await?;
            tx.commit().await?;
            let watch = MemoryWatch::start();
            let started = std::time::Instant::now();
            let mut tx = f.scope.begin(&mut conn).await?;
            let input = (0..n).map(|i| ImportTask {
                title: format!("imported task {i}"),
                priority: (i % 5) as i16,
                ..ImportTask::default()
            });
            let report = tasks::import(&mut tx, project.id, input).await?;
            tx.commit().await?;
            let took = started.elapsed();
            anyhow::ensure!(report.count == n as u64, "imported {}", report.count);
            s.absorb(Sample { latencies: vec![took], elapsed: took, units_per_op: n as f64 });
            peak_kib = peak_kib.max(watch.stop());
            p.absorb(repeat(1, n as f64, |_| peer_copy(&client, f, n)).await?);
        }
        rows.push(Row::new(
            &format!("3. bulk import {n} tasks"),
            &s,
            "tokio-postgres binary COPY",
            &p,
            "≥ 0.8×, flat memory",
            format!("rows/s; peak RSS growth {:.1} MiB", peak_kib as f64 / 1024.0),
        ));
    }
    Ok(rows)
}

/// The peer's import: a project, then `n` tasks by binary `COPY`.
async fn peer_copy(client: &Client, f: &Fixture, n: usize) -> anyhow::Result<()> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let project = Uuid::now_v7();
    let key = format!("P{}", &project.simple().to_string()[24..]).to_uppercase();
    let key: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).take(10).collect();
    client
        .execute(
            "insert into projects (id, organization_id, key, name) values ($1, $2, $3, 'peer')",
            &[&project, &f.scope.organization_id().into_uuid(), &key],
        )
        .await?;
    let sink = client
        .copy_in("copy tasks (id, organization_id, project_id, number, title, priority) from stdin binary")
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::UUID, Type::UUID, Type::UUID, Type::INT4, Type::TEXT, Type::INT2],
    );
    tokio::pin!(writer);
    let org = f.scope.organization_id().into_uuid();
    for i in 0..n {
        let title = format!("imported task {i}");
        writer
            .as_mut()
            .write(&[&Uuid::now_v7(), &org, &project, &(i as i32 + 1), &title, &((i % 5) as i16)])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Samples resident memory in the background; `stop` returns the peak growth in KiB.
struct MemoryWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    base: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemoryWatch {
    fn start() -> Self {
        let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let base = rss_kib();
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self { stop, peak, base, thread: Some(thread) }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}
