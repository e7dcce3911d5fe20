//! The migration lock: the same advisory lock key as sqlx's `Migrator`, so the two runners
//! exclude each other, but taken by polling `pg_try_advisory_lock`, never by a blocking wait
//! in the server (which can deadlock with a `CREATE INDEX CONCURRENTLY` the holder is running).

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::error::MigrateError;
use crate::runner::observe::{Observer, Progress, tell};

/// sqlx's lock key for a database: `0x3d32ad9e * crc32(name)` (see `generate_lock_id` in
/// sqlx-postgres' `migrate.rs`).
pub(crate) fn sqlx_lock_key(database_name: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database_name.as_bytes()))
}

/// CRC-32/ISO-HDLC (the zlib CRC), with the `crc` crate, as sqlx computes it.
fn crc32(bytes: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(bytes)
}

/// Tries the lock with backoff until `wait` runs out, logging who holds it meanwhile.
/// Returns how long it waited.
pub(crate) async fn acquire(
    conn: &mut PgConnection,
    key: i64,
    wait: Duration,
    observer: Option<&Observer>,
) -> Result<Duration, MigrateError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut last_report: Option<Instant> = None;
    loop {
        // The key is a number we computed: as a literal, the try is one round trip (simple
        // protocol), where a prepared statement costs two on a fresh connection.
        let locked: bool =
            sqlx::raw_sql(AssertSqlSafe(format!("select pg_try_advisory_lock({key})")))
                .fetch_one(&mut *conn)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(MigrateError::db("trying the migration lock"))?;
        if locked {
            let waited = start.elapsed();
            if last_report.is_some() {
                // Said once the holder is gone: a runner that finished, or a session the
                // server ended (its client vanished or hung in a transaction).
                tracing::info!(
                    lock.key = key,
                    lock.waited_ms = waited.as_millis() as u64,
                    "took the migration lock after waiting for it"
                );
            }
            return Ok(waited);
        }
        let waited = start.elapsed();
        if waited >= wait {
            let holder = holder(conn, key).await;
            return Err(MigrateError::LockTimeout { waited, holder });
        }
        if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
            let holder = holder(conn, key).await;
            tracing::info!(
                lock.key = key,
                lock.waited_ms = waited.as_millis() as u64,
                lock.holder = %holder,
                "waiting for another migration runner to release the lock"
            );
            tell(observer, || Progress::LockWait { waited, holder });
            last_report = Some(Instant::now());
        }
        tokio::time::sleep(delay.min(wait.saturating_sub(waited))).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Releases the lock (closing the session releases it too).
pub(crate) async fn release(conn: &mut PgConnection, key: i64) -> Result<(), MigrateError> {
    sqlx::raw_sql(AssertSqlSafe(format!("select pg_advisory_unlock({key})")))
        .execute(conn)
        .await
        .map_err(MigrateError::db("releasing the migration lock"))?;
    Ok(())
}

/// Whether another session holds the migration lock of the current database (a runner is at
/// work); read-only, it never takes the lock.
pub(crate) async fn held_by_another_session(conn: &mut PgConnection) -> Result<bool, MigrateError> {
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&mut *conn)
        .await
        .map_err(MigrateError::db("reading the database name"))?;
    sqlx::query_scalar(
        "select exists (
           select 1 from pg_locks l
            where l.locktype = 'advisory' and l.granted and l.pid <> pg_backend_pid()
              and l.classid = (($1::bigint >> 32) & 4294967295)::oid
              and l.objid = ($1::bigint & 4294967295)::oid
              and l.objsubid = 1
              and l.database = (select oid from pg_database where datname = current_database()))",
    )
    .bind(sqlx_lock_key(&database))
    .fetch_one(conn)
    .await
    .map_err(MigrateError::db("looking for a runner holding the lock"))
}

/// The session holding the lock, as `pg_stat_activity` shows it.
#[derive(sqlx::FromRow)]
struct Holder {
    pid: i32,
    application_name: String,
    client: Option<String>,
    since: String,
    state: String,
    /// Seconds in `state`.
    state_secs: i32,
}

/// Who holds the lock: pid, application, client, since when and what it is doing.
async fn holder(conn: &mut PgConnection, key: i64) -> String {
    let row: Result<Option<Holder>, _> = sqlx::query_as(
        "select a.pid, a.application_name, host(a.client_addr) as client,
                to_char(a.backend_start, 'YYYY-MM-DD\"T\"HH24:MI:SSOF') as since,
                coalesce(a.state, '') as state,
                coalesce(extract(epoch from now() - a.state_change), 0)::int4 as state_secs
           from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted
            and l.classid = (($1::bigint >> 32) & 4294967295)::oid
            and l.objid = ($1::bigint & 4294967295)::oid
            and l.objsubid = 1
            and l.database = (select oid from pg_database where datname = current_database())
          limit 1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await;
    match row {
        Ok(Some(h)) => format!(
            "pid {} (application {:?}, client {}, connected since {}, {} for {} s)",
            h.pid,
            h.application_name,
            h.client.as_deref().unwrap_or("local socket"),
            h.since,
            h.state,
            h.state_secs
        ),
        Ok(None) => "released just now".to_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn lock_key_is_sqlx_formula() {
        assert_eq!(sqlx_lock_key("postgres"), 0x3d32_ad9e * i64::from(crc32(b"postgres")));
        assert!(sqlx_lock_key("strata") > 0);
    }
}
