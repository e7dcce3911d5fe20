//! Checkpoints: one migration that stands for the files before it (`strata-migrate squash`).
//!
//! A checkpoint is an ordinary up file that takes the version of the last file it replaces,
//! with one `-- replaces: VERSION CHECKSUM DESCRIPTION` line per replaced file among its
//! leading comment lines. The replaced files are gone from the directory; those lines are
//! what the runner checks a database's records against:
//!
//! - a database that recorded none of them (a new one) applies the checkpoint as usual;
//! - one that applied every replaced file, with the checksums listed, has the checkpoint's
//!   schema already: `up` records the checkpoint (its row takes the checkpoint's checksum, so
//!   sqlx-cli reads it as applied) and runs nothing;
//! - one that applied only some of them is refused: it needs the files it is missing, which
//!   only the history before the squash has;
//! - `down` past a checkpoint is refused: there is no down file for what it stands for.
//!
//! A squash through a later version replaces a checkpoint too: its lines are carried over,
//! and the older checkpoint's own checksum is listed beside the original one of its version.

use std::collections::HashMap;

use sqlx::migrate::{Migration, Migrator};

use crate::error::MigrateError;
use crate::runner::history::{Applied, History};
use crate::tools::files;

/// The directive that lists a replaced file.
const REPLACES: &str = "replaces:";

/// One file a checkpoint stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// Its version.
    pub version: i64,
    /// sqlx's checksum of it (SHA-384 of the file).
    pub checksum: Vec<u8>,
    /// Its description.
    pub description: String,
}

/// The header of a checkpoint that stands for `replaced` (in version order), through
/// `through`: the comment lines the runner reads, to put before the checkpoint's SQL.
pub fn header(through: i64, replaced: &[Replaced]) -> String {
    let mut out = format!(
        "-- Checkpoint: the schema of the {} migration(s) through {through}, squashed into one\n\
         -- file by `strata-migrate squash`. A database that applied them records this file as\n\
         -- applied without running it; a new database runs it. Do not edit these lines: the\n\
         -- runner checks each database's records against them.\n",
        replaced.iter().map(|r| r.version).collect::<std::collections::BTreeSet<_>>().len()
    );
    for r in replaced {
        out.push_str(&format!(
            "-- {REPLACES} {} {} {}\n",
            r.version,
            hex::encode(&r.checksum),
            r.description
        ));
    }
    out
}

/// The files `migration` stands for, when it is a checkpoint (`None` when it is not).
///
/// # Errors
///
/// [`MigrateError::File`] for a `-- replaces:` line that cannot be read, or that lists a
/// version after the checkpoint's own.
pub fn replaced_by(migration: &Migration) -> Result<Option<Vec<Replaced>>, MigrateError> {
    let refuse =
        |message: String| MigrateError::File { file: files::file_name(migration), message };
    let mut replaced = Vec::new();
    for line in migration.sql.as_str().lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else { break };
        let Some(rest) = comment.trim().strip_prefix(REPLACES) else { continue };
        let mut parts = rest.trim().splitn(3, ' ');
        let version = parts.next().and_then(|v| v.parse::<i64>().ok());
        let checksum = parts.next().and_then(|c| hex::decode(c).ok()).filter(|c| c.len() == 48);
        let (Some(version), Some(checksum)) = (version, checksum) else {
            return Err(refuse(format!(
                "`{line}` is not a checkpoint line (`-- {REPLACES} VERSION SHA384-HEX DESCRIPTION`); restore it from version control"
            )));
        };
        if version > migration.version {
            return Err(refuse(format!(
                "`{line}`: a checkpoint stands only for versions up to its own ({})",
                migration.version
            )));
        }
        let description = parts.next().unwrap_or_default().trim().to_owned();
        replaced.push(Replaced { version, checksum, description });
    }
    Ok((!replaced.is_empty()).then_some(replaced))
}

/// The checkpoints among a migrator's files, by version, with what each stands for.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints<'m> {
    by_version: HashMap<i64, (&'m Migration, Vec<Replaced>)>,
    /// Replaced version → the checkpoint that stands for it.
    owner: HashMap<i64, i64>,
}

impl<'m> Checkpoints<'m> {
    /// Reads every checkpoint of `migrator`, and refuses a directory that still has a file a
    /// checkpoint replaces (a new database would run both).
    pub(crate) fn of(migrator: &'m Migrator) -> Result<Self, MigrateError> {
        let mut out = Self::default();
        for m in files::up_migrations(migrator) {
            if let Some(replaced) = replaced_by(m)? {
                for r in &replaced {
                    out.owner.entry(r.version).or_insert(m.version);
                }
                out.by_version.insert(m.version, (m, replaced));
            }
        }
        for m in migrator.iter() {
            if let Some(&owner) = out.owner.get(&m.version)
                && owner != m.version
            {
                return Err(MigrateError::Checkpoint {
                    version: owner,
                    message: format!(
                        "{} is one of the files it replaces: delete it (the checkpoint stands for it)",
                        files::file_name(m)
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The checkpoint that stands for `version`, if one does (a checkpoint stands for its
    /// own version too).
    pub(crate) fn owner_of(&self, version: i64) -> Option<i64> {
        self.owner.get(&version).copied()
    }

    /// Whether `row` is the record of a file that checkpoint `owner` replaced, unchanged.
    pub(crate) fn matches(&self, owner: i64, row: &Applied) -> bool {
        self.by_version.get(&owner).is_some_and(|(_, replaced)| {
            replaced.iter().any(|r| r.version == row.version && r.checksum == row.checksum)
        })
    }

    /// When `row` records a file that a checkpoint replaced (not the file `file` that is here
    /// with the row's checksum): that checkpoint's version, and whether the row is what the
    /// checkpoint lists for it.
    pub(crate) fn replaced_record(
        &self,
        row: &Applied,
        file: Option<&Migration>,
    ) -> Option<(i64, bool)> {
        let owner = self.owner_of(row.version)?;
        if file.is_some_and(|f| *f.checksum == *row.checksum) {
            return None;
        }
        Some((owner, self.matches(owner, row)))
    }

    /// How a database stands with the checkpoint of `version`: whether `up` must record it
    /// (every file it replaces applied, its own row still the original's), with the number of
    /// files. `None` when the checkpoint is recorded already, or pending on a new database.
    ///
    /// # Errors
    ///
    /// [`MigrateError::Checkpoint`] when the database applied only some of the files.
    pub(crate) fn to_record(
        &self,
        version: i64,
        history: &History,
    ) -> Result<Option<usize>, MigrateError> {
        let Some((checkpoint, replaced)) = self.by_version.get(&version) else {
            return Ok(None);
        };
        let applied = history.applied_by_version();
        if applied.get(&version).is_some_and(|row| *row.checksum == *checkpoint.checksum) {
            return Ok(None);
        }
        let mut versions: Vec<i64> = replaced.iter().map(|r| r.version).collect();
        versions.sort_unstable();
        // An older checkpoint among the replaced files is listed twice (its own checksum and
        // the original file's): a database it made has none of the versions before it.
        let older = versions.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]);
        let start =
            older.filter(|v| applied.get(v).is_some_and(|row| self.matches(version, row))).max();
        versions.dedup();
        versions.retain(|v| start.is_none_or(|start| *v >= start));
        let done: Vec<i64> = versions
            .iter()
            .copied()
            .filter(|v| applied.get(v).is_some_and(|row| row.success && self.matches(version, row)))
            .collect();
        if done.is_empty() && !versions.iter().any(|v| applied.contains_key(v)) {
            return Ok(None);
        }
        if done.len() == versions.len() {
            return Ok(Some(versions.len()));
        }
        let missing: Vec<i64> = versions.iter().copied().filter(|v| !done.contains(v)).collect();
        Err(MigrateError::Checkpoint {
            version,
            message: format!(
                "this database applied {} of the {} migrations it stands for; not applied, failed or changed: {missing:?}. Apply them with the history as it was before the squash, then run again",
                done.len(),
                versions.len()
            ),
        })
    }

    /// Refuses to revert any of `versions` that a checkpoint stands for.
    pub(crate) fn refuse_down(&self, versions: &[i64]) -> Result<(), MigrateError> {
        match versions.iter().find_map(|v| self.owner_of(*v)) {
            None => Ok(()),
            Some(owner) => Err(MigrateError::Checkpoint {
                version: owner,
                message: "down past a checkpoint is refused: it stands for migrations squashed into one file, with no down file for them. Restore a backup, or write a new migration that undoes what you need".to_owned(),
            }),
        }
    }
}

/// How many of the up files through `through` `history` applied: none or all; a failed one,
/// or some but not all, is refused (see [`crate::Session::squashable`]).
pub(crate) fn squashable(
    migrator: &Migrator,
    history: &History,
    through: i64,
) -> Result<usize, MigrateError> {
    let refuse = |message: String| MigrateError::Checkpoint { version: through, message };
    if let Some(row) = history.applied.iter().find(|a| !a.success && a.version <= through) {
        return Err(refuse(format!(
            "migration {} ({}) failed on this database (success = false): finish it with `up` or settle it with `repair` first",
            row.version, row.description
        )));
    }
    let applied = history.applied_by_version();
    let versions: Vec<i64> =
        files::up_migrations(migrator).map(|m| m.version).filter(|v| *v <= through).collect();
    let done = versions.iter().filter(|v| applied.contains_key(v)).count();
    if done == 0 || done == versions.len() {
        return Ok(done);
    }
    let pending: Vec<i64> = versions.iter().copied().filter(|v| !applied.contains_key(v)).collect();
    Err(refuse(format!(
        "this database applied {done} of the {} migrations through {through}; pending here: {pending:?}. Apply them first: once squashed, their files are gone",
        versions.len()
    )))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;
    use sqlx::{AssertSqlSafe, SqlSafeStr};

    use super::*;

    fn migration(version: i64, sql: &str) -> Migration {
        Migration::new(
            version,
            Cow::Owned("checkpoint".to_owned()),
            MigrationType::ReversibleUp,
            AssertSqlSafe(sql.to_owned()).into_sql_str(),
            false,
        )
    }

    #[test]
    fn the_header_reads_back() -> Result<(), MigrateError> {
        let replaced = vec![
            Replaced { version: 1, checksum: vec![1; 48], description: "create users".into() },
            Replaced { version: 7, checksum: vec![7; 48], description: "add tasks".into() },
        ];
        let sql = format!("{}create table t (id int);\n", header(7, &replaced));
        assert_eq!(replaced_by(&migration(7, &sql))?, Some(replaced));
        assert_eq!(replaced_by(&migration(7, "-- replaces nothing\nselect 1;"))?, None);
        Ok(())
    }

    #[test]
    fn a_damaged_or_later_line_is_refused() {
        let bad = migration(7, "-- replaces: 1 beef create users\nselect 1;");
        assert!(matches!(replaced_by(&bad), Err(MigrateError::File { .. })));
        let later = format!("-- replaces: 8 {} later\nselect 1;", "00".repeat(48));
        assert!(matches!(replaced_by(&migration(7, &later)), Err(MigrateError::File { .. })));
    }
}
