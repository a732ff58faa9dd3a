//! What ditto workers report, for `Ditto.Stats`, the stats entries and the metrics to read:
//! per-worker counters on a [`DittoBoard`], and the node's copy slots ([`CopySlots`]): at most
//! `ditto_max_workers` (well, target) workers copy at once; a caught-up worker gives its slot
//! back while it only tails. The slots count who holds one and the most that ever did at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tributary_common::sync::lock;
use tributary_proto::v1::DittoWorkerStats;

#[derive(Default)]
pub struct WorkerStats {
    pub entries: AtomicU64,
    pub bytes: AtomicU64,
    pub retagged: AtomicU64,
    pub dropped: AtomicU64,
    pub corrupt: AtomicU64,
    pub duplicates: AtomicU64,
    pub shard_index: AtomicU64,
    pub shard_count: AtomicU64,
    pub behind: AtomicU64,
    text: Mutex<Text>,
}

#[derive(Default, Clone)]
struct Text {
    state: String,
    last_error: String,
    endpoint: String,
}

impl WorkerStats {
    pub fn set_state(&self, state: &str) {
        lock(&self.text).state = state.to_string();
    }
    pub fn set_error(&self, err: &str) {
        let mut t = lock(&self.text);
        t.state = "retrying".into();
        t.last_error = err.to_string();
    }
    pub fn set_endpoint(&self, ep: &str) {
        let mut t = lock(&self.text);
        if t.endpoint != ep {
            t.endpoint = ep.to_string();
        }
    }
}

/// Every worker's stats on this node, keyed by (well, target).
#[derive(Default)]
pub struct DittoBoard {
    workers: Mutex<BTreeMap<(String, String), Arc<WorkerStats>>>,
    /// Bytes per second over the last interval, per worker.
    rates: Mutex<HashMap<(String, String), f64>>,
}

impl DittoBoard {
    pub fn get_or_add(&self, well: &str, target: &str) -> Arc<WorkerStats> {
        lock(&self.workers)
            .entry((well.to_string(), target.to_string()))
            .or_default()
            .clone()
    }

    pub fn remove(&self, well: &str, target: &str) {
        lock(&self.workers).remove(&(well.to_string(), target.to_string()));
        lock(&self.rates).remove(&(well.to_string(), target.to_string()));
    }

    /// Forgets every worker (their supervisor stopped).
    pub fn clear(&self) {
        lock(&self.workers).clear();
        lock(&self.rates).clear();
    }

    /// The worker's bytes per second over the last stats interval.
    pub fn set_rate(&self, well: &str, target: &str, bps: f64) {
        lock(&self.rates).insert((well.to_string(), target.to_string()), bps);
    }

    pub fn snapshot(&self) -> Vec<DittoWorkerStats> {
        let workers = lock(&self.workers);
        let rates = lock(&self.rates);
        workers
            .iter()
            .map(|((well, target), s)| {
                let t = lock(&s.text).clone();
                DittoWorkerStats {
                    well: well.clone(),
                    target: target.clone(),
                    state: t.state,
                    shard_index: s.shard_index.load(Relaxed),
                    shard_count: s.shard_count.load(Relaxed),
                    entries_sent: s.entries.load(Relaxed),
                    bytes_sent: s.bytes.load(Relaxed),
                    entries_behind: s.behind.load(Relaxed),
                    unresolvable_retagged: s.retagged.load(Relaxed),
                    unresolvable_dropped: s.dropped.load(Relaxed),
                    corrupt_skipped: s.corrupt.load(Relaxed),
                    duplicate_batches: s.duplicates.load(Relaxed),
                    last_error: t.last_error,
                    bps: rates
                        .get(&(well.clone(), target.clone()))
                        .copied()
                        .unwrap_or(0.0),
                    endpoint: t.endpoint,
                }
            })
            .collect()
    }
}

/// The node's copy slots.
pub struct CopySlots {
    max: u32,
    sem: Arc<Semaphore>,
    copying: AtomicU32,
    peak: AtomicU32,
}

/// A held slot; dropping it gives the slot back.
pub struct CopySlot {
    _permit: OwnedSemaphorePermit,
    slots: Arc<CopySlots>,
}

impl Drop for CopySlot {
    fn drop(&mut self) {
        self.slots.copying.fetch_sub(1, Relaxed);
    }
}

impl CopySlots {
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Arc::new(CopySlots {
            max: max as u32,
            sem: Arc::new(Semaphore::new(max)),
            copying: AtomicU32::new(0),
            peak: AtomicU32::new(0),
        })
    }

    /// Waits for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> CopySlot {
        // The semaphore is never closed: `acquire_owned` can only fail once it is.
        let permit = match self.sem.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("copy slots are never closed"),
        };
        let now = self.copying.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(now, Relaxed);
        CopySlot {
            _permit: permit,
            slots: self.clone(),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn copying(&self) -> u32 {
        self.copying.load(Relaxed)
    }

    pub fn peak(&self) -> u32 {
        self.peak.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_holders_and_their_peak() {
        let slots = CopySlots::new(2);
        let a = slots.acquire().await;
        let b = slots.acquire().await;
        assert_eq!((slots.copying(), slots.peak()), (2, 2));
        // A third waits until one is given back.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire());
        assert!(waiting.await.is_err());
        drop(a);
        let c = slots.acquire().await;
        assert_eq!((slots.copying(), slots.peak()), (2, 2));
        drop((b, c));
        assert_eq!((slots.copying(), slots.peak(), slots.max()), (0, 2, 2));
    }
}
