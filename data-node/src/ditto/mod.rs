//! Ditto: mirrors wells this node owns into other clusters' live storage (Gravwell's Ditto).
//!
//! * `worker` — one task per (well, target): forward pass, late entries, tail.
//! * `forward` — the forward pass with several batches in flight, read ahead.
//! * `pipe` — one batch's way: built, saved as pending, sent, committed on its ack.
//! * `mapper` — stored entries as the target gets them (tag names, unresolvable tags).
//! * `progress` — what a worker has done, saved as keys after each acked batch.
//! * `client` — the target's Ingest endpoints (TLS, gzip, failover).
//! * `stats` — the periodic `tributary` stats entry and the metrics.
//! * `host` — what a worker needs of its node.
//!
//! Workers are reconciled against the catalogue on every change to it (and every
//! [`RECONCILE_EVERY`] besides); at most `ditto_max_workers` of them copy at once (the node's
//! [`CopySlots`]; a caught-up worker gives its slot back while it only tails).

pub mod client;
pub mod error;
mod forward;
pub mod host;
mod mapper;
mod pipe;
pub mod progress;
pub mod stats;
#[cfg(test)]
mod testing;
mod worker;

use crate::node::ditto_status::{CopySlots, DittoBoard};
use crate::storage::keys::meta;
use crate::supervisor::{supervise, Workers};
use host::DittoHost;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tributary_common::task::AbortOnDrop;

const RECONCILE_EVERY: Duration = Duration::from_millis(300);

/// This cluster's id in batch ids: the configured name, else a random id kept on disk.
pub fn source_id(host: &dyn DittoHost, configured: &str) -> crate::storage::StorageResult<String> {
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    if let Some(v) = host.get_meta(meta::DITTO_SOURCE_ID)? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = format!("{:016x}", rand::rng().random::<u64>());
    host.put_meta(meta::DITTO_SOURCE_ID, id.as_bytes().to_vec())?;
    Ok(id)
}

/// The (well, target) workers of one node.
struct DittoWorkers {
    host: Arc<dyn DittoHost>,
    source_id: String,
    slots: Arc<CopySlots>,
    board: Arc<DittoBoard>,
}

impl Workers for DittoWorkers {
    type Key = (String, String);
    type Worker = AbortOnDrop;

    fn wanted(&mut self) -> Vec<(String, String)> {
        self.host.wanted()
    }

    fn start(&mut self, (well, target): &(String, String)) -> AbortOnDrop {
        tracing::info!(%well, %target, "ditto worker started");
        let ctx = pipe::WorkerCtx {
            host: self.host.clone(),
            well: well.clone(),
            target: target.clone(),
            source_id: self.source_id.clone(),
            slots: self.slots.clone(),
            stats: self.board.get_or_add(well, target),
        };
        AbortOnDrop::spawn(worker::run(ctx))
    }

    fn stopped(&mut self, (well, target): &(String, String)) {
        tracing::info!(%well, %target, "ditto worker stopped");
        self.board.remove(well, target);
    }
}

/// Starts the supervisor and the stats loop.
pub fn spawn(
    host: Arc<dyn DittoHost>,
    source_id: String,
    slots: Arc<CopySlots>,
    stats_every: Duration,
    board: Arc<DittoBoard>,
) -> Vec<AbortOnDrop> {
    let changes = host.catalog_changes();
    let workers = DittoWorkers {
        host: host.clone(),
        source_id,
        slots,
        board: board.clone(),
    };
    vec![
        AbortOnDrop::spawn(supervise(workers, changes, RECONCILE_EVERY)),
        AbortOnDrop::spawn(stats::stats_loop(host, board, stats_every)),
    ]
}
