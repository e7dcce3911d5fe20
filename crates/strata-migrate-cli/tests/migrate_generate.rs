//! `generate`: the migration from a history to a desired schema, safe on tables in use,
//! proven before it is written, applied here on a database that holds rows; renames refused
//! until named; `pg_dump` output as the desired schema; this project's `schema/` against its
//! `migrations/`.

mod support;

use std::path::{Path, PathBuf};

use sqlx::PgPool;
use strata_migrate_cli::exit;
use strata_test_support::TestResult;
use support::{migrate_src, temp_dir, text, url_of, write_migrations};

/// The files of `dir` whose names contain `part`, with their text.
fn files_with(dir: &Path, part: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(part)))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, std::fs::read_to_string(&p).unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

/// A directory holding `schema.sql` with `sql`: a desired schema.
fn desired(sql: &str) -> PathBuf {
    let dir = temp_dir("desired");
    std::fs::write(dir.join("schema.sql"), sql).expect("write the desired schema");
    dir
}

const HISTORY: &str = "\
create type mood as enum ('calm', 'busy');
create type pair as (a int, b text);
create function next_rank() returns int language sql as 'select 1';
create table owners (id bigint primary key, name text not null, rank int default next_rank());
create table notes (id bigint primary key, body text, mood mood not null default 'calm', owner_id bigint);
create function notes_count() returns bigint language sql as 'select count(*) from notes';
";

/// Every kind of object the generator covers, added to, changed in or dropped from HISTORY.
const DESIRED: &str = "\
create schema archive;
create type mood as enum ('calm', 'busy', 'tired');
create domain short_text as text check (length(value) < 100);
create sequence note_numbers as integer start with 10;
create type pair as (a int, b text, c boolean);
create function next_rank() returns bigint language sql as 'select 1::bigint';
create table owners (id bigint primary key, name text not null, rank int default next_rank(),
    email short_text);
create table notes (id bigint primary key, body text not null, mood mood not null default 'calm',
    owner_id bigint, constraint notes_body_short check (length(body) < 1000));
create index notes_body_idx on notes (body) where body <> '';
alter table notes add constraint notes_owner_fkey foreign key (owner_id) references owners (id);
create table archive.old_notes (id bigint generated always as identity primary key,
    body text collate \"C\", words int generated always as (length(body)) stored);
create unique index old_notes_body_key on archive.old_notes (lower(body)) include (id);
create function notes_count() returns bigint language sql as 'select count(*) from notes where body <> ''''';
create function touch() returns trigger language plpgsql as $$ begin return new; end $$;
create trigger notes_touch before update on notes for each row execute function touch();
create view busy_notes as select id, body from notes where mood = 'busy';
create materialized view note_counts as select mood, count(*) as n from notes group by mood;
alter table notes enable row level security;
create policy notes_all on notes using (true);
grant select on notes to public;
comment on table notes is 'Notes.';
comment on column notes.body is 'The text.';
";

#[sqlx::test(migrations = false)]
async fn a_generated_migration_is_safe_proven_and_applies_on_a_table_with_rows(
    pool: PgPool,
) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&[("1_base.sql", HISTORY)]);
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    sqlx::raw_sql(
        "insert into owners values (1, 'ada');\n\
         insert into notes select g, 'note ' || g, 'busy', 1 from generate_series(1, 50) g;",
    )
    .execute(&pool)
    .await?;
    let to = desired(DESIRED);
    let to = to.to_string_lossy().into_owned();
    let out = migrate_src(&url, &dir, &["generate", "add_everything", "--to", &to], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("proven on a scratch database"), "{}", text(&out));

    // One transactional pair, then the online pair for what must not lock a table in use.
    let atomic = files_with(&dir, "_add_everything.up.sql");
    let online = files_with(&dir, "_add_everything_online.up.sql");
    assert_eq!((atomic.len(), online.len()), (1, 1), "{:?}", files_with(&dir, "add_everything"));
    let (atomic, online) = (&atomic[0].1, &online[0].1);
    assert!(online.starts_with("-- no-transaction\n"), "{online}");
    for (text, expected) in [
        (atomic, "alter type public.mood add value 'tired' after 'busy';"),
        (atomic, "add constraint notes_body_short CHECK ((length(body) < 1000)) not valid;"),
        (online, "validate constraint notes_body_short;"),
        (
            atomic,
            "add constraint notes_owner_fkey FOREIGN KEY (owner_id) REFERENCES owners(id) not valid;",
        ),
        (online, "validate constraint notes_owner_fkey;"),
        (atomic, "check (body is not null) not valid;"),
        (online, "alter table public.notes alter column body set not null;"),
        (online, "CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_body_idx ON public.notes"),
        (atomic, "create table archive.old_notes ("),
        (atomic, "CREATE TRIGGER notes_touch BEFORE UPDATE ON public.notes"),
        (atomic, "CREATE OR REPLACE FUNCTION public.notes_count()"),
        (atomic, "alter type public.pair add attribute c boolean;"),
        (atomic, "alter table public.owners alter column rank drop default;"),
        (atomic, "alter table public.owners alter column rank set default next_rank();"),
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!atomic.contains("CONCURRENTLY"), "{atomic}");

    // Applied to the database that holds rows; then the history gives the desired schema.
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let kept: i64 = sqlx::query_scalar("select count(*) from notes where body like 'note %'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(kept, 50);
    let out = migrate_src(&url, &dir, &["generate", "--check", "--to-url", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = std::fs::read_dir(&dir)?.count();
    let out = migrate_src(&url, &dir, &["generate", "again", "--to", &to], &[]);
    assert!(text(&out).contains("no change"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&dir)?.count(), before, "nothing written");

    // And back: the down files take it to the history's schema, keeping the rows.
    let out = migrate_src(&url, &dir, &["down", "--steps", "2"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let base = write_migrations(&[("1_base.sql", HISTORY)]);
    let out = migrate_src(&url, &base, &["generate", "--check", "--to-url", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let kept: i64 = sqlx::query_scalar("select count(*) from notes").fetch_one(&pool).await?;
    assert_eq!(kept, 50);
    Ok(())
}

/// A history of tables `t (id, title)` and `a (id, x)`, applied, with a row in each.
async fn two_tables_with_rows(
    pool: &PgPool,
) -> Result<(String, PathBuf), strata_test_support::BoxError> {
    let url = url_of(pool).await;
    let dir = write_migrations(&[(
        "1_base.sql",
        "create table t (id int primary key, title text);\ncreate table a (id int primary key, x text);\n",
    )]);
    let out = migrate_src(&url, &dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    sqlx::raw_sql("insert into t values (1, 'hello'); insert into a values (7, 'kept')")
        .execute(pool)
        .await?;
    Ok((url, dir))
}

/// Applies the generated renames (`t.title` to `name`, `a` to `b`): the rows are still there.
async fn renamed_rows_are_kept(pool: &PgPool, url: &str, dir: &Path) -> TestResult {
    let out = migrate_src(url, dir, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let name: String =
        sqlx::query_scalar("select name from t where id = 1").fetch_one(pool).await?;
    let x: String = sqlx::query_scalar("select x from b where id = 7").fetch_one(pool).await?;
    assert_eq!((name.as_str(), x.as_str()), ("hello", "kept"));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_possible_rename_is_refused_until_it_is_named(pool: PgPool) -> TestResult {
    let (url, dir) = two_tables_with_rows(&pool).await?;
    let to = desired(
        "create table t (id int primary key, name text);\ncreate table b (id int primary key, x text);\n",
    );
    let to = to.to_string_lossy().into_owned();
    let out = migrate_src(&url, &dir, &["generate", "renames", "--to", &to], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    for named in ["--rename public.t.title=name", "--rename public.a=b"] {
        assert!(text(&out).contains(named), "{named}: {}", text(&out));
    }
    assert_eq!(std::fs::read_dir(&dir)?.count(), 1, "nothing written");

    let out = migrate_src(
        &url,
        &dir,
        &["generate", "renames", "--to", &to, "--rename", "t.title=name", "--rename", "a=b"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let up = files_with(&dir, "_renames.up.sql");
    assert!(up[0].1.contains("alter table public.t rename column title to name;"), "{up:?}");
    assert!(up[0].1.contains("alter table public.b rename constraint a_pkey to b_pkey;"), "{up:?}");
    assert!(!up[0].1.contains("drop"), "{up:?}");
    renamed_rows_are_kept(&pool, &url, &dir).await?;
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_rename_written_in_the_schema_is_made_once_and_then_spent(pool: PgPool) -> TestResult {
    let (url, dir) = two_tables_with_rows(&pool).await?;
    let to = desired(
        "-- strata: rename t.title=name\ncreate table t (id int primary key, name text);\n\
         --strata: rename a = b\ncreate table b (id int primary key, x text);\n",
    );
    let to = to.to_string_lossy().into_owned();
    let out = migrate_src(&url, &dir, &["generate", "renames", "--to", &to], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let up = files_with(&dir, "_renames.up.sql");
    assert!(up[0].1.contains("alter table public.t rename column title to name;"), "{up:?}");
    assert!(up[0].1.contains("alter table public.a rename to b;"), "{up:?}");
    assert!(!up[0].1.contains("drop"), "{up:?}");
    renamed_rows_are_kept(&pool, &url, &dir).await?;

    // Applied, the hints stay in the schema and are spent: the history now gives it.
    let out = migrate_src(&url, &dir, &["generate", "--check", "--to", &to], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A hint that is not one names its file and line.
    let bad = desired("create table t (id int primary key);\n-- strata: rename t.title\n");
    let out = migrate_src(&url, &dir, &["generate", "x", "--to", &bad.to_string_lossy()], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("line 2: expected `-- strata: rename"), "{}", text(&out));
    assert!(text(&out).contains("schema.sql"), "{}", text(&out));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_type_change_is_generated_and_reported(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&[("1_base.sql", "create table t (id int primary key, n int);\n")]);
    let to = desired("create table t (id int primary key, n bigint);\n");
    let out = migrate_src(&url, &dir, &["generate", "widen", "--to", &to.to_string_lossy()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("[changing-column-type]"), "{}", text(&out));
    let up = files_with(&dir, "_widen.up.sql");
    assert!(up[0].1.contains("alter column n type bigint using n::bigint;"), "{up:?}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn pg_dump_output_is_a_desired_schema(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let out = migrate_src(&url, &project, &["up"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let pg_dump = strata_test_support::client_program("pg_dump")
        .ok_or("pg_dump is not installed (it comes with PostgreSQL's client programs)")?;
    let dumped =
        std::process::Command::new(pg_dump).args(["--schema-only", "--no-owner", &url]).output()?;
    assert!(dumped.status.success(), "{}", String::from_utf8_lossy(&dumped.stderr));
    let dump = desired(&String::from_utf8_lossy(&dumped.stdout));
    let dump = dump.join("schema.sql").to_string_lossy().into_owned();
    let empty = write_migrations(&[]);
    let out = migrate_src(&url, &empty, &["generate", "adopt", "--to", &dump], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = migrate_src(&url, &empty, &["generate", "--check", "--to", &dump], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Ok(())
}

/// `schema/` is the source of truth of this project's schema: replaying `migrations/` must
/// give exactly what it gives.
#[sqlx::test(migrations = false)]
async fn the_project_migrations_give_exactly_its_schema_directory(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (migrations, schema) = (root.join("migrations"), root.join("schema"));
    let schema = schema.to_string_lossy().into_owned();
    let out = migrate_src(&url, &migrations, &["generate", "--check", "--to", &schema], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "migrations/ and schema/ disagree: change schema/, then `just generate NAME`:\n{}",
        text(&out)
    );
    Ok(())
}

/// An object of a kind the generator does not make is refused by name, never left out.
#[sqlx::test(migrations = false)]
async fn what_the_generator_does_not_cover_is_refused_by_name(pool: PgPool) -> TestResult {
    let url = url_of(&pool).await;
    let dir = write_migrations(&[("1_base.sql", "create table t (id int primary key);\n")]);
    let to = desired(
        "create table t (id int primary key);\n\
         create aggregate total (int) (sfunc = int4pl, stype = int);\n",
    );
    let out = migrate_src(&url, &dir, &["generate", "sum", "--to", &to.to_string_lossy()], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("+ aggregate or window function total(integer)"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&dir)?.count(), 1, "nothing written");
    Ok(())
}

/// A change in place that uses what the same migration creates comes after it (found by the
/// sweep on Lemmy): a column retyped to a new enum, a function whose new body calls a new
/// sequence. A retype its values cannot be cast for is refused with the server's reason.
#[sqlx::test(migrations = false)]
async fn changes_in_place_come_after_what_they_use_and_an_impossible_cast_is_refused(
    pool: PgPool,
) -> TestResult {
    let url = url_of(&pool).await;
    let history = "create table t (id int primary key, mood text, level smallint);\n\
                   create function next_id() returns bigint language sql as 'select 1::bigint';\n";
    let dir = write_migrations(&[("1_base.sql", history)]);
    let to = desired(
        "create type mood as enum ('calm', 'busy');\n\
         create table t (id int primary key, mood mood, level smallint);\n\
         create sequence ids;\n\
         create function next_id() returns bigint language sql as $$ select nextval('ids') $$;\n",
    );
    let out = migrate_src(&url, &dir, &["generate", "moods", "--to", &to.to_string_lossy()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, up) = files_with(&dir, "moods.up").pop().expect("the up file");
    let position = |part: &str| up.find(part).unwrap_or_else(|| panic!("{part:?} in:\n{up}"));
    assert!(position("create type") < position("alter column mood type"), "{up}");
    assert!(position("create sequence") < position("FUNCTION public.next_id"), "{up}");

    let to = desired(
        "create type level as enum ('low', 'high');\n\
         create table t (id int primary key, mood text, level level);\n\
         create function next_id() returns bigint language sql as 'select 1::bigint';\n",
    );
    let again = write_migrations(&[("1_base.sql", history)]);
    let out =
        migrate_src(&url, &again, &["generate", "levels", "--to", &to.to_string_lossy()], &[]);
    assert_eq!(out.status.code(), Some(i32::from(exit::CHECK)), "{}", text(&out));
    assert!(text(&out).contains("cannot be cast to"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&again)?.count(), 1, "nothing written");
    Ok(())
}
