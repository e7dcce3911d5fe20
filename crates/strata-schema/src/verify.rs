//! `verify` (each down file undoes its up file) and `diff` (a live database against the
//! schema its applied migrations produce), both on a scratch database and the catalog
//! snapshot.

use serde::Serialize;
use sqlx::migrate::Migrator;
use strata_config::Config;

use crate::catalog::{self, Difference, Schema};
use crate::error::SchemaError;
use strata_migrate::scratch::with_scratch;
use strata_migrate::{DownOptions, DownTarget, Session, Settings, UpOptions};

/// A migration whose down file is not an exact inverse.
#[derive(Debug, Clone, Serialize)]
pub struct NotInverse {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// `down` (the schema after up then down differs from the one before up) or `up again`
    /// (after down then up, it differs from the one after the first up).
    pub stage: &'static str,
    /// The differences: `missing` is in the expected schema only, `extra` in the actual one.
    pub differences: Vec<Difference>,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// The versions whose down file is an exact inverse, in order.
    pub verified: Vec<i64>,
    /// The versions with no down file (only applied).
    pub without_down: Vec<i64>,
    /// The checkpoints (only applied: a checkpoint is not reversible, by design).
    pub checkpoints: Vec<i64>,
    /// The first migration whose down file is not an exact inverse; verification stops there.
    pub failure: Option<NotInverse>,
}

impl VerifyReport {
    /// Whether verification failed: a down file that is not an inverse, or, with
    /// `require_down`, a migration without one.
    pub fn failed(&self, require_down: bool) -> bool {
        self.failure.is_some() || (require_down && !self.without_down.is_empty())
    }
}

/// Proves each down file of `migrator` undoes its up file, on a scratch database of the
/// configured server: for each migration in order, snapshot, up, snapshot, down, compare with
/// the first snapshot, up again, compare with the second.
///
/// # Errors
///
/// A migration that fails to apply or revert ([`strata_migrate::MigrateError::Migration`], through [`SchemaError::Migrate`]), or the scratch
/// database's errors.
pub async fn verify(config: &Config, migrator: &Migrator) -> Result<VerifyReport, SchemaError> {
    let settings = Settings::from_config(&config.migrations);
    with_scratch(config, "verify", async |scratch| {
        let mut session = Session::from_config(scratch).await?;
        let mut report = VerifyReport::default();
        let mut ups: Vec<_> =
            migrator.iter().filter(|m| !m.migration_type.is_down_migration()).collect();
        ups.sort_by_key(|m| m.version);
        for m in ups {
            let before = catalog::snapshot(session.raw_connection()).await?;
            let mut up = UpOptions::new(settings.clone());
            up.target = Some(m.version);
            session.up(migrator, &up).await?;
            let after = catalog::snapshot(session.raw_connection()).await?;
            if strata_migrate::checkpoint::replaced_by(m)?.is_some() {
                report.checkpoints.push(m.version);
                continue;
            }
            if !migrator
                .iter()
                .any(|d| d.version == m.version && d.migration_type.is_down_migration())
            {
                report.without_down.push(m.version);
                continue;
            }
            session
                .down(migrator, &DownOptions::new(settings.clone(), DownTarget::Steps(1)))
                .await?;
            let checks: [(&'static str, &Schema); 2] = [("down", &before), ("up again", &after)];
            for (stage, expected) in checks {
                if stage == "up again" {
                    session.up(migrator, &up).await?;
                }
                let actual = catalog::snapshot(session.raw_connection()).await?;
                let differences = catalog::differences(expected, &actual);
                if !differences.is_empty() {
                    report.failure = Some(NotInverse {
                        version: m.version,
                        description: m.description.to_string(),
                        stage,
                        differences,
                    });
                    session.close().await;
                    return Ok(report);
                }
            }
            report.verified.push(m.version);
        }
        session.close().await;
        Ok(report)
    })
    .await
}

/// What `diff` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffReport {
    /// The newest applied version the expected schema was built to.
    pub applied_through: Option<i64>,
    /// `missing`: what the migrations make and the database lacks; `extra`: the other way.
    pub differences: Vec<Difference>,
}

/// Compares the configured database with the schema its applied migrations produce, built on
/// a scratch database of the same server.
///
/// # Errors
///
/// As [`Session::status`](strata_migrate::Session::status) and [`verify`].
pub async fn diff(config: &Config, migrator: &Migrator) -> Result<DiffReport, SchemaError> {
    let mut live = Session::from_config(config).await?;
    let read = async {
        let lines = live.status(migrator).await?;
        let actual = catalog::snapshot(live.raw_connection()).await?;
        Ok::<_, SchemaError>((lines, actual))
    }
    .await;
    live.close().await;
    let (lines, actual) = read?;
    let applied_through = lines
        .iter()
        .filter(|l| l.state != strata_migrate::status::State::Pending)
        .map(|l| l.version)
        .max();
    let settings = Settings::from_config(&config.migrations);
    let expected = with_scratch(config, "diff", async |scratch| {
        let mut session = Session::from_config(scratch).await?;
        if let Some(version) = applied_through {
            let mut up = UpOptions::new(settings.clone());
            up.target = Some(version);
            session.up(migrator, &up).await?;
        }
        let schema = catalog::snapshot(session.raw_connection()).await;
        session.close().await;
        schema
    })
    .await?;
    Ok(DiffReport { applied_through, differences: catalog::differences(&expected, &actual) })
}
