//! Moving a group towards where the catalogue places its replicas (`tribctl stream move`,
//! `stream edit --replicas`), one member at a time, on its leader: a new replica is added as
//! a learner (it started empty; the leader's log is compacted to what its stream holds first,
//! so the learner's first entries are a snapshot that carries the configuration), it becomes a
//! voter once it holds everything committed, and only then is an old replica removed (a
//! leader that is to go hands leadership to a caught-up replica first). Every step is a
//! single change (raft-rs `ConfChange`), so the group never enters joint consensus and a
//! majority of the old and of the new configuration always overlap.
//!
//! A replica moved off this node leaves once its group no longer counts it, or once no leader
//! has sent to it for [`LEAVE_AFTER`] (a removed replica is not told): its log and stream go.

use super::{Group, Loop};
use crate::group::log::GroupLog;
use crate::storage::engine::Batch;
use raft::prelude::{ConfChange, ConfChangeType};
use raft::{ProgressState, StateRole};
use std::time::Duration;

/// Entries behind the commit index a replica may be to be promoted (or handed leadership).
const CAUGHT_UP_WITHIN: u64 = 16;
/// How long a replica moved off this node waits to hear from a leader before it leaves.
const LEAVE_AFTER: Duration = Duration::from_secs(10);

/// The next single change that brings the group nearer to `want`, if any.
enum Step {
    Add(u64),
    Promote(u64),
    Remove(u64),
    HandOver(u64),
}

fn next_step(me: u64, g: &Group) -> Option<Step> {
    let raft = &g.raw.raft;
    if raft.state != StateRole::Leader || raft.pending_conf_index > raft.raft_log.applied {
        return None;
    }
    let want = &g.placement.replicas;
    let cs = g.log.conf_state();
    let (voters, learners) = (&cs.voters, &cs.learners);
    if want.is_empty() {
        return None;
    }
    if let Some(n) = want
        .iter()
        .find(|n| !voters.contains(n) && !learners.contains(n))
    {
        return Some(Step::Add(*n));
    }
    // Under load a replica is never exactly at the commit index when looked at: one that
    // answers and is within a few entries of it holds everything but what is in flight.
    let committed = raft.raft_log.committed;
    let caught_up = |n: &u64| {
        raft.prs().get(*n).is_some_and(|pr| {
            pr.state != ProgressState::Snapshot
                && pr.recent_active
                && pr.matched + CAUGHT_UP_WITHIN >= committed
        })
    };
    if let Some(n) = learners.iter().find(|n| want.contains(n)) {
        return caught_up(n).then_some(Step::Promote(*n));
    }
    if let Some(n) = learners.iter().find(|n| !want.contains(n)) {
        return Some(Step::Remove(*n));
    }
    let leaving = voters.iter().find(|n| !want.contains(n))?;
    if *leaving != me {
        return Some(Step::Remove(*leaving));
    }
    want.iter()
        .find(|n| **n != me && caught_up(n))
        .map(|n| Step::HandOver(*n))
}

/// Whether the group is where the catalogue places it: its leader has no step to take.
pub(super) fn settled(g: &Group) -> bool {
    let want = &g.placement.replicas;
    let cs = g.log.conf_state();
    want.is_empty()
        || (cs.learners.is_empty()
            && cs.voters.len() == want.len()
            && want.iter().all(|n| cs.voters.contains(n)))
}

fn change(kind: ConfChangeType, node: u64) -> ConfChange {
    let mut cc = ConfChange::default();
    cc.set_change_type(kind);
    cc.node_id = node;
    cc
}

impl Loop {
    /// Once a second: each group led here takes its next step, and replicas moved off this
    /// node that their group let go of leave.
    pub(super) fn membership(&mut self, b: &mut Batch) {
        let me = self.me;
        let mut leave = Vec::new();
        for (id, g) in self.groups.iter_mut() {
            if !g.placement.replicas.is_empty() && !g.placement.replicas.contains(&me) {
                let counted = g.log.conf_state();
                let still = counted.voters.contains(&me) || counted.learners.contains(&me);
                if g.raw.raft.state != StateRole::Leader
                    && (!still || g.leader_contact.elapsed() > LEAVE_AFTER)
                {
                    leave.push(*id);
                    continue;
                }
            }
            let Some(step) = next_step(me, g) else {
                continue;
            };
            super::wake(g);
            let proposed = match step {
                Step::Add(n) => {
                    // Its first entries must be a snapshot: the log starts after the stream.
                    let held = g.store.group_index();
                    if let Err(e) = compact_to(&g.log, b, held) {
                        tracing::debug!(stream = %g.store.name, error = %e, "log not compacted");
                    }
                    g.raw
                        .propose_conf_change(Vec::new(), change(ConfChangeType::AddLearnerNode, n))
                }
                Step::Promote(n) => g
                    .raw
                    .propose_conf_change(Vec::new(), change(ConfChangeType::AddNode, n)),
                Step::Remove(n) => g
                    .raw
                    .propose_conf_change(Vec::new(), change(ConfChangeType::RemoveNode, n)),
                Step::HandOver(n) => {
                    g.raw.transfer_leader(n);
                    Ok(())
                }
            };
            if let Err(e) = proposed {
                tracing::warn!(stream = %g.store.name, error = %e, "membership change not proposed");
            }
        }
        for id in leave {
            let Some(g) = self.groups.get(&id) else {
                continue;
            };
            tracing::info!(stream = %g.store.name, "replica moved off this data node: its log and stream go");
            let mut gone = Batch::default();
            g.log.stage_leave(&mut gone);
            if let Err(e) = self
                .engine
                .write(gone)
                .map_err(|e| e.to_string())
                .and_then(|()| g.store.destroy().map_err(|e| e.to_string()))
            {
                tracing::warn!(stream = %g.store.name, error = %e, "replica not dropped");
                continue;
            }
            self.close(id, false);
        }
    }
}

fn compact_to(log: &GroupLog, b: &mut Batch, index: u64) -> raft::Result<bool> {
    if index == 0 {
        return Ok(false);
    }
    log.compact(b, index)
}
