//! The loop's upkeep, once a second: proposals past their deadline hear "outcome unknown",
//! the catalogue's limits go into the log, groups move towards their placement
//! (`membership`), and each group's log is compacted.
//!
//! Compaction: the log is a queue in front of the stream, not the stream. Entries the stream
//! holds may go once every replica holds them too (the leader knows), but never more than
//! `log_tail` entries are kept below what the stream holds for a replica that is away: one
//! further behind catches up by snapshot (`group::snapshot`). A follower keeps `log_tail`
//! entries below what its stream holds, for the peers it may come to lead.

use super::{Group, Loop, PROPOSAL_DEADLINE};
use crate::group::op::Op;
use crate::group::GroupError;
use crate::storage::engine::Batch;
use raft::{ProgressState, SnapshotStatus, StateRole};
use std::time::{Duration, Instant};

/// How long a replica sent a snapshot may take to answer before another is sent.
const SNAPSHOT_PATIENCE: Duration = Duration::from_secs(15);

/// A replica sent a snapshot answers once it has pulled and installed it; one that has not
/// within [`SNAPSHOT_PATIENCE`] lost it (its pull failed, or the message was lost): raft-rs is
/// told, so it sends another rather than waiting for good (a pull still under way makes the
/// replica drop the new message).
fn give_up_on_lost_snapshots(g: &mut Group, now: Instant) {
    let waiting: Vec<u64> = g
        .raw
        .raft
        .prs()
        .iter()
        .filter(|(_, pr)| pr.state == ProgressState::Snapshot)
        .map(|(id, _)| *id)
        .collect();
    g.snapshot_wait.retain(|id, _| waiting.contains(id));
    for id in waiting {
        let since = *g.snapshot_wait.entry(id).or_insert(now);
        if now.duration_since(since) > SNAPSHOT_PATIENCE {
            tracing::warn!(stream = %g.store.name, replica = id, "snapshot not taken in time; another is sent");
            g.raw.report_snapshot(id, SnapshotStatus::Failure);
            g.snapshot_wait.remove(&id);
        }
    }
}

impl Loop {
    pub(super) fn housekeeping(&mut self) {
        let now = Instant::now();
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in late {
            if let Some(p) = self.pending.remove(&k) {
                let stream = self
                    .groups
                    .get(&p.group)
                    .map_or_else(String::new, |g| g.store.name.clone());
                let _ = p.reply.send(Err(GroupError::Unknown {
                    stream,
                    why: format!("not committed within {PROPOSAL_DEADLINE:?}"),
                }));
            }
        }
        self.shelf.expire(now);
        let tail = self.settings.log_tail;
        let mut b = Batch::default();
        self.membership(&mut b);
        self.note_peers();
        for g in self.groups.values_mut() {
            let leader = g.raw.raft.state == StateRole::Leader;
            if leader
                && g.limits != g.store.limits()
                && g.limits_proposed
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(2))
            {
                g.limits_proposed = Some(now);
                super::wake(g);
                let _ = g
                    .raw
                    .propose(Vec::new(), Op::Limits(g.limits.clone()).encode());
            }
            if leader {
                give_up_on_lost_snapshots(g, now);
            }
            let held = g.store.group_index();
            let kept_for_peers = held.saturating_sub(tail);
            let upto = if leader {
                let every_replica = g
                    .raw
                    .raft
                    .prs()
                    .iter()
                    .map(|(_, pr)| pr.matched)
                    .min()
                    .unwrap_or(0);
                every_replica.max(kept_for_peers).min(held)
            } else {
                kept_for_peers
            };
            if upto > 0 {
                if let Err(e) = g.log.compact(&mut b, upto) {
                    tracing::debug!(stream = %g.store.name, error = %e, "log not compacted");
                }
            }
        }
        if !b.is_empty() {
            if let Err(e) = self.engine.write(b) {
                tracing::warn!(error = %e, "log compaction not written");
            }
        }
    }
}
