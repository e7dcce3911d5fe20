//! `new`: a timestamped, reversible pair of migration files.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Creates `<version>_<name>.up.sql` and `.down.sql` in `dir` and returns their paths.
/// The version is the UTC time (`YYYYMMDDhhmmss`), or one past the newest file's version if
/// that is later, so a new file always sorts last.
///
/// # Errors
///
/// [`CliError::NewFile`] when the name would make a bad file name or the files cannot be
/// written.
pub fn create(dir: &Path, name: &str, no_transaction: bool) -> Result<[PathBuf; 2], CliError> {
    let bad = CliError::NewFile;
    strata_migrate::files::check_migration_name(name).map_err(bad)?;
    let version = strata_migrate::files::next_version(dir)
        .map_err(|e| bad(format!("cannot read {}: {e}", dir.display())))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    let first_line = if no_transaction { "-- no-transaction\n" } else { "" };
    let up = dir.join(format!("{version}_{name}.up.sql"));
    let down = dir.join(format!("{version}_{name}.down.sql"));
    let up_text = format!(
        "{first_line}-- {version} {name}: say what this changes and why.\n\
         -- Safe under traffic: indexes on existing tables CONCURRENTLY (in a -- no-transaction file),\n\
         -- constraints NOT VALID then VALIDATE, and expand -> migrate -> contract for renames.\n\
         -- A `-- lock_timeout: 30s` line here overrides migrations.lock_timeout for this file.\n"
    );
    let down_text = format!("{first_line}-- Reverts {version}_{name}.\n");
    for (path, text) in [(&up, up_text), (&down, down_text)] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok([up, down])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-new-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn creates_a_pair_that_sorts_after_existing_files() -> Result<(), CliError> {
        let dir = temp_dir("pair");
        std::fs::create_dir_all(&dir).map_err(|e| CliError::NewFile(e.to_string()))?;
        std::fs::write(dir.join("99990101000000_future.up.sql"), "").ok();
        let [up, down] = create(&dir, "add_things", true)?;
        assert!(up.ends_with("99990101000001_add_things.up.sql"), "{}", up.display());
        assert!(down.ends_with("99990101000001_add_things.down.sql"));
        let text = std::fs::read_to_string(&up).unwrap_or_default();
        assert!(text.starts_with("-- no-transaction\n"), "{text}");
        Ok(())
    }

    #[test]
    fn refuses_names_that_make_bad_file_names() {
        let dir = temp_dir("bad");
        for name in ["", "Add", "a b", "../escape", "x.sql", "ünïcode", &"a".repeat(65)] {
            let err = create(&dir, name, false).expect_err(name);
            assert!(err.to_string().contains("not a usable migration name"), "{err}");
        }
        assert!(!dir.exists(), "nothing written");
    }
}
