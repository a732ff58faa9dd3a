//! A fake host for the ditto unit tests: tags, targets and the meta space in memory.

use super::host::DittoHost;
use crate::storage::wells::{RawPage, Well};
use crate::storage::StorageResult;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tributary_common::sync::lock;
use tributary_proto::v1::{Target, WellEntry};

#[derive(Default)]
pub struct FakeHost {
    tags: Mutex<HashMap<u32, String>>,
    meta: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    pub stats: Mutex<Vec<WellEntry>>,
    changes: Option<watch::Sender<u64>>,
}

impl FakeHost {
    pub fn with_tags(tags: &[(u32, &str)]) -> Arc<Self> {
        let h = FakeHost {
            changes: Some(watch::Sender::new(0)),
            ..Default::default()
        };
        for (id, name) in tags {
            lock(&h.tags).insert(*id, name.to_string());
        }
        Arc::new(h)
    }

    pub fn add_tag(&self, id: u32, name: &str) {
        lock(&self.tags).insert(id, name.to_string());
    }
}

impl DittoHost for FakeHost {
    fn wanted(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn catalog_changes(&self) -> watch::Receiver<u64> {
        match &self.changes {
            Some(tx) => tx.subscribe(),
            None => watch::Sender::new(0).subscribe(),
        }
    }
    fn well(&self, _name: &str) -> Option<Arc<Well>> {
        None
    }
    fn target(&self, name: &str) -> Option<Target> {
        let _ = name;
        None
    }
    fn tag_names(&self) -> HashMap<u32, String> {
        lock(&self.tags).clone()
    }
    fn next_seq(&self, _well: &Well) -> u64 {
        0
    }
    fn page(&self, _w: &Well, _s: &[u8], _e: &[u8], _limit: usize) -> StorageResult<RawPage> {
        Ok(RawPage {
            entries: Vec::new(),
            more: false,
        })
    }
    fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(lock(&self.meta).get(key).cloned())
    }
    fn put_meta(&self, key: &[u8], value: Vec<u8>) -> StorageResult<()> {
        lock(&self.meta).insert(key.to_vec(), value);
        Ok(())
    }
    fn store_stats(&self, entries: Vec<WellEntry>) -> BoxFuture<'_, crate::Result<()>> {
        lock(&self.stats).extend(entries);
        Box::pin(async { Ok(()) })
    }
}
