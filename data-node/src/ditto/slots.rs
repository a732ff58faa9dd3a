//! Copy slots: at most `ditto_max_workers` (well, target) workers copy at once on a node; a
//! caught-up worker gives its slot back while it only tails. The node counts who holds a slot
//! and the most that ever did at once, which `Ditto.Stats` reports.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
