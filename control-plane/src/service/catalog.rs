use super::watch::WatchStream;
use crate::catalog::entity::{kind_label, redacted};
use crate::error::CatalogError;
use crate::node::Node;
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
}

impl CatalogService {
    /// Whether the caller may read secrets: it presents the (non-empty) cluster secret.
    fn reveals<T>(&self, req: &Request<T>) -> bool {
        let given = req
            .metadata()
            .get(tributary_common::grpc::CLUSTER_TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        !self.cluster_secret.is_empty()
            && tributary_common::secrets::ct_eq(given, self.cluster_secret.as_bytes())
    }
}

fn shown(e: Entity, reveal: bool) -> Entity {
    if reveal {
        e
    } else {
        redacted(e)
    }
}

impl CatalogService {
    async fn write(&self, op: Op) -> Result<Response<WriteReply>, Status> {
        let cmd = Command {
            op: Some(op),
            live_nodes: Vec::new(),
        };
        Ok(Response::new(self.node.write(cmd).await?))
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
        self.write(Op::Create(req.into_inner())).await
    }

    async fn update(&self, req: Request<Entity>) -> Result<Response<WriteReply>, Status> {
        self.write(Op::Update(req.into_inner())).await
    }

    async fn delete(&self, req: Request<EntityRef>) -> Result<Response<WriteReply>, Status> {
        self.write(Op::Delete(req.into_inner())).await
    }

    async fn r#move(&self, req: Request<MoveRequest>) -> Result<Response<WriteReply>, Status> {
        self.write(Op::Move(req.into_inner())).await
    }

    async fn get(&self, req: Request<EntityRef>) -> Result<Response<GetReply>, Status> {
        let reveal = self.reveals(&req);
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
            entity: Some(shown(entity, reveal)),
        }))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        let reveal = self.reveals(&req);
        let r = req.into_inner();
        let k = kind(r.kind)?;
        self.node.read_index().await?;
        let cat = &self.node.catalogue;
        // Revision first: a watcher starting from it may see a change twice, never miss one.
        let revision = cat.revision();
        let entities = cat
            .list_within(k, &r.namespace, self.node.limits.max_reply_bytes)?
            .into_iter()
            .map(|e| shown(e, reveal))
            .collect();
        Ok(Response::new(ListReply { revision, entities }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let reveal = self.reveals(&req);
        let from = req.into_inner().from_revision;
        let cat = self.node.catalogue.clone();
        let page_bytes = self.node.limits.watch_page_bytes;
        let stream = super::watch::watch(cat, from, page_bytes, move |mut e: WatchEvent| {
            e.entity = e.entity.map(|x| shown(x, reveal));
            e
        })?;
        Ok(Response::new(stream))
    }
}
