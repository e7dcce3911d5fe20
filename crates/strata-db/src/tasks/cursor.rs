//! Opaque, stable keyset cursors.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Where the next page starts: opaque to callers (hex of the sort order and the last key),
/// stable while rows are inserted or changed elsewhere.
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
    pub(crate) fn encode(position: Position) -> Self {
        let plain = match position {
            Position::Number(n) => format!("n:{n}"),
            Position::Priority(p, n) => format!("p:{p}:{n}"),
        };
        Self(plain.bytes().map(|b| format!("{b:02x}")).collect())
    }

    pub(crate) fn decode(&self) -> Result<Position, Error> {
        let bad = Error::Invalid { constraint: "input", message: "the page cursor is malformed" };
        let bytes: Option<Vec<u8>> = (0..self.0.len())
            .step_by(2)
            .map(|i| self.0.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let plain = bytes.and_then(|b| String::from_utf8(b).ok()).ok_or(bad)?;
        let bad =
            || Error::Invalid { constraint: "input", message: "the page cursor is malformed" };
        let parts: Vec<&str> = plain.split(':').collect();
        match parts.as_slice() {
            ["n", n] => Ok(Position::Number(n.parse().map_err(|_| bad())?)),
            ["p", p, n] => {
                Ok(Position::Priority(p.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?))
            }
            _ => Err(bad()),
        }
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
        for position in [Position::Number(42), Position::Priority(0, 7), Position::Priority(4, 1)] {
            let cursor = Cursor::encode(position);
            assert_eq!(
                cursor.to_string().parse::<Cursor>().ok().map(|c| c.decode().ok()),
                Some(Some(position))
            );
        }
        for garbage in ["", "zz", "6e3a", "6e3a78", "703a313a"] {
            assert!(garbage.parse::<Cursor>().is_err(), "{garbage}");
        }
    }
}
