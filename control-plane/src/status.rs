//! What a member's status page shows (`tributary_common::status_page`): the cluster status
//! it serves on `Cluster.Status`, and the topology from its own catalogue view with each
//! stream's and well's live stats asked of the data nodes, as a member of the cluster (its
//! certificate, or the cluster token when `insecure`), each within the request timeout.

use crate::node::Node;
use std::time::Duration;
use tributary_common::status_page::StatusSource;
use tributary_common::tls::TlsFiles;
use tributary_common::topology::{self, StreamState, Topology, TopologySource};
use tributary_common::trace_context::TracedChannel;
use tributary_proto::v1::{
    ditto_client::DittoClient, entity::Kind, streams_client::StreamsClient, DataNode,
    DittoStatsReply, DittoStatsRequest, EntityKind, StatusReply, Stream, StreamInfoRequest,
};

pub struct MemberView {
    pub node: Node,
    /// This member's certificate (None: `insecure`, where the cluster token is shown).
    pub tls: Option<TlsFiles>,
    pub cluster_token: String,
    /// How long each data node may take to answer.
    pub timeout: Duration,
}

impl MemberView {
    fn data_node(&self, id: u64) -> Result<DataNode, String> {
        let nodes = self
            .node
            .catalogue
            .list(EntityKind::DataNode, "")
            .map_err(|e| e.to_string())?;
        nodes
            .into_iter()
            .find_map(|e| match e.kind {
                Some(Kind::DataNode(d)) if d.id == id => Some(d),
                _ => None,
            })
            .ok_or_else(|| format!("data node {id} is not registered"))
    }

    fn channel(&self, d: &DataNode) -> Result<TracedChannel, String> {
        crate::devops::data_node_channel(d, self.tls.as_ref())
    }

    /// A request with the deadline and, on an `insecure` cluster, the cluster token.
    fn request<M>(&self, msg: M) -> tonic::Request<M> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout);
        if let Ok(v) = self.cluster_token.parse() {
            if !self.cluster_token.is_empty() {
                req.metadata_mut()
                    .insert(tributary_common::grpc::CLUSTER_TOKEN_HEADER, v);
            }
        }
        req
    }
}

#[tonic::async_trait]
impl TopologySource for MemberView {
    type Error = String;

    async fn list(&self, kind: EntityKind) -> Result<Vec<Kind>, String> {
        let entities = self
            .node
            .catalogue
            .list(kind, "")
            .map_err(|e| e.to_string())?;
        Ok(entities.into_iter().filter_map(|e| e.kind).collect())
    }

    async fn stream_info(&self, s: &Stream) -> StreamState {
        // A replicated stream: any replica forwards to its leader.
        let id = match s.owner_node {
            0 => s.replica_nodes.first().copied().unwrap_or(0),
            n => n,
        };
        if id == 0 {
            return Err("not placed on a data node yet".into());
        }
        let d = self.data_node(id)?;
        let mut client = StreamsClient::new(self.channel(&d)?);
        let call = client.info(self.request(StreamInfoRequest {
            stream: s.name.clone(),
        }));
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(st)) => Err(format!(
                "data node {id}: {}",
                tributary_common::grpc::describe(&st)
            )),
            Err(_) => Err(format!(
                "data node {id} did not answer within {:?}",
                self.timeout
            )),
        }
    }

    async fn ditto_stats(&self, d: &DataNode) -> Result<DittoStatsReply, String> {
        let mut client = DittoClient::new(self.channel(d)?);
        let call = client.stats(self.request(DittoStatsRequest {}));
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(st)) => Err(tributary_common::grpc::describe(&st)),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

#[tonic::async_trait]
impl StatusSource for MemberView {
    async fn cluster(&self) -> Result<StatusReply, String> {
        self.node.status().await.map_err(|e| e.to_string())
    }

    async fn topology(&self) -> Result<Topology, String> {
        let snap = topology::gather(self).await?;
        Ok(Topology::build(&snap))
    }
}
