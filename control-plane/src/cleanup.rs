//! A member's background cleanup (the coordinator is `tributary_common::cleanup`'s): the
//! watch-event log's revisions committed longer than `history_retention` ago, at most
//! `reads_per_query` revisions per credit, trimmed on the Raft loop between applies. A watcher
//! from before the trimmed revisions is told to list again, as after the log's count and byte
//! bounds (`raft.max_watch_events`, `raft.max_watch_event_bytes`), which still hold. Then the
//! Raft log's entries applied longer than `history_retention` ago that no follower needs
//! (besides its compaction at the snapshot thresholds).

use crate::node::Node;
use std::time::Instant;
use tributary_common::cleanup::{Cleaned, Cleaner, CleanupConfig};

pub struct MemberCleaner {
    pub node: Node,
}

impl Cleaner for MemberCleaner {
    fn clean_step(&self, _after: &str, c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        // A retention longer than this process has run: nothing is that old.
        let Some(before) = Instant::now().checked_sub(c.history_retention) else {
            return Ok(None);
        };
        let (floor, trimmed) = self
            .node
            .trim_events_blocking(before, c.reads_per_query as usize)
            .map_err(|e| e.to_string())?;
        if trimmed > 0 {
            return Ok(Some(Cleaned {
                id: format!("watch-events:{floor}"),
                removed: vec![("watch_event_revisions", trimmed)],
            }));
        }
        let (upto, removed) = self
            .node
            .compact_log_blocking(before)
            .map_err(|e| e.to_string())?;
        if removed == 0 {
            return Ok(None);
        }
        Ok(Some(Cleaned {
            id: format!("raft-log:{upto}"),
            removed: vec![("raft_log_entries", removed)],
        }))
    }
}
