use super::leader_channel;
use crate::node::Node;
use std::time::Duration;
use tonic::{Request, Response, Status};
use tributary_proto::v1::cluster_client::ClusterClient;
use tributary_proto::v1::cluster_server::Cluster;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::raft_client::RaftClient;
use tributary_proto::v1::{
    entity::Kind, Command, DataNodeStatus, EntityKind, HeartbeatReply, HeartbeatRequest,
    MemberReply, MemberRequest, MemberStatus, NodeStateRequest, RegisterReply, RegisterRequest,
    StatusReply, StatusRequest,
};

pub struct ClusterService {
    pub node: Node,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn register(
        &self,
        req: Request<RegisterRequest>,
    ) -> Result<Response<RegisterReply>, Status> {
        let node = req
            .into_inner()
            .node
            .ok_or_else(|| Status::invalid_argument("invalid node: missing"))?;
        let id = node.id;
        let reply = self
            .node
            .write(Command {
                op: Some(Op::RegisterNode(node)),
                live_nodes: Vec::new(),
            })
            .await?;
        tracing::info!(data_node = id, "data node registered");
        Ok(Response::new(RegisterReply {
            revision: reply.revision,
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        match leader_channel(&self.node).await? {
            Some(ch) => ClusterClient::new(ch).heartbeat(req.into_inner()).await,
            None => {
                let hb = req.into_inner();
                self.node.liveness.record(hb.node_id, hb.healthy, hb.stats);
                Ok(Response::new(HeartbeatReply {
                    revision: self.node.catalogue.revision(),
                }))
            }
        }
    }

    async fn status(&self, req: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        match leader_channel(&self.node).await {
            Ok(Some(ch)) => ClusterClient::new(ch).status(req.into_inner()).await,
            // No leader: answer what this member knows, so an operator can see why.
            Ok(None) | Err(_) => Ok(Response::new(self.local_status().await?)),
        }
    }

    async fn add_member(
        &self,
        req: Request<MemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        match leader_channel(&self.node).await? {
            Some(ch) => ClusterClient::new(ch).add_member(req.into_inner()).await,
            None => {
                let r = req.into_inner();
                if r.addr.is_empty() {
                    return Err(Status::invalid_argument(
                        "invalid addr: the new member's HOST:PORT is required",
                    ));
                }
                self.node.change_member(r.id, Some(r.addr)).await?;
                Ok(Response::new(MemberReply {
                    members: self.members().await,
                }))
            }
        }
    }

    async fn remove_member(
        &self,
        req: Request<MemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        match leader_channel(&self.node).await? {
            Some(ch) => ClusterClient::new(ch).remove_member(req.into_inner()).await,
            None => {
                self.node.change_member(req.into_inner().id, None).await?;
                Ok(Response::new(MemberReply {
                    members: self.members().await,
                }))
            }
        }
    }
}

impl ClusterService {
    /// Every voter's own view of its Raft state, asked concurrently with a short timeout.
    async fn members(&self) -> Vec<MemberStatus> {
        let st = self.node.state();
        let asks = st.voters.iter().map(|id| {
            let id = *id;
            let addr = self.node.peers.addr(id).unwrap_or_default();
            let ch = (id != self.node.id)
                .then(|| self.node.peers.channel(id))
                .flatten();
            let local = st.clone();
            let me = self.node.id;
            async move {
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
                    if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(500), ask).await {
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

    async fn local_status(&self) -> Result<StatusReply, Status> {
        let st = self.node.state();
        let cat = &self.node.catalogue;
        let mut data_nodes = Vec::new();
        let owned = |kind| -> Result<Vec<(u64, String)>, Status> {
            Ok(cat
                .list(kind, "")?
                .iter()
                .filter_map(|e| match &e.kind {
                    Some(Kind::Well(w)) => Some((w.owner_node, w.name.clone())),
                    Some(Kind::Stream(s)) => Some((s.owner_node, s.name.clone())),
                    _ => None,
                })
                .collect())
        };
        let (wells, streams) = (owned(EntityKind::Well)?, owned(EntityKind::Stream)?);
        for e in cat.list(EntityKind::DataNode, "")? {
            let Some(Kind::DataNode(n)) = &e.kind else {
                continue;
            };
            let beat = self.node.liveness.get(n.id);
            data_nodes.push(DataNodeStatus {
                id: n.id,
                addr: n.addr.clone(),
                capacity: n.capacity,
                up: st.leader == self.node.id && self.node.liveness.is_up(n.id),
                last_heartbeat_ms_ago: beat
                    .as_ref()
                    .map_or(u64::MAX, |b| b.at.elapsed().as_millis() as u64),
                wells: wells
                    .iter()
                    .filter(|(o, _)| *o == n.id)
                    .map(|(_, w)| w.clone())
                    .collect(),
                streams: streams
                    .iter()
                    .filter(|(o, _)| *o == n.id)
                    .map(|(_, s)| s.clone())
                    .collect(),
                stats: beat.map(|b| b.stats).unwrap_or_default(),
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
