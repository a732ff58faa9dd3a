use crate::catalog::entity::{kind_label, redacted};
use crate::error::CatalogError;
use crate::node::Node;
use futures::Stream;
use std::pin::Pin;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
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

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

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
            .list(k, &r.namespace)?
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
        // Subscribe before reading the log, so nothing falls between the two.
        let mut live = cat.subscribe();
        let backlog = cat.events_after(from)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut cursor = Cursor {
                log_rev: from,
                live_rev: 0,
                live_count: 0,
            };
            if !deliver(&tx, backlog, &mut cursor, 0, reveal).await {
                return;
            }
            loop {
                match live.recv().await {
                    Ok(e) if e.revision == 0 => {
                        let _ = tx.send(Err(CatalogError::Replaced.into())).await;
                        return;
                    }
                    Ok(e) if e.revision <= cursor.log_rev => {}
                    Ok(e) => {
                        if e.revision == cursor.live_rev {
                            cursor.live_count += 1;
                        } else {
                            cursor.live_rev = e.revision;
                            cursor.live_count = 1;
                        }
                        if !send(&tx, e, reveal).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live feed: catch up from the event log.
                        let (after, skip) = if cursor.live_rev > cursor.log_rev {
                            (cursor.live_rev - 1, cursor.live_count)
                        } else {
                            (cursor.log_rev, 0)
                        };
                        match cat.events_after(after) {
                            Ok(events) => {
                                if !deliver(&tx, events, &mut cursor, skip, reveal).await {
                                    return;
                                }
                            }
                            Err(err) => {
                                let _ = tx.send(Err(err.into())).await;
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Where a watcher is: revisions up to `log_rev` were read whole from the event log; the
/// live feed has delivered `live_count` events of `live_rev`.
struct Cursor {
    log_rev: u64,
    live_rev: u64,
    live_count: usize,
}

async fn send(
    tx: &mpsc::Sender<Result<WatchEvent, Status>>,
    mut e: WatchEvent,
    reveal: bool,
) -> bool {
    e.entity = e.entity.map(|x| shown(x, reveal));
    tx.send(Ok(e)).await.is_ok()
}

/// Sends events read from the log, skipping the first `skip` (already sent live).
async fn deliver(
    tx: &mpsc::Sender<Result<WatchEvent, Status>>,
    events: Vec<WatchEvent>,
    cursor: &mut Cursor,
    skip: usize,
    reveal: bool,
) -> bool {
    for (i, e) in events.into_iter().enumerate() {
        cursor.log_rev = cursor.log_rev.max(e.revision);
        if i >= skip && !send(tx, e, reveal).await {
            return false;
        }
    }
    cursor.live_rev = 0;
    cursor.live_count = 0;
    true
}
