//! `strata-bench`: measures strata-db and strata-migrate against their peers in one run,
//! alternating subject and peer round by round so machine drift hits both, and prints a table
//! of throughput, p50/p99 latency and the ratio to the peer; the results also go, as JSON, to
//! `target/bench/<unix time>.json`.
//!
//! Usage: `strata-bench [--quick] [--scale] [--only N,N…] [--compare OLD.json]` with `DATABASE_URL`
//! naming a server where it may create and drop databases `strata_bench*`; `--only 1,2` runs
//! workloads 1 and 2 alone; `--compare OLD.json` ends with each figure against that earlier
//! run, and `--compare OLD.json NEW.json` compares two runs without running. `--scale` runs
//! the growth curves instead (see `scale/`), checks their targets and draws them as SVG
//! charts next to the JSON; `--charts RUN.json` draws those of an earlier run again.
//! `just bench` builds it in release mode and runs it.

mod calls;
mod compare;
mod database;
mod fixture;
mod peer;
mod plan;
mod scale;
mod stats;
mod table;
mod workloads;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plan::Plan;

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
    if let Some(path) = args.iter().position(|a| a == "--charts").and_then(|i| args.get(i + 1)) {
        // Draw the charts of an earlier `--scale` run again, next to its JSON.
        let report = read(path)?;
        let curves: scale::curves::Scale = serde_json::from_value(report["scale"].clone())
            .map_err(|e| anyhow::anyhow!("{path} holds no --scale run: {e}"))?;
        let json = std::path::Path::new(path);
        let dir = json.parent().unwrap_or(std::path::Path::new("."));
        let stem = json.file_stem().and_then(|s| s.to_str()).unwrap_or("charts");
        for chart in scale::charts::write(&curves, dir, stem, &caption(&report))? {
            println!("chart: {}", chart.display());
        }
        return Ok(());
    }
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
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut scaled = None;
    if args.iter().any(|a| a == "--scale") {
        let curves = scale::run(&server, plan).await?;
        rows.extend(scale::report::rows(&curves));
        scaled = Some(curves);
    } else {
        rows.extend(workloads::run(&server, plan).await?);
    }
    table::print(&rows);
    let targets = scaled.as_ref().map(scale::report::targets).unwrap_or_default();
    scale::report::print_targets(&targets);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir)?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let path = dir.join(format!("{stamp}.json"));
    let machine = machine();
    let report = serde_json::json!({
        "quick": quick,
        "unix_time": stamp,
        "date": time::OffsetDateTime::now_utc().date().to_string(),
        "machine": machine,
        "took_s": started.elapsed().as_secs(),
        "rows": rows,
        "scale": scaled,
        "targets": targets,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("\nresults: {} ({} s)", path.display(), started.elapsed().as_secs());
    if let Some(curves) = &scaled {
        for chart in scale::charts::write(curves, &dir, &stamp.to_string(), &caption(&report))? {
            println!("chart: {}", chart.display());
        }
    }
    if let [then] = compare_with.as_slice() {
        let (compared, unmatched) = compare::compare(&read(then)?, &report);
        compare::print(then, &compared, &unmatched);
    }
    Ok(())
}

/// The caption of a run's charts: the machine and the date.
fn caption(report: &serde_json::Value) -> String {
    format!(
        "{}, {} CPUs, {}",
        report["machine"]["cpu"].as_str().unwrap_or("unknown CPU"),
        report["machine"]["cpus"],
        report["date"].as_str().unwrap_or("undated")
    )
}

/// The machine: CPUs and their model, for the JSON and the charts' captions.
fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
    });
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
    })
}
