//! Ditto: mirrors wells this node owns into other clusters' live storage (Gravwell's Ditto).
//!
//! * `worker` — one task per (well, target): forward pass, late entries, tail.
//! * `pipeline` — batches in flight: built, saved as pending, sent, committed on their ack.
//! * `progress` — what a worker has done, saved as keys after each acked batch.
//! * `client` — the target's Ingest endpoints (TLS, gzip, failover).
//! * `stats` — counters, the periodic `tributary` stats entry, metrics, `Ditto.Stats`.
//!
//! Workers are reconciled against the catalogue view on every change to it (and every
//! [`RECONCILE_EVERY`] besides); at most `ditto_max_workers` of them copy at once (a caught-up
//! worker gives its slot back while it only tails).

pub mod client;
mod pipeline;
pub mod progress;
pub mod slots;
pub mod stats;
pub mod worker;

use crate::node::Node;
use crate::storage::{Batch, Space};
use rand::Rng;
use slots::CopySlots;
use stats::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

const RECONCILE_EVERY: Duration = Duration::from_millis(300);
const SOURCE_ID_KEY: &[u8] = b"ditto/source-id";

/// Aborts its task when dropped, so stopping the reconcile loop stops every worker.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// This cluster's id in batch ids: the configured name, else a random id kept on disk.
pub fn source_id(node: &Node, configured: &str) -> crate::Result<String> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    let engine = node.engine();
    if let Some(v) = engine.get(Space::Meta, SOURCE_ID_KEY)? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = format!("{:016x}", rand::rng().random::<u64>());
    let mut b = Batch::default();
    b.put(Space::Meta, SOURCE_ID_KEY.to_vec(), id.as_bytes().to_vec());
    engine.write(b)?;
    Ok(id)
}

/// The (well, target) pairs this node should be mirroring now.
fn wanted(node: &Node) -> Vec<(String, String)> {
    node.with_catalog(|c| {
        c.wells
            .values()
            .filter(|w| w.owner_node == node.id)
            .flat_map(|w| {
                w.ditto_targets
                    .iter()
                    .map(|t| (w.name.clone(), crate::catalog::canonical(t)))
            })
            .collect()
    })
}

/// Starts the reconcile loop and the stats loop.
pub fn spawn(
    node: Arc<Node>,
    source_id: String,
    slots: Arc<CopySlots>,
    stats_every: Duration,
    registry: Arc<Registry>,
) -> Vec<JoinHandle<()>> {
    let reg = registry.clone();
    let n = node.clone();
    let reconcile = tokio::spawn(async move {
        let mut workers: HashMap<(String, String), Owned> = HashMap::new();
        let mut changes = n.catalog_changes();
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = changes.changed() => {}
            }
            let want = wanted(&n);
            workers.retain(|k, _| {
                let keep = want.contains(k);
                if !keep {
                    tracing::info!(well = %k.0, target = %k.1, "ditto worker stopped");
                    reg.remove(&k.0, &k.1);
                }
                keep
            });
            for (well, target) in want {
                let key = (well.clone(), target.clone());
                if workers.contains_key(&key) {
                    continue;
                }
                tracing::info!(%well, %target, "ditto worker started");
                let ctx = worker::WorkerCtx {
                    node: n.clone(),
                    stats: reg.get_or_add(&well, &target),
                    well,
                    target,
                    source_id: source_id.clone(),
                    slots: slots.clone(),
                };
                workers.insert(key, Owned(tokio::spawn(worker::run(ctx))));
            }
        }
    });
    let stats = tokio::spawn(stats::stats_loop(node, registry, stats_every));
    vec![reconcile, stats]
}
