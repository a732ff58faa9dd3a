//! The metrics of one Raft group, labelled `group`: the control plane's catalogue
//! (`group="catalogue"`) and each replicated stream's group on a data node
//! (`group="stream:<name>"`). Updated from the group's ready loop, so the handles are made
//! once and the loop only stores numbers.

use metrics::{Counter, Gauge, Histogram};
use std::time::Instant;

/// What the ready loop knows after a round: the state `publish` records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftView {
    pub term: u64,
    pub leader: u64,
    pub commit: u64,
    pub applied: u64,
    pub leading: bool,
}

pub struct RaftGroupMetrics {
    term: Gauge,
    commit: Gauge,
    applied: Gauge,
    leading: Gauge,
    leader_changes: Counter,
    proposals: Histogram,
    snapshots_sent: Counter,
    snapshots_applied: Counter,
    /// The leader last seen (0: none), to count changes.
    last_leader: Option<u64>,
}

impl RaftGroupMetrics {
    pub fn new(group: &str) -> Self {
        let g = group.to_string();
        RaftGroupMetrics {
            term: metrics::gauge!("tributary_raft_term", "group" => g.clone()),
            commit: metrics::gauge!("tributary_raft_commit_index", "group" => g.clone()),
            applied: metrics::gauge!("tributary_raft_applied_index", "group" => g.clone()),
            leading: metrics::gauge!("tributary_raft_is_leader", "group" => g.clone()),
            leader_changes: metrics::counter!("tributary_raft_leader_changes_total", "group" => g.clone()),
            proposals: metrics::histogram!("tributary_raft_proposal_duration_seconds", "group" => g.clone()),
            snapshots_sent: metrics::counter!("tributary_raft_snapshots_sent_total", "group" => g.clone()),
            snapshots_applied: metrics::counter!("tributary_raft_snapshots_applied_total", "group" => g),
            last_leader: None,
        }
    }

    /// Records the group's state; each leader seen that differs from the last one seen (the
    /// first included, as etcd's `leader_changes_seen_total`) counts as a leader change.
    pub fn publish(&mut self, v: RaftView) {
        self.term.set(v.term as f64);
        self.commit.set(v.commit as f64);
        self.applied.set(v.applied as f64);
        self.leading.set(if v.leading { 1.0 } else { 0.0 });
        if v.leader != 0 && self.last_leader != Some(v.leader) {
            self.leader_changes.increment(1);
            self.last_leader = Some(v.leader);
        }
    }

    /// A proposal made at `proposed` was applied here.
    pub fn proposal_applied(&self, proposed: Instant) {
        self.proposals.record(proposed.elapsed().as_secs_f64());
    }

    pub fn snapshot_sent(&self) {
        self.snapshots_sent.increment(1);
    }

    pub fn snapshot_applied(&self) {
        self.snapshots_applied.increment(1);
    }

    /// Zeroes the gauges of a group this process no longer holds (a stream moved away), so
    /// they do not report its last state forever.
    pub fn clear(&self) {
        self.term.set(0.0);
        self.leading.set(0.0);
    }
}
