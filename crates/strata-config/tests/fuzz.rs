//! Arbitrary TOML files and environment values: loading never panics, every error names a key
//! (or, for a file that is not TOML, the file and line) and where the value came from, and the
//! secret in the password-bearing keys never shows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use strata_config::{Config, ConfigError, Loader};

const SECRET: &str = "fuzz-secret-pw";

/// Every key the loader knows, as `section.key`.
fn known_keys() -> Vec<&'static str> {
    Config::default().settings().into_iter().map(|(key, _)| key).collect()
}

/// Keys holding a password, where the secret may go.
const SECRET_KEYS: &[&str] =
    &["database.url", "database.password", "migrations.url", "auth.jwt_secret"];

/// A TOML value of any shape, the secret inside the strings sometimes.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[ -~]{0,30}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(&["\"5s\"", "\"0s\"", "\"-1s\"", "\"1y\"", "\"soon\"", "\"\""][..])
            .prop_map(str::to_owned),
        Just(format!("\"postgres://app:{SECRET}@db.example/app\"")),
        Just(format!("\"mysql://app:{SECRET}@db/app\"")),
        Just(format!("\"postgres://app:{SECRET}@[::1/app\"")),
        Just(format!("[\"postgres://app:{SECRET}@r1/app\", 7]")),
        Just("{ nested = 1 }".to_owned()),
        Just("[1, \"two\"]".to_owned()),
    ]
}

/// A `strata.toml`: known and unknown keys in known and unknown sections, and now and then a
/// line that is not TOML.
fn toml_file() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(known_keys()).prop_map(str::to_owned),
        1 => "[a-z]{1,6}\\.[a-z_]{1,12}",
    ];
    let line = prop_oneof![
        10 => (key, value()).prop_map(|(key, value)| {
            let (section, name) = key.split_once('.').unwrap_or(("database", "url"));
            format!("[{section}]\n{name} = {value}\n")
        }),
        1 => "[ -~]{0,20}".prop_map(|junk| format!("{junk}\n")),
    ];
    prop::collection::vec(line, 0..6).prop_map(|lines| lines.concat())
}

/// Environment variables: known and unknown `STRATA_*` keys, and `DATABASE_URL`.
fn environment() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        4 => prop::sample::select(known_keys()).prop_map(|key| {
            let (section, name) = key.split_once('.').unwrap_or(("database", "url"));
            format!("STRATA_{}__{}", section.to_uppercase(), name.to_uppercase())
        }),
        1 => "STRATA_[A-Z]{1,6}__[A-Z_]{1,10}",
        1 => Just("DATABASE_URL".to_owned()),
    ];
    let value = prop_oneof![
        "[ -~]{0,30}",
        Just(format!("postgres://app:{SECRET}@db.example/app")),
        Just(format!("postgres://app:{SECRET}@db.example:99999/app")),
        Just(format!("[\"postgres://app:{SECRET}@r1/app\"]")),
        prop::sample::select(&["5s", "0", "-3", "true", "transaction", "verify-full", ""][..])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec((name, value), 0..5)
}

fn dir_with(toml: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strata-config-fuzz-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    std::fs::write(dir.join("strata.toml"), toml).expect("write strata.toml");
    dir
}

proptest! {
    // No regression files: a failure prints its input, which goes into a named test.
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_file_and_environment_loads_or_fails_by_name(toml in toml_file(), env in environment()) {
        let dir = dir_with(&toml);
        let result = Loader::new(dir.clone(), env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).load();
        let _ = std::fs::remove_dir_all(&dir);
        let error = match result {
            Ok(config) => {
                // What loads also shows without the secret.
                let shown = format!("{:?} {:?}", config, config.settings());
                prop_assert!(!shown.contains(SECRET), "{}", shown);
                return Ok(());
            }
            Err(error) => error,
        };
        let (message, debug) = (error.to_string(), format!("{error:?}"));
        prop_assert!(!message.contains(SECRET) && !debug.contains(SECRET), "{}", message);
        match &error {
            ConfigError::Invalid(problems) => {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert!(!problem.key.is_empty(), "{:?}", problem);
                    prop_assert!(message.contains(&format!("{}: ", problem.key)), "{}", message);
                    prop_assert!(message.contains("(from "), "no source: {}", message);
                }
            }
            ConfigError::File { path, .. } => {
                prop_assert!(message.contains(&path.display().to_string()), "{}", message);
                prop_assert!(message.contains("line"), "no line: {}", message);
            }
            other => prop_assert!(false, "unexpected kind of error: {:?}", other),
        }
    }
}

#[test]
fn secret_keys_are_known() {
    let known = known_keys();
    assert!(SECRET_KEYS.iter().all(|k| known.contains(k)));
}
