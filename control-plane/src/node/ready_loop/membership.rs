//! What changes the set of members as the loop applies it: a configuration change entry
//! (with the peer addresses it carries) and a snapshot from the leader (with the peers it
//! names).

use super::{raft_err, Loop};
use crate::error::CatalogError;
use crate::network::MemberAddrs;
use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Snapshot};
use rocksdb::WriteBatch;

impl Loop {
    pub(super) fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), CatalogError> {
        self.store.apply_snapshot(snap).map_err(raft_err)?;
        self.metrics.snapshot_applied();
        for (id, addr) in self.catalogue.peers()? {
            if id != self.id {
                self.peers.set(id, MemberAddrs::parse(&addr));
            }
        }
        tracing::info!(
            node = self.id,
            index = snap.get_metadata().index,
            "installed snapshot"
        );
        Ok(())
    }

    pub(super) fn apply_conf_change(
        &mut self,
        e: &Entry,
        batch: &mut WriteBatch,
    ) -> Result<(), CatalogError> {
        let undecodable =
            |err: protobuf::ProtobufError| CatalogError::Storage(format!("conf change: {err}"));
        let cs = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            let cc = ConfChangeV2::parse_from_bytes(&e.data).map_err(undecodable)?;
            self.raw.apply_conf_change(&cc).map_err(raft_err)?
        } else {
            let cc = ConfChange::parse_from_bytes(&e.data).map_err(undecodable)?;
            let mut peers = self.catalogue.peers()?;
            match cc.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    let addr = String::from_utf8_lossy(&cc.context).to_string();
                    peers.insert(cc.node_id, addr.clone());
                    if cc.node_id != self.id {
                        self.peers.set(cc.node_id, MemberAddrs::parse(&addr));
                    }
                }
                ConfChangeType::RemoveNode => {
                    peers.remove(&cc.node_id);
                    self.peers.remove(cc.node_id);
                }
            }
            self.catalogue.put_peers(batch, &peers)?;
            self.raw.apply_conf_change(&cc).map_err(raft_err)?
        };
        self.store.set_conf_state(batch, &cs).map_err(raft_err)?;
        tracing::info!(node = self.id, voters = ?cs.voters, "membership changed");
        Ok(())
    }
}
