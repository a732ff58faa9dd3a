use crate::error::CatalogError;
use crate::node::inbound::Refused;
use crate::node::Node;
use prost::Message as _;
use protobuf::Message as _;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
use tributary_proto::v1::raft_server::Raft;
use tributary_proto::v1::{
    Command, ForwardRequest, NodeStateReply, NodeStateRequest, RaftAck, RaftBatch, WriteReply,
};

/// Raft between members. On the peer listener (mutual TLS) it takes messages and forwards;
/// on the client port only `NodeState` answers (the Raft state anyone may read, as etcd's
/// endpoint status), and `Send`/`Forward` are refused, naming where they are served.
pub struct RaftService {
    pub node: Node,
    pub request_timeout: Duration,
    /// Served on the peer listener.
    pub peer: bool,
}

impl RaftService {
    fn peers_only(&self, rpc: &str) -> Result<(), Status> {
        if self.peer {
            return Ok(());
        }
        metrics::counter!("tributary_raft_messages_refused_total", "why" => "client_port")
            .increment(1);
        Err(CatalogError::PeerRefused(format!(
            "Raft.{rpc} is served to members on the peer listener (mutual TLS), not on the \
             client port"
        ))
        .into())
    }
}

#[tonic::async_trait]
impl Raft for RaftService {
    async fn send(&self, req: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        self.peers_only("Send")?;
        // Over mutual TLS the certificate says which member is talking: it must be the one
        // the batch claims to come from.
        if let Some(certs) = req.peer_certs() {
            let claimed = req.get_ref().from;
            let shown = tributary_common::tls::peer_cn(&certs)
                .and_then(|n| tributary_common::certs::member_id(&n));
            if shown != Some(claimed) {
                metrics::counter!("tributary_raft_messages_refused_total", "why" => "identity")
                    .increment(1);
                tracing::warn!(
                    claimed,
                    ?shown,
                    "raft batch refused: its sender's certificate names another member"
                );
                return Err(CatalogError::PeerRefused(format!(
                    "the batch claims member {claimed}, the certificate shows {shown:?}"
                ))
                .into());
            }
        }
        // Each message is checked before Raft sees it; a bad one is dropped (counted and
        // logged by the node), the rest of the batch goes on.
        let batch = req.into_inner();
        for raw in batch.messages {
            match raft::prelude::Message::parse_from_bytes(&raw) {
                Ok(m) => {
                    let _ = self.node.receive(batch.from, m);
                }
                Err(e) => Refused {
                    why: "undecodable",
                    detail: format!("not a Raft message: {e}"),
                }
                .record(batch.from),
            }
        }
        Ok(Response::new(RaftAck {}))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<WriteReply>, Status> {
        self.peers_only("Forward")?;
        let req = req.into_inner();
        let cmd = Command::decode(req.command.as_ref())
            .map_err(|e| CatalogError::invalid("command", e.to_string()))?;
        let mut deadline = Instant::now() + self.request_timeout;
        if req.expires_unix_ms != 0 {
            let now = u64::try_from(tributary_common::time::now_ns() / 1_000_000).unwrap_or(0);
            let left = req.expires_unix_ms.checked_sub(now).ok_or_else(|| {
                CatalogError::Unavailable(format!(
                    "a forwarded write arrived {} ms after its request timed out; not applied",
                    now - req.expires_unix_ms
                ))
            })?;
            deadline = deadline.min(Instant::now() + Duration::from_millis(left));
        }
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
