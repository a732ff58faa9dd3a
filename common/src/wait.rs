//! Waiting for a condition with a deadline, never sleep-and-hope: what tests, the cluster
//! harness and tools use to wait for something a cluster does on its own.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a wait that ran out of time says.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {timeout:?} waiting for {what}")]
pub struct TimedOut {
    pub what: String,
    pub timeout: Duration,
}

/// Polls `check` every 20 ms until it returns `Some`, or fails naming `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TimedOut {
                what: what.to_string(),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
