use super::watch::WatchStream;
use crate::catalog::entity::kind_label;
use crate::encryption::Secrets;
use crate::error::CatalogError;
use crate::node::Node;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_proto::v1::catalog_server::Catalog;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    Command, Entity, EntityKind, EntityRef, GetReply, ListReply, ListRequest, MoveRequest,
    WatchEvent, WatchRequest, WriteReply,
};

pub struct CatalogService {
    pub node: Node,
    /// See `ControlPlaneConfig::cluster_secret`.
    pub cluster_secret: String,
    /// Seals what clients write, before it is proposed.
    pub secrets: Arc<Secrets>,
}

/// How a caller reads entities.
#[derive(Clone)]
enum View {
    /// As stored, secrets sealed: callers presenting the cluster secret (data nodes).
    Stored,
    /// Secrets redacted: everyone else.
    Clients(Arc<Secrets>),
}

impl View {
    fn show(&self, e: Entity) -> Entity {
        match self {
            View::Stored => e,
            View::Clients(secrets) => secrets.for_clients(e),
        }
    }
}

impl CatalogService {
    /// Stored for callers presenting the (non-empty) cluster secret, else as clients read.
    fn view<T>(&self, req: &Request<T>) -> View {
        let given = req
            .metadata()
            .get(tributary_common::grpc::CLUSTER_TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !self.cluster_secret.is_empty()
            && tributary_common::secrets::ct_eq(given, self.cluster_secret.as_bytes())
        {
            View::Stored
        } else {
            View::Clients(self.secrets.clone())
        }
    }
}

impl CatalogService {
    /// A client's create or update, its secrets sealed before anything is proposed.
    async fn write_sealed(
        &self,
        mut e: Entity,
        op: fn(Entity) -> Op,
    ) -> Result<Response<WriteReply>, Status> {
        self.secrets.seal(&mut e)?;
        self.write(op(e)).await
    }

    async fn write(&self, op: Op) -> Result<Response<WriteReply>, Status> {
        let cmd = Command {
            op: Some(op),
            live_nodes: Vec::new(),
        };
        let mut reply = self.node.write(cmd).await?;
        reply.entity = reply.entity.map(|e| self.secrets.for_clients(e));
        Ok(Response::new(reply))
    }
}

fn kind(raw: i32) -> Result<EntityKind, CatalogError> {
    match EntityKind::try_from(raw) {
        Ok(EntityKind::Unspecified) | Err(_) => Err(CatalogError::invalid(
            "kind",
            format!("{raw} is not an entity kind"),
        )),
        Ok(k) => Ok(k),
    }
}

#[tonic::async_trait]
impl Catalog for CatalogService {
    async fn create(&self, req: Request<Entity>) -> Result<Response<WriteReply>, Status> {
        self.write_sealed(req.into_inner(), Op::Create).await
    }

    async fn update(&self, req: Request<Entity>) -> Result<Response<WriteReply>, Status> {
        self.write_sealed(req.into_inner(), Op::Update).await
    }

    async fn delete(&self, req: Request<EntityRef>) -> Result<Response<WriteReply>, Status> {
        self.write(Op::Delete(req.into_inner())).await
    }

    async fn r#move(&self, req: Request<MoveRequest>) -> Result<Response<WriteReply>, Status> {
        self.write(Op::Move(req.into_inner())).await
    }

    async fn get(&self, req: Request<EntityRef>) -> Result<Response<GetReply>, Status> {
        let view = self.view(&req);
        let r = req.into_inner();
        let k = kind(r.kind)?;
        let name = crate::catalog::canonical_name(k, &r.name)?;
        self.node.read_index().await?;
        let cat = &self.node.catalogue;
        let entity = cat.get(k, &name)?.ok_or_else(|| CatalogError::NotFound {
            kind: kind_label(k),
            name: name.clone(),
        })?;
        Ok(Response::new(GetReply {
            revision: cat.revision(),
            entity: Some(view.show(entity)),
        }))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        let view = self.view(&req);
        let r = req.into_inner();
        let k = kind(r.kind)?;
        self.node.read_index().await?;
        let cat = &self.node.catalogue;
        // Revision first: a watcher starting from it may see a change twice, never miss one.
        let revision = cat.revision();
        let entities = cat
            .list_within(k, &r.namespace, self.node.limits.max_reply_bytes)?
            .into_iter()
            .map(|e| view.show(e))
            .collect();
        Ok(Response::new(ListReply { revision, entities }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let view = self.view(&req);
        let from = req.into_inner().from_revision;
        let cat = self.node.catalogue.clone();
        let page_bytes = self.node.limits.watch_page_bytes;
        let stream = super::watch::watch(cat, from, page_bytes, move |mut e: WatchEvent| {
            e.entity = e.entity.map(|x| view.show(x));
            e
        })?;
        Ok(Response::new(stream))
    }
}
