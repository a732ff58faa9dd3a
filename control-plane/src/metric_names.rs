//! Every metric a control-plane member records beyond the common ones (`tributary_common::
//! telemetry::names::COMMON`), with its HELP text, and the sampling of its RocksDB.

use rocksdb::DB;
use std::sync::Arc;
use tributary_common::telemetry::names::{self, counter, gauge, Metric};

pub const CONTROL_PLANE: &[Metric] = &[
    gauge(
        "tributary_cp_raft_running",
        "1 while the member's Raft loop runs, 0 once it stopped.",
    ),
    counter(
        "tributary_cp_applied_total",
        "Catalogue commands applied by this member.",
    ),
    gauge(
        "tributary_cp_liveness_nodes",
        "Data nodes with a recent heartbeat, as this member counts them.",
    ),
    counter(
        "tributary_peer_calls_refused_total",
        "Calls on the peer listener refused because the caller's certificate names no member.",
    ),
    gauge(
        "tributary_cp_watchers",
        "Catalogue watch streams open on this member.",
    ),
    gauge(
        "tributary_cp_watch_held_bytes",
        "Bytes of catalogue events the open watch streams hold, not yet sent.",
    ),
];

/// Describes the common metrics and the member's own.
pub fn describe() {
    names::describe(names::COMMON);
    names::describe(CONTROL_PLANE);
}

/// The member's sampled gauges: the process and its database's column families. The task
/// holds the database weakly, so it never keeps it open after the member stopped.
pub fn spawn_sampling(db: &Arc<DB>) -> tributary_common::task::AbortOnDrop {
    let db = Arc::downgrade(db);
    tributary_common::telemetry::spawn_sampling(move || {
        if let Some(db) = db.upgrade() {
            tributary_common::telemetry::rocks::sample(&db, &crate::COLUMN_FAMILIES)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_members_names_keep_the_conventions() {
        assert_eq!(
            names::convention_problems(CONTROL_PLANE),
            Vec::<String>::new()
        );
    }
}
