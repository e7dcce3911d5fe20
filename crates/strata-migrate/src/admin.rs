//! `baseline` and `repair`: explicit changes to the recorded history, each recorded in
//! `_strata_migration_events`.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

use crate::checksum::{self, Match};
use crate::events::{self, Event, Kind};
use crate::history::{self, History};
use crate::{MigrateError, Session, Settings, hex, millis};

/// What `baseline` recorded.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BaselineReport {
    /// The versions marked applied without running them.
    pub marked: Vec<i64>,
}

/// One change `repair` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairAction {
    /// The version.
    pub version: i64,
    /// What was done.
    pub action: String,
}

/// What `repair` changed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// The changes, in version order.
    pub actions: Vec<RepairAction>,
}

impl Session {
    /// Marks every migration up to `target` applied without running it (for a database
    /// created before the runner), as sqlx's `skip` does: `success = true`, the file's
    /// checksum, `execution_time = -1`; one `baseline` event each.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Usage`] when `target` is not a migration's version,
    /// [`MigrateError::LockTimeout`], [`MigrateError::Database`].
    pub async fn baseline(
        &mut self,
        migrator: &Migrator,
        target: i64,
        settings: &Settings,
    ) -> Result<BaselineReport, MigrateError> {
        if !history::up_migrations(migrator).any(|m| m.version == target) {
            return Err(MigrateError::Usage {
                message: format!("baseline --to {target}: there is no migration with that version"),
            });
        }
        self.locked(settings.lock_wait, async |session, waited| {
            events::create_tables(&mut session.conn).await?;
            let history = History::read(&mut session.conn).await?;
            let mut tx = session.conn.begin().await.map_err(MigrateError::db("beginning"))?;
            let mut report = BaselineReport::default();
            let applied = history.applied_by_version();
            for m in history::up_migrations(migrator).filter(|m| m.version <= target) {
                if applied.contains_key(&m.version) {
                    continue;
                }
                sqlx::query(
                    "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
                     values ($1, $2, true, $3, -1)",
                )
                .bind(m.version)
                .bind(&*m.description)
                .bind(&*m.checksum)
                .execute(&mut *tx)
                .await
                .map_err(MigrateError::db("recording a baseline row"))?;
                let mut event = Event::new(Kind::Baseline, m.version, &m.description);
                event.checksum = Some(&m.checksum);
                event.normalized_checksum = Some(checksum::normalized_checksum(m.sql.as_str()));
                event.lock_wait_ms = Some(millis(waited));
                event.detail = Some(format!("baseline --to {target}: marked applied, not run"));
                events::record(&mut tx, &event).await?;
                report.marked.push(m.version);
            }
            tx.commit().await.map_err(MigrateError::db("committing the baseline"))?;
            tracing::info!(marked = report.marked.len(), target, "baseline recorded");
            Ok(report)
        })
        .await
    }

    /// Accepts the current checksum of every edited applied migration, and settles every
    /// failed (partial) one: with `mark_applied` it is recorded as applied (you finished it
    /// by hand); otherwise its record is removed so the next `up` runs it from the start
    /// (you undid its partial changes). Each change is one `repair` event.
    ///
    /// # Errors
    ///
    /// [`MigrateError::LockTimeout`], [`MigrateError::Database`].
    pub async fn repair(
        &mut self,
        migrator: &Migrator,
        mark_applied: bool,
        settings: &Settings,
    ) -> Result<RepairReport, MigrateError> {
        self.locked(settings.lock_wait, async |session, _| {
            events::create_tables(&mut session.conn).await?;
            let history = History::read(&mut session.conn).await?;
            let mut tx = session.conn.begin().await.map_err(MigrateError::db("beginning"))?;
            let mut report = RepairReport::default();
            for row in &history.applied {
                let file = history::up_migrations(migrator).find(|m| m.version == row.version);
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
                        hex(&file.checksum),
                        hex(&row.checksum)
                    )
                } else {
                    continue;
                };
                let mut event = Event::new(Kind::Repair, row.version, &row.description);
                if let Some(file) = file {
                    event.checksum = Some(&file.checksum);
                    event.normalized_checksum =
                        Some(checksum::normalized_checksum(file.sql.as_str()));
                }
                event.detail = Some(action.clone());
                events::record(&mut tx, &event).await?;
                tracing::info!(migration.version = row.version, action = %action, "repaired");
                report.actions.push(RepairAction { version: row.version, action });
            }
            tx.commit().await.map_err(MigrateError::db("committing the repair"))?;
            Ok(report)
        })
        .await
    }
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
