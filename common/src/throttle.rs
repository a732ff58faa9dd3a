//! Per-connection throttling of the calls that move data, off by default (as Eclipse Ditto's
//! `ditto.gateway.streaming.websocket.throttling { enabled, interval, limit }`): a connection
//! may move `messages` and `bytes` per `interval`, up to that much at once; beyond, its calls
//! wait until its budget refills. A throttled client is slowed, never cut off, and its budget
//! is its connection's own, so it never slows another client. The limiters are `governor`'s
//! (GCRA) keyed by the peer's address (one TCP connection); a key unused for a whole interval
//! is indistinguishable from a fresh one and is dropped, so the map stays as small as the set
//! of recently busy connections.

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Below this many keys the map is never swept.
const MIN_SWEEP: usize = 1024;

/// The `[throttling]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottlingConfig {
    /// Off by default: nothing is throttled.
    pub enabled: bool,
    /// The budget's period (Ditto's `interval`).
    #[serde(with = "crate::duration::human")]
    pub interval: Duration,
    /// Messages (ingested entries, published or delivered messages, queried entries) one
    /// connection may move per interval; 0: no message limit.
    pub messages: u32,
    /// Bytes (encoded size of those messages) one connection may move per interval; 0: no
    /// byte limit.
    pub bytes: u32,
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(1),
            messages: 10_000,
            bytes: 16 << 20,
        }
    }
}

impl ThrottlingConfig {
    /// Checks the keys (of section `section`); the error names the bad one.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.interval.is_zero() {
            return Err(format!("key `{section}.interval`: must be more than 0s"));
        }
        if self.messages == 0 && self.bytes == 0 {
            return Err(format!(
                "key `{section}.messages`/`{section}.bytes`: throttling is enabled but limits \
                 nothing; set one of them"
            ));
        }
        Ok(())
    }

    /// The throttle, or `None` when throttling is off.
    pub fn build(&self, section: &str) -> Result<Option<Arc<Throttle>>, String> {
        self.validate(section)?;
        if !self.enabled {
            return Ok(None);
        }
        Ok(Some(Arc::new(Throttle {
            messages: Bucket::new(self.messages, self.interval),
            bytes: Bucket::new(self.bytes, self.interval),
            sweep_at: AtomicUsize::new(MIN_SWEEP),
        })))
    }
}

/// One limit (messages or bytes) per connection.
struct Bucket {
    limiter: DefaultKeyedRateLimiter<SocketAddr>,
    burst: NonZeroU32,
}

impl Bucket {
    fn new(per_interval: u32, interval: Duration) -> Option<Bucket> {
        let burst = NonZeroU32::new(per_interval)?;
        let period = (interval / per_interval).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Bucket {
            limiter: RateLimiter::keyed(quota),
            burst,
        })
    }

    /// Takes `n` from `peer`'s budget, waiting while it is short; whether it had to wait.
    /// More than a whole interval's worth is taken a burst at a time.
    async fn take(&self, peer: &SocketAddr, mut n: u64) -> bool {
        let mut waited = false;
        while let Some(step) = NonZeroU32::new(n.min(u64::from(self.burst.get())) as u32) {
            match self.limiter.check_key_n(peer, step) {
                Ok(Ok(())) => n -= u64::from(step.get()),
                Ok(Err(not_until)) => {
                    waited = true;
                    let wait = not_until.wait_time_from(self.limiter.clock().now());
                    tokio::time::sleep(wait).await;
                }
                // A step never exceeds the burst; should it, let it through rather than spin.
                Err(_) => n -= u64::from(step.get()),
            }
        }
        waited
    }

    fn sweep(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.limiter.len()
    }
}

/// The per-connection budgets of one server.
pub struct Throttle {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
    /// Sweep idle keys once the map holds this many (doubling with what stays).
    sweep_at: AtomicUsize,
}

impl Throttle {
    async fn spend(&self, peer: SocketAddr, messages: u64, bytes: u64, rpc: &'static str) {
        let mut waited = false;
        if let Some(b) = &self.messages {
            waited |= b.take(&peer, messages).await;
        }
        if let Some(b) = &self.bytes {
            waited |= b.take(&peer, bytes).await;
        }
        if waited {
            metrics::counter!("tributary_throttled_waits_total", "rpc" => rpc).increment(1);
            tracing::trace!(%peer, rpc, "throttled");
        }
        self.maybe_sweep();
    }

    fn maybe_sweep(&self) {
        let len = [&self.messages, &self.bytes]
            .into_iter()
            .flatten()
            .map(|b| b.limiter.len())
            .max()
            .unwrap_or(0);
        if len < self.sweep_at.load(Ordering::Relaxed) {
            return;
        }
        let kept = [&self.messages, &self.bytes]
            .into_iter()
            .flatten()
            .map(Bucket::sweep)
            .max()
            .unwrap_or(0);
        self.sweep_at
            .store(MIN_SWEEP.max(kept.saturating_mul(2)), Ordering::Relaxed);
    }

    /// How many connections have a budget in use (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        [&self.messages, &self.bytes]
            .into_iter()
            .flatten()
            .map(|b| b.limiter.len())
            .max()
            .unwrap_or(0)
    }
}

/// What one call may spend: its connection's budget, or nothing to limit (throttling off,
/// a peer address unknown, or a caller the server does not throttle).
#[derive(Clone, Default)]
pub struct Budget {
    of: Option<(Arc<Throttle>, SocketAddr)>,
    rpc: &'static str,
}

impl Budget {
    /// The budget of the connection from `peer`, for calls of `rpc` (a metric label).
    pub fn of(
        throttle: Option<&Arc<Throttle>>,
        peer: Option<SocketAddr>,
        rpc: &'static str,
    ) -> Budget {
        Budget {
            of: throttle.cloned().zip(peer),
            rpc,
        }
    }

    /// Spends `messages` and `bytes`, waiting while the connection is over its budget.
    pub async fn spend(&self, messages: usize, bytes: usize) {
        if let Some((t, peer)) = &self.of {
            t.spend(*peer, messages as u64, bytes as u64, self.rpc)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::time::Instant;

    fn throttle(messages: u32, bytes: u32, interval_ms: u64) -> Arc<Throttle> {
        ThrottlingConfig {
            enabled: true,
            interval: Duration::from_millis(interval_ms),
            messages,
            bytes,
        }
        .build("throttling")
        .expect("valid")
        .expect("enabled")
    }

    fn peer(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn off_by_default_and_bad_keys_are_named() {
        assert!(ThrottlingConfig::default()
            .build("throttling")
            .expect("valid")
            .is_none());
        let on = ThrottlingConfig {
            enabled: true,
            ..Default::default()
        };
        assert!(on.build("throttling").expect("valid").is_some());
        let e = ThrottlingConfig {
            interval: Duration::ZERO,
            ..on.clone()
        }
        .validate("throttling")
        .unwrap_err();
        assert!(e.contains("`throttling.interval`"), "{e}");
        let e = ThrottlingConfig {
            messages: 0,
            bytes: 0,
            ..on
        }
        .validate("throttling")
        .unwrap_err();
        assert!(e.contains("`throttling.messages`"), "{e}");
    }

    #[tokio::test]
    async fn a_connection_over_its_budget_waits_and_another_does_not() {
        let t = throttle(10, 0, 300);
        let (a, b) = (
            Budget::of(Some(&t), peer(1000), "test"),
            Budget::of(Some(&t), peer(1001), "test"),
        );
        // A burst of one interval's worth goes at once.
        assert!(a.spend(10, 0).now_or_never().is_some());
        // More must wait for the budget to refill...
        assert!(a.spend(5, 0).now_or_never().is_none());
        // ...while another connection still has its own whole budget.
        assert!(b.spend(10, 0).now_or_never().is_some());
        let started = Instant::now();
        a.spend(5, 0).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Unknown peers and no throttle limit nothing.
        for free in [
            Budget::of(Some(&t), None, "t"),
            Budget::of(None, peer(1), "t"),
        ] {
            assert!(free.spend(1_000, 1 << 30).now_or_never().is_some());
        }
    }

    #[tokio::test]
    async fn more_than_a_burst_is_taken_a_burst_at_a_time() {
        let t = throttle(0, 1000, 200);
        let started = Instant::now();
        // 2.5 intervals' worth: one at once, then 1.5 intervals of waiting.
        Budget::of(Some(&t), peer(2000), "test")
            .spend(1, 2500)
            .await;
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn idle_connections_are_dropped_from_the_map() {
        let t = throttle(5, 0, 20);
        for port in 0..8 {
            Budget::of(Some(&t), peer(3000 + port), "t")
                .spend(1, 0)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        t.sweep_at.store(4, Ordering::Relaxed);
        // The next spend finds the map over its sweep mark and drops the idle keys.
        Budget::of(Some(&t), peer(4000), "t").spend(1, 0).await;
        assert!(t.tracked() <= 1, "{} keys kept", t.tracked());
    }
}
