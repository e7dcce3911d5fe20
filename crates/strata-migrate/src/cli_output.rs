//! What the command line prints: human text, or JSON with `--format json`.

use crate::{
    BaselineReport, CheckReport, DownReport, MigrationStatus, RepairReport, State, UpReport,
};

pub(crate) fn up(report: &UpReport, json: bool) {
    if json {
        return print_json(report);
    }
    warnings(&report.warnings);
    if let Some(sql) = &report.dry_run_sql {
        print!("{sql}");
        return;
    }
    let total = report.applied.len();
    for (index, m) in report.applied.iter().enumerate() {
        let retries = match m.retries {
            0 => String::new(),
            n => format!(", {n} lock-timeout retries"),
        };
        let statements = m.statements.map(|n| format!(", {n} statement(s)")).unwrap_or_default();
        println!(
            "[{}/{total}] applied {} {} ({:.1} ms{retries}{statements})",
            index + 1,
            m.version,
            m.description,
            m.duration_ms
        );
    }
    match total {
        0 => println!("nothing to apply: the database is up to date"),
        n => println!(
            "{n} migration(s) applied; the database is up to date (waited {:.0} ms for the lock)",
            report.lock_wait_ms
        ),
    }
}

pub(crate) fn down(report: &DownReport, json: bool) {
    if json {
        return print_json(report);
    }
    warnings(&report.warnings);
    if let Some(sql) = &report.dry_run_sql {
        print!("{sql}");
        return;
    }
    for m in &report.reverted {
        println!("reverted {} {} ({:.1} ms)", m.version, m.description, m.duration_ms);
    }
    println!("{} migration(s) reverted", report.reverted.len());
}

pub(crate) fn status(lines: &[MigrationStatus], json: bool) {
    if json {
        return print_json(&lines);
    }
    println!(
        "{:<16} {:<17} {:<26} {:>10}  DESCRIPTION",
        "VERSION", "STATE", "APPLIED AT", "DURATION"
    );
    for l in lines {
        let at = l
            .applied_at
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "-".to_owned());
        let duration = l.duration_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        let mut remark = l.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        if l.out_of_order {
            remark.push_str(" (out of order: older than the newest applied)");
        }
        println!(
            "{:<16} {:<17} {:<26} {:>10}  {}{remark}",
            l.version,
            l.state.as_str(),
            at,
            duration,
            l.description
        );
    }
    let count = |state| lines.iter().filter(|l| l.state == state).count();
    println!(
        "{} applied, {} pending, {} checksum changed, {} file missing, {} failed",
        count(State::Applied),
        count(State::Pending),
        count(State::ChecksumChanged),
        count(State::FileMissing),
        count(State::Failed)
    );
}

pub(crate) fn check(report: &CheckReport, json: bool) {
    if json {
        return print_json(report);
    }
    for f in &report.found {
        let fails = if report.fail_on.contains(&f.finding) { "FAIL" } else { "note" };
        let kind = serde_json::to_value(f.finding).ok();
        let kind = kind.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        println!("{fails}: {} {} is {kind}", f.version, f.description);
    }
    if report.failed {
        println!("check failed");
    } else {
        println!("check passed");
    }
}

pub(crate) fn baseline(report: &BaselineReport, json: bool) {
    if json {
        return print_json(report);
    }
    for v in &report.marked {
        println!("marked {v} applied (not run)");
    }
    println!("{} migration(s) baselined", report.marked.len());
}

pub(crate) fn repair(report: &RepairReport, json: bool) {
    if json {
        return print_json(report);
    }
    for a in &report.actions {
        println!("{}: {}", a.version, a.action);
    }
    println!("{} repair(s) recorded", report.actions.len());
}

pub(crate) fn created(paths: &[std::path::PathBuf], json: bool) {
    if json {
        return print_json(&paths);
    }
    for path in paths {
        println!("created {}", path.display());
    }
}

fn warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: could not write JSON: {e}"),
    }
}
