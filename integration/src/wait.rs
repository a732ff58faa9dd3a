//! Waiting for a condition with a deadline (never sleep-and-hope).

use std::future::Future;
use std::time::{Duration, Instant};

/// The deadline for what a cluster does on its own (elections, registration, copies): seconds
/// normally, more on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or fails naming `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
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
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
