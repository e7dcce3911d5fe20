//! The statement splitter against two oracles: squawk's PostgreSQL parser (its Rust crates,
//! already here for `lint`), on a corpus of real SQL and on generated SQL; and, for the
//! generated SQL, the statement boundaries known by construction.
//!
//! The one deliberate difference: an empty statement (a `;` with nothing before it, as in
//! `drop rule r on t;;`) is no statement for the runner, which would send nothing for it;
//! squawk keeps it as a node, which is dropped here before comparing.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use squawk_syntax::ast::AstNode;

use crate::tools::lexer;

/// Where each statement starts, by our splitter.
fn ours(sql: &str) -> Result<Vec<usize>, lexer::LexError> {
    Ok(lexer::split(sql)?
        .iter()
        .map(|s| s.text.as_ptr() as usize - sql.as_ptr() as usize)
        .collect())
}

/// Where each statement starts (its first token that is not a comment or white space), by
/// squawk's parser; `None` when it reports a syntax error, where it is no oracle.
fn squawk(sql: &str) -> Option<Vec<usize>> {
    let parsed = squawk_syntax::SourceFile::parse(sql);
    if !parsed.errors().is_empty() {
        return None;
    }
    let starts = parsed.tree().stmts().filter_map(|stmt| {
        let first = stmt
            .syntax()
            .descendants_with_tokens()
            .filter_map(|e| e.into_token())
            .find(|t| !t.kind().is_trivia())?;
        // An empty statement: see the module's doc.
        (first.text() != ";").then(|| usize::from(first.text_range().start()))
    });
    Some(starts.collect())
}

/// The `.sql` files under `dir`, recursively.
fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            sql_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}

/// The source of crate `name` (`name-version`) in Cargo's registry, where the build put it.
fn registry_crate(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registries = std::fs::read_dir(home.join("registry/src")).ok()?;
    registries.flatten().map(|r| r.path().join(name)).find(|p| p.is_dir())
}

/// The corpus: this project's migrations, sqlx's PostgreSQL test fixtures and migrations, and
/// squawk's parser test files (PostgreSQL statements of every kind), from the registry.
#[test]
fn the_splitter_agrees_with_squawk_on_real_sql() {
    let mut files = Vec::new();
    sql_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations"), &mut files);
    let ours_only = files.len();
    for (krate, dirs) in [
        ("sqlx-0.9.0", &["tests/postgres", "tests/migrate"][..]),
        ("squawk-parser-2.68.0", &["tests/data/ok"][..]),
    ] {
        let root = registry_crate(krate)
            .unwrap_or_else(|| panic!("{krate} is not in Cargo's registry: build first"));
        for dir in dirs {
            sql_files(&root.join(dir), &mut files);
        }
    }
    assert!(files.len() > ours_only + 200, "the corpus is too small: {}", files.len());
    let (mut compared, mut differ) = (0, Vec::new());
    for path in &files {
        let Ok(sql) = std::fs::read_to_string(path) else { continue };
        let Some(theirs) = squawk(&sql) else { continue };
        compared += 1;
        let mine = ours(&sql);
        if mine.as_ref() != Ok(&theirs) {
            differ.push(format!("{}: ours {mine:?}, squawk's {theirs:?}", path.display()));
        }
    }
    assert!(compared > 200, "squawk parsed only {compared} of {} files", files.len());
    assert!(
        differ.is_empty(),
        "{} of {compared} files split differently:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// An expression whose text may hold `;`, quotes and comment markers, and no statement end.
fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1000).prop_map(|n| n.to_string()),
        "[a-z; ']{0,10}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z; '\\\\]{0,10}"
            .prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
        ("[a-z]{0,3}", "[a-z; '$]{0,12}")
            .prop_filter("the body must not close the quote", |(tag, body)| {
                !format!("{body}$").contains(&format!("${tag}$"))
            })
            .prop_map(|(tag, body)| format!("${tag}${body}${tag}$")),
        "[a-z; \"]{1,10}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        "[a-z; ']{0,10}".prop_map(|s| format!("/* {s} /* nested; */ */ 1")),
        "[a-z; ']{0,10}".prop_map(|s| format!("-- {s}\n 1")),
        "[a-z; ']{0,10}".prop_map(|s| format!("(select '{}')", s.replace('\'', "''"))),
    ]
}

/// One statement, with no `;` at its end.
fn statement() -> impl Strategy<Value = String> {
    let atoms = || prop::collection::vec(atom(), 1..4).prop_map(|a| a.join(", "));
    prop_oneof![
        atoms().prop_map(|a| format!("select {a}")),
        (atoms(), atoms()).prop_map(|(a, b)| format!(
            "create function f() returns int language sql\nbegin atomic\n  select {a};\n  select case when true then 1 else 2 end;\n  select {b};\nend"
        )),
        atoms().prop_map(|a| format!("do $body$ begin perform {a}; end $body$")),
        "[a-z; ']{0,10}".prop_map(|s| format!("create table t (c text default '{}')", s.replace('\'', "''"))),
        atoms().prop_map(|a| format!("create rule r as on insert to t do also (select {a}; select 2)")),
    ]
}

/// Statements joined into a file (with comments and blank lines between some), and where
/// each one starts.
fn file() -> impl Strategy<Value = (String, Vec<usize>)> {
    let gap = prop::sample::select(
        &["\n", "\n\n", " ", "\n-- between; 'x\n", "\n/* a; /* b */ */\n"][..],
    );
    prop::collection::vec((statement(), gap), 1..6).prop_map(|parts| {
        let (mut sql, mut starts) = (String::new(), Vec::new());
        for (statement, gap) in parts {
            starts.push(sql.len());
            sql.push_str(&statement);
            sql.push(';');
            sql.push_str(gap);
        }
        (sql, starts)
    })
}

proptest! {
    // No regression files: a failure prints its input, which goes into a named test.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_files_split_where_their_statements_start((sql, starts) in file()) {
        prop_assert_eq!(ours(&sql), Ok(starts.clone()), "{}", sql);
        if let Some(theirs) = squawk(&sql) {
            prop_assert_eq!(theirs, starts, "squawk: {}", sql);
        }
    }

    #[test]
    fn any_text_splits_or_fails_without_panicking(sql in "[a-zE;'\"$/*\\\\() \n-]{0,120}") {
        if let (Ok(mine), Some(theirs)) = (ours(&sql), squawk(&sql)) {
            prop_assert_eq!(mine, theirs, "{:?}", sql);
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(sql in any::<String>()) {
        let _ = ours(&sql);
    }
}

/// The squawk half of the generated test is only worth something if squawk parses most of
/// the generated files.
#[test]
fn squawk_parses_most_generated_files() -> Result<(), proptest::test_runner::Reason> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut parsed = 0;
    for _ in 0..200 {
        let (sql, _) = file().new_tree(&mut runner)?.current();
        parsed += usize::from(squawk(&sql).is_some());
    }
    assert!(parsed > 150, "squawk parsed only {parsed} of 200 generated files");
    Ok(())
}
