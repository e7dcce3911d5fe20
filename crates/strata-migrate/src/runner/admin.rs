//! `baseline` and `repair`: explicit changes to the recorded history, each recorded in
//! `_strata_migration_events`, in one transaction per command.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

use crate::error::MigrateError;
use crate::runner::events::{self, Book, Event, Kind};
use crate::runner::history::History;
use crate::runner::report::{BaselineReport, RepairAction, RepairReport, millis};
use crate::tools::checksum::{self, Match};
use crate::tools::files;

/// Refuses a `baseline --to` that names no migration, before the lock is taken.
pub(crate) fn check_baseline_target(migrator: &Migrator, target: i64) -> Result<(), MigrateError> {
    if files::up_migrations(migrator).any(|m| m.version == target) {
        return Ok(());
    }
    Err(MigrateError::Invalid {
        message: format!("there is no migration with that version ({target})"),
    })
}

/// Marks every migration up to `target` that has no row applied without running it.
pub(crate) async fn baseline(
    conn: &mut PgConnection,
    migrator: &Migrator,
    history: &History,
    target: i64,
    waited: Duration,
) -> Result<BaselineReport, MigrateError> {
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning"))?;
    let mut report = BaselineReport::default();
    let applied = history.applied_by_version();
    for m in files::up_migrations(migrator).filter(|m| m.version <= target) {
        if applied.contains_key(&m.version) {
            continue;
        }
        let event = Event::of(Kind::Baseline, m)
            .lock_wait_ms(millis(waited))
            .detail(format!("baseline --to {target}: marked applied, not run"));
        events::record(&mut tx, Book::Baseline, &event).await?;
        report.marked.push(m.version);
    }
    tx.commit().await.map_err(MigrateError::db("committing the baseline"))?;
    tracing::info!(marked = report.marked.len(), target, "baseline recorded");
    Ok(report)
}

/// Accepts edited files' checksums and settles failed migrations.
pub(crate) async fn repair(
    conn: &mut PgConnection,
    migrator: &Migrator,
    history: &History,
    mark_applied: bool,
) -> Result<RepairReport, MigrateError> {
    let mut tx = conn.begin().await.map_err(MigrateError::db("beginning"))?;
    let mut report = RepairReport::default();
    let files = files::up_by_version(migrator);
    for row in &history.applied {
        let file = files.get(&row.version).copied();
        let action = if !row.success {
            settle_failed(&mut tx, row.version, mark_applied).await?
        } else if let Some(file) = file {
            let normalized = history.normalized.get(&row.version).map(Vec::as_slice);
            if checksum::compare(&row.checksum, normalized, file) == Match::Exact {
                continue;
            }
            sqlx::query("update _sqlx_migrations set checksum = $2 where version = $1")
                .bind(row.version)
                .bind(&*file.checksum)
                .execute(&mut *tx)
                .await
                .map_err(MigrateError::db("updating a checksum"))?;
            format!(
                "accepted the file's checksum {} (was {})",
                hex::encode(&*file.checksum),
                hex::encode(&row.checksum)
            )
        } else {
            continue;
        };
        let event = match file {
            Some(file) => Event::of(Kind::Repair, file),
            None => Event::about(Kind::Repair, row.version, &row.description),
        };
        events::record(&mut tx, Book::Nothing, &event.detail(action.clone())).await?;
        tracing::info!(migration.version = row.version, action = %action, "repaired");
        report.actions.push(RepairAction { version: row.version, action });
    }
    tx.commit().await.map_err(MigrateError::db("committing the repair"))?;
    Ok(report)
}

async fn settle_failed(
    conn: &mut PgConnection,
    version: i64,
    mark_applied: bool,
) -> Result<String, MigrateError> {
    let (sql, action) = if mark_applied {
        (
            "update _sqlx_migrations set success = true where version = $1",
            "marked the failed migration applied (finished by hand)",
        )
    } else {
        (
            "delete from _sqlx_migrations where version = $1",
            "removed the failed migration's record; the next up runs it from its first statement",
        )
    };
    sqlx::query(sql)
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(MigrateError::db("settling a failed migration"))?;
    sqlx::query("delete from _strata_migration_progress where version = $1")
        .bind(version)
        .execute(conn)
        .await
        .map_err(MigrateError::db("clearing progress"))?;
    Ok(action.to_owned())
}
