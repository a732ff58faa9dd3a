//! What a mirror or source worker needs from the node it runs on: `server.rs` implements it
//! over the real node.

use crate::storage::streams::tail::{Tail, TailSpec};
use crate::storage::streams::{StreamResult, StreamStore};
use std::sync::Arc;
use tokio::sync::watch;
use tributary_proto::v1::Stream;

pub trait MirrorHost: Send + Sync + 'static {
    /// The streams this node owns, as the catalogue has them now (with origin credentials).
    fn owned_streams(&self) -> Vec<Stream>;
    /// Wakes on every catalogue change.
    fn catalog_changes(&self) -> watch::Receiver<u64>;
    /// The destination's store, if this node serves it; the error says why not.
    fn dest(&self, name: &str) -> crate::Result<Arc<StreamStore>>;
    /// A tail of `stream` when this node serves it (None: look elsewhere). The host fills in
    /// the incarnation.
    fn local_tail(&self, stream: &str, spec: TailSpec) -> Option<StreamResult<Tail>>;
}
