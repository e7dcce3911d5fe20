//! The table a run prints: one row per workload and peer, the same rows that go to the JSON.

use serde::Serialize;

use crate::stats::{Sample, Summary};

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
    /// A row from two summaries.
    pub fn from_summaries(
        workload: &str,
        strata: Summary,
        peer_name: &str,
        peer: Summary,
        target: &str,
        note: String,
    ) -> Self {
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

    /// A row from two samples.
    pub fn new(
        workload: &str,
        strata: &Sample,
        peer_name: &str,
        peer: &Sample,
        target: &str,
        note: String,
    ) -> Self {
        Self::from_summaries(workload, strata.summary(), peer_name, peer.summary(), target, note)
    }
}

/// Prints `rows` as a Markdown table.
pub fn print(rows: &[Row]) {
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
