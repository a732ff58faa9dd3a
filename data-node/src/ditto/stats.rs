//! Per-worker counters, the periodic stats entry (tag `tributary`, Gravwell's "ditto client
//! stats" fields) with Prometheus metrics, and the `Ditto.Stats` gRPC service.

use crate::ingest::IngestService;
use crate::node::Node;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
use tributary_proto::v1::{
    ditto_server::Ditto, DittoStatsReply, DittoStatsRequest, DittoWorkerStats, IngestBatch,
    WellEntry,
};

/// The tag stats entries are written under.
pub const STATS_TAG: &str = "tributary";

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
        self.text.lock().unwrap_or_else(|p| p.into_inner()).state = state.to_string();
    }
    pub fn set_error(&self, err: &str) {
        let mut t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        t.state = "retrying".into();
        t.last_error = err.to_string();
    }
    pub fn set_endpoint(&self, ep: &str) {
        let mut t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        if t.endpoint != ep {
            t.endpoint = ep.to_string();
        }
    }
}

/// Every worker's stats on this node, keyed by (well, target).
#[derive(Default)]
pub struct Registry {
    workers: Mutex<BTreeMap<(String, String), Arc<WorkerStats>>>,
    /// Bytes per second over the last interval, per worker.
    rates: Mutex<HashMap<(String, String), f64>>,
}

impl Registry {
    pub fn get_or_add(&self, well: &str, target: &str) -> Arc<WorkerStats> {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((well.to_string(), target.to_string()))
            .or_default()
            .clone()
    }

    pub fn remove(&self, well: &str, target: &str) {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(well.to_string(), target.to_string()));
    }

    pub fn snapshot(&self) -> Vec<DittoWorkerStats> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .iter()
            .map(|((well, target), s)| {
                let t = s.text.lock().unwrap_or_else(|p| p.into_inner()).clone();
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

/// Every `every`: one stats entry per worker into the `tributary` tag, and the metrics.
pub async fn stats_loop(node: Arc<Node>, registry: Arc<Registry>, every: Duration) {
    let ingest = IngestService {
        node,
        secrets: Arc::new(Vec::new()),
        max_entry_bytes: 1 << 20,
    };
    let mut last: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut last_at = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let elapsed = last_at.elapsed();
        last_at = Instant::now();
        let mut entries = Vec::new();
        for w in registry.snapshot() {
            let key = (w.well.clone(), w.target.clone());
            let (pe, pb) = last.get(&key).copied().unwrap_or((0, 0));
            let (de, db) = (
                w.entries_sent.saturating_sub(pe),
                w.bytes_sent.saturating_sub(pb),
            );
            last.insert(key.clone(), (w.entries_sent, w.bytes_sent));
            let bps = db as f64 / elapsed.as_secs_f64().max(1e-3);
            registry
                .rates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, bps);
            let labels = [("well", w.well.clone()), ("target", w.target.clone())];
            metrics::counter!("tributary_ditto_entries_total", &labels).increment(de);
            metrics::counter!("tributary_ditto_bytes_total", &labels).increment(db);
            metrics::gauge!("tributary_ditto_entries_behind", &labels).set(w.entries_behind as f64);
            metrics::gauge!("tributary_ditto_unresolvable_dropped", &labels)
                .set(w.unresolvable_dropped as f64);
            metrics::gauge!("tributary_ditto_unresolvable_retagged", &labels)
                .set(w.unresolvable_retagged as f64);
            metrics::gauge!("tributary_ditto_corrupt_skipped", &labels)
                .set(w.corrupt_skipped as f64);
            metrics::gauge!("tributary_ditto_bytes_per_second", &labels).set(bps);
            let values: BTreeMap<String, String> = [
                ("msg", "ditto client stats".to_string()),
                ("well", w.well.clone()),
                ("entries", de.to_string()),
                ("bytes", db.to_string()),
                ("duration", format!("{:.3}s", elapsed.as_secs_f64())),
                ("Bps", format!("{bps:.0}")),
                ("target-name", w.target.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let data = serde_json::to_vec(&values).unwrap_or_default();
            entries.push(WellEntry {
                timestamp_ns: 0,
                tag: STATS_TAG.into(),
                source: String::new(),
                data: data.into(),
                values: values.into_iter().collect(),
            });
        }
        if entries.is_empty() {
            continue;
        }
        let batch = IngestBatch {
            seq: 0,
            entries,
            batch_id: String::new(),
        };
        // The `tributary` tag routes like any other (the well taking it, else the default
        // well); a cluster with neither, or owning it elsewhere, only has the metrics.
        if let Err(e) = ingest.store(batch).await {
            tracing::debug!(error = %e, "ditto stats entry not stored");
        }
    }
}

/// `Ditto.Stats`: this node's workers.
pub struct DittoService {
    pub node_id: u64,
    pub registry: Arc<Registry>,
    pub slots: Arc<super::slots::CopySlots>,
}

#[tonic::async_trait]
impl Ditto for DittoService {
    async fn stats(
        &self,
        _req: Request<DittoStatsRequest>,
    ) -> Result<Response<DittoStatsReply>, Status> {
        Ok(Response::new(DittoStatsReply {
            node_id: self.node_id,
            workers: self.registry.snapshot(),
            max_workers: self.slots.max(),
            copying: self.slots.copying(),
            copying_peak: self.slots.peak(),
        }))
    }
}
