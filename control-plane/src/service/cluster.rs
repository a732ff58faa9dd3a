use crate::encryption::Migration;
use crate::error::CatalogError;
use crate::guard::Guard;
use crate::node::Node;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_common::access::Caller;
use tributary_common::auth::AuthMethod;
use tributary_proto::v1::cluster_server::Cluster;
use tributary_proto::v1::{
    HeartbeatReply, HeartbeatRequest, MemberReply, MemberRequest, MigrateEncryptionReply,
    MigrateEncryptionRequest, PeerAddressReply, PeerAddressRequest, RegisterReply, RegisterRequest,
    StatusReply, StatusRequest, WhoAmIReply, WhoAmIRequest,
};

pub struct ClusterService {
    pub node: Node,
    /// Where this member serves its peers, for `PeerAddress`.
    pub peer_addr: String,
    /// Who may call what.
    pub guard: Arc<Guard>,
    /// Served on the peer listener: every caller is a member (mutual TLS), and what it sends
    /// on was checked on the member that took it from its caller.
    pub peer: bool,
    /// One per member, shared by every listener's service.
    pub migration: Arc<Migration>,
}

impl ClusterService {
    async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, CatalogError> {
        match self.peer {
            // The peer listener's interceptor let only members through.
            true => Ok(Caller::Member(0)),
            false => self.guard.caller(req).await,
        }
    }

    /// Register and heartbeat: a data node of this cluster, as itself.
    fn only_as(&self, caller: &Caller, id: u64, what: &str) -> Result<(), CatalogError> {
        match caller {
            Caller::Member(_) | Caller::DataNode(None) => Ok(()),
            Caller::DataNode(Some(me)) if *me == id => Ok(()),
            Caller::DataNode(Some(me)) => Err(CatalogError::Denied(format!(
                "data node {me} may {what} only as itself, not as data node {id}"
            ))),
            Caller::Anonymous => Err(CatalogError::Unauthenticated(format!(
                "only a data node of this cluster may {what}: it shows its certificate \
                 (data-node-ID) from the cluster CA"
            ))),
            Caller::User(_) => Err(CatalogError::Denied(format!(
                "{} is not a data node of this cluster and may not {what}",
                caller.describe()
            ))),
        }
    }

    async fn operator<T>(&self, req: &Request<T>) -> Result<(), CatalogError> {
        let caller = self.caller(req).await?;
        if matches!(caller, Caller::Member(_)) {
            return Ok(());
        }
        self.guard.operator(&caller)
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn register(
        &self,
        req: Request<RegisterRequest>,
    ) -> Result<Response<RegisterReply>, Status> {
        let caller = self.caller(&req).await?;
        let node = req
            .into_inner()
            .node
            .ok_or_else(|| CatalogError::invalid("node", "missing"))?;
        self.only_as(&caller, node.id, "register")?;
        Ok(Response::new(self.node.register(node).await?))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        let caller = self.caller(&req).await?;
        let beat = req.into_inner();
        self.only_as(&caller, beat.node_id, "heartbeat")?;
        Ok(Response::new(self.node.heartbeat(beat).await?))
    }

    async fn who_am_i(&self, req: Request<WhoAmIRequest>) -> Result<Response<WhoAmIReply>, Status> {
        let caller = self.caller(&req).await?;
        let method = match &caller {
            Caller::Anonymous => "anonymous".into(),
            Caller::Member(_) => "member".into(),
            Caller::DataNode(_) => "data-node".into(),
            Caller::User(p) => match &p.method {
                AuthMethod::Jwt { .. } => "jwt",
                AuthMethod::PreAuthenticated => "pre-authenticated",
                AuthMethod::ClientCertificate => "tls",
                AuthMethod::IngestSecret => "ingest",
                AuthMethod::StreamSecret => "stream-secret",
                AuthMethod::Devops => "devops",
                AuthMethod::Anonymous => "anonymous",
            }
            .to_string(),
        };
        Ok(Response::new(WhoAmIReply {
            subjects: caller.subjects(),
            method,
        }))
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
        self.operator(&req).await?;
        Ok(Response::new(self.node.add_member(req.into_inner()).await?))
    }

    async fn remove_member(
        &self,
        req: Request<MemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        self.operator(&req).await?;
        Ok(Response::new(
            self.node.remove_member(req.into_inner()).await?,
        ))
    }

    async fn migrate_encryption(
        &self,
        req: Request<MigrateEncryptionRequest>,
    ) -> Result<Response<MigrateEncryptionReply>, Status> {
        self.operator(&req).await?;
        Ok(Response::new(
            self.migration.handle(req.into_inner()).await?,
        ))
    }
}
