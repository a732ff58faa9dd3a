//! Links to the other data nodes of this cluster, at the addresses they registered: mutual
//! TLS with this node's certificate, the peer's pinned to the node meant (`data-node-ID`), as
//! the members' peer links are; on an `insecure` cluster cleartext with the cluster token.
//! One lazily connected channel per peer, made again when its address changes.

use crate::error::{Error, Result};
use crate::node::Node;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tributary_common::certs;
use tributary_common::grpc::CLUSTER_TOKEN_HEADER;
use tributary_common::sync::lock;
use tributary_common::tls::{self, TlsFiles};
use tributary_common::trace_context::TracedChannel;

/// Metadata a forwarded call carries: how many data nodes it has passed through, so a stale
/// view of who leads cannot send a call round in circles.
pub const FORWARDED_HEADER: &str = "x-tributary-forwarded";
/// Most forwards of one call: a node that does not hold the stream → a replica → the leader.
pub const MAX_FORWARDS: u32 = 2;

pub struct Peers {
    node: Arc<Node>,
    /// This node's certificate and the cluster CA; None: `insecure`.
    tls: Option<TlsFiles>,
    cluster_token: String,
    channels: Mutex<HashMap<u64, (String, TracedChannel)>>,
}

impl Peers {
    pub fn new(node: Arc<Node>, tls: Option<TlsFiles>, cluster_token: String) -> Arc<Peers> {
        Arc::new(Peers {
            node,
            tls,
            cluster_token,
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// The channel to data node `id`.
    pub fn channel(&self, id: u64) -> Result<TracedChannel> {
        let addr = self
            .node
            .with_catalog(|c| c.data_nodes.get(&id).map(|n| n.addr.clone()))
            .ok_or_else(|| {
                Error::Unavailable(format!("data node {id} is not known to this node yet"))
            })?;
        let mut channels = lock(&self.channels);
        if let Some((a, ch)) = channels.get(&id) {
            if *a == addr {
                return Ok(ch.clone());
            }
        }
        let pin = certs::data_node_name(id);
        let ch = tls::channel(&addr, self.tls.as_ref(), Some(&pin))
            .map_err(|e| Error::Unavailable(format!("data node {id} at {addr}: {e}")))?;
        channels.insert(id, (addr, ch.clone()));
        Ok(ch)
    }

    /// `msg` as a call of this node: the cluster token when `insecure` (with TLS the
    /// certificate says who calls), and how many forwards it has made.
    pub fn request<T>(&self, msg: T, forwards: u32) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        let md = req.metadata_mut();
        if !self.cluster_token.is_empty() {
            if let Ok(v) = self.cluster_token.parse() {
                md.insert(CLUSTER_TOKEN_HEADER, v);
            }
        }
        if forwards > 0 {
            if let Ok(v) = forwards.to_string().parse() {
                md.insert(FORWARDED_HEADER, v);
            }
        }
        req
    }
}

/// How many times a request was forwarded already.
pub fn forwards<T>(req: &tonic::Request<T>) -> u32 {
    req.metadata()
        .get(FORWARDED_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
