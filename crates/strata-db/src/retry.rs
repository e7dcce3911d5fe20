//! Retrying a transaction that lost a serialization conflict or a deadlock.

use std::future::Future;
use std::time::Duration;

use crate::Error;

/// Runs `attempt` up to `max_attempts` times while it fails with a retryable error
/// ([`Error::is_transaction_conflict`]: 40001 or 40P01), sleeping a growing, jittered delay between
/// tries. `attempt` must run a whole transaction (begin to commit) so a retry starts clean.
///
/// # Errors
///
/// The last error, or the first that is not retryable.
pub async fn with_retries<T, F, Fut>(max_attempts: u32, mut attempt: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(tries).await {
            Err(e) if e.is_transaction_conflict() && tries < max_attempts => {
                let base = 10u64 << tries.min(8);
                let jitter = rand::random_range(0..base);
                tracing::warn!(attempt = tries, error = %e, "retrying transaction");
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            result => return result,
        }
    }
}
