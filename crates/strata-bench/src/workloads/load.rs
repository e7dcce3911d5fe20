//! Workload 12: the real service under a real load generator. `tracker-service` (the release
//! binary, started as a process of its own) is driven by `oha` at 64 connections, a get and a
//! create, against the data layer alone at 64 callers on a pool of the same size. The
//! service's resident memory is read from `/proc` through the get run (60 s, 10 s with
//! `--quick`): it must stay flat.
//!
//! `just bench` installs `oha` at a pinned version and passes it in `OHA`; without it the
//! workload is skipped with a message.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::calls::{DirectGet, StrataCreate};
use crate::database::strata_pool;
use crate::fixture::{Fixture, issue_token};
use crate::plan::Plan;
use crate::stats::{Sample, Summary, drive};
use crate::table::Row;

/// Connections of the load generator, and callers of the data layer alone.
const CONNECTIONS: usize = 64;
/// The pool of each side.
const POOL: u32 = 16;

/// The service process; killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Service {
    /// Resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()));
        status
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

/// Runs workload 12, or says why it cannot.
pub(crate) async fn run(f: &Fixture, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let Some(oha) = std::env::var_os("OHA").or_else(|| which("oha")) else {
        eprintln!("workload 12 skipped: no oha (just bench installs it; or set OHA)");
        return Ok(Vec::new());
    };
    let binary = std::env::current_exe()?.with_file_name("tracker-service");
    if !binary.is_file() {
        eprintln!("workload 12 skipped: no {} (just bench builds it)", binary.display());
        return Ok(Vec::new());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let service = Service(
        Command::new(&binary)
            .env("DATABASE_URL", &f.url)
            .env("STRATA_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("STRATA_DATABASE__MAX_CONNECTIONS", POOL.to_string())
            .env("STRATA_LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let ready = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(ready.elapsed() < Duration::from_secs(30), "the service never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let direct_pool = strata_pool(&f.url, POOL)?;
    let token = issue_token(&direct_pool, f.scope).await?;
    let org = f.scope.organization_id();
    let get_url = format!("{base}/organizations/{org}/tasks/{}", f.ids[f.ids.len() / 2]);
    let create_url = format!("{base}/organizations/{org}/projects/{}/tasks", f.project);
    let (get_for, create_for) = if plan.quick {
        (Duration::from_secs(10), Duration::from_secs(5))
    } else {
        (Duration::from_secs(60), Duration::from_secs(10))
    };
    let bearer = format!("Authorization: Bearer {token}");

    // Warm up both paths, then the get with the memory read each second.
    oha_run(&oha, &get_url, &bearer, None, Duration::from_secs(2)).await?;
    let direct = |n: usize| -> Vec<DirectGet> {
        (0..n)
            .map(|_| DirectGet { pool: direct_pool.clone(), scope: f.scope, ids: f.ids.clone() })
            .collect()
    };
    drive(direct(CONNECTIONS), Duration::from_secs(2)).await?;
    let rss_start = service.rss_mib();
    let measuring = tokio::spawn(oha_run_owned(oha.clone(), get_url, bearer.clone(), get_for));
    let mut rss = vec![rss_start];
    while !measuring.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(service.rss_mib());
    }
    let http_get = measuring.await??;
    let mut alone = Sample::default();
    alone.absorb(drive(direct(CONNECTIONS), get_for.min(plan.round * 4)).await?);

    let body = r#"{"title":"under load"}"#;
    let http_create = oha_run(&oha, &create_url, &bearer, Some(body), create_for).await?;
    let creators = (0..CONNECTIONS)
        .map(|_| StrataCreate {
            pool: direct_pool.clone(),
            scope: f.scope,
            projects: vec![f.project],
        })
        .collect();
    let create_alone = drive(creators, create_for).await?;
    drop(service);
    direct_pool.close().await;

    let rss_end = rss.last().copied().unwrap_or_default();
    let rss_max = rss.iter().copied().fold(0.0, f64::max);
    let memory = format!(
        "service RSS {rss_start:.1} MiB at the start of the {} s get run, {rss_end:.1} MiB at \
         its end, {rss_max:.1} MiB at most",
        get_for.as_secs()
    );
    let note = format!(
        "oha {CONNECTIONS} connections, HTTP/1.1 keep-alive on loopback, Bearer API token; the \
         service's pool and the data layer's are {POOL}; {memory}"
    );
    Ok(vec![
        Row::from_summaries(
            &format!("12. get a task, tracker-service under oha, {CONNECTIONS} connections"),
            http_get,
            "the data layer alone, 64 callers",
            alone.summary(),
            "≥ 0.7×",
            note.clone(),
        ),
        Row::from_summaries(
            &format!("12. create a task, tracker-service under oha, {CONNECTIONS} connections"),
            http_create,
            "the data layer alone, 64 callers",
            create_alone.summary(),
            "-",
            note,
        ),
    ])
}

async fn oha_run_owned(
    oha: std::ffi::OsString,
    url: String,
    bearer: String,
    duration: Duration,
) -> anyhow::Result<Summary> {
    oha_run(&oha, &url, &bearer, None, duration).await
}

/// Runs oha for `duration` and reads its JSON summary: every answer must be a 2xx.
async fn oha_run(
    oha: &std::ffi::OsStr,
    url: &str,
    bearer: &str,
    body: Option<&str>,
    duration: Duration,
) -> anyhow::Result<Summary> {
    let mut command = tokio::process::Command::new(oha);
    command.args(["--no-tui", "--output-format", "json", "-c", &CONNECTIONS.to_string()]).args([
        "-z",
        &format!("{}s", duration.as_secs()),
        "-H",
        bearer,
    ]);
    if let Some(body) = body {
        command.args(["-m", "POST", "-T", "application/json", "-d", body]);
    }
    let output = command.arg(url).output().await?;
    anyhow::ensure!(
        output.status.success(),
        "oha failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let codes = report["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
    let bad: Vec<_> = codes.iter().filter(|(code, _)| !code.starts_with('2')).collect();
    anyhow::ensure!(bad.is_empty(), "oha saw answers other than 2xx: {bad:?}");
    let ops: u64 = codes.values().filter_map(serde_json::Value::as_u64).sum();
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(0.0) * 1e6;
    Ok(Summary {
        ops: usize::try_from(ops).unwrap_or(usize::MAX),
        throughput: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_us: percentile("p50"),
        p99_us: percentile("p99"),
        p999_us: percentile("p99.9"),
    })
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Option<std::ffi::OsString> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .map(Into::into)
}
