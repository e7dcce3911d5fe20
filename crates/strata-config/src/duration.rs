//! Durations written as human strings (`"5s"`, `"250ms"`, `"1m 30s"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// Reads a duration from a human string; a bare number is refused because its unit is unclear.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Text(text) => parse(&text).map_err(de::Error::custom),
        Raw::Number(n) => Err(de::Error::custom(format!(
            "{n} has no unit: write a duration such as \"{n}s\" or \"{n}ms\""
        ))),
    }
}

/// Parses a human duration, with a message that says how to write one.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "{text:?} is not a duration ({e}): write it such as \"5s\", \"250ms\" or \"1m 30s\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_strings() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 1m 30s "), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn refuses_garbage_with_a_hint() {
        let err = parse("five seconds").unwrap_err();
        assert!(err.contains("\"five seconds\""), "{err}");
        assert!(err.contains("\"250ms\""), "{err}");
    }
}
