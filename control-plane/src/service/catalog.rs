use super::watch::WatchStream;
use crate::catalog::entity::{kind_label, kind_of, name_of};
use crate::encryption::Secrets;
use crate::error::CatalogError;
use crate::guard::Guard;
use crate::node::Node;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tributary_common::access::Caller;
use tributary_common::policy::Permission;
use tributary_proto::v1::catalog_server::Catalog;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    entity::Kind, Command, Entity, EntityKind, EntityRef, GetReply, ListReply, ListRequest,
    MoveRequest, WatchEvent, WatchRequest, WriteReply,
};

pub struct CatalogService {
    pub node: Node,
    /// Who may call what (every handler asks it first).
    pub guard: Arc<Guard>,
    /// Seals what clients write, before it is proposed.
    pub secrets: Arc<Secrets>,
}

/// How a caller reads entities.
#[derive(Clone)]
enum View {
    /// As stored, secrets sealed: the cluster's own data nodes.
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
    fn view(&self, caller: &Caller) -> View {
        match caller {
            Caller::DataNode(_) | Caller::Member(_) => View::Stored,
            _ => View::Clients(self.secrets.clone()),
        }
    }

    /// The entity as this member has it (what a write is checked against).
    fn stored(&self, kind: EntityKind, name: &str) -> Result<Entity, CatalogError> {
        let name = crate::catalog::canonical_name(kind, name)?;
        self.node
            .catalogue
            .get(kind, &name)?
            .ok_or_else(|| CatalogError::NotFound {
                kind: kind_label(kind),
                name,
            })
    }

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
            erasure: false,
        };
        let mut reply = self.node.write(cmd).await?;
        reply.entity = reply.entity.map(|e| self.secrets.for_clients(e));
        Ok(Response::new(reply))
    }

    /// Creates the default policy an entity created without one gets, then names it.
    async fn with_default_policy(&self, e: &mut Entity, policy: Entity) -> Result<(), Status> {
        let name = crate::catalog::entity::name_of(&policy);
        match self.write(Op::Create(policy)).await {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                return Err(CatalogError::Denied(format!(
                    "policy {name} exists and is not yours: name a policy that grants you WRITE"
                ))
                .into())
            }
            Err(s) => return Err(s),
        }
        match &mut e.kind {
            Some(Kind::Well(w)) => w.policy = name,
            Some(Kind::Stream(st)) => st.policy = name,
            Some(Kind::Target(t)) => t.policy = name,
            _ => {}
        }
        Ok(())
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
        let caller = self.guard.caller(&req).await?;
        let mut e = req.into_inner();
        let default_policy = self.guard.may_create(&caller, &e)?;
        self.guard.may_place(&caller, &e, None)?;
        if let Some(policy) = default_policy {
            self.with_default_policy(&mut e, policy).await?;
        }
        self.write_sealed(e, Op::Create).await
    }

    async fn update(&self, req: Request<Entity>) -> Result<Response<WriteReply>, Status> {
        let caller = self.guard.caller(&req).await?;
        let e = req.into_inner();
        self.guard
            .access()
            .authenticated(&caller, "updating the catalogue")?;
        let stored = self.stored(kind_of(&e), &name_of(&e))?;
        self.guard.may_update(&caller, &stored, &e)?;
        self.guard.may_place(&caller, &e, Some(&stored))?;
        self.write_sealed(e, Op::Update).await
    }

    async fn delete(&self, req: Request<EntityRef>) -> Result<Response<WriteReply>, Status> {
        let caller = self.guard.caller(&req).await?;
        let r = req.into_inner();
        self.guard
            .access()
            .authenticated(&caller, "deleting from the catalogue")?;
        let stored = self.stored(kind(r.kind)?, &r.name)?;
        self.guard.may_delete(&caller, &stored)?;
        self.write(Op::Delete(r)).await
    }

    async fn r#move(&self, req: Request<MoveRequest>) -> Result<Response<WriteReply>, Status> {
        let caller = self.guard.caller(&req).await?;
        // Placement is the operator's: it decides which machine holds the bytes.
        self.guard
            .require(&caller, Permission::Admin, "cluster:/", "")?;
        self.write(Op::Move(req.into_inner())).await
    }

    async fn get(&self, req: Request<EntityRef>) -> Result<Response<GetReply>, Status> {
        let caller = self.guard.caller(&req).await?;
        self.guard
            .access()
            .authenticated(&caller, "reading the catalogue")?;
        let view = self.view(&caller);
        let r = req.into_inner();
        let k = kind(r.kind)?;
        let name = crate::catalog::canonical_name(k, &r.name)?;
        self.node.read_index().await?;
        let cat = &self.node.catalogue;
        cat.check_not_blocked(k, &name)?;
        let entity = cat.get(k, &name)?.ok_or_else(|| CatalogError::NotFound {
            kind: kind_label(k),
            name: name.clone(),
        })?;
        self.guard.may_read(&caller, &entity)?;
        Ok(Response::new(GetReply {
            revision: cat.revision(),
            entity: Some(view.show(entity)),
        }))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        let caller = self.guard.caller(&req).await?;
        self.guard
            .access()
            .authenticated(&caller, "listing the catalogue")?;
        let view = self.view(&caller);
        let r = req.into_inner();
        let k = kind(r.kind)?;
        self.node.read_index().await?;
        let cat = &self.node.catalogue;
        // Revision first: a watcher starting from it may see a change twice, never miss one.
        let revision = cat.revision();
        // What the caller may not read is left out, as if it were not there.
        let entities = cat
            .list_within(k, &r.namespace, self.node.limits.max_reply_bytes)?
            .into_iter()
            .filter(|e| self.guard.may_read(&caller, e).is_ok())
            .map(|e| view.show(e))
            .collect();
        Ok(Response::new(ListReply { revision, entities }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let caller = self.guard.caller(&req).await?;
        // The whole catalogue as it changes: for the cluster's data nodes and its admins.
        if !caller.is_node() {
            self.guard
                .require(&caller, Permission::Read, "cluster:/", "")?;
        }
        let view = self.view(&caller);
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
