//! Opening a subscription on an origin stream, wherever it lives: owned by this node (read
//! straight from storage through the same code `Streams.Subscribe` runs, minus the network),
//! on another node of this cluster, or in another cluster (`external` names that cluster's
//! control plane). The owner is looked up on every attempt, so a moved or restarted origin
//! node is found again.

use crate::node::Node;
use crate::streams::subscribe;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;
use tonic::Status;
use tributary_common::grpc::channel;
use tributary_proto::v1::{
    catalog_client::CatalogClient, entity::Kind, streams_client::StreamsClient, EntityKind,
    EntityRef, SubscribeEvent, SubscribeRequest,
};

pub type Feed = BoxStream<'static, Result<SubscribeEvent, Status>>;

/// How long one lookup or subscribe call may take before the attempt counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Events can carry up to 2 MiB of messages plus one larger message: stay well above.
const MAX_EVENT_BYTES: usize = 256 << 20;

pub struct Resolver {
    /// This cluster's control plane (empty on a standalone node).
    local: Vec<String>,
}

fn addrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

impl Resolver {
    pub fn new(local: Vec<String>) -> Self {
        Resolver { local }
    }

    pub async fn open(
        &self,
        node: &Node,
        external: &str,
        req: SubscribeRequest,
    ) -> Result<Feed, String> {
        let cps = if external.is_empty() {
            if let Some(store) = node.streams.get(&req.stream) {
                let inc = subscribe::incarnation_of(node, &store);
                let feed = subscribe::start(store, req, inc).map_err(|e| e.to_string())?;
                return Ok(feed.boxed());
            }
            if self.local.is_empty() {
                return Err(format!(
                    "origin {} is not on this node and no control plane is configured to find it",
                    req.stream
                ));
            }
            self.local.clone()
        } else {
            addrs(external)
        };
        let addr = locate(&cps, &req.stream).await?;
        let ch = channel(&addr).map_err(|e| format!("data node {addr}: {e}"))?;
        let mut client = StreamsClient::new(ch).max_decoding_message_size(MAX_EVENT_BYTES);
        let stream = req.stream.clone();
        let reply = tokio::time::timeout(CALL_TIMEOUT, client.subscribe(req))
            .await
            .map_err(|_| format!("subscribing to {stream} on {addr}: timed out"))?
            .map_err(|s| format!("subscribing to {stream} on {addr}: {}", s.message()))?;
        Ok(reply.into_inner().boxed())
    }
}

/// The address of the data node owning `stream`, asking each control-plane member in turn
/// (any member answers catalogue reads).
async fn locate(cps: &[String], stream: &str) -> Result<String, String> {
    let mut last = String::from("no control-plane address");
    for cp in cps {
        match locate_at(cp, stream).await {
            Ok(a) => return Ok(a),
            // A definite answer (no such stream) needs no second opinion.
            Err((true, e)) => return Err(e),
            Err((false, e)) => last = e,
        }
    }
    Err(last)
}

/// `Err((definite, message))`.
async fn locate_at(cp: &str, stream: &str) -> Result<String, (bool, String)> {
    let ch = channel(cp).map_err(|e| (false, format!("control plane {cp}: {e}")))?;
    let c = CatalogClient::new(ch);
    let get = |kind: EntityKind, name: String| {
        let mut c = c.clone();
        async move {
            let r = EntityRef {
                kind: kind as i32,
                name,
            };
            match tokio::time::timeout(CALL_TIMEOUT, c.get(r)).await {
                Err(_) => Err((false, format!("control plane {cp}: timed out"))),
                Ok(Err(s)) if s.code() == tonic::Code::NotFound => {
                    Err((true, format!("origin: {}", s.message())))
                }
                Ok(Err(s)) => Err((false, format!("control plane {cp}: {}", s.message()))),
                Ok(Ok(r)) => Ok(r.into_inner().entity.and_then(|e| e.kind)),
            }
        }
    };
    let owner = match get(EntityKind::Stream, stream.to_string()).await? {
        Some(Kind::Stream(s)) => s.owner_node,
        _ => return Err((true, format!("{stream} is not a stream"))),
    };
    if owner == 0 {
        return Err((
            true,
            format!("origin {stream} is not placed on a data node yet"),
        ));
    }
    match get(EntityKind::DataNode, owner.to_string()).await? {
        Some(Kind::DataNode(n)) if !n.addr.is_empty() => Ok(n.addr),
        _ => Err((
            true,
            format!("data node {owner} of {stream} is not registered"),
        )),
    }
}
