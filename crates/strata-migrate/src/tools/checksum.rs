//! Comparing an applied migration's recorded checksum with its file, forgiving only line
//! endings and trailing white space.
//!
//! sqlx records SHA-384 of the exact file text. When that differs from the file, we try
//! the file with LF and with CRLF line endings, and with trailing white space removed; and,
//! for migrations we applied, our side table holds the checksum of the normalized text
//! (LF, no trailing white space), which catches white space removed from the file too.

use sha2::{Digest, Sha384};
use sqlx::migrate::Migration;

/// How a file compares with the checksum recorded when it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Byte for byte the same.
    Exact,
    /// The same but for line endings or trailing white space (named here).
    Cosmetic(&'static str),
    /// Really changed.
    Changed,
}

/// SHA-384 of `text`, as sqlx computes a migration's checksum.
pub(crate) fn sha384(text: &str) -> Vec<u8> {
    Sha384::digest(text.as_bytes()).to_vec()
}

/// The text with LF line endings and no white space at the end of any line or of the file.
pub(crate) fn normalize(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = lines.join("\n");
    out.truncate(out.trim_end().len());
    out
}

/// The checksum of [`normalize`]d text, kept in our side table at apply time.
pub(crate) fn normalized_checksum(text: &str) -> Vec<u8> {
    sha384(&normalize(text))
}

/// Compares the file with the `recorded` checksum and, when we applied it, the
/// `recorded_normalized` one.
pub(crate) fn compare(
    recorded: &[u8],
    recorded_normalized: Option<&[u8]>,
    file: &Migration,
) -> Match {
    if recorded == &*file.checksum {
        return Match::Exact;
    }
    let text = file.sql.as_str();
    let lf = text.replace("\r\n", "\n");
    let eol_variants = [lf.clone(), lf.replace('\n', "\r\n")];
    if eol_variants.iter().any(|v| sha384(v) == recorded) {
        return Match::Cosmetic("line endings");
    }
    let trimmed: Vec<&str> = lf.split('\n').map(str::trim_end).collect();
    for eol in ["\n", "\r\n"] {
        let joined = trimmed.join(eol);
        let variants =
            [joined.clone(), format!("{}{eol}", joined.trim_end()), joined.trim_end().to_owned()];
        if variants.iter().any(|v| sha384(v) == recorded) {
            return Match::Cosmetic("trailing white space");
        }
    }
    if recorded_normalized.is_some_and(|n| n == normalized_checksum(text)) {
        return Match::Cosmetic("line endings or trailing white space");
    }
    Match::Changed
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;
    use sqlx::{AssertSqlSafe, SqlSafeStr};

    use super::*;

    fn file(text: &str) -> Migration {
        Migration::new(
            1,
            Cow::Borrowed("t"),
            MigrationType::Simple,
            AssertSqlSafe(text.to_owned()).into_sql_str(),
            false,
        )
    }

    #[test]
    fn our_sha384_is_sqlx_checksum() {
        let m = file("create table t (id int);\n");
        assert_eq!(sha384(m.sql.as_str()), *m.checksum);
    }

    #[test]
    fn exact_cosmetic_and_changed() {
        let lf = "create table t (\n  id int\n);\n";
        let recorded = sha384(lf);
        assert_eq!(compare(&recorded, None, &file(lf)), Match::Exact);
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(compare(&recorded, None, &file(&crlf)), Match::Cosmetic("line endings"));
        assert_eq!(compare(&sha384(&crlf), None, &file(lf)), Match::Cosmetic("line endings"));
        let spaces = "create table t (   \n  id int\t\n);  \n";
        assert_eq!(
            compare(&recorded, None, &file(spaces)),
            Match::Cosmetic("trailing white space")
        );
        let changed = "create table t (\n  id bigint\n);\n";
        assert_eq!(compare(&recorded, None, &file(changed)), Match::Changed);
    }

    #[test]
    fn white_space_removed_from_the_file_needs_the_normalized_checksum() {
        let applied = "create table t (id int);   \n\n";
        let now = "create table t (id int);\n";
        let recorded = sha384(applied);
        assert_eq!(compare(&recorded, None, &file(now)), Match::Changed);
        let normalized = normalized_checksum(applied);
        assert!(matches!(compare(&recorded, Some(&normalized), &file(now)), Match::Cosmetic(_)));
        let edited = "create table t (id bigint);\n";
        assert_eq!(compare(&recorded, Some(&normalized), &file(edited)), Match::Changed);
    }
}
