//! What a ditto worker needs from the node it runs on, and nothing more: `server.rs`
//! implements it over the real node, tests over a fake.

use crate::storage::wells::{RawPage, Well};
use crate::storage::StorageResult;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tributary_proto::v1::{Target, WellEntry};

pub trait DittoHost: Send + Sync + 'static {
    /// The (well, target) pairs this node should mirror now (canonical names).
    fn wanted(&self) -> Vec<(String, String)>;
    /// Wakes on every catalogue change.
    fn catalog_changes(&self) -> watch::Receiver<u64>;
    /// An open well of this node.
    fn well(&self, name: &str) -> Option<Arc<Well>>;
    /// A target as the catalogue has it now (with its secret).
    fn target(&self, name: &str) -> Option<Target>;
    /// Tag id → name, as the catalogue has them now.
    fn tag_names(&self) -> HashMap<u32, String>;
    /// The seq the next entry written to `well` gets: everything below it is stored.
    fn next_seq(&self, well: &Well) -> u64;
    /// Raw entries of `well` in `[start, end)`, about `limit` of them, in key order.
    fn page(&self, well: &Well, start: &[u8], end: &[u8], limit: usize) -> StorageResult<RawPage>;
    /// The node's bookkeeping space (progress, this cluster's source id).
    fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;
    fn put_meta(&self, key: &[u8], value: Vec<u8>) -> StorageResult<()>;
    /// Stores stats entries as this node's own ingest would (routed by their tag).
    fn store_stats(&self, entries: Vec<WellEntry>) -> BoxFuture<'_, crate::Result<()>>;
}
