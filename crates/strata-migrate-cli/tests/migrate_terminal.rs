//! strata-migrate at a person's terminal: Ctrl-C and SIGTERM that cancel the running statement
//! and say what they left, `redo`, the guard on maintenance databases, completions and the man
//! page, colour, and the live progress display, read off a real pseudo-terminal (tmux).

mod support;

use std::process::Command;
use std::time::Duration;

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::{PrivateCluster, TestResult};
use support::{
    Running, eventually, migrate, migrate_src, runner_session, text, url_of, write_migrations,
};

/// The runner's statement `pg_sleep` is running on the test's database (the tests of this file
/// run side by side, each on a database of its own).
fn sleeping() -> String {
    runner_session("state = 'active' and query like '%pg_sleep%'")
}

async fn exists(pool: &PgPool, table: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select to_regclass($1) is not null").bind(table).fetch_one(pool).await
}

#[sqlx::test(migrations = false)]
async fn ctrl_c_cancels_a_transactional_migration_and_says_what_it_left(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[(
        "1_slow.up.sql",
        "create table slow (id int);\nselect pg_sleep(60);\n",
    )]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let child = Running::spawn(&["--database-url", &url, "--source", &source, "up"], &[]);
    assert!(eventually(&pool, &sleeping(), Duration::from_secs(20)).await?, "never ran");
    child.signal("INT")?;
    let out = child.output().await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    for said in [
        "interrupted by SIGINT",
        "canceling statement due to user request",
        "the server ended this runner's session",
        "the migration lock is free",
        "1 slow: pending",
        "next: run `strata-migrate up` again",
    ] {
        assert!(all.contains(said), "{said:?} missing from:\n{all}");
    }
    // Nothing of it is applied, and nothing of it runs.
    assert!(!exists(&pool, "slow").await?);
    assert!(
        !sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sleeping())).fetch_one(&pool).await?
    );
    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&out).contains("pending"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn sigterm_in_a_no_transaction_file_names_where_a_rerun_resumes(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[(
        "1_steps.up.sql",
        "-- no-transaction\ncreate table first (id int);\nselect pg_sleep(60);\ncreate table third (id int);\n",
    )]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    let child = Running::spawn(&["--database-url", &url, "--source", &source, "up"], &[]);
    assert!(eventually(&pool, &sleeping(), Duration::from_secs(20)).await?, "never ran");
    child.signal("TERM")?;
    let out = child.output().await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(143), "{all}");
    for said in ["interrupted by SIGTERM", "a rerun resumes at statement 2", "lock is free"] {
        assert!(all.contains(said), "{said:?} missing from:\n{all}");
    }
    assert!(exists(&pool, "first").await? && !exists(&pool, "third").await?);
    // The rerun does resume there (its sleep shortened by a file edit is not allowed, so the
    // statement is cancelled again: it is the one running).
    let child = Running::spawn(&["--database-url", &url, "--source", &source, "up"], &[]);
    assert!(eventually(&pool, &sleeping(), Duration::from_secs(20)).await?, "never resumed");
    child.signal("INT")?;
    assert_eq!(child.output().await?.status.code(), Some(130));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn ctrl_c_while_waiting_for_the_lock_applies_nothing(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[("1_a.up.sql", "create table a (id int);\n")]);
    let (url, source) = (url_of(&pool).await, dir.to_string_lossy().into_owned());
    // Another runner holds the lock: a session of the test's own, with sqlx's key.
    let (holder, _) = support::hold_migration_lock(&pool, &url).await?;
    let child = Running::spawn(&["--database-url", &url, "--source", &source, "up"], &[]);
    let waiting = runner_session("true");
    assert!(eventually(&pool, &waiting, Duration::from_secs(20)).await?, "never connected");
    child.signal("INT")?;
    let out = child.output().await?;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(130), "{all}");
    for said in ["interrupted by SIGINT", "held by another session", "1 a: pending"] {
        assert!(all.contains(said), "{said:?} missing from:\n{all}");
    }
    assert!(!exists(&pool, "a").await?);
    drop(holder);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn redo_reverts_and_reapplies_the_newest_and_refuses_what_it_should(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("1_a.down.sql", "drop table a;\n"),
        ("2_b.up.sql", "create table b (id int);\n"),
        ("2_b.down.sql", "drop table b;\n"),
        ("3_c.up.sql", "create table c (id int);\n"),
    ]);
    let url = url_of(&pool).await;
    let out = migrate_src(&url, &dir, &["up", "--to", "2"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sqlx::raw_sql("insert into a values (1); insert into b values (2)").execute(&pool).await?;

    // The test server is on a loopback address: a development database, as status says.
    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(text(&out).contains("a development database (redo allowed)"), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["redo"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 migration(s) reverted and applied again"), "{}", text(&out));
    let rows = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "select count(*) from {table}"
            )))
            .fetch_one(&pool)
            .await
        }
    };
    // b was dropped and made again; a was left alone, and c, pending, stays pending.
    assert_eq!((rows("a").await?, rows("b").await?), (1, 0));
    assert!(!exists(&pool, "c").await?);

    // Told it is not a development database: refused, nothing changed.
    let production = [("STRATA_MIGRATIONS__DEVELOPMENT", "false")];
    let out = migrate_src(&url, &dir, &["redo", "--count", "2"], &production);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{}", text(&out));
    assert!(text(&out).contains("not a development database"), "{}", text(&out));
    assert!(text(&out).contains("STRATA_MIGRATIONS__DEVELOPMENT=true"), "{}", text(&out));
    assert_eq!(rows("a").await?, 1);
    let out = migrate_src(&url, &dir, &["status"], &production);
    assert!(text(&out).contains("not a development database (redo refused)"), "{}", text(&out));

    // A migration without a down file: refused before anything is reverted.
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = migrate_src(&url, &dir, &["redo", "--count", "2"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("3"), "{}", text(&out));
    assert!(exists(&pool, "b").await? && exists(&pool, "c").await?);
    Ok(())
}

#[test]
fn writing_to_a_maintenance_database_is_refused_unless_allowed() -> TestResult {
    let cluster = PrivateCluster::start()?;
    let dir = write_migrations(&[
        ("1_a.up.sql", "create table a (id int);\n"),
        ("1_a.down.sql", "drop table a;\n"),
    ]);
    for database in ["postgres", "template1"] {
        let url = cluster.url(database);
        for args in [&["up"][..], &["down", "--steps", "1"], &["redo"], &["repair"]] {
            let out = migrate_src(&url, &dir, args, &[]);
            let all = text(&out);
            assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{args:?}: {all}");
            assert!(all.contains(&format!("maintenance database \"{database}\"")), "{all}");
            assert!(all.contains("--allow-maintenance-database"), "{all}");
        }
        // Nothing was written there, not even the runner's tables.
        let tables = cluster
            .psql(database, "select count(*) from pg_tables where tablename like '%sqlx%'")?;
        assert_eq!(tables, "0", "{database}");
    }
    let url = cluster.url("postgres");
    let out = migrate_src(&url, &dir, &["--allow-maintenance-database", "up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cluster.psql("postgres", "select to_regclass('a') is not null")?, "t");
    Ok(())
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = migrate(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        // fish writes long flags without their dashes (`-l progress`).
        for word in ["redo", "allow-maintenance-database", "progress"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = migrate(&["man"], &[]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH strata-migrate"), "{page}");
    assert!(
        page.contains("redo") && page.contains("130"),
        "the man page lacks redo or the exit codes"
    );
}

/// A tmux session of the test's own: a real pseudo-terminal whose screen the test reads.
struct Tmux {
    name: String,
}

impl Tmux {
    /// Runs `command` (a shell line) in a new detached session, 200 columns wide. Two tests
    /// starting the first session at once race to start tmux's server, and one may fail:
    /// tried again, a few times.
    fn start(command: &str) -> Result<Self, strata_test_support::BoxError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("strata-{}-{n}", std::process::id());
        for _ in 0..5 {
            let status = Command::new("tmux")
                .args(["new-session", "-d", "-s", &name, "-x", "200", "-y", "40", command])
                .status()?;
            if status.success() {
                return Ok(Self { name });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err("tmux could not start a session".into())
    }

    /// The screen now; with `escapes`, with its colour codes.
    fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", &self.name];
        if escapes {
            args.push("-e");
        }
        Command::new("tmux")
            .args(&args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `limit` until the screen shows `text`; the last screen either way.
    async fn until_shows(&self, text: &str, limit: Duration) -> (bool, String) {
        let start = std::time::Instant::now();
        loop {
            let screen = self.screen(false);
            if screen.contains(text) || start.elapsed() > limit {
                return (screen.contains(text), screen);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

/// The shell line that runs the runner on `url` with `dir`, then keeps the pane open; in an
/// environment of its own (the tmux server's may hold anything, `STRATA_*` keys included).
fn at_terminal(url: &str, dir: &std::path::Path, args: &str, env: &str) -> String {
    format!(
        "env -i PATH=/usr/bin:/bin HOME=/tmp TERM=tmux-256color {env} {bin} --database-url '{url}' --source '{dir}' {args}; echo \"exit=$?\"; sleep 600",
        bin = env!("CARGO_BIN_EXE_strata-migrate"),
        dir = dir.display(),
    )
}

#[sqlx::test(migrations = false)]
async fn the_live_display_shows_the_migration_and_the_session_it_waits_on(
    pool: PgPool,
) -> TestResult {
    sqlx::raw_sql("create table busy (id int)").execute(&pool).await?;
    let dir = write_migrations(&[
        ("1_first.up.sql", "create table first (id int);\n"),
        ("2_second.up.sql", "alter table busy add column note text;\n"),
    ]);
    let url = url_of(&pool).await;
    // The test's own session holds the table the second migration alters.
    let mut holder = pool.begin().await?;
    sqlx::raw_sql("lock table busy in access exclusive mode").execute(&mut *holder).await?;
    let holder_pid: i32 =
        sqlx::query_scalar("select pg_backend_pid()").fetch_one(&mut *holder).await?;
    let env = "STRATA_MIGRATIONS__LOCK_TIMEOUT=30s";
    let tmux = Tmux::start(&at_terminal(&url, &dir, "up", env))?;
    let (shown, screen) = tmux
        .until_shows(
            &format!("waiting on a lock held by pid {holder_pid}"),
            Duration::from_secs(30),
        )
        .await;
    assert!(shown, "the display never named the blocking session:\n{screen}");
    assert!(screen.contains("[2/2]") && screen.contains("2_second.up.sql"), "{screen}");
    assert!(screen.contains("idle in transaction"), "{screen}");
    // One live line, not scrolling log lines.
    assert!(!screen.contains("INFO"), "log lines under the display:\n{screen}");
    holder.commit().await?;
    let (done, screen) = tmux.until_shows("exit=0", Duration::from_secs(30)).await;
    assert!(done, "{screen}");
    assert!(screen.contains("2 migration(s) applied"), "{screen}");
    assert!(!screen.contains("waiting on a lock"), "the display was not cleared:\n{screen}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn at_a_terminal_without_the_display_and_colour_the_log_lines_stay(
    pool: PgPool,
) -> TestResult {
    let dir = write_migrations(&[("1_first.up.sql", "create table first (id int);\n")]);
    let url = url_of(&pool).await;
    // --progress=never: the log lines, as in CI.
    let tmux = Tmux::start(&at_terminal(&url, &dir, "--progress never up", ""))?;
    let (done, screen) = tmux.until_shows("exit=0", Duration::from_secs(30)).await;
    assert!(done, "{screen}");
    assert!(screen.contains("applying migration"), "{screen}");
    drop(tmux);

    // Colour at a terminal: status states are coloured, unless NO_COLOR or --color=never.
    let coloured = |args: &str, env: &str| -> Result<bool, strata_test_support::BoxError> {
        let tmux = Tmux::start(&at_terminal(&url, &dir, args, env))?;
        let start = std::time::Instant::now();
        while !tmux.screen(false).contains("exit=") && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(tmux.screen(true).contains("\u{1b}[32mapplied"))
    };
    assert!(coloured("status", "")?, "no colour at a terminal");
    assert!(!coloured("status", "NO_COLOR=1")?, "colour despite NO_COLOR");
    assert!(!coloured("--color never status", "")?, "colour despite --color=never");
    // Through a pipe: none.
    let out = migrate_src(&url, &dir, &["status"], &[]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'), "colour into a pipe");
    Ok(())
}
