//! Every metric a data node records beyond the common ones (`tributary_common::telemetry::
//! names::COMMON`), with its HELP text, and the node's sampling task (process, RocksDB, the
//! copy links' gauges).

use crate::node::replication::ReplicationBoard;
use crate::node::Node;
use std::sync::Arc;
use tributary_common::telemetry::names::{self, counter, gauge, histogram, Metric};

pub const DATA_NODE: &[Metric] = &[
    counter("tributary_ingest_entries_total", "Well entries ingested and acknowledged."),
    counter("tributary_stream_published_total", "Stream messages published and acknowledged."),
    gauge("tributary_stream_tail_held_bytes", "Bytes of stream messages subscriptions hold in memory, not yet sent."),
    gauge("tributary_dn_unopened_entities", "Wells and streams this node owns but cannot open (see /health)."),
    counter("tributary_secret_open_failures_total", "Target or stream secrets that could not be decrypted."),
    gauge("tributary_dn_replication_running", "1 while the node's stream-group loop runs, 0 once it stopped."),
    gauge("tributary_dn_raft_hibernating_groups", "Stream groups asleep on this node: idle, neither ticking nor heartbeating."),
    counter("tributary_dn_raft_messages_sent_total", "Stream-group Raft messages sent to other data nodes."),
    counter("tributary_dn_raft_messages_dropped_total", "Stream-group Raft messages dropped (queue full or peer unreachable)."),
    counter("tributary_dn_stream_snapshots_built_total", "Stream snapshots a group leader built for replicas too far behind its log."),
    histogram("tributary_dn_stream_snapshot_build_seconds", "Time a group leader took to build a stream snapshot (on a builder thread, off the replication loop)."),
    // Ditto, per link (well, target).
    counter("tributary_ditto_entries_total", "Entries ditto sent to the target and had acknowledged, by well and target."),
    counter("tributary_ditto_bytes_total", "Bytes of entries ditto sent to the target and had acknowledged."),
    gauge("tributary_ditto_entries_behind", "Entries of the well from Start-Time on not yet sent to the target (the link's lag)."),
    counter("tributary_ditto_errors_total", "Ditto batches that failed (the worker fails over or retries from its progress)."),
    gauge("tributary_ditto_state", "1 for the ditto worker's current state (copying, tailing, queued, retrying), 0 for the others."),
    counter("tributary_ditto_unresolvable_dropped_total", "Entries dropped because the target could not resolve their tag."),
    counter("tributary_ditto_unresolvable_retagged_total", "Entries sent under unresolvable_tag_destination instead of their tag."),
    counter("tributary_ditto_corrupt_skipped_total", "Stored entries that could not be decoded and were skipped."),
    counter("tributary_ditto_duplicate_batches_total", "Batches the target reported as already stored (resends after a lost ack)."),
    // Mirrors and sources, per link (stream, origin, kind).
    counter("tributary_mirror_messages_total", "Messages copied from the origin into the stream, by stream, origin and kind (mirror, source)."),
    counter("tributary_mirror_bytes_total", "Bytes of messages copied from the origin into the stream."),
    gauge("tributary_mirror_lag_messages", "Messages the origin holds that the copy has not (origin last seq minus copied seq)."),
    gauge("tributary_mirror_last_active_seconds", "Seconds since the origin was last heard from (message or heartbeat)."),
    counter("tributary_mirror_errors_total", "Copy attempts that failed (the worker retries with backoff)."),
    gauge("tributary_mirror_state", "1 for the link's current state (active, stalled, error), 0 for the others."),
];

/// Describes the common metrics and the data node's own.
pub fn describe() {
    names::describe(names::COMMON);
    names::describe(DATA_NODE);
}

/// The node's sampled gauges: the process, its RocksDB, and its mirror and source links.
/// The task holds the node weakly, so it never keeps storage open after the node stopped.
pub fn spawn_sampling(
    node: &Arc<Node>,
    mirrors: Arc<ReplicationBoard>,
) -> tributary_common::task::AbortOnDrop {
    let node = Arc::downgrade(node);
    tributary_common::telemetry::spawn_sampling(move || {
        if let Some(node) = node.upgrade() {
            node.sample_metrics();
        }
        mirrors.record_metrics();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_nodes_names_keep_the_conventions() {
        assert_eq!(names::convention_problems(DATA_NODE), Vec::<String>::new());
    }
}
