//! The migration files: read by sqlx's own reader (so versions, descriptions, types and
//! checksums follow sqlx's rules on every upgrade), and looked up by version and direction.

use std::collections::HashMap;
use std::path::Path;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::error::MigrateError;
use crate::tools::lexer::Statement;

/// Reads every migration file in `dir` with sqlx's reader, and refuses two files for the same
/// version and direction: sqlx would apply the first and fail on the second, so the outcome
/// would depend on the order of the directory listing.
///
/// sqlx reads the files one after the other. A parallel reader of our own was about 12 ms
/// faster on 500 files; that is not worth following sqlx's rules by hand.
///
/// # Errors
///
/// [`MigrateError::Source`] when the directory or a file cannot be read, a file name has no
/// integer version, or two files share a version and direction.
pub async fn read_migrations(dir: &Path) -> Result<Migrator, MigrateError> {
    let source = |message: String| MigrateError::Source { dir: dir.to_path_buf(), message };
    let migrator = Migrator::new(dir).await.map_err(|e| source(e.to_string()))?;
    if let Some(message) = odd_name(dir)? {
        return Err(source(message));
    }
    // A file a checkpoint replaced, still here, is named as such (before the duplicate check:
    // it has the checkpoint's version when it is the last one).
    crate::tools::checkpoint::Checkpoints::of(&migrator)?;
    let mut seen = HashMap::new();
    for m in migrator.iter() {
        if let Some(first) = seen.insert((m.version, m.migration_type.is_down_migration()), m) {
            return Err(source(format!(
                "two migrations have version {}: {} and {}",
                m.version,
                file_name(first),
                file_name(m)
            )));
        }
    }
    if let Some(down) = migrator.iter().find(|d| {
        d.migration_type == MigrationType::ReversibleDown
            && !migrator
                .iter()
                .any(|u| u.version == d.version && !u.migration_type.is_down_migration())
    }) {
        return Err(source(format!(
            "{} has no up migration ({}_<name>.up.sql): nothing would ever run it",
            file_name(down),
            down.version
        )));
    }
    Ok(migrator)
}

/// A file name that sqlx would read differently from what its author meant: white space
/// (sqlx turns `_` into a space in the description, so the name cannot be told back), or a
/// `.sql`, `.up.sql` or `.down.sql` ending in the wrong case (ignored, or read as a simple
/// migration named `name.UP`).
fn odd_name(dir: &Path) -> Result<Option<String>, MigrateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MigrateError::Source {
        dir: dir.to_path_buf(),
        message: format!("cannot list the directory: {e}"),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_lowercase();
        let looks_like_migration = name.split_once('_').is_some_and(|(version, _)| {
            !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
        });
        if !looks_like_migration || !lower.ends_with(".sql") {
            continue;
        }
        if name.chars().any(char::is_whitespace) {
            return Ok(Some(format!("{name:?}: a migration file name takes `_`, not spaces")));
        }
        let wrong_case = [".up.sql", ".down.sql", ".sql"]
            .iter()
            .any(|ending| lower.ends_with(ending) && !name.ends_with(ending));
        if wrong_case {
            return Ok(Some(format!(
                "{name}: write the ending in lowercase (`.up.sql`, `.down.sql` or `.sql`); \
                 sqlx reads it otherwise as something else or not at all"
            )));
        }
    }
    Ok(None)
}

/// Refuses a file that would not run as written, before anything is applied: a byte order
/// mark (PostgreSQL rejects it, and it hides a first-line `-- no-transaction`), no statement
/// at all, a literal or comment left open, or a directive where neither sqlx nor the runner
/// reads it (`-- no-transaction` after the file's first line, `-- lock_timeout:` and
/// `-- statement_timeout:` after its first statement), which would silently change how the
/// file runs.
///
/// Returns the file's statements.
///
/// # Errors
///
/// [`MigrateError::File`] naming the file, with what to do.
pub(crate) fn check_content(m: &Migration) -> Result<Vec<Statement<'_>>, MigrateError> {
    let refuse = |message: String| MigrateError::File { file: file_name(m), message };
    let sql = m.sql.as_str();
    if sql.starts_with('\u{feff}') {
        return Err(refuse(
            "starts with a byte order mark (U+FEFF), which PostgreSQL rejects and which hides a \
             first-line `-- no-transaction`: save it as UTF-8 without one"
                .to_owned(),
        ));
    }
    let statements = crate::tools::lexer::split(sql).map_err(|e| refuse(e.to_string()))?;
    let Some(first) = statements.first() else {
        return Err(refuse(
            "has no SQL statement, only comments or blank lines: write the migration or delete \
             the file (an empty step on purpose can be `select 1;`)"
                .to_owned(),
        ));
    };
    let offset_of = |text: &str| text.as_ptr() as usize - sql.as_ptr() as usize;
    let first_start = offset_of(first.text);
    let inside = |at: usize| {
        statements
            .iter()
            .any(|s| (offset_of(s.text)..offset_of(s.text) + s.text.len()).contains(&at))
    };
    for (index, line) in sql.lines().enumerate() {
        let at = offset_of(line);
        let Some(comment) = line.trim().strip_prefix("--").map(str::trim) else { continue };
        let misplaced = if comment == "no-transaction" {
            // sqlx reads it only as the very start of the file.
            !(index == 0 && line.starts_with("-- no-transaction"))
        } else {
            ["lock_timeout:", "statement_timeout:"].iter().any(|key| comment.starts_with(key))
                && at > first_start
        };
        if misplaced && !inside(at) {
            let wanted = if comment == "no-transaction" {
                "`-- no-transaction` is read only as the file's first line, exactly so"
            } else {
                "timeout directives are read only in the comment lines before the first statement"
            };
            return Err(refuse(format!(
                "line {}: `{}` would be ignored ({wanted}): move it, or delete it",
                index + 1,
                line.trim()
            )));
        }
    }
    Ok(statements)
}

/// The migrations that move the schema forward (not the `.down.sql` halves).
pub(crate) fn up_migrations(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator.iter().filter(|m| !m.migration_type.is_down_migration())
}

/// The forward migrations by version, for lookups that would otherwise scan the files once
/// per row (quadratic in the history's length).
pub(crate) fn up_by_version(migrator: &Migrator) -> HashMap<i64, &Migration> {
    let mut files = HashMap::new();
    for m in up_migrations(migrator) {
        files.entry(m.version).or_insert(m); // the first, as a scan would find it
    }
    files
}

/// The `.down.sql` half of a reversible migration, if the files have one.
pub(crate) fn down_migration(migrator: &Migrator, version: i64) -> Option<&Migration> {
    migrator
        .iter()
        .find(|m| m.version == version && m.migration_type == MigrationType::ReversibleDown)
}

/// The file name the migration came from, as sqlx names them.
pub fn file_name(m: &Migration) -> String {
    let suffix = match m.migration_type {
        MigrationType::Simple => ".sql",
        MigrationType::ReversibleUp => ".up.sql",
        MigrationType::ReversibleDown => ".down.sql",
    };
    format!("{}_{}{suffix}", m.version, m.description.replace(' ', "_"))
}

/// The sum file of a migrations directory (as Atlas's `atlas.sum`): a first line with the
/// hash of all the others, then one line per file, its name and its checksum (sqlx's), in
/// version order. Two branches that each add a migration both change the first line and
/// both append after the same last one, so git makes them conflict at merge time, before the
/// runner's out-of-order guard would stop the deploy.
pub fn sum_file(migrator: &Migrator) -> String {
    use sha2::{Digest, Sha384};
    let mut files: Vec<&Migration> = migrator.iter().collect();
    files.sort_by_key(|m| (m.version, m.migration_type.is_down_migration()));
    let body: String =
        files.iter().map(|m| format!("{} {}\n", file_name(m), hex::encode(&*m.checksum))).collect();
    format!("total {}\n{body}", hex::encode(Sha384::digest(body.as_bytes())))
}

/// Checks that `name` makes a usable migration file name: 1-64 lowercase letters, digits and
/// `_`, starting with a letter. The error says so, with an example.
///
/// # Errors
///
/// The message to show when it does not.
pub fn check_migration_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable migration name: use 1-64 lowercase letters, digits and _, starting with a letter (e.g. add_tasks_due_date)"
        ))
    }
}

/// The version of a new migration in `dir`: the UTC time (`YYYYMMDDhhmmss`), or one past the
/// newest file's version if that is later, so a new file always sorts last. A directory that
/// does not exist yet has no versions.
///
/// # Errors
///
/// When `dir` cannot be read.
pub fn next_version(dir: &Path) -> std::io::Result<i64> {
    let now = time::OffsetDateTime::now_utc();
    let now = i64::from(now.year()) * 10_000_000_000
        + i64::from(u8::from(now.month())) * 100_000_000
        + i64::from(now.day()) * 1_000_000
        + i64::from(now.hour()) * 10_000
        + i64::from(now.minute()) * 100
        + i64::from(now.second());
    let mut newest = None;
    if dir.exists() {
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let version = name
                .to_str()
                .and_then(|n| n.split_once('_'))
                .and_then(|(v, _)| v.parse::<i64>().ok());
            newest = newest.max(version);
        }
    }
    Ok(now.max(newest.map_or(0, |v| v + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_two_files_for_one_version() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("strata-files-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("10_after_nine.sql"), "select 10;\n")?;
        std::fs::write(dir.join("9_nine.up.sql"), "select 9;\n")?;
        std::fs::write(dir.join("9_nine.down.sql"), "select -9;\n")?;
        assert_eq!(read_migrations(&dir).await?.iter().count(), 3, "a pair is not a duplicate");
        std::fs::write(dir.join("10_again.sql"), "select 10;\n")?;
        let err = read_migrations(&dir).await.expect_err("two files for version 10");
        assert!(
            err.to_string().contains("10_after_nine.sql")
                && err.to_string().contains("10_again.sql"),
            "{err}"
        );
        std::fs::remove_file(dir.join("10_again.sql"))?;
        std::fs::write(dir.join("x_bad.sql"), "select 1;\n")?;
        let err = read_migrations(&dir).await.expect_err("a non-integer version");
        assert!(err.to_string().contains("x_bad.sql"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
