//! The one retry loop of the runner: a transaction, or a statement run in one, whose
//! `lock_timeout` expired (SQLSTATE 55P03) was rolled back whole and may run again after a
//! growing, jittered wait. The transactional and the no-transaction paths both use it.

use std::time::Duration;

use crate::error::MigrateError;
use crate::runner::options::Settings;
use crate::runner::sqlstate;

/// How a try of the migration's own SQL failed.
#[derive(Debug)]
pub(crate) struct SqlFailure {
    /// The server's error.
    pub error: sqlx::Error,
    /// Whether the SQL ran in a transaction that was rolled back whole, so that running it
    /// again is safe (a statement run outside one, such as `CREATE INDEX CONCURRENTLY`, is
    /// never retried: cancelled, it leaves an INVALID index behind).
    pub rolled_back: bool,
}

/// One try: `Err` for a bookkeeping failure (never retried), `Ok(Err)` for the SQL's own.
pub(crate) type Try<T> = Result<Result<T, SqlFailure>, MigrateError>;

/// What the loop ended with, and how many retries it took.
pub(crate) struct Tried<T> {
    pub result: Result<T, SqlFailure>,
    pub retries: u32,
}

/// Runs `attempt` (given the retry number, 0 first) until it succeeds, fails for another
/// reason than a lock timeout, or `settings.lock_retries` retries are spent; `on_retry` is
/// told each retry and its wait before the wait.
pub(crate) async fn on_lock_timeout<T>(
    settings: &Settings,
    mut attempt: impl AsyncFnMut(u32) -> Try<T>,
    on_retry: impl Fn(u32, Duration),
) -> Result<Tried<T>, MigrateError> {
    let mut retries = 0;
    loop {
        match attempt(retries).await? {
            Err(failure)
                if failure.rolled_back
                    && sqlstate::is_lock_timeout(&failure.error)
                    && retries < settings.lock_retries =>
            {
                let delay = backoff(settings.retry_base, retries);
                retries += 1;
                on_retry(retries, delay);
                tokio::time::sleep(delay).await;
            }
            result => return Ok(Tried { result, retries }),
        }
    }
}

/// `base * 2^retry`, at most 30 s, plus up to half of that again as jitter, so runners that
/// collided (one per replica of a service, say) do not collide again.
pub(crate) fn backoff(base: Duration, retry: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.min(16)).min(Duration::from_secs(30));
    exp + exp.mul_f64(rand::random_range(0.0..0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let base = Duration::from_millis(100);
        for retry in 0..20 {
            let d = backoff(base, retry);
            let exp = base.saturating_mul(1 << retry.min(16)).min(Duration::from_secs(30));
            assert!(d >= exp && d <= exp.mul_f64(1.5), "{retry}: {d:?}");
        }
    }

    #[test]
    fn jitter_differs_between_calls() {
        let base = Duration::from_millis(100);
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(base, 3)).collect();
        assert!(waits.len() > 1, "twenty waits were all equal: {waits:?}");
    }
}
