//! The crate's one error type, and the one place database errors are mapped to it.

/// The names of the constraints (and unique indexes) the mapping knows, as the migrations
/// create them.
pub mod constraints {
    /// `organizations.slug` is unique.
    pub const ORGANIZATIONS_SLUG_KEY: &str = "organizations_slug_key";
    /// `organizations.slug` is lowercase letters, digits and hyphens.
    pub const ORGANIZATIONS_SLUG_FORMAT: &str = "organizations_slug_format";
    /// `organizations.name` is not blank.
    pub const ORGANIZATIONS_NAME_NOT_BLANK: &str = "organizations_name_not_blank";
    /// `lower(users.email)` is unique.
    pub const USERS_EMAIL_KEY: &str = "users_email_key";
    /// `users.email` looks like an address.
    pub const USERS_EMAIL_FORMAT: &str = "users_email_format";
    /// `users.display_name` is not blank.
    pub const USERS_DISPLAY_NAME_NOT_BLANK: &str = "users_display_name_not_blank";
}

use constraints::*;

/// What a data-layer call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row does not exist (or is not visible to the caller).
    #[error("{entity} not found")]
    NotFound {
        /// The kind of row, such as `"organization"`.
        entity: &'static str,
    },
    /// A unique constraint refused the write.
    #[error("{message} (constraint {constraint})")]
    Conflict {
        /// The constraint's name, one of [`constraints`].
        constraint: &'static str,
        /// What conflicts, for a human.
        message: &'static str,
    },
    /// A check constraint refused the input.
    #[error("invalid input: {message} (constraint {constraint})")]
    Invalid {
        /// The constraint's name, one of [`constraints`].
        constraint: &'static str,
        /// What is wrong, for a human.
        message: &'static str,
    },
    /// Any other database error, with its source.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

/// Known constraints: name, whether a violation is a conflict (else invalid input), message.
const KNOWN: &[(&str, bool, &str)] = &[
    (ORGANIZATIONS_SLUG_KEY, true, "an organization with this slug already exists"),
    (ORGANIZATIONS_SLUG_FORMAT, false, "a slug is 1-63 lowercase letters, digits and hyphens"),
    (ORGANIZATIONS_NAME_NOT_BLANK, false, "an organization's name must not be blank"),
    (USERS_EMAIL_KEY, true, "a user with this email already exists"),
    (USERS_EMAIL_FORMAT, false, "an email address needs one @ and no spaces"),
    (USERS_DISPLAY_NAME_NOT_BLANK, false, "a display name must not be blank"),
];

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        let known = error
            .as_database_error()
            .and_then(|db| db.constraint())
            .and_then(|name| KNOWN.iter().find(|(known, ..)| *known == name));
        match (known, error.as_database_error().map(|db| db.kind())) {
            (Some(&(constraint, true, message)), Some(sqlx::error::ErrorKind::UniqueViolation)) => {
                Self::Conflict { constraint, message }
            }
            (Some(&(constraint, false, message)), Some(sqlx::error::ErrorKind::CheckViolation)) => {
                Self::Invalid { constraint, message }
            }
            _ => Self::Database(error),
        }
    }
}
