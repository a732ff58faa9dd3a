use crate::error::CatalogError;
use crate::node::Node;
use prost::Message as _;
use protobuf::Message as _;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
use tributary_proto::v1::raft_server::Raft;
use tributary_proto::v1::{
    Command, ForwardRequest, NodeStateReply, NodeStateRequest, RaftAck, RaftBatch, WriteReply,
};

pub struct RaftService {
    pub node: Node,
    pub request_timeout: Duration,
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn send(&self, req: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        let batch = req.into_inner();
        for raw in batch.messages {
            let m = raft::prelude::Message::parse_from_bytes(&raw)
                .map_err(|e| CatalogError::invalid("raft message", e.to_string()))?;
            self.node.step(m);
        }
        Ok(Response::new(RaftAck {}))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<WriteReply>, Status> {
        let cmd = Command::decode(req.into_inner().command.as_ref())
            .map_err(|e| CatalogError::invalid("command", e.to_string()))?;
        let deadline = Instant::now() + self.request_timeout;
        Ok(Response::new(self.node.propose_local(cmd, deadline).await?))
    }

    async fn node_state(
        &self,
        _: Request<NodeStateRequest>,
    ) -> Result<Response<NodeStateReply>, Status> {
        let st = self.node.state();
        Ok(Response::new(NodeStateReply {
            id: self.node.id,
            role: st.role,
            term: st.term,
            commit: st.commit,
            applied: st.applied,
            leader: st.leader,
            revision: self.node.catalogue.revision(),
        }))
    }
}
