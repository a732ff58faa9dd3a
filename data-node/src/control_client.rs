//! The node's life in the cluster: register, heartbeat every interval with per-well/stream
//! stats, List then Watch the catalogue to learn what it owns, and create tags on demand.
//!
//! Every call goes to the preferred control-plane address; a failure moves to the leader the
//! error names (`x-tributary-leader`) or else the next address, with capped backoff. While the
//! control plane is unreachable the node keeps serving from its last (persisted) view.

use crate::error::{Error, Result};
use crate::node::catalog::CatalogView;
use crate::node::{Node, TagCreator};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Code, Status};
use tributary_common::backoff::Backoff;
use tributary_common::grpc::{leader_hint, CLUSTER_TOKEN_HEADER};
use tributary_common::sync::lock;
use tributary_common::task::AbortOnDrop;
use tributary_common::tls::{self, TlsFiles};
use tributary_common::trace_context::TracedChannel;
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind, DataNode, Entity,
    EntityKind, EntityRef, HeartbeatRequest, ListRequest, RegisterRequest, Tag, WatchRequest,
};

/// Jitter so a restarted cluster is not hit by every node at the same instant.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5), 4);
/// How long an ingest waits for the control plane to create a tag before failing the batch.
const TAG_DEADLINE: Duration = Duration::from_secs(5);

/// The control-plane addresses and which one to call next.
pub struct Endpoints {
    addrs: Vec<String>,
    /// The cluster's TLS files (this node's certificate, the CA); None: cleartext.
    tls: Option<TlsFiles>,
    /// The address to try next: a leader hint, or one of `addrs` (with its index).
    preferred: Mutex<(String, usize)>,
    /// Sent as `x-tributary-cluster-token` on every call: what says "a data node of this
    /// cluster" when the links are `insecure` (with TLS the certificate says it), and what
    /// lets target secrets come back in catalogue reads.
    cluster_secret: String,
}

pub struct ControlClient {
    node: Arc<Node>,
    endpoints: Arc<Endpoints>,
    advertise: String,
    capacity: u64,
    /// Placement tags registered with the node.
    tags: Vec<String>,
    heartbeat: Duration,
}

impl Endpoints {
    pub fn new(addrs: Vec<String>, tls: Option<TlsFiles>, cluster_secret: String) -> Self {
        let first = addrs.first().cloned().unwrap_or_default();
        Endpoints {
            addrs,
            tls,
            preferred: Mutex::new((first, 0)),
            cluster_secret,
        }
    }

    /// A request carrying the cluster token (when one is configured).
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if !self.cluster_secret.is_empty() {
            if let Ok(v) = tonic::metadata::MetadataValue::try_from(self.cluster_secret.as_str()) {
                req.metadata_mut().insert(CLUSTER_TOKEN_HEADER, v);
            }
        }
        req
    }

    /// The address the next call goes to.
    pub fn current(&self) -> String {
        lock(&self.preferred).0.clone()
    }

    fn channel(&self) -> std::result::Result<TracedChannel, Status> {
        let addr = self.current();
        tls::channel(&addr, self.tls.as_ref(), None)
            .map_err(|e| Status::unavailable(format!("control plane {addr}: {e}")))
    }

    /// After a failed call: follow the leader hint, or move to the next address.
    fn failed(&self, status: &Status) {
        let mut p = lock(&self.preferred);
        match leader_hint(status) {
            Some(leader) => p.0 = leader,
            None if !self.addrs.is_empty() => {
                p.1 = (p.1 + 1) % self.addrs.len();
                p.0 = self.addrs[p.1].clone();
            }
            None => {}
        }
    }
}

impl ControlClient {
    pub fn new(
        node: Arc<Node>,
        endpoints: Arc<Endpoints>,
        advertise: String,
        capacity: u64,
        tags: Vec<String>,
        heartbeat: Duration,
    ) -> Arc<Self> {
        Arc::new(ControlClient {
            node,
            endpoints,
            advertise,
            capacity,
            tags,
            heartbeat,
        })
    }

    /// The heartbeat and catalogue-watch loops.
    pub fn spawn(self: &Arc<Self>) -> Vec<AbortOnDrop> {
        let (a, b) = (self.clone(), self.clone());
        vec![
            AbortOnDrop::spawn(async move { a.heartbeat_loop().await }),
            AbortOnDrop::spawn(async move { b.watch_loop().await }),
        ]
    }

    async fn register(&self) -> std::result::Result<(), Status> {
        let node = DataNode {
            id: self.node.id,
            addr: self.advertise.clone(),
            capacity: self.capacity,
            tags: self.tags.clone(),
        };
        ClusterClient::new(self.endpoints.channel()?)
            .register(self.endpoints.request(RegisterRequest { node: Some(node) }))
            .await?;
        Ok(())
    }

    async fn heartbeat_loop(&self) {
        let mut registered = false;
        let mut attempt = 0;
        loop {
            let r = if registered {
                let req = HeartbeatRequest {
                    node_id: self.node.id,
                    healthy: true,
                    stats: self.node.owned_stats(),
                };
                match self.endpoints.channel() {
                    Ok(ch) => ClusterClient::new(ch)
                        .heartbeat(self.endpoints.request(req))
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                }
            } else {
                self.register().await
            };
            match r {
                Ok(()) => {
                    if !registered {
                        tracing::info!(node = self.node.id, addr = %self.advertise, "registered with the control plane");
                        self.node.mark_registered();
                    } else {
                        tracing::debug!(node = self.node.id, cp = %self.endpoints.current(), "heartbeat acknowledged");
                    }
                    registered = true;
                    attempt = 0;
                    tokio::time::sleep(self.heartbeat).await;
                }
                Err(status) => {
                    // The record may be gone (a wiped control plane): register again.
                    if status.code() == Code::NotFound {
                        registered = false;
                    }
                    tracing::debug!(%status, "control plane call failed");
                    self.endpoints.failed(&status);
                    attempt += 1;
                    tokio::time::sleep(
                        RETRY
                            .delay(attempt)
                            .min(self.heartbeat.max(Duration::from_millis(100))),
                    )
                    .await;
                }
            }
        }
    }

    /// The catalogue view, and the revision each kind was listed at.
    async fn list(&self) -> std::result::Result<(CatalogView, HashMap<i32, u64>), Status> {
        let mut client = CatalogClient::new(self.endpoints.channel()?);
        let mut revision = u64::MAX;
        let mut listed = HashMap::new();
        let mut entities = Vec::new();
        for kind in [
            EntityKind::Tag,
            EntityKind::Well,
            EntityKind::Stream,
            EntityKind::Target,
            EntityKind::Policy,
            EntityKind::Namespace,
            EntityKind::DataNode,
        ] {
            let r = client
                .list(self.endpoints.request(ListRequest {
                    kind: kind as i32,
                    namespace: String::new(),
                }))
                .await?
                .into_inner();
            // Watch from the oldest list's revision: changes between lists are seen twice
            // (puts are idempotent), never missed.
            revision = revision.min(r.revision);
            listed.insert(kind as i32, r.revision);
            entities.extend(r.entities);
        }
        Ok((CatalogView::from_entities(revision, entities), listed))
    }

    async fn watch_once(&self) -> std::result::Result<(), Status> {
        let (view, listed) = self.list().await?;
        let from = view.revision;
        self.node.set_catalog(view).map_err(Status::from)?;
        self.node.mark_catalog_listed();
        let mut events = CatalogClient::new(self.endpoints.channel()?)
            .watch(self.endpoints.request(WatchRequest {
                from_revision: from,
            }))
            .await?
            .into_inner();
        while let Some(ev) = events.message().await? {
            // A change its kind's list already holds: replaying it would briefly turn the
            // entity back into an older state (a placed stream unplaced, say), and the node
            // would close and reopen what it serves.
            if listed.get(&ev.kind).is_some_and(|&r| ev.revision <= r) {
                continue;
            }
            self.node.apply_event(ev).map_err(Status::from)?;
        }
        Err(Status::unavailable("catalogue watch ended"))
    }

    async fn watch_loop(&self) {
        let mut attempt = 0;
        loop {
            let started = tokio::time::Instant::now();
            if let Err(status) = self.watch_once().await {
                tracing::debug!(%status, "catalogue watch failed; listing again after backoff");
                self.endpoints.failed(&status);
            }
            // A watch that ran a while resets the backoff.
            if started.elapsed() > Duration::from_secs(10) {
                attempt = 0;
            }
            attempt += 1;
            tokio::time::sleep(RETRY.delay(attempt)).await;
        }
    }
}

/// Creates tags through the catalogue. It shares the endpoints but not the node, so the node
/// holding it makes no reference cycle (the node must drop to close RocksDB).
pub struct TagClient {
    endpoints: Arc<Endpoints>,
}

impl TagClient {
    pub fn new(endpoints: Arc<Endpoints>) -> Arc<Self> {
        Arc::new(TagClient { endpoints })
    }

    async fn create_tag_once(&self, name: &str) -> std::result::Result<u32, Status> {
        let mut client = CatalogClient::new(self.endpoints.channel()?);
        let entity = Entity {
            kind: Some(Kind::Tag(Tag {
                name: name.to_string(),
                id: 0,
            })),
        };
        let created = match client.create(self.endpoints.request(entity)).await {
            Ok(r) => r.into_inner().entity,
            Err(s) if s.code() == Code::AlreadyExists => {
                client
                    .get(self.endpoints.request(EntityRef {
                        kind: EntityKind::Tag as i32,
                        name: name.to_string(),
                    }))
                    .await?
                    .into_inner()
                    .entity
            }
            Err(s) => return Err(s),
        };
        match created.and_then(|e| e.kind) {
            Some(Kind::Tag(t)) if t.id != 0 => Ok(t.id),
            _ => Err(Status::internal(format!(
                "control plane returned no id for tag {name}"
            ))),
        }
    }
}

impl TagCreator for TagClient {
    fn create_tag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u32>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + TAG_DEADLINE;
            let mut attempt = 0;
            loop {
                match self.create_tag_once(name).await {
                    Ok(id) => return Ok(id),
                    Err(s)
                        if matches!(s.code(), Code::InvalidArgument | Code::PermissionDenied) =>
                    {
                        return Err(Error::invalid("tag", s.message().to_string()))
                    }
                    Err(s) => {
                        self.endpoints.failed(&s);
                        attempt += 1;
                        if tokio::time::Instant::now() + RETRY.delay(attempt) > deadline {
                            return Err(Error::Unavailable(format!(
                                "cannot create tag {name:?}: control plane unavailable ({})",
                                s.message()
                            )));
                        }
                        tokio::time::sleep(RETRY.delay(attempt)).await;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_leader_hint_else_rotates() {
        let e = Endpoints::new(vec!["a:1".into(), "b:1".into()], None, String::new());
        assert_eq!(e.current(), "a:1");
        e.failed(&Status::unavailable("down"));
        assert_eq!(e.current(), "b:1");
        e.failed(&tributary_common::grpc::not_leader(Some("c:1")));
        assert_eq!(e.current(), "c:1");
        // The hinted leader failing too: back to the configured list.
        e.failed(&Status::unavailable("down"));
        assert_eq!(e.current(), "a:1");
    }
}
