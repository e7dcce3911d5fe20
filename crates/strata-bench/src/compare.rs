//! `--compare OLD.json`: each figure of a run against the same row of an earlier one, so that
//! a change can be judged against the last run (rows are matched by workload and peer).

use serde_json::Value;

/// One row's figures now and then.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The workload and the peer, as the table names them.
    pub row: String,
    /// strata's throughput now over then.
    pub throughput: f64,
    /// strata's p99 now over then (below 1 is better).
    pub p99: f64,
    /// The ratio to the peer now, and then.
    pub ratio: (f64, f64),
}

fn rows(report: &Value) -> Vec<(String, &Value)> {
    report["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let key = format!(
                "{} | {}",
                r["workload"].as_str().unwrap_or_default(),
                r["peer_name"].as_str().unwrap_or_default()
            );
            (key, r)
        })
        .collect()
}

/// The rows of `now` that `then` has too, compared; and the rows only one of them has.
pub fn compare(then: &Value, now: &Value) -> (Vec<Compared>, Vec<String>) {
    let old = rows(then);
    let mut compared = Vec::new();
    let mut unmatched = Vec::new();
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    for (key, row) in rows(now) {
        match old.iter().find(|(k, _)| *k == key) {
            Some((_, before)) => compared.push(Compared {
                throughput: number(&row["strata"]["throughput"])
                    / number(&before["strata"]["throughput"]),
                p99: number(&row["strata"]["p99_us"]) / number(&before["strata"]["p99_us"]),
                ratio: (number(&row["ratio"]), number(&before["ratio"])),
                row: key,
            }),
            None => unmatched.push(format!("new: {key}")),
        }
    }
    for (key, _) in &old {
        if !compared.iter().any(|c| c.row == *key) {
            unmatched.push(format!("gone: {key}"));
        }
    }
    (compared, unmatched)
}

/// Prints the comparison as a table.
pub fn print(then_name: &str, compared: &[Compared], unmatched: &[String]) {
    println!("\nagainst {then_name}: now ÷ then (throughput above 1 and p99 below 1 are better)");
    println!("\n| workload | peer | throughput | p99 | ratio to peer now | then |");
    println!("|---|---|---:|---:|---:|---:|");
    for c in compared {
        let (workload, peer) = c.row.split_once(" | ").unwrap_or((&c.row, ""));
        println!(
            "| {workload} | {peer} | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            c.throughput, c.p99, c.ratio.0, c.ratio.1
        );
    }
    for u in unmatched {
        println!("{u}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_matched_by_workload_and_peer() {
        let row = |w: &str, peer: &str, tp: f64, p99: f64, ratio: f64| {
            serde_json::json!({ "workload": w, "peer_name": peer, "ratio": ratio,
                                "strata": { "throughput": tp, "p99_us": p99 } })
        };
        let then = serde_json::json!({ "rows": [row("get", "pg", 100.0, 50.0, 0.8), row("old", "pg", 1.0, 1.0, 1.0)] });
        let now = serde_json::json!({ "rows": [row("get", "pg", 150.0, 25.0, 0.9), row("new", "pg", 1.0, 1.0, 1.0)] });
        let (compared, unmatched) = compare(&then, &now);
        assert_eq!(compared.len(), 1);
        assert!((compared[0].throughput - 1.5).abs() < 1e-9);
        assert!((compared[0].p99 - 0.5).abs() < 1e-9);
        assert_eq!(compared[0].ratio, (0.9, 0.8));
        assert_eq!(unmatched, ["new: new | pg", "gone: old | pg"]);
    }
}
