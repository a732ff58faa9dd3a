//! The node's side of replicated streams: starting their groups (which `reconcile` then
//! opens and closes with the catalogue) and what services and workers ask about them.

use super::Node;
use crate::error::{Error, Result};
use crate::group::Groups;
use crate::storage::streams::StreamStore;

impl Node {
    /// Starts the groups of replicated streams (their ready loop on its own thread) and opens
    /// those this node holds a replica of; their messages to other nodes come out of the
    /// returned receiver.
    pub fn start_groups(
        &self,
        settings: crate::group::Settings,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<crate::group::Outbound>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let changed = self.catalog_changed.clone();
        let on_leader_change = Box::new(move || changed.send_modify(|n| *n += 1));
        let groups = Groups::start(self.id, self.main.clone(), settings, tx, on_leader_change);
        if self.groups.set(groups).is_err() {
            return Err(Error::FailedPrecondition(
                "the stream groups were started already".into(),
            ));
        }
        let view = self.with_catalog(Clone::clone);
        self.reconcile(&view)?;
        Ok(rx)
    }

    /// The groups of replicated streams (None until started).
    pub fn groups(&self) -> Option<&Groups> {
        self.groups.get()
    }

    /// A replicated stream's group id and replica nodes (None: one replica, or not known).
    pub fn replicated(&self, name: &str) -> Option<(u64, Vec<u64>)> {
        self.with_catalog(|c| {
            c.streams
                .get(name)
                .filter(|s| !s.replica_nodes.is_empty())
                .map(|s| (s.group_id, s.replica_nodes.clone()))
        })
    }

    /// Expiry (age limit, dedupe window) of one stream: in place for one replica; through the
    /// log, from its leader and only when something is due (idle groups stay quiet), for a
    /// replicated one.
    pub(super) fn expire_stream(&self, s: &StreamStore, now: i64) -> Result<()> {
        let Some((group, _)) = self.replicated(&s.name) else {
            s.expire(now)?;
            return Ok(());
        };
        if let Some(groups) = self.groups() {
            if groups.leader(group) == Some(self.id) && s.expiry_due(now) {
                groups.propose_quietly(group, crate::group::op::Op::Expire(now));
            }
        }
        Ok(())
    }

    /// A replica its group removed (moved off this node; the ready loop destroyed its store)
    /// stops being served, and its id and range go.
    pub(super) fn drop_left_replicas(&self) -> Result<()> {
        if self.streams.all().iter().any(|s| s.is_destroyed()) {
            let view = self.with_catalog(Clone::clone);
            self.reconcile(&view)?;
            self.catalog_changed.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// The stream `name` was deleted: its group's log goes too.
    pub(super) fn drop_group(&self, name: &str) {
        if let (Some((group, _)), Some(groups)) = (self.replicated(name), self.groups()) {
            groups.close(group, true);
        }
    }
}
