//! Waiting for a condition with a deadline (never sleep-and-hope): `common`'s wait, as an
//! `anyhow` result for the harness and tests, and the harness's deadline.

use std::future::Future;
use std::time::Duration;

pub use tributary_common::wait::TimedOut;

/// The deadline for what a cluster does on its own (elections, registration, copies): seconds
/// normally, more on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, or fails naming `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    Ok(tributary_common::wait::until(what, timeout, check).await?)
}
