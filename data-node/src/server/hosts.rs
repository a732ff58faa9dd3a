//! The node as the workers see it: the narrow host traits of ditto and mirror, implemented
//! over the real node (and, for the stats entries, the node's own ingest).

use crate::ditto::host::DittoHost;
use crate::ingest::IngestService;
use crate::mirror::host::MirrorHost;
use crate::node::catalog::canonical;
use crate::node::Node;
use crate::storage::streams::tail::{Tail, TailSpec};
use crate::storage::streams::{StreamResult, StreamStore};
use crate::storage::wells::{RawPage, Well};
use crate::storage::StorageResult;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tributary_proto::v1::{IngestBatch, Stream, Target, WellEntry};

pub struct NodeHost {
    pub node: Arc<Node>,
    /// Stats entries go in as this node's own ingest (no secret: it is in-process).
    pub ingest: IngestService,
}

impl DittoHost for NodeHost {
    fn wanted(&self) -> Vec<(String, String)> {
        let me = self.node.id;
        self.node.with_catalog(|c| {
            c.wells
                .values()
                .filter(|w| w.owner_node == me)
                .flat_map(|w| {
                    w.ditto_targets
                        .iter()
                        .map(|t| (w.name.clone(), canonical(t)))
                })
                .collect()
        })
    }

    fn catalog_changes(&self) -> watch::Receiver<u64> {
        self.node.catalog_changes()
    }

    fn well(&self, name: &str) -> Option<Arc<Well>> {
        self.node.well(name)
    }

    fn target(&self, name: &str) -> Option<Target> {
        self.node.with_catalog(|c| c.targets.get(name).cloned())
    }

    fn tag_names(&self) -> HashMap<u32, String> {
        self.node
            .with_catalog(|c| c.tags.iter().map(|(n, id)| (*id, n.clone())).collect())
    }

    fn next_seq(&self, well: &Well) -> u64 {
        self.node.next_seq(well)
    }

    fn page(&self, well: &Well, start: &[u8], end: &[u8], limit: usize) -> StorageResult<RawPage> {
        self.node.page_raw(well, start, end, limit)
    }

    fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.node.get_meta(key)
    }

    fn put_meta(&self, key: &[u8], value: Vec<u8>) -> StorageResult<()> {
        self.node.put_meta(key, value)
    }

    fn store_stats(&self, entries: Vec<WellEntry>) -> BoxFuture<'_, crate::Result<()>> {
        let batch = IngestBatch {
            seq: 0,
            entries,
            batch_id: String::new(),
        };
        Box::pin(async move { self.ingest.store(batch).await.map(|_| ()) })
    }
}

impl MirrorHost for NodeHost {
    fn owned_streams(&self) -> Vec<Stream> {
        let me = self.node.id;
        self.node.with_catalog(|c| {
            c.streams
                .values()
                .filter(|s| s.owner_node == me)
                .cloned()
                .collect()
        })
    }

    fn catalog_changes(&self) -> watch::Receiver<u64> {
        self.node.catalog_changes()
    }

    fn dest(&self, name: &str) -> crate::Result<Arc<StreamStore>> {
        self.node.owned_stream("stream", name)
    }

    fn local_tail(&self, stream: &str, mut spec: TailSpec) -> Option<StreamResult<Tail>> {
        let store = self.node.stream(stream)?;
        spec.incarnation = self.node.incarnation_of(&store);
        Some(store.tail(spec))
    }
}
