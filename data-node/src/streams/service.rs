//! The `Streams` service's state: what each handler reaches.

use super::limits::PublishLimits;
use crate::gate::Gate;
use crate::node::replication::ReplicationBoard;
use crate::node::Node;
use crate::peers::Peers;
use std::sync::Arc;
use tributary_common::throttle::Throttle;

#[derive(Clone)]
pub struct StreamsService {
    pub node: Arc<Node>,
    /// What this node's mirror and source workers report, for `Info`.
    pub replication: Arc<ReplicationBoard>,
    pub gate: Arc<Gate>,
    /// What a subject and a message's headers may be (`[limits]`).
    pub limits: PublishLimits,
    /// Per-connection rate limits (`[throttling]`) on publishing and delivery; `None`: off.
    pub throttle: Option<Arc<Throttle>>,
    /// The other data nodes: a replicated stream's calls are forwarded to its leader.
    pub peers: Arc<Peers>,
}
