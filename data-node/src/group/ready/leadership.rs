//! What the loop answers about leadership: a group's status as its leader sees it, and
//! handing leadership to the most current other replica.

use super::Loop;
use crate::group::{GroupError, GroupStatus, ReplicaStatus};
use raft::StateRole;
use std::time::Instant;

impl Loop {
    pub(super) fn status(&self, id: u64) -> Option<GroupStatus> {
        let g = self.groups.get(&id)?;
        let raft = &g.raw.raft;
        let mut replicas = Vec::new();
        if raft.state == StateRole::Leader {
            let last = raft.raft_log.last_index();
            let offline_after = self.settings.election_timeout() * 2;
            for (node, pr) in raft.prs().iter() {
                if *node == self.me {
                    continue;
                }
                let mut active = g.heard.get(node).map(Instant::elapsed);
                if g.hibernating {
                    // Its heartbeats stopped: the node's own stand for them.
                    let node_seen = self.liveness.silent_for(*node);
                    active = active.into_iter().chain(node_seen).min();
                }
                let offline = active.is_none_or(|a| a > offline_after);
                let lag = last.saturating_sub(pr.matched);
                replicas.push(ReplicaStatus {
                    node: *node,
                    current: lag == 0 && !offline,
                    offline,
                    active,
                    lag,
                });
            }
            replicas.sort_by_key(|r| r.node);
        }
        Some(GroupStatus {
            leader: raft.leader_id,
            term: raft.term,
            leader_since: g.leader_since,
            replicas,
            log_first: raft.raft_log.first_index(),
        })
    }

    pub(super) fn transfer(&mut self, id: u64) -> Result<u64, GroupError> {
        let me = self.me;
        let g = self
            .groups
            .get_mut(&id)
            .ok_or_else(|| GroupError::NoGroup(format!("group {id}")))?;
        super::wake(g);
        if g.raw.raft.state != StateRole::Leader {
            let leader = g.raw.raft.leader_id;
            return Err(GroupError::NotLeader {
                stream: g.store.name.clone(),
                leader: (leader != 0).then_some(leader),
            });
        }
        let target = g
            .raw
            .raft
            .prs()
            .iter()
            .filter(|(node, _)| **node != me)
            .max_by_key(|(node, pr)| (pr.matched, std::cmp::Reverse(**node)))
            .map(|(node, _)| *node)
            .ok_or_else(|| GroupError::Unknown {
                stream: g.store.name.clone(),
                why: "no other replica to hand leadership to".into(),
            })?;
        g.raw.transfer_leader(target);
        Ok(target)
    }
}
