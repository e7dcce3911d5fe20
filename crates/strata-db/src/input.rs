//! The data layer's checks on values at its boundary, before they reach PostgreSQL: what the
//! server cannot store (a NUL character, a date before 4713 BC) or index (a label or an email
//! longer than a btree entry holds, a title whose words overflow the search index's tsvector)
//! is refused as [`Error::InvalidValue`] naming the field, rather than met as a server error
//! that a service would answer with a 500. What reaches the server anyway (a service's own SQL)
//! is mapped by SQLSTATE in `error.rs`.

use std::fmt;

use time::Date;

use crate::Error;

/// Longest task title, in characters (the title's search index holds at most 1 MB of
/// words; a title is a line, not a document).
pub const TITLE_MAX: usize = 500;
/// Longest label, in characters (labels are indexed: a btree entry holds about 2.7 kB).
pub const LABEL_MAX: usize = 100;
/// Longest email address, in characters (RFC 5321's path limit; emails are indexed).
pub const EMAIL_MAX: usize = 254;
/// Longest name (a user's display name, an organization's or a project's name), in characters.
pub const NAME_MAX: usize = 200;
/// Longest free text (a description, a comment), in characters.
pub const TEXT_MAX: usize = 100_000;

/// What is wrong with a value ([`Error::InvalidValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueProblem {
    /// It holds a NUL character (`\u0000`), which PostgreSQL's text cannot hold.
    Nul,
    /// It is longer than the field allows, in characters.
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A date PostgreSQL cannot hold (before 4713 BC).
    DateOutOfRange,
    /// The server refused it (an encoding, a range or a size limit it enforces): the field is
    /// not known, only the statement.
    Refused,
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nul => f.write_str("contains a NUL character, which cannot be stored"),
            Self::TooLong { max } => write!(f, "is longer than {max} characters"),
            Self::DateOutOfRange => {
                f.write_str("is before the first date the database holds (4713 BC)")
            }
            Self::Refused => {
                f.write_str("cannot be stored or indexed (an encoding, range or size limit)")
            }
        }
    }
}

/// `value` of `field` holds no NUL and at most `max` characters.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::InvalidValue { field, problem: ValueProblem::Nul });
    }
    // Bytes first: a string of at most `max` bytes has at most `max` characters.
    if value.len() > max && value.chars().count() > max {
        return Err(Error::InvalidValue { field, problem: ValueProblem::TooLong { max } });
    }
    Ok(())
}

/// Every label passes [`text`] with [`LABEL_MAX`].
pub(crate) fn labels<S: AsRef<str>>(labels: &[S]) -> Result<(), Error> {
    labels.iter().try_for_each(|label| text("labels", label.as_ref(), LABEL_MAX))
}

/// A date PostgreSQL can hold: 4713 BC (ISO year -4712) or later.
pub(crate) fn date(field: &'static str, date: Option<Date>) -> Result<(), Error> {
    match date {
        Some(date) if date.year() < -4712 => {
            Err(Error::InvalidValue { field, problem: ValueProblem::DateOutOfRange })
        }
        _ => Ok(()),
    }
}

/// No key or string in `value` holds a NUL (jsonb cannot hold `\u0000`).
pub(crate) fn json(field: &'static str, value: &serde_json::Value) -> Result<(), Error> {
    let nul = Error::InvalidValue { field, problem: ValueProblem::Nul };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Err(nul),
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| json(field, v)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            if key.contains('\0') {
                Err(Error::InvalidValue { field, problem: ValueProblem::Nul })
            } else {
                json(field, v)
            }
        }),
        _ => Ok(()),
    }
}

/// A task's metadata: its strings and its other keys and values hold no NUL.
pub(crate) fn metadata(metadata: &crate::tasks::TaskMetadata) -> Result<(), Error> {
    for value in [&metadata.source, &metadata.external_url].into_iter().flatten() {
        text("metadata", value, TEXT_MAX)?;
    }
    metadata.extra.iter().try_for_each(|(key, value)| {
        text("metadata", key, TEXT_MAX)?;
        json("metadata", value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_postgresql_cannot_hold_are_named() {
        let field = |result: Result<(), Error>| match result {
            Err(Error::InvalidValue { field, problem }) => Some((field, problem)),
            _ => None,
        };
        assert_eq!(field(text("title", "a\0b", 10)), Some(("title", ValueProblem::Nul)));
        assert_eq!(
            field(text("title", &"é".repeat(11), 10)),
            Some(("title", ValueProblem::TooLong { max: 10 }))
        );
        // Ten characters of two bytes each fit ten characters.
        assert!(text("title", &"é".repeat(10), 10).is_ok());
        assert_eq!(field(labels(&["ok", "no\0"])), Some(("labels", ValueProblem::Nul)));
        let early = Date::from_calendar_date(-4800, time::Month::January, 1).ok();
        assert_eq!(field(date("due_on", early)), Some(("due_on", ValueProblem::DateOutOfRange)));
        let first = Date::from_calendar_date(-4712, time::Month::January, 1).ok();
        assert!(date("due_on", first).is_ok());
        let nested = serde_json::json!({"a": [{"b\u{0}": 1}]});
        assert_eq!(field(json("metadata", &nested)), Some(("metadata", ValueProblem::Nul)));
    }
}
