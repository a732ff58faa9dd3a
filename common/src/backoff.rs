//! Retry delays: doubling from a base up to a cap, with random jitter on top so that the many
//! clients of a restarted server do not come back in lockstep.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// No delay (before jitter) grows past this.
    pub max: Duration,
    /// Jitter added on top: up to `delay / jitter_divisor` (0: none).
    pub jitter_divisor: u32,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration, jitter_divisor: u32) -> Self {
        Backoff {
            base,
            max,
            jitter_divisor,
        }
    }

    /// The delay before retry number `attempt` (0 or 1: the base).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let d = doubled.min(self.max);
        if self.jitter_divisor == 0 {
            return d;
        }
        let spread =
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX) / u64::from(self.jitter_divisor);
        d + Duration::from_millis(rand::rng().random_range(0..=spread))
    }

    /// The longest delay `delay` can return.
    pub fn ceiling(&self) -> Duration {
        match self.jitter_divisor {
            0 => self.max,
            j => self.max + self.max / j,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_and_is_capped_with_bounded_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 4);
        for attempt in 0..40 {
            let d = b.delay(attempt);
            let plain = Duration::from_millis(100)
                .saturating_mul(1 << attempt.saturating_sub(1).min(16))
                .min(Duration::from_secs(5));
            assert!(
                d >= plain && d <= plain + plain / 4,
                "attempt {attempt}: {d:?}"
            );
            assert!(d <= b.ceiling());
        }
        let flat = Backoff::new(Duration::from_millis(10), Duration::from_millis(40), 0);
        assert_eq!(flat.delay(1), Duration::from_millis(10));
        assert_eq!(flat.delay(2), Duration::from_millis(20));
        assert_eq!(flat.delay(9), Duration::from_millis(40));
    }
}
