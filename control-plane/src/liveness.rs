//! Data-node liveness, as the leader sees it from registrations and heartbeats (members send
//! both on to the leader). Soft state: a new leader learns it again within one heartbeat
//! interval. Bounded whoever calls: a heartbeat carries at most `limits.max_heartbeat_*`, and
//! only registered data nodes are remembered (what belongs to a node no longer registered is
//! dropped at the next sweep).

use crate::catalog::Limits;
use crate::error::CatalogError;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tributary_common::sync::{lock, read, write};
use tributary_proto::v1::{HeartbeatRequest, OwnedStats};

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
    last_sweep: Arc<Mutex<Instant>>,
}

/// Whether a heartbeat is within the limits (checked on the member that takes it, before it
/// is sent on to the leader).
pub fn check_heartbeat(hb: &HeartbeatRequest, limits: &Limits) -> Result<(), CatalogError> {
    let max = limits.max_heartbeat_stats;
    if hb.stats.len() > max {
        return Err(CatalogError::invalid(
            "stats",
            format!(
                "{} entries, over the limit of {max} (`limits.max_heartbeat_stats`)",
                hb.stats.len()
            ),
        ));
    }
    let (bytes, max) = (hb.encoded_len(), limits.max_heartbeat_bytes);
    if bytes > max {
        return Err(CatalogError::invalid(
            "heartbeat",
            format!(
                "{bytes} bytes encoded, over the limit of {max} (`limits.max_heartbeat_bytes`)"
            ),
        ));
    }
    Ok(())
}

impl Liveness {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            beats: Arc::default(),
            last_sweep: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Records a beat of `node`, which the caller found registered. Every heartbeat
    /// timeout, also forgets the nodes `registered` no longer knows.
    pub fn record(
        &self,
        node: u64,
        healthy: bool,
        stats: Vec<OwnedStats>,
        registered: impl Fn(u64) -> bool,
    ) {
        let mut beats = write(&self.beats);
        beats.insert(
            node,
            Beat {
                at: Instant::now(),
                healthy,
                stats,
            },
        );
        let mut last = lock(&self.last_sweep);
        if last.elapsed() >= self.timeout {
            beats.retain(|id, _| registered(*id));
            *last = Instant::now();
        }
    }

    pub fn get(&self, node: u64) -> Option<Beat> {
        read(&self.beats).get(&node).cloned()
    }

    pub fn is_up(&self, node: u64) -> bool {
        read(&self.beats)
            .get(&node)
            .is_some_and(|b| b.healthy && b.at.elapsed() < self.timeout)
    }

    /// Nodes heard from within the timeout and healthy.
    pub fn live(&self) -> Vec<u64> {
        let beats = read(&self.beats);
        let mut ids: Vec<u64> = beats
            .iter()
            .filter(|(_, beat)| beat.healthy && beat.at.elapsed() < self.timeout)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// How many nodes' beats are held, and their stats' encoded bytes (what a flood of
    /// heartbeats could grow).
    pub fn held(&self) -> (usize, usize) {
        let beats = read(&self.beats);
        let bytes = beats
            .values()
            .flat_map(|b| &b.stats)
            .map(Message::encoded_len)
            .sum();
        (beats.len(), bytes)
    }
}
