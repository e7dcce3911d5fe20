//! Per-file directives in a migration's leading comment lines, next to sqlx's own
//! `-- no-transaction`: `-- lock_timeout: 30s` and `-- statement_timeout: 10m` override
//! `migrations.lock_timeout` and the statement timeout for that file (any `humantime`
//! duration, e.g. `500ms`, `2m`).

use std::time::Duration;

use sqlx::migrate::Migration;

use crate::error::MigrateError;

/// The `lock_timeout` a file asks for, if any.
///
/// # Errors
///
/// [`MigrateError::Directive`] when the directive's value is not a duration.
pub(crate) fn lock_timeout(migration: &Migration) -> Result<Option<Duration>, MigrateError> {
    duration(migration, "lock_timeout")
}

/// The `statement_timeout` a file asks for, if any.
///
/// # Errors
///
/// [`MigrateError::Directive`] when the directive's value is not a duration.
pub(crate) fn statement_timeout(migration: &Migration) -> Result<Option<Duration>, MigrateError> {
    duration(migration, "statement_timeout")
}

/// The value of the `-- KEY: duration` directive, from the leading comment lines only.
fn duration(migration: &Migration, key: &str) -> Result<Option<Duration>, MigrateError> {
    for line in migration.sql.as_str().lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let Some(value) = comment.trim().strip_prefix(key).and_then(|rest| rest.strip_prefix(':'))
        else {
            continue;
        };
        return humantime::parse_duration(value.trim()).map(Some).map_err(|e| {
            MigrateError::Directive {
                version: migration.version,
                message: format!("bad `-- {key}:` directive {:?}: {e}", value.trim()),
            }
        });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;
    use sqlx::{AssertSqlSafe, SqlSafeStr};

    use super::*;

    fn file(text: &str) -> Migration {
        let sql = AssertSqlSafe(text.to_owned()).into_sql_str();
        Migration::new(7, Cow::Borrowed("t"), MigrationType::Simple, sql, false)
    }

    #[test]
    fn reads_the_directive_from_the_leading_comments_only() {
        let with = file(
            "-- no-transaction\n-- lock_timeout: 30s\n\ncreate index concurrently i on t (x);\n",
        );
        assert_eq!(lock_timeout(&with).ok().flatten(), Some(Duration::from_secs(30)));
        let ms = file("--lock_timeout:250ms\nalter table t add column x int;\n");
        assert_eq!(lock_timeout(&ms).ok().flatten(), Some(Duration::from_millis(250)));
        let late = file("alter table t add column x int;\n-- lock_timeout: 30s\n");
        assert_eq!(lock_timeout(&late).ok().flatten(), None);
        assert_eq!(lock_timeout(&file("select 1;")).ok().flatten(), None);
        let both = file("-- lock_timeout: 1s\n-- statement_timeout: 10m\nselect 1;\n");
        assert_eq!(lock_timeout(&both).ok().flatten(), Some(Duration::from_secs(1)));
        assert_eq!(statement_timeout(&both).ok().flatten(), Some(Duration::from_secs(600)));
        assert_eq!(statement_timeout(&with).ok().flatten(), None);
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_file() {
        let err = lock_timeout(&file("-- lock_timeout: soon\nselect 1;")).expect_err("bad value");
        assert!(err.to_string().contains("migration 7: bad `-- lock_timeout:` directive"), "{err}");
    }
}
