//! Typed waits on a cluster, each one [`wait::until`] with a generous deadline.

use super::Cluster;
use crate::wait::{self, WAIT};
use crate::wells;
use anyhow::Result;
use tributary_proto::v1::{
    cluster_client::ClusterClient, entity::Kind, EntityKind, EntityRef, NodeStateReply,
    StatusRequest, StreamInfoRequest, WellEntry,
};

impl Cluster {
    /// A member's own view of Raft (role, term, leader, applied), read in-process or over
    /// `Raft.NodeState` from a process.
    pub async fn member_state(&self, id: u64) -> Result<NodeStateReply> {
        if let Ok(m) = self.member(id) {
            let st = m.node.state();
            return Ok(NodeStateReply {
                id,
                role: st.role,
                term: st.term,
                commit: st.commit,
                applied: st.applied,
                leader: st.leader,
                revision: m.node.catalogue.revision(),
            });
        }
        // A process: Raft is served to members only, so ask the member for the cluster's
        // status (what it sees as the leader, and that leader's view of it).
        let ch = crate::tls::channel(&self.cp_addr(id)?)?;
        let s = ClusterClient::new(ch)
            .status(StatusRequest {})
            .await?
            .into_inner();
        let me = s
            .members
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .unwrap_or_default();
        Ok(NodeStateReply {
            id,
            role: me.role,
            term: me.term,
            commit: me.commit,
            applied: me.applied,
            leader: s.leader,
            revision: s.revision,
        })
    }

    /// The leader every running member agrees on.
    pub async fn wait_leader(&self) -> Result<u64> {
        self.wait_leader_among(&self.running_members()).await
    }

    /// The leader the members `ids` agree on, itself one of them (the majority side of a
    /// partition, say).
    pub async fn wait_leader_among(&self, ids: &[u64]) -> Result<u64> {
        let what = format!("cluster {}: a leader agreed by members {ids:?}", self.name);
        wait::until(&what, WAIT, || async {
            let mut leaders = Vec::new();
            for id in ids {
                leaders.push(self.member_state(*id).await.ok()?.leader);
            }
            let l = *leaders.first()?;
            (l != 0 && ids.contains(&l) && leaders.iter().all(|x| *x == l)).then_some(l)
        })
        .await
    }

    /// Waits until the cluster's first policy (`default:cluster-admin`, stored from the
    /// members' `admin_subjects` once a leader is elected) is there, when they name admins:
    /// what a started cluster holds before a test counts revisions.
    pub async fn wait_first_policy(&self) -> Result<()> {
        let Some(id) = self.running_members().first().copied() else {
            return Ok(());
        };
        if self
            .member_config(id, "127.0.0.1:0")?
            .admin_subjects
            .is_empty()
        {
            return Ok(());
        }
        let what = format!("cluster {}: its first policy stored", self.name);
        wait::until(&what, WAIT, || async {
            let r = EntityRef {
                kind: EntityKind::Policy as i32,
                name: tributary_common::policy::BOOTSTRAP_POLICY.into(),
            };
            // Refused to read it (a test's callers may not): it is there all the same.
            match self.catalog(id).ok()?.get(r).await {
                Ok(_) => Some(()),
                Err(s) if s.code() == tonic::Code::PermissionDenied => Some(()),
                Err(_) => None,
            }
        })
        .await
    }

    /// Waits until every running member has applied at least `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<()> {
        let what = format!("cluster {}: every member applied {index}", self.name);
        wait::until(&what, WAIT, || async {
            for id in self.running_members() {
                if self.member_state(id).await.ok()?.applied < index {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    /// Waits until the catalogue lists data node `node` at the address its peers use.
    pub async fn wait_registered(&self, node: u64) -> Result<()> {
        let want = self.endpoint(node)?;
        let what = format!(
            "cluster {}: data node {node} registered at {want}",
            self.name
        );
        wait::until(&what, WAIT, || async {
            let r = EntityRef {
                kind: EntityKind::DataNode as i32,
                name: node.to_string(),
            };
            let got = self.catalog_any().ok()?.get(r).await.ok()?.into_inner();
            match got.entity?.kind? {
                Kind::DataNode(n) if n.addr == want => Some(()),
                _ => None,
            }
        })
        .await
    }

    /// Waits until data node `node` serves `stream` (its `Info` answers).
    pub async fn wait_stream_served(&self, stream: &str, node: u64) -> Result<()> {
        let c = self.streams(node)?;
        let what = format!("data node {node} serving stream {stream}");
        wait::until(&what, WAIT, || {
            let mut c = c.clone();
            let r = StreamInfoRequest {
                stream: stream.to_string(),
            };
            async move { c.info(r).await.ok().map(|_| ()) }
        })
        .await
    }

    /// Waits until data node `node` serves `well` (its shards can be listed).
    pub async fn wait_well_served(&self, well: &str, node: u64) -> Result<()> {
        let addr = self.data_addr(node)?;
        let what = format!("data node {node} serving well {well}");
        wait::until(&what, WAIT, || async {
            wells::shards(&addr, well).await.ok().map(|_| ())
        })
        .await
    }

    /// Waits until `well` on `node` holds at least `n` entries; returns them all.
    pub async fn wait_entries(&self, node: u64, well: &str, n: usize) -> Result<Vec<WellEntry>> {
        let addr = self.data_addr(node)?;
        let what = format!("{n} entries in {well} on data node {node}");
        wait::until(&what, WAIT, || async {
            let v = wells::query(&addr, well).await.ok()?;
            (v.len() >= n).then_some(v)
        })
        .await
    }
}
