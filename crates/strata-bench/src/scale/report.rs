//! A `--scale` run in the terms of the table: its rows, and the targets, each a ratio
//! measured in the run against its goal.

use serde::Serialize;

use super::curves::Scale;
use crate::table::Row;

/// The rows of a `--scale` run, so that the table and `--compare` show its figures.
pub(crate) fn rows(s: &Scale) -> Vec<Row> {
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
pub(crate) struct Target {
    /// What is compared with what.
    what: String,
    /// The ratio measured.
    measured: f64,
    /// The ratio it should be, in words.
    goal: &'static str,
    /// Whether it is.
    met: bool,
}

/// The targets of the growth curves.
pub(crate) fn targets(s: &Scale) -> Vec<Target> {
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

/// Prints `targets` as a Markdown table, nothing when there are none.
pub(crate) fn print_targets(targets: &[Target]) {
    if targets.is_empty() {
        return;
    }
    println!("\n| target | measured | goal | met |\n|---|---:|---|---|");
    for t in targets {
        println!(
            "| {} | {:.2}× | {} | {} |",
            t.what,
            t.measured,
            t.goal,
            if t.met { "yes" } else { "no" }
        );
    }
}
