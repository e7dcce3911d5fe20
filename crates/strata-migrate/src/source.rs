//! Reading a migrations directory, as sqlx reads it, on every core.
//!
//! sqlx's resolver (`Migrator::new`) reads and hashes the files one after the other; with
//! hundreds of files that is most of a command's own work. This reader applies the same rules
//! (see `resolve_blocking_with_config` in sqlx-core's `migrate/source.rs`) to shares of the
//! directory on scoped threads, so versions, descriptions, types, SQL and checksums are the
//! ones sqlx would compute; a test compares the two on the same directory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::MigrateError;

/// Most threads used to read one directory.
const MAX_THREADS: usize = 4;

/// Reads every migration file in `dir` (other entries are ignored, as sqlx ignores them).
///
/// # Errors
///
/// [`MigrateError::Source`] when the directory or a file cannot be read, or a file name has
/// no integer version.
pub async fn read_dir(dir: &Path) -> Result<Migrator, MigrateError> {
    let owned = dir.to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_dir_blocking(&owned)).await;
    let source = |message: String| MigrateError::Source { dir: dir.to_path_buf(), message };
    match read {
        Ok(Ok(migrations)) => Ok(Migrator::with_migrations(migrations)),
        Ok(Err(message)) => Err(source(message)),
        Err(join) => Err(source(format!("the reading thread failed: {join}"))),
    }
}

fn read_dir_blocking(dir: &Path) -> Result<Vec<Migration>, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("error canonicalizing path {}: {e}", dir.display()))?;
    // The entry's type comes with the directory listing: no `stat` per file, except for
    // symbolic links, which are followed as sqlx follows them.
    let entries = std::fs::read_dir(&dir)
        .and_then(|entries| {
            entries
                .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?))))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| format!("error reading migration directory {}: {e}", dir.display()))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    let share = entries.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<(Migration, PathBuf)>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|(path, kind)| read_file(path, *kind).transpose())
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a reading thread panicked".to_owned())))
            .collect()
    });
    let mut found = Vec::with_capacity(entries.len());
    for part in parts {
        found.extend(part?);
    }
    // sqlx orders by version, then type, then path; two files for the same version and
    // direction would make the outcome depend on that order (sqlx applies the first and fails
    // on the second), so they are refused here with both names.
    found.sort_by(|(a, pa), (b, pb)| a.cmp(b).then_with(|| pa.cmp(pb)));
    for pair in found.windows(2) {
        let ((a, pa), (b, pb)) = (&pair[0], &pair[1]);
        let direction = |m: &Migration| m.migration_type.is_down_migration();
        if a.version == b.version && direction(a) == direction(b) {
            return Err(format!(
                "two migrations have version {}: {} and {}",
                a.version,
                pa.display(),
                pb.display()
            ));
        }
    }
    Ok(found.into_iter().map(|(m, _)| m).collect())
}

/// One directory entry, by sqlx's rules: `None` for what sqlx skips.
fn read_file(path: &Path, kind: std::fs::FileType) -> Result<Option<(Migration, PathBuf)>, String> {
    let is_file = if kind.is_symlink() {
        let metadata = std::fs::metadata(path).map_err(|e| {
            format!("error getting metadata of migration path {}: {e}", path.display())
        })?;
        metadata.is_file()
    } else {
        kind.is_file()
    };
    if !is_file {
        return Ok(None);
    }
    let Some(file_name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return Ok(None);
    };
    let Some((version, rest)) = file_name.split_once('_') else { return Ok(None) };
    if !rest.ends_with(".sql") {
        return Ok(None);
    }
    let version: i64 = version.parse().map_err(|_| {
        format!(
            "error parsing migration filename {file_name:?}; expected integer version prefix \
             (e.g. `01_foo.sql`)"
        )
    })?;
    let migration_type = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(migration_type.suffix()).replace('_', " ");
    let reading =
        |e: std::io::Error| format!("error reading contents of migration {}: {e}", path.display());
    let sql = read_text(path).map_err(reading)?;
    let no_tx = sql.starts_with("-- no-transaction");
    let migration = Migration::new(
        version,
        Cow::Owned(description),
        migration_type,
        AssertSqlSafe(sql).into_sql_str(),
        no_tx,
    );
    Ok(Some((migration, path.to_path_buf())))
}

/// The file as UTF-8 text. Not `read_to_string`: it and `read_to_end` on a `File` ask for the
/// file's size first (a `statx` per file, which shows with hundreds of files).
fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut buffer = Vec::new();
    let mut file = std::fs::File::open(path)?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(buffer).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields sqlx's runner and ours rely on, for comparing two readers.
    fn fields(m: &Migrator) -> Vec<(i64, String, MigrationType, String, Vec<u8>, bool)> {
        m.iter()
            .map(|m| {
                let sql = m.sql.as_str().to_owned();
                (
                    m.version,
                    m.description.to_string(),
                    m.migration_type,
                    sql,
                    m.checksum.to_vec(),
                    m.no_tx,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn reads_what_sqlx_reads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("strata-source-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a_directory_1_x.sql"))?;
        let files = [
            ("1_simple.sql", "create table a (id int);\n"),
            ("2_two_words.up.sql", "create table b (id int);\r\n"),
            ("2_two_words.down.sql", "drop table b;\n"),
            ("3_concurrent.up.sql", "-- no-transaction\ncreate index concurrently i on a (id);\n"),
            ("3_concurrent.down.sql", "-- no-transaction\ndrop index concurrently i;\n"),
            ("README.md", "not a migration\n"),
            ("4_notes.txt", "not sql\n"),
            ("10_after_nine.sql", "select 'ünïcode';\n"),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        for n in 100..140 {
            std::fs::write(dir.join(format!("{n}_bulk_{n}.sql")), format!("select {n};\n"))?;
        }
        let ours = read_dir(&dir).await?;
        let theirs = Migrator::new(dir.as_path()).await?;
        assert_eq!(fields(&ours), fields(&theirs));
        assert_eq!(ours.iter().count(), 46, "six named files and forty bulk ones");
        std::fs::write(dir.join("10_again.sql"), "select 10;\n")?;
        let err = read_dir(&dir).await.expect_err("two files for version 10");
        assert!(
            err.to_string().contains("10_after_nine.sql")
                && err.to_string().contains("10_again.sql"),
            "{err}"
        );
        std::fs::remove_file(dir.join("10_again.sql"))?;
        std::fs::write(dir.join("x_bad.sql"), "select 1;\n")?;
        let err = read_dir(&dir).await.expect_err("a non-integer version");
        assert!(err.to_string().contains("x_bad.sql"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
