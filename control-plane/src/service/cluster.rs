use crate::encryption::Migration;
use crate::error::CatalogError;
use crate::node::Node;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_proto::v1::cluster_server::Cluster;
use tributary_proto::v1::{
    HeartbeatReply, HeartbeatRequest, MemberReply, MemberRequest, MigrateEncryptionReply,
    MigrateEncryptionRequest, PeerAddressReply, PeerAddressRequest, RegisterReply, RegisterRequest,
    StatusReply, StatusRequest,
};

pub struct ClusterService {
    pub node: Node,
    /// Where this member serves its peers, for `PeerAddress`.
    pub peer_addr: String,
    /// One per member, shared by every listener's service.
    pub migration: Arc<Migration>,
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
            .ok_or_else(|| CatalogError::invalid("node", "missing"))?;
        Ok(Response::new(self.node.register(node).await?))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        Ok(Response::new(self.node.heartbeat(req.into_inner()).await?))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        Ok(Response::new(self.node.status().await?))
    }

    async fn peer_address(
        &self,
        _: Request<PeerAddressRequest>,
    ) -> Result<Response<PeerAddressReply>, Status> {
        Ok(Response::new(PeerAddressReply {
            id: self.node.id,
            peer_addr: self.peer_addr.clone(),
        }))
    }

    async fn add_member(
        &self,
        req: Request<MemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        Ok(Response::new(self.node.add_member(req.into_inner()).await?))
    }

    async fn remove_member(
        &self,
        req: Request<MemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        Ok(Response::new(
            self.node.remove_member(req.into_inner()).await?,
        ))
    }

    async fn migrate_encryption(
        &self,
        req: Request<MigrateEncryptionRequest>,
    ) -> Result<Response<MigrateEncryptionReply>, Status> {
        self.migration.authorize(req.metadata())?;
        Ok(Response::new(
            self.migration.handle(req.into_inner()).await?,
        ))
    }
}
