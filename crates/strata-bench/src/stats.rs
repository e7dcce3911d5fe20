//! Samples of timed operations and their summaries.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One subject's measurements for one workload.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    /// Each operation's latency.
    pub latencies: Vec<Duration>,
    /// Wall-clock time the operations ran.
    pub elapsed: Duration,
    /// Units of work per operation (rows for a listing or an import, 1 otherwise).
    pub units_per_op: f64,
}

impl Sample {
    /// Adds another round's measurements.
    pub fn absorb(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
        self.units_per_op = other.units_per_op;
    }

    /// Throughput (units per second), p50 and p99 latency.
    pub fn summary(&self) -> Summary {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let pick = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        Summary {
            ops: sorted.len(),
            throughput: sorted.len() as f64 * self.units_per_op / secs,
            p50_us: pick(0.50),
            p99_us: pick(0.99),
            p999_us: pick(0.999),
        }
    }
}

/// What the table and the JSON show for one subject.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Summary {
    /// Operations measured.
    pub ops: usize,
    /// Units per second.
    pub throughput: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile latency, microseconds: where a caller that waits behind others shows
    /// (0 in runs from before it was measured).
    #[serde(default)]
    pub p999_us: f64,
}

/// A client that repeats one operation; `call` gets the operation's index.
pub trait Worker: Send + 'static {
    /// One operation.
    fn call(&mut self, i: u64) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Runs every worker concurrently (one task each) for `duration`, recording each operation.
pub async fn drive<W: Worker>(workers: Vec<W>, duration: Duration) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for (n, mut worker) in workers.into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = n as u64 * 1_000_003;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                worker.call(i).await?;
                latencies.push(t0.elapsed());
                i += 1;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut sample = Sample { units_per_op: 1.0, ..Sample::default() };
    for handle in handles {
        sample.latencies.extend(handle.await??);
    }
    sample.elapsed = start.elapsed();
    Ok(sample)
}

/// Times `times` runs of one operation of `units` units each.
pub async fn repeat<F, Fut>(times: usize, units: f64, mut op: F) -> anyhow::Result<Sample>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut sample = Sample { units_per_op: units, ..Sample::default() };
    for i in 0..times {
        let t0 = Instant::now();
        op(i).await?;
        let took = t0.elapsed();
        sample.latencies.push(took);
        sample.elapsed += took;
    }
    Ok(sample)
}

/// The process's resident memory now, in KiB (Linux), for peak tracking.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
