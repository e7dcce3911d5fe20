//! Opaque, stable keyset cursors.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::Error;

/// Where the next page starts: opaque to callers (hex of the project, the sort order and the
/// last key), stable while rows are inserted. In priority order, a task whose priority changes
/// between two pages may be seen twice or not at all; number order has no such case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

/// The decoded position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// After this number, in number order.
    Number(i32),
    /// After this (priority, number), in priority order.
    Priority(i16, i32),
}

impl Cursor {
    pub(crate) fn encode(project: Uuid, position: Position) -> Self {
        let plain = match position {
            Position::Number(n) => format!("{}:n:{n}", project.simple()),
            Position::Priority(p, n) => format!("{}:p:{p}:{n}", project.simple()),
        };
        Self(plain.bytes().map(|b| format!("{b:02x}")).collect())
    }

    /// The position, checked to belong to `project`.
    pub(crate) fn decode_for(&self, project: Uuid) -> Result<Position, Error> {
        let (owner, position) = self.decode()?;
        if owner != project {
            return Err(Error::BadInput { message: "the page cursor belongs to another project" });
        }
        Ok(position)
    }

    fn decode(&self) -> Result<(Uuid, Position), Error> {
        let bad = Error::BadInput { message: "the page cursor is malformed" };
        let bytes: Option<Vec<u8>> = (0..self.0.len())
            .step_by(2)
            .map(|i| self.0.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let plain = bytes.and_then(|b| String::from_utf8(b).ok()).ok_or(bad)?;
        let bad = || Error::BadInput { message: "the page cursor is malformed" };
        let parts: Vec<&str> = plain.split(':').collect();
        let (project, rest) = match parts.split_first() {
            Some((project, rest)) => (Uuid::parse_str(project).map_err(|_| bad())?, rest),
            None => return Err(bad()),
        };
        let position = match rest {
            ["n", n] => Position::Number(n.parse().map_err(|_| bad())?),
            ["p", p, n] => {
                Position::Priority(p.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?)
            }
            _ => return Err(bad()),
        };
        Ok((project, position))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let cursor = Self(s.to_owned());
        cursor.decode()?;
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let project = Uuid::now_v7();
        for position in [Position::Number(42), Position::Priority(0, 7), Position::Priority(4, 1)] {
            let cursor = Cursor::encode(project, position);
            let parsed = cursor.to_string().parse::<Cursor>().ok();
            assert_eq!(parsed.map(|c| c.decode_for(project).ok()), Some(Some(position)));
            assert!(cursor.decode_for(Uuid::now_v7()).is_err(), "another project's cursor");
        }
        for garbage in ["", "zz", "6e3a", "6e3a78", "703a313a"] {
            assert!(garbage.parse::<Cursor>().is_err(), "{garbage}");
        }
    }
}
