//! The periodic stats entry (tag `tributary`, Gravwell's "ditto client stats" fields) and the
//! Prometheus metrics, from what the workers post on the node's ditto board.

use super::host::DittoHost;
use crate::node::ditto_status::DittoBoard;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_proto::v1::WellEntry;

/// The tag stats entries are written under.
pub const STATS_TAG: &str = "tributary";

/// A worker's states, as `DittoWorkerStats.state` names them.
const STATES: [&str; 4] = ["copying", "tailing", "queued", "retrying"];

/// One worker's (one link's) metrics, `de` entries and `db` bytes sent since the last time.
fn record_metrics(w: &tributary_proto::v1::DittoWorkerStats, de: u64, db: u64) {
    let labels = [("well", w.well.clone()), ("target", w.target.clone())];
    metrics::counter!("tributary_ditto_entries_total", &labels).increment(de);
    metrics::counter!("tributary_ditto_bytes_total", &labels).increment(db);
    metrics::gauge!("tributary_ditto_entries_behind", &labels).set(w.entries_behind as f64);
    metrics::counter!("tributary_ditto_unresolvable_dropped_total", &labels)
        .absolute(w.unresolvable_dropped);
    metrics::counter!("tributary_ditto_unresolvable_retagged_total", &labels)
        .absolute(w.unresolvable_retagged);
    metrics::counter!("tributary_ditto_corrupt_skipped_total", &labels).absolute(w.corrupt_skipped);
    metrics::counter!("tributary_ditto_duplicate_batches_total", &labels)
        .absolute(w.duplicate_batches);
    for state in STATES {
        let mut l = labels.to_vec();
        l.push(("state", state.to_string()));
        let on = if w.state == state { 1.0 } else { 0.0 };
        metrics::gauge!("tributary_ditto_state", l.as_slice()).set(on);
    }
}

/// Every `every`: one stats entry per worker into the `tributary` tag, and the metrics.
pub async fn stats_loop(host: Arc<dyn DittoHost>, board: Arc<DittoBoard>, every: Duration) {
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
        for w in board.snapshot() {
            let key = (w.well.clone(), w.target.clone());
            let (pe, pb) = last.get(&key).copied().unwrap_or((0, 0));
            let (de, db) = (
                w.entries_sent.saturating_sub(pe),
                w.bytes_sent.saturating_sub(pb),
            );
            last.insert(key.clone(), (w.entries_sent, w.bytes_sent));
            let bps = db as f64 / elapsed.as_secs_f64().max(1e-3);
            board.set_rate(&key.0, &key.1, bps);
            record_metrics(&w, de, db);
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
        // The `tributary` tag routes like any other (the well taking it, else the default
        // well); a cluster with neither, or owning it elsewhere, only has the metrics.
        if let Err(e) = host.store_stats(entries).await {
            tracing::debug!(error = %e, "ditto stats entry not stored");
        }
    }
}
