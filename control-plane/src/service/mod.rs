//! gRPC handlers: decode, build a `Command` or read the catalogue, reply. Nothing else.

mod catalog;
mod cluster;
mod raft;

pub use catalog::CatalogService;
pub use cluster::ClusterService;
pub use raft::RaftService;

use crate::node::Node;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Status;
use tributary_common::grpc::not_leader;

/// A channel to the leader, waiting a bounded time for one; `None` when this member leads.
async fn leader_channel(node: &Node) -> Result<Option<Channel>, Status> {
    let leader = node
        .wait_leader(Instant::now() + Duration::from_secs(5))
        .await
        .ok_or_else(|| not_leader(None))?;
    if leader == node.id {
        return Ok(None);
    }
    node.peers
        .channel(leader)
        .map(Some)
        .ok_or_else(|| not_leader(None))
}
