//! `strata-bench`: measures strata-db and strata-migrate against their peers in one run,
//! alternating subject and peer round by round so machine drift hits both, and prints a table
//! of throughput, p50/p99 latency and the ratio to the peer; the results also go, as JSON, to
//! `target/bench/<unix time>.json`.
//!
//! Usage: `strata-bench [--quick] [--only N,N…] [--compare OLD.json]` with `DATABASE_URL`
//! naming a server where it may create and drop databases `strata_bench*`; `--only 1,2` runs
//! workloads 1 and 2 alone; `--compare OLD.json` ends with each figure against that earlier
//! run, and `--compare OLD.json NEW.json` compares two runs without running.
//! `just bench` builds it in release mode and runs it.

mod compare;
mod data;
mod http;
mod pooler;
mod runner;
mod stats;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use stats::{Sample, Summary};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `--quick`: under a minute.
    pub quick: bool,
    /// Alternating rounds per workload.
    pub rounds: usize,
    /// Length of one timed round.
    pub round: Duration,
    /// Workloads to run (1–7); all when empty.
    pub only: &'static [u8],
}

impl Plan {
    /// Whether workload `n` runs.
    pub fn runs(&self, n: u8) -> bool {
        self.only.is_empty() || self.only.contains(&n)
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// strata's measurements.
    pub strata: Summary,
    /// The peer and its measurements.
    pub peer_name: String,
    /// The peer's measurements.
    pub peer: Summary,
    /// strata's throughput over the peer's (higher is better for strata).
    pub ratio: f64,
    /// What the target is, in words.
    pub target: String,
    /// Notes: round trips, memory.
    pub note: String,
}

impl Row {
    /// A row from two samples.
    pub fn new(
        workload: &str,
        strata: &Sample,
        peer_name: &str,
        peer: &Sample,
        target: &str,
        note: String,
    ) -> Self {
        let (strata, peer) = (strata.summary(), peer.summary());
        Self {
            workload: workload.to_owned(),
            ratio: strata.throughput / peer.throughput.max(f64::EPSILON),
            strata,
            peer_name: peer_name.to_owned(),
            peer,
            target: target.to_owned(),
            note,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let compare_with: Vec<&String> = args
        .iter()
        .position(|a| a == "--compare")
        .map(|i| args[i + 1..].iter().take_while(|a| !a.starts_with("--")).take(2).collect())
        .unwrap_or_default();
    let read = |path: &str| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    };
    if let [then, now] = compare_with.as_slice() {
        // Two earlier runs: compare them without running anything.
        let (compared, unmatched) = compare::compare(&read(then)?, &read(now)?);
        compare::print(then, &compared, &unmatched);
        return Ok(());
    }
    let only: Vec<u8> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let only: &'static [u8] = Vec::leak(only);
    let plan = if quick {
        Plan { quick, rounds: 2, round: Duration::from_millis(1500), only }
    } else {
        Plan { quick, rounds: 4, round: Duration::from_secs(3), only }
    };
    let server = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL to a server the bench may create databases on")
    })?;
    let mut rows = Vec::new();
    rows.extend(data::run(&server, plan).await?);
    if plan.runs(5) {
        rows.extend(runner::run(&server, plan).await?);
    }
    print_table(&rows);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir)?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let path = dir.join(format!("{stamp}.json"));
    let report = serde_json::json!({
        "quick": quick,
        "unix_time": stamp,
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "rows": rows,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nresults: {}", path.display());
    if let [then] = compare_with.as_slice() {
        let (compared, unmatched) = compare::compare(&read(then)?, &report);
        compare::print(then, &compared, &unmatched);
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| workload | strata /s | p50 µs | p99 µs | peer | peer /s | p50 µs | p99 µs | ratio | target | notes |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.2}× | {} | {} |",
            r.workload,
            r.strata.throughput,
            r.strata.p50_us,
            r.strata.p99_us,
            r.peer_name,
            r.peer.throughput,
            r.peer.p50_us,
            r.peer.p99_us,
            r.ratio,
            r.target,
            r.note
        );
    }
}
