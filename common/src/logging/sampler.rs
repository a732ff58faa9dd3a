//! The `adaptive` sampler (Eclipse Ditto's, after Kamon's): keeps the traces started per
//! second near a goal whatever the load. It counts the roots it is asked about in one-second
//! windows; each window samples with the probability that would have met the goal in the
//! window before (goal ÷ roots seen), and never more than the goal, so a sudden burst costs
//! at most one window's goal. Only roots reach it: a trace continued from a caller keeps the
//! caller's decision (it sits under `ParentBased`).

use crate::sync::lock;
use opentelemetry::trace::{
    Link, SamplingDecision, SamplingResult, SpanKind, TraceContextExt, TraceId,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::ShouldSample;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Samples about `goal` new traces per second. Clones share the count.
#[derive(Debug, Clone)]
pub struct AdaptiveSampler {
    goal: f64,
    window: Arc<Mutex<Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    roots: u64,
    sampled: u64,
    /// The share of roots this window samples.
    probability: f64,
}

impl AdaptiveSampler {
    /// `goal`: traces per second, more than 0 (checked by the config).
    pub fn new(goal: f64) -> Self {
        AdaptiveSampler {
            goal,
            window: Arc::new(Mutex::new(Window {
                started: Instant::now(),
                roots: 0,
                sampled: 0,
                probability: 1.0,
            })),
        }
    }

    /// Whether the root of `trace_id`, started at `now`, is sampled.
    pub fn sample_at(&self, now: Instant, trace_id: TraceId) -> bool {
        let mut w = lock(&self.window);
        let elapsed = now.saturating_duration_since(w.started);
        if elapsed >= WINDOW {
            // Roots per second over the window that ended (a long quiet gap counts as one
            // quiet window: the next starts at full probability).
            let rate = if elapsed >= 2 * WINDOW {
                0.0
            } else {
                w.roots as f64 / elapsed.as_secs_f64()
            };
            w.probability = if rate <= self.goal {
                1.0
            } else {
                self.goal / rate
            };
            w.started = now;
            w.roots = 0;
            w.sampled = 0;
        }
        w.roots += 1;
        if w.sampled as f64 >= self.goal.ceil() {
            return false;
        }
        // The trace id's low 64 bits are random: a draw, as TraceIdRatioBased does.
        let draw = (u128::from_be_bytes(trace_id.to_bytes()) as u64) as f64 / u64::MAX as f64;
        let sampled = draw < w.probability;
        if sampled {
            w.sampled += 1;
        }
        sampled
    }
}

impl ShouldSample for AdaptiveSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let trace_state = parent_context
            .map(|cx| cx.span().span_context().trace_state().clone())
            .unwrap_or_default();
        let decision = if self.sample_at(Instant::now(), trace_id) {
            SamplingDecision::RecordAndSample
        } else {
            SamplingDecision::Drop
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trace ids as random as real ones (a fixed-seed LCG: repeatable).
    fn ids() -> impl Iterator<Item = TraceId> {
        let mut x: u128 = 0x2545_f491_4f6c_dd1d;
        std::iter::repeat_with(move || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            TraceId::from_bytes((x ^ (x >> 67)).to_be_bytes())
        })
    }

    /// Sampled roots in each second of `secs`, `per_sec` roots a second spread evenly.
    fn run(s: &AdaptiveSampler, start: Instant, secs: u64, per_sec: u64) -> Vec<u64> {
        let mut ids = ids();
        (0..secs)
            .map(|sec| {
                (0..per_sec)
                    .filter(|i| {
                        let at = start
                            + Duration::from_secs(sec)
                            + Duration::from_secs_f64(*i as f64 / per_sec as f64);
                        s.sample_at(at, ids.next().unwrap_or(TraceId::INVALID))
                    })
                    .count() as u64
            })
            .collect()
    }

    #[test]
    fn under_load_it_keeps_near_the_goal() {
        let s = AdaptiveSampler::new(10.0);
        let per_sec = run(&s, Instant::now(), 20, 1_000);
        // Never above the goal; after the first window, near it (the probability is set
        // from the window before, the draws are random).
        assert!(per_sec.iter().all(|n| *n <= 10), "{per_sec:?}");
        let settled = &per_sec[2..];
        let mean = settled.iter().sum::<u64>() as f64 / settled.len() as f64;
        assert!((6.0..=10.0).contains(&mean), "{per_sec:?}");
    }

    #[test]
    fn below_the_goal_every_root_is_sampled() {
        let s = AdaptiveSampler::new(10.0);
        assert_eq!(run(&s, Instant::now(), 5, 4), vec![4; 5]);
    }

    #[test]
    fn it_follows_the_load_down_and_up() {
        let s = AdaptiveSampler::new(5.0);
        let start = Instant::now();
        let busy = run(&s, start, 5, 500);
        assert!(busy.iter().all(|n| *n <= 5), "{busy:?}");
        // Then quiet: after one window at the old probability, everything again.
        let quiet = run(&s, start + Duration::from_secs(5), 5, 3);
        assert_eq!(&quiet[1..], &[3, 3, 3, 3], "{quiet:?}");
        let busy_again = run(&s, start + Duration::from_secs(10), 5, 500);
        assert!(busy_again.iter().all(|n| *n <= 5), "{busy_again:?}");
        assert!(busy_again[1..].iter().sum::<u64>() >= 8, "{busy_again:?}");
    }
}
