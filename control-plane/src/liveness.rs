//! Data-node liveness, as the leader sees it from registrations and heartbeats (members send
//! both on to the leader). Soft state: a new leader learns it again within one heartbeat
//! interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tributary_proto::v1::OwnedStats;

#[derive(Clone, Debug)]
pub struct Beat {
    pub at: Instant,
    pub healthy: bool,
    pub stats: Vec<OwnedStats>,
}

#[derive(Clone)]
pub struct Liveness {
    timeout: Duration,
    beats: Arc<RwLock<HashMap<u64, Beat>>>,
}

impl Liveness {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            beats: Arc::default(),
        }
    }

    pub fn record(&self, node: u64, healthy: bool, stats: Vec<OwnedStats>) {
        if let Ok(mut b) = self.beats.write() {
            b.insert(
                node,
                Beat {
                    at: Instant::now(),
                    healthy,
                    stats,
                },
            );
        }
    }

    pub fn get(&self, node: u64) -> Option<Beat> {
        self.beats.read().ok()?.get(&node).cloned()
    }

    pub fn is_up(&self, node: u64) -> bool {
        self.get(node)
            .is_some_and(|b| b.healthy && b.at.elapsed() < self.timeout)
    }

    /// Nodes heard from within the timeout and healthy.
    pub fn live(&self) -> Vec<u64> {
        let Ok(b) = self.beats.read() else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = b
            .iter()
            .filter(|(_, beat)| beat.healthy && beat.at.elapsed() < self.timeout)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}
