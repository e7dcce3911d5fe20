//! `strata-bench`: measures strata-db and strata-migrate against their peers in one run,
//! alternating subject and peer round by round so machine drift hits both, and prints a table
//! of throughput, p50/p99 latency and the ratio to the peer; the results also go, as JSON, to
//! `target/bench/<unix time>.json`.
//!
//! Usage: `strata-bench [--quick] [--scale] [--only N,N…] [--compare OLD.json]` with `DATABASE_URL`
//! naming a server where it may create and drop databases `strata_bench*`; `--only 1,2` runs
//! workloads 1 and 2 alone; `--compare OLD.json` ends with each figure against that earlier
//! run, and `--compare OLD.json NEW.json` compares two runs without running. `--scale` runs
//! the growth curves instead (see `scale.rs`), checks their targets and draws them as SVG
//! charts next to the JSON; `--charts RUN.json` draws those of an earlier run again.
//! `just bench` builds it in release mode and runs it.

mod calls;
mod charts;
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
use serde::Serialize;
use table::Row;

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
        let curves: scale::Scale = serde_json::from_value(report["scale"].clone())
            .map_err(|e| anyhow::anyhow!("{path} holds no --scale run: {e}"))?;
        let json = std::path::Path::new(path);
        let dir = json.parent().unwrap_or(std::path::Path::new("."));
        let stem = json.file_stem().and_then(|s| s.to_str()).unwrap_or("charts");
        for chart in charts::write(&curves, dir, stem, &caption(&report))? {
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
        rows.extend(scale_rows(&curves));
        scaled = Some(curves);
    } else {
        rows.extend(workloads::run(&server, plan).await?);
    }
    table::print(&rows);
    let targets = scaled.as_ref().map(targets).unwrap_or_default();
    if !targets.is_empty() {
        println!("\n| target | measured | goal | met |\n|---|---:|---|---|");
        for t in &targets {
            println!(
                "| {} | {:.2}× | {} | {} |",
                t.what,
                t.measured,
                t.goal,
                if t.met { "yes" } else { "no" }
            );
        }
    }
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
        for chart in charts::write(curves, &dir, &stamp.to_string(), &caption(&report))? {
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

/// The rows of a `--scale` run, so that the table and `--compare` show its figures.
fn scale_rows(s: &scale::Scale) -> Vec<Row> {
    let mut rows = Vec::new();
    for p in &s.sizes {
        rows.push(Row::from_summaries(
            &format!("8. get by id, {} tasks, 4 callers", p.tasks),
            p.get,
            "deadpool-postgres, same statement",
            p.get_peer,
            "p99 at the largest ≤ 1.3× p99 at the smallest",
            format!("first page of 50: p50 {:.0} µs, p99 {:.0} µs", p.list.p50_us, p.list.p99_us),
        ));
    }
    rows.push(Row::from_summaries(
        &format!("9. page of 50 at 90% depth of {} tasks", s.paged_project_tasks),
        s.deep_page,
        "the first page",
        s.first_page,
        "≥ 0.77× (within 1.3×)",
        "1 caller, keyset cursor".into(),
    ));
    rows.push(Row::from_summaries(
        &format!("10. import {} tasks into {} tasks", s.import_tasks, s.import_full_table),
        s.import_full,
        "into an empty table",
        s.import_empty,
        "≥ 0.7×",
        "rows/s, rolled back after".into(),
    ));
    for p in &s.callers {
        rows.push(Row::from_summaries(
            &format!("11. get by id, {} callers, pools of 8", p.callers),
            p.strata,
            "deadpool-postgres, same statement",
            p.deadpool,
            "≥ 0.9×",
            String::new(),
        ));
    }
    for p in &s.creates {
        let Some(peer) = p.peer else { continue };
        rows.push(Row::from_summaries(
            &format!("12. creates over {} projects, 8 callers", p.projects),
            p.creates,
            "tokio-postgres, the same transaction",
            peer,
            if p.projects == 64 { "≥ 0.9×" } else { "-" },
            "BEGIN, membership and tenant, the one statement, COMMIT on both sides".to_owned(),
        ));
    }
    rows
}

/// One target of the issue, as a ratio in one run.
#[derive(Debug, Clone, Serialize)]
struct Target {
    what: String,
    measured: f64,
    goal: &'static str,
    met: bool,
}

/// The targets of the growth curves.
fn targets(s: &scale::Scale) -> Vec<Target> {
    let mut out = Vec::new();
    let mut add = |what: String, measured: f64, goal: &'static str, met: bool| {
        out.push(Target { what, measured, goal, met });
    };
    if let (Some(small), Some(large)) = (s.sizes.first(), s.sizes.last()) {
        let r = large.get.p99_us / small.get.p99_us.max(f64::EPSILON);
        add(format!("get p99 at {} ÷ at {}", large.tasks, small.tasks), r, "≤ 1.3×", r <= 1.3);
    }
    let r = s.deep_page.p50_us / s.first_page.p50_us.max(f64::EPSILON);
    add("page at 90% depth p50 ÷ first page p50".into(), r, "≤ 1.3×", r <= 1.3);
    let worst = s
        .callers
        .iter()
        .map(|p| (p.callers, p.strata.throughput / p.deadpool.throughput.max(f64::EPSILON)))
        .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
    add(
        format!("strata ÷ deadpool, worst point ({} callers)", worst.0),
        worst.1,
        "≥ 0.9×",
        worst.1 >= 0.9,
    );
    let at = |n| s.callers.iter().find(|p| p.callers == n).map(|p| p.strata.throughput);
    if let (Some(t8), Some(t64)) = (at(8), at(64)) {
        let r = t64 / t8.max(f64::EPSILON);
        add("strata throughput at 64 callers ÷ at 8".into(), r, "≥ 0.9×", r >= 0.9);
    }
    let r = s.import_full.throughput / s.import_empty.throughput.max(f64::EPSILON);
    add(format!("import into {} tasks ÷ into empty", s.import_full_table), r, "≥ 0.7×", r >= 0.7);
    if let Some((many, peer)) = s.creates.last().and_then(|p| Some((p, p.peer?))) {
        let r = many.creates.throughput / peer.throughput.max(f64::EPSILON);
        add(
            format!(
                "strata ÷ tokio-postgres, the same create transaction over {} projects, 8 callers",
                many.projects
            ),
            r,
            "≥ 0.9×",
            r >= 0.9,
        );
    }
    out
}
