//! The migrator binary against a real PostgreSQL: each test gets an empty database of its own
//! from `#[sqlx::test(migrations = false)]`.

mod support;

use sqlx::PgPool;
use sqlx::migrate::Migrate;
use strata_db::MIGRATOR;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{
    applied_versions, command, embedded_versions, migrate, spawn_migrate, temp_dir, text, url_for,
    url_of, write_migrations,
};

const SENTINEL: &str = "strata-test-secret-pw";

#[sqlx::test(migrations = false)]
async fn status_before_up_lists_pending_and_creates_nothing(pool: PgPool) -> TestResult {
    let out = migrate(&["--database-url", &url_of(&pool).await, "status"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = format!("0 applied, {} pending", embedded_versions().len());
    assert!(text(&out).contains(&expected), "{}", text(&out));
    let table: Option<String> =
        sqlx::query_scalar("select to_regclass('_sqlx_migrations')::text").fetch_one(&pool).await?;
    assert_eq!(table, None, "status is read-only");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn output_into_a_closed_pipe_ends_quietly(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let mut child = spawn_migrate(&["--database-url", &url, "status"], &[]);
    // The reader goes away before the first line (the command connects first), as with
    // `strata-migrate status | head -0`.
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

#[test]
fn output_that_cannot_be_written_fails_the_command() -> TestResult {
    let dir = temp_dir("full");
    let dir = dir.to_string_lossy().into_owned();
    let out = command(&["new", "add_things", "--dir", &dir], &[])
        .stdout(std::fs::File::create("/dev/full")?)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not write the output"), "{stderr}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_database_with_escape_bytea_output_is_read_correctly(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let database: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await?;
    // The name comes from the test harness (letters, digits and underscores).
    let sql = format!("alter database \"{database}\" set bytea_output = 'escape'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
    let up = migrate(&["--database-url", &url, "up"], &[]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    // A second run compares the recorded checksums with the files: read in escape format,
    // they would not decode.
    let again = migrate(&["--database-url", &url, "up"], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("nothing to apply"), "{}", text(&again));
    let status = migrate(&["--database-url", &url, "status"], &[]);
    assert!(
        text(&status).contains(&format!("{} applied", embedded_versions().len())),
        "{}",
        text(&status)
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn no_output_ever_shows_the_password(pool: PgPool) -> TestResult {
    let name: String = sqlx::query_scalar("select current_database()").fetch_one(&pool).await?;
    // The test server trusts local connections, so a password in the URL is accepted and ignored.
    let with_password = url_for(&name, Some(SENTINEL));
    let refused = format!("postgres://app:{SENTINEL}@127.0.0.1:1/{name}");
    let missing = url_for("strata_no_such_database", Some(SENTINEL));
    let wrong_scheme = format!("mysql://app:{SENTINEL}@127.0.0.1/{name}");
    // Unencoded /, ? and # in a password make the URL unparsable: the message still hides it.
    let slash = format!("postgres://app:a/{SENTINEL}@127.0.0.1/{name}");
    let query = format!("postgres://app:a?{SENTINEL}@127.0.0.1/{name}");
    let hash = format!("postgres://app:a#{SENTINEL}@127.0.0.1:notaport/{name}");
    let trace = [("RUST_LOG", "trace")];
    let runs = [
        (vec!["--database-url", &with_password, "up"], exit::OK),
        (vec!["--database-url", &with_password, "status", "--format", "json"], exit::OK),
        (vec!["--database-url", &refused, "up"], exit::CONNECT),
        (vec!["--database-url", &missing, "status"], exit::CONNECT),
        (vec!["--database-url", &wrong_scheme, "up"], exit::CONNECT),
        (vec!["--database-url", &slash, "status"], exit::CONNECT),
        (vec!["--database-url", &query, "status"], exit::CONNECT),
        (vec!["--database-url", &hash, "status"], exit::CONNECT),
    ];
    for (run, (args, code)) in runs.into_iter().enumerate() {
        let out = migrate(&args, &trace);
        let all = text(&out);
        // Messages name the run, never its arguments: they hold the password.
        assert!(!all.contains(SENTINEL), "password printed by run {run}");
        assert_eq!(out.status.code(), Some(i32::from(code)), "run {run}: {all}");
    }
    let out = migrate(&["up"], &[("DATABASE_URL", &refused), ("RUST_LOG", "trace")]);
    let all = text(&out);
    assert!(all.contains("could not connect to postgres://app:***@127.0.0.1:1/"), "{all}");
    assert!(!all.contains(SENTINEL));
    let out = migrate(&["--database-url", &missing, "status"], &[]);
    assert!(
        text(&out).contains("database \"strata_no_such_database\" does not exist"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn sqlx_sees_our_database_as_fully_applied(pool: PgPool) -> TestResult {
    let out = migrate(&["--database-url", &url_of(&pool).await, "up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before: Vec<(i64, Vec<u8>, i64)> =
        sqlx::query_as("select version, checksum, execution_time from _sqlx_migrations order by 1")
            .fetch_all(&pool)
            .await?;
    MIGRATOR.run(&pool).await?;
    let after: Vec<(i64, Vec<u8>, i64)> =
        sqlx::query_as("select version, checksum, execution_time from _sqlx_migrations order by 1")
            .fetch_all(&pool)
            .await?;
    assert_eq!(before, after, "sqlx found nothing to apply and nothing to complain about");
    assert!(before.iter().all(|(_, _, nanos)| *nanos > 0), "execution_time recorded in ns");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn we_read_a_database_that_sqlx_migrated(pool: PgPool) -> TestResult {
    MIGRATOR.run(&pool).await?;
    let url = url_of(&pool).await;
    let out = migrate(&["--database-url", &url, "status"], &[]);
    let expected = format!("{} applied, 0 pending, 0 checksum changed", embedded_versions().len());
    assert!(text(&out).contains(&expected), "{}", text(&out));
    let out = migrate(&["--database-url", &url, "up"], &[]);
    assert!(text(&out).contains("nothing to apply"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn sqlx_migrator_lock_holds_us_off_until_lock_wait(pool: PgPool) -> TestResult {
    let mut holder = pool.acquire().await?;
    holder.lock().await?; // sqlx's own Migrator lock on this database
    let url = url_of(&pool).await;
    let out =
        migrate(&["--database-url", &url, "up"], &[("STRATA_MIGRATIONS__LOCK_WAIT", "400ms")]);
    assert_eq!(out.status.code(), Some(i32::from(exit::LOCK)), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("held the lock for longer than migrations.lock_wait"), "{all}");
    assert!(all.contains("holder: pid "), "names the holder: {all}");
    assert_eq!(applied_versions(&pool).await.ok(), None, "nothing ran: no tracking table");

    holder.unlock().await?;
    let out = migrate(&["--database-url", &url, "up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failing_migration_stops_the_batch_and_leaves_nothing(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[
        ("1_first.up.sql", "create table first (id int);\n"),
        ("2_broken.up.sql", "create table broken (id int);\n\ncreate tabel oops (id int);\n"),
        ("3_third.up.sql", "create table third (id int);\n"),
    ]);
    let source = dir.to_string_lossy().into_owned();
    let url = url_of(&pool).await;
    let out = migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("migration 2 (broken) failed"), "{all}");
    assert!(
        all.contains("SQLSTATE 42601") && all.contains("at line 3 of 2_broken.up.sql"),
        "{all}"
    );
    assert!(all.contains("failing statement: create tabel oops (id int);"), "{all}");
    assert_eq!(applied_versions(&pool).await?, vec![1]);
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' and tablename not like '\\_%' order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(tables, vec!["first".to_owned()], "2 rolled back whole, 3 never ran");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn an_edited_applied_migration_is_refused(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[("1_first.up.sql", "create table first (id int);\n")]);
    let source = dir.to_string_lossy().into_owned();
    let url = url_of(&pool).await;
    let out = migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(dir.join("1_first.up.sql"), "create table first (id bigint);\n")?;
    std::fs::write(dir.join("2_second.up.sql"), "create table second (id int);\n")?;
    let out = migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(all.contains("migration 1 (first) was changed after it was applied"), "{all}");
    assert_eq!(applied_versions(&pool).await?, vec![1], "2 did not run");
    let out = migrate(&["--database-url", &url, "--source", &source, "status"], &[]);
    assert!(text(&out).contains("checksum changed"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_missing_file_is_refused_unless_ignored(pool: PgPool) -> TestResult {
    let dir =
        write_migrations(&[("1_first.up.sql", "select 1;\n"), ("2_second.up.sql", "select 2;\n")]);
    let source = dir.to_string_lossy().into_owned();
    let url = url_of(&pool).await;
    assert_eq!(
        migrate(&["--database-url", &url, "--source", &source, "up"], &[]).status.code(),
        Some(0)
    );
    std::fs::remove_file(dir.join("2_second.up.sql"))?;
    let out = migrate(&["--database-url", &url, "--source", &source, "up"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("no file here: [2]"), "{}", text(&out));
    let out = migrate(&["--database-url", &url, "--source", &source, "status"], &[]);
    assert!(text(&out).contains("file missing"), "{}", text(&out));
    let out =
        migrate(&["--database-url", &url, "--source", &source, "up", "--ignore-missing"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

#[test]
fn new_writes_a_pair_and_refuses_bad_names() {
    let dir = temp_dir("new");
    let dir_arg = dir.to_string_lossy().into_owned();
    let out = migrate(&["new", "add_widgets", "--dir", &dir_arg], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(
        names[0].ends_with("_add_widgets.down.sql") && names[1].ends_with("_add_widgets.up.sql")
    );
    let out = migrate(&["new", "Add Widgets", "--dir", &dir_arg], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{}", text(&out));
    assert!(text(&out).contains("not a usable migration name"));
}

#[sqlx::test(migrations = false)]
async fn a_concurrent_build_in_a_transactional_file_gets_a_hint(pool: PgPool) -> TestResult {
    let dir = write_migrations(&[(
        "1_idx.up.sql",
        "create table t (id int);\ncreate index concurrently t_id on t (id);\n",
    )]);
    let source = dir.to_string_lossy().into_owned();
    let out = migrate(&["--database-url", &url_of(&pool).await, "--source", &source, "up"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(i32::from(exit::MIGRATION)), "{all}");
    assert!(
        all.contains("SQLSTATE 25001")
            && all.contains("make `-- no-transaction` the file's first line"),
        "{all}"
    );
    let t: Option<String> =
        sqlx::query_scalar("select to_regclass('t')::text").fetch_one(&pool).await?;
    assert_eq!(t, None, "rolled back whole");
    Ok(())
}

#[test]
fn config_prints_the_effective_settings_with_the_password_hidden() -> TestResult {
    let url = format!("postgres://app:{SENTINEL}@db.example:5432/strata");
    let env = [("DATABASE_URL", url.as_str()), ("STRATA_MIGRATIONS__LOCK_TIMEOUT", "2s")];
    let out = migrate(&["config"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains(SENTINEL), "the password is shown");
    assert!(shown.contains("database.url = postgres://app:***@db.example:5432/strata"), "{shown}");
    assert!(shown.contains("migrations.lock_timeout = 2s"), "{shown}");
    assert!(shown.contains("database.password = (not set)"), "{shown}");

    let out = migrate(&["--format", "json", "config"], &env);
    let settings: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(settings["migrations.lock_wait"], "1m");
    assert_eq!(settings["database.ssl_mode"], serde_json::Value::Null);

    // A script asks for the URL itself, and gets it whole (here with another password).
    let plain = "postgres://app:visible@db.example:5432/strata";
    let out = migrate(&["config", "--get", "database.url"], &[("DATABASE_URL", plain)]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{plain}\n"));
    let out = migrate(&["config", "--get", "database.url"], &[]);
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0), "unset: nothing printed");

    let out = migrate(&["config", "--get", "database.nope"], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::USAGE)), "{}", text(&out));
    assert!(text(&out).contains("database.max_connections"), "{}", text(&out));
    let out = migrate(&["config"], &[("STRATA_MIGRATIONS__LOCK_TIMEOUT", "soon")]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CONNECT)), "{}", text(&out));
    assert!(text(&out).contains("migrations.lock_timeout"), "{}", text(&out));
    Ok(())
}
