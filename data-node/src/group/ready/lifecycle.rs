//! Opening a stream's group on this node (a founder as a voter, a replica added later empty)
//! and closing it (its log dropped too when the stream was deleted).

use super::{stand, wake, Group, Loop};
use crate::group::log::GroupLog;
use crate::group::{GroupError, Placement};
use crate::storage::engine::Batch;
use crate::storage::streams::{StreamLimits, StreamStore};
use raft::RawNode;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tributary_common::sync::write;
use tributary_common::telemetry::raft_group::RaftGroupMetrics;

impl Loop {
    pub(super) fn open(
        &mut self,
        id: u64,
        store: Arc<StreamStore>,
        placement: Placement,
        limits: StreamLimits,
    ) {
        if let Some(g) = self.groups.get_mut(&id) {
            if g.limits != limits || g.placement != placement {
                wake(g);
            }
            g.limits = limits;
            g.placement = placement;
            if !Arc::ptr_eq(&g.store, &store) && g.store.is_closed() {
                g.log.set_store(store.clone());
                g.store = store;
            }
            return;
        }
        let first_founder = placement.founders.first() == Some(&self.me);
        match self.new_group(id, store, placement, limits) {
            Ok(mut g) => {
                if first_founder && g.raw.raft.term == 0 && g.log.last_index() == 0 {
                    g.founding = self.settings.election_ticks;
                    stand(&mut g);
                }
                self.groups.insert(id, g);
            }
            Err(e) => tracing::error!(group = id, error = %e, "cannot open the stream's group"),
        }
    }

    fn new_group(
        &self,
        id: u64,
        store: Arc<StreamStore>,
        placement: Placement,
        limits: StreamLimits,
    ) -> raft::Result<Group> {
        let applied = store.group_index();
        // A founder starts as a voter; a replica added later starts with no configuration
        // and gets one with its first snapshot (`membership`).
        let voters = match placement.founders.contains(&self.me) {
            true => placement.founders.clone(),
            false => Vec::new(),
        };
        let log = GroupLog::open(
            self.engine.clone(),
            id,
            &voters,
            store.clone(),
            self.shelf.clone(),
        )?;
        if applied > log.last_index() {
            return Err(raft::Error::ConfigInvalid(format!(
                "stream {} holds entry {applied} but its group log ends at {}",
                store.name,
                log.last_index()
            )));
        }
        let cfg = raft::Config {
            id: self.me,
            election_tick: self.settings.election_ticks,
            heartbeat_tick: self.settings.heartbeat_ticks,
            applied,
            check_quorum: true,
            pre_vote: true,
            max_size_per_msg: 4 << 20,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        let raw = RawNode::new(&cfg, log.clone(), &self.logger)?;
        tracing::info!(group = id, stream = %store.name, ?voters, applied, "stream group opened");
        let metrics = RaftGroupMetrics::new(&format!("stream:{}", store.name));
        Ok(Group {
            metrics,
            raw,
            log,
            store,
            limits,
            limits_proposed: None,
            heard: HashMap::new(),
            leader_since: None,
            snapshot_wait: HashMap::new(),
            placement,
            leader_contact: Instant::now(),
            founding: 0,
            hibernating: false,
            quiet_ticks: 0,
            touched: true,
        })
    }

    pub(super) fn close(&mut self, id: u64, destroy: bool) {
        let Some(g) = self.groups.remove(&id) else {
            return;
        };
        g.metrics.clear();
        self.shelf.forget(id);
        write(&self.leaders).remove(&id);
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.group == id)
            .map(|(k, _)| *k)
            .collect();
        for k in ids {
            if let Some(p) = self.pending.remove(&k) {
                let _ = p.reply.send(Err(GroupError::NoGroup(g.store.name.clone())));
            }
        }
        if destroy {
            let mut b = Batch::default();
            g.log.stage_destroy(&mut b);
            if let Err(e) = self.engine.write(b) {
                tracing::warn!(group = id, error = %e, "cannot drop a deleted stream's log");
            }
        }
    }
}
