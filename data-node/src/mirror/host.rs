//! What a mirror or source worker needs from the node it runs on: `server.rs` implements it
//! over the real node.

use crate::group::op::{Op, Outcome};
use crate::storage::streams::tail::{Tail, TailSpec};
use crate::storage::streams::{StreamResult, StreamStore};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::watch;
use tributary_proto::v1::Stream;

pub trait MirrorHost: Send + Sync + 'static {
    /// The streams this node owns (a replicated one: while it leads its group) that copy
    /// from origins (a mirror, sources), as the catalogue has them now (with origin
    /// credentials).
    fn copying_streams(&self) -> Vec<Stream>;
    /// Wakes on every catalogue change.
    fn catalog_changes(&self) -> watch::Receiver<u64>;
    /// The destination's store, if this node serves it; the error says why not.
    fn dest(&self, name: &str) -> crate::Result<Arc<StreamStore>>;
    /// A tail of `stream` when this node serves it (None: look elsewhere). The host fills in
    /// the incarnation.
    fn local_tail(&self, stream: &str, spec: TailSpec) -> Option<StreamResult<Tail>>;
    /// A copy into a replicated destination, through its group's log (this node leads it);
    /// resolves once applied here.
    fn propose_copy<'a>(&'a self, dest: &'a str, op: Op) -> BoxFuture<'a, crate::Result<Outcome>>;
}
