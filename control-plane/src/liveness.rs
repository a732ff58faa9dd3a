//! Data-node liveness, as the leader sees it from registrations and heartbeats (members send
//! both on to the leader). Soft state: a new leader learns it again within one heartbeat
//! interval. Bounded whoever calls: a heartbeat carries at most `limits.max_heartbeat_*`, and
//! only registered data nodes are remembered (what belongs to a node no longer registered is
//! dropped at the next sweep). Gauge: `tributary_cp_liveness_nodes`, the nodes it holds.

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
        metrics::gauge!("tributary_cp_liveness_nodes").set(beats.len() as f64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_no_longer_registered_are_forgotten_at_the_next_sweep() {
        let live = Liveness::new(Duration::ZERO);
        let stats = vec![OwnedStats {
            name: "default:w".into(),
            ..Default::default()
        }];
        live.record(1, true, stats.clone(), |_| true);
        live.record(2, true, stats.clone(), |_| true);
        assert_eq!(live.held().0, 2);
        // Node 1 was deleted from the catalogue: node 2's next beat sweeps it out.
        live.record(2, true, stats, |id| id == 2);
        assert_eq!(live.held().0, 1);
        assert!(live.get(1).is_none() && live.get(2).is_some());
    }

    #[test]
    fn a_heartbeat_over_a_limit_names_it() {
        let limits = Limits {
            max_heartbeat_stats: 2,
            max_heartbeat_bytes: 100,
            ..Limits::default()
        };
        let hb = |n: usize, name: &str| HeartbeatRequest {
            node_id: 1,
            healthy: true,
            stats: vec![
                OwnedStats {
                    name: name.into(),
                    ..Default::default()
                };
                n
            ],
        };
        let err = check_heartbeat(&hb(3, "a"), &limits).expect_err("entries");
        assert!(
            err.to_string().contains("limits.max_heartbeat_stats"),
            "{err}"
        );
        let err = check_heartbeat(&hb(1, &"a".repeat(200)), &limits).expect_err("bytes");
        assert!(
            err.to_string().contains("limits.max_heartbeat_bytes"),
            "{err}"
        );
        assert!(check_heartbeat(&hb(2, "a"), &limits).is_ok());
    }
}
