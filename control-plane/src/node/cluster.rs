//! The Cluster service's work: data-node registration and heartbeats, cluster status and
//! membership. Each runs on the leader, which alone holds data-node liveness (soft state fed
//! by registrations and heartbeats); any other member sends the call on to the leader, so
//! every member answers status with the leader's view.

use super::forward::{relayed, Leader};
use super::Node;
use crate::error::CatalogError;
use crate::liveness::check_heartbeat;
use prost::Message;
use std::collections::HashMap;
use std::time::Duration;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::raft_client::RaftClient;
use tributary_proto::v1::{
    entity::Kind, Command, DataNode, DataNodeStatus, EntityKind, HeartbeatReply, HeartbeatRequest,
    MemberReply, MemberRequest, MemberStatus, NodeStateRequest, OwnedStats, RegisterReply,
    RegisterRequest, StatusReply, StatusRequest,
};

/// How long status waits for each member's own view of its Raft state.
const MEMBER_ASK: Duration = Duration::from_millis(500);

impl Node {
    /// Records a data node in the catalogue, on the leader. The node calling is alive: the
    /// leader counts the registration as its first heartbeat, so status shows the node up
    /// from the start, not only after a heartbeat interval.
    pub async fn register(&self, node: DataNode) -> Result<RegisterReply, CatalogError> {
        if let Leader::Other(mut c) = self.leader().await? {
            return relayed(c.register(RegisterRequest { node: Some(node) }).await);
        }
        let id = node.id;
        let max = self.limits.max_data_nodes;
        if !self.registered(id) && self.catalogue.count(EntityKind::DataNode) >= max {
            return Err(CatalogError::Exhausted(format!(
                "{max} data nodes are registered, the limit (`limits.max_data_nodes`); data node {id} is not"
            )));
        }
        let reply = self
            .write(Command {
                op: Some(Op::RegisterNode(node)),
                live_nodes: Vec::new(),
                erasure: false,
            })
            .await?;
        self.liveness
            .record(id, true, Vec::new(), |n| self.registered(n));
        tracing::info!(data_node = id, "data node registered");
        Ok(RegisterReply {
            revision: reply.revision,
        })
    }

    /// Records a registered data node's heartbeat, on the leader. An unregistered id is
    /// `NOT_FOUND` (a data node then registers again), so made-up ids leave nothing behind.
    pub async fn heartbeat(&self, hb: HeartbeatRequest) -> Result<HeartbeatReply, CatalogError> {
        check_heartbeat(&hb, &self.limits)?;
        match self.leader().await? {
            Leader::Other(mut c) => relayed(c.heartbeat(hb).await),
            Leader::Me => {
                if !self.registered(hb.node_id) {
                    return Err(CatalogError::NotFound {
                        kind: "data node",
                        name: hb.node_id.to_string(),
                    });
                }
                self.liveness
                    .record(hb.node_id, hb.healthy, hb.stats, |n| self.registered(n));
                Ok(HeartbeatReply {
                    revision: self.catalogue.revision(),
                })
            }
        }
    }

    fn registered(&self, id: u64) -> bool {
        self.catalogue
            .get(EntityKind::DataNode, &id.to_string())
            .is_ok_and(|e| e.is_some())
    }

    /// The leader's view of members and data nodes; with no leader, this member's own view,
    /// so an operator can see why.
    pub async fn status(&self) -> Result<StatusReply, CatalogError> {
        match self.leader().await {
            Ok(Leader::Other(mut c)) => relayed(c.status(StatusRequest {}).await),
            Ok(Leader::Me) | Err(_) => self.local_status().await,
        }
    }

    pub async fn add_member(&self, req: MemberRequest) -> Result<MemberReply, CatalogError> {
        match self.leader().await? {
            Leader::Other(mut c) => relayed(c.add_member(req).await),
            Leader::Me => {
                if req.addr.is_empty() {
                    return Err(CatalogError::invalid(
                        "addr",
                        "the new member's HOST:PORT is required",
                    ));
                }
                let addrs = crate::network::MemberAddrs {
                    client: req.addr,
                    peer: (!req.peer_addr.is_empty()).then_some(req.peer_addr),
                };
                self.change_member(req.id, Some(addrs.to_string())).await?;
                Ok(MemberReply {
                    members: self.members().await,
                })
            }
        }
    }

    pub async fn remove_member(&self, req: MemberRequest) -> Result<MemberReply, CatalogError> {
        match self.leader().await? {
            Leader::Other(mut c) => relayed(c.remove_member(req).await),
            Leader::Me => {
                self.change_member(req.id, None).await?;
                Ok(MemberReply {
                    members: self.members().await,
                })
            }
        }
    }

    /// Every voter's own view of its Raft state, asked concurrently with a short timeout.
    async fn members(&self) -> Vec<MemberStatus> {
        let st = self.state();
        let asks = st.voters.iter().map(|id| {
            let id = *id;
            let addr = self.peers.addr(id).unwrap_or_default();
            let local = st.clone();
            let me = self.id;
            let peers = self.peers.clone();
            async move {
                let ch = if id == me {
                    None
                } else {
                    peers.channel(id).await.ok()
                };
                let mut m = MemberStatus {
                    id,
                    addr,
                    role: "unreachable".into(),
                    ..Default::default()
                };
                if id == me {
                    m.role = local.role;
                    m.term = local.term;
                    m.commit = local.commit;
                    m.applied = local.applied;
                    m.reachable = true;
                } else if let Some(ch) = ch {
                    let mut client = RaftClient::new(ch);
                    let ask = client.node_state(NodeStateRequest {});
                    if let Ok(Ok(r)) = tokio::time::timeout(MEMBER_ASK, ask).await {
                        let r = r.into_inner();
                        m.role = r.role;
                        m.term = r.term;
                        m.commit = r.commit;
                        m.applied = r.applied;
                        m.reachable = true;
                    }
                }
                m
            }
        });
        futures::future::join_all(asks).await
    }

    async fn local_status(&self) -> Result<StatusReply, CatalogError> {
        let st = self.state();
        let cat = &self.catalogue;
        let mut data_nodes = Vec::new();
        let owned = |kind| -> Result<Vec<(u64, String)>, CatalogError> {
            let mut out = Vec::new();
            cat.visit(kind, |_, e| {
                match &e.kind {
                    Some(Kind::Well(w)) => out.push((w.owner_node, w.name.clone())),
                    Some(Kind::Stream(s)) => out.push((s.owner_node, s.name.clone())),
                    _ => {}
                }
                Ok(())
            })?;
            Ok(out)
        };
        let (wells, streams) = (owned(EntityKind::Well)?, owned(EntityKind::Stream)?);
        let by_owner = |list: Vec<(u64, String)>| {
            let mut m: HashMap<u64, Vec<String>> = HashMap::new();
            for (owner, name) in list {
                m.entry(owner).or_default().push(name);
            }
            m
        };
        let (mut wells, mut streams) = (by_owner(wells), by_owner(streams));
        // Stats are what a node reports of itself; the reply carries them while it stays
        // under `limits.max_reply_bytes`, and says so where it leaves them out.
        let mut budget = self.limits.max_reply_bytes;
        for e in cat.list(EntityKind::DataNode, "")? {
            let Some(Kind::DataNode(n)) = &e.kind else {
                continue;
            };
            let beat = self.liveness.get(n.id);
            let mut stats = beat.as_ref().map(|b| b.stats.clone()).unwrap_or_default();
            let bytes: usize = stats.iter().map(Message::encoded_len).sum();
            if bytes > budget {
                stats = vec![OwnedStats {
                    error: format!(
                        "{} stats entries ({bytes} bytes) left out: the status reply would exceed `limits.max_reply_bytes`",
                        stats.len()
                    ),
                    ..Default::default()
                }];
            } else {
                budget -= bytes;
            }
            data_nodes.push(DataNodeStatus {
                id: n.id,
                addr: n.addr.clone(),
                capacity: n.capacity,
                // Only the leader hears heartbeats: elsewhere "up" would be a guess.
                up: st.leader == self.id && self.liveness.is_up(n.id),
                last_heartbeat_ms_ago: beat
                    .as_ref()
                    .map_or(u64::MAX, |b| b.at.elapsed().as_millis() as u64),
                wells: wells.remove(&n.id).unwrap_or_default(),
                streams: streams.remove(&n.id).unwrap_or_default(),
                stats,
            });
        }
        Ok(StatusReply {
            leader: st.leader,
            term: st.term,
            revision: cat.revision(),
            members: self.members().await,
            data_nodes,
        })
    }
}
