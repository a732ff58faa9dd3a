//! The node: what this data node owns. Its storage (wells and streams, opened or closed as
//! the catalogue says), its catalogue view (kept current by the control-plane client and
//! saved, so a restart works with the control plane down), and tags. Services and workers
//! reach storage through the narrow methods here, never through its engines.

pub mod catalog;
mod compaction;
pub mod ditto_status;
pub mod erasure;
mod reconcile;
mod replicas;
pub mod replication;

use crate::error::{Error, Result};
use crate::group::Groups;
use crate::storage::keys::meta;
use crate::storage::streams::{StreamStore, Streams};
use crate::storage::wells::{
    ColdOpener, QuerySpec, RawPage, StoredEntry, Well as StoredWell, Wells, WriteOutcome,
};
use crate::storage::{codec::EntryValue, StorageError, StorageResult};
use crate::storage::{ids::LocalIds, Batch, KvEngine, MemoryEngine, RocksEngine, Space};
use catalog::{canonical, CatalogView};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use tributary_common::sync::{read, write};
use tributary_proto::v1::{EntityKind, EventType, OwnedStats, StorageType, Stream, WatchEvent};

/// Creates tags in the cluster (the control-plane client); the id comes back.
pub trait TagCreator: Send + Sync {
    fn create_tag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u32>>;
}

pub struct Node {
    pub id: u64,
    main: Arc<dyn KvEngine>,
    memory: Arc<dyn KvEngine>,
    ids: Arc<LocalIds>,
    wells: Wells,
    streams: Streams,
    catalog: RwLock<CatalogView>,
    /// Bumped after every catalogue change, so supervisors react at once instead of polling.
    /// Bumped too when this node starts or stops leading a replicated stream (its mirror and
    /// source workers run on its leader).
    catalog_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// A catalogue view was saved by an earlier run (health says SERVING from the start).
    catalog_saved: bool,
    /// Listed from the control plane, and registered with it: a new node serves its cluster
    /// from then on (health says NOT_SERVING until then).
    catalog_listed: std::sync::atomic::AtomicBool,
    registered: std::sync::atomic::AtomicBool,
    /// None: standalone (no control plane), tag ids are only ever used on this node.
    tag_creator: Option<Arc<dyn TagCreator>>,
    // Serialises tag creation so one new tag in many concurrent batches is created once.
    tag_lock: tokio::sync::Mutex<()>,
    /// What it owns but could not open, and why (`reconcile`).
    unopened: RwLock<reconcile::Unopened>,
    /// The Raft groups of the replicated streams it holds a replica of (once started).
    groups: OnceLock<Groups>,
}

impl Node {
    /// Opens the node's RocksDB under `data_dir/db` and reopens what the last known
    /// catalogue says it owns.
    pub fn open(
        id: u64,
        data_dir: &Path,
        sync_writes: bool,
        tag_creator: Option<Arc<dyn TagCreator>>,
    ) -> Result<Arc<Node>> {
        let main: Arc<dyn KvEngine> =
            Arc::new(RocksEngine::open(&data_dir.join("db"), sync_writes)?);
        let cold: ColdOpener = Box::new(move |p: &Path| {
            let e: Arc<dyn KvEngine> = Arc::new(RocksEngine::open(
                &p.join(format!("node-{id}")),
                sync_writes,
            )?);
            Ok(e)
        });
        Self::with_engine(id, main, cold, data_dir.to_path_buf(), tag_creator)
    }

    /// A node over any engine (tests use memory); `base` resolves relative cold locations.
    pub fn with_engine(
        id: u64,
        main: Arc<dyn KvEngine>,
        cold: ColdOpener,
        base: PathBuf,
        tag_creator: Option<Arc<dyn TagCreator>>,
    ) -> Result<Arc<Node>> {
        let ids = Arc::new(LocalIds::new(main.clone()));
        let cold: ColdOpener = Box::new(move |p: &Path| cold(&base.join(p)));
        let wells = Wells::open(main.clone(), ids.clone(), cold)?;
        let saved = main.get(Space::Meta, meta::CATALOG)?;
        let loaded = saved.is_some();
        let catalog = match saved {
            Some(v) => CatalogView::decode(&v)
                .map_err(|e| StorageError::Corrupt(format!("saved catalogue: {e}")))?,
            None => CatalogView::default(),
        };
        let node = Arc::new(Node {
            id,
            main,
            memory: Arc::new(MemoryEngine::new()),
            ids,
            wells,
            streams: Streams::default(),
            catalog: RwLock::new(CatalogView::default()),
            catalog_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            catalog_saved: loaded,
            catalog_listed: std::sync::atomic::AtomicBool::new(false),
            registered: std::sync::atomic::AtomicBool::new(false),
            tag_creator,
            tag_lock: tokio::sync::Mutex::new(()),
            unopened: RwLock::default(),
            groups: OnceLock::new(),
        });
        node.set_catalog(catalog)?;
        Ok(node)
    }

    /// Reads the catalogue view without copying it.
    pub fn with_catalog<R>(&self, f: impl FnOnce(&CatalogView) -> R) -> R {
        f(&read(&self.catalog))
    }

    pub fn catalog_revision(&self) -> u64 {
        self.with_catalog(|c| c.revision)
    }

    /// Wakes on every catalogue change (after the node has reconciled its storage with it).
    pub fn catalog_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.catalog_changed.subscribe()
    }

    /// Whether the node has a catalogue view to work from: saved by an earlier run, or
    /// listed from the control plane it has registered with.
    pub fn catalog_loaded(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.catalog_saved || (self.catalog_listed.load(Relaxed) && self.registered.load(Relaxed))
    }

    /// The view was listed from the control plane (or there is none to wait for).
    pub fn mark_catalog_listed(&self) {
        self.catalog_listed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.catalog_changed.send_modify(|n| *n += 1);
    }

    /// The control plane knows this node (or there is none).
    pub fn mark_registered(&self) {
        self.registered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.catalog_changed.send_modify(|n| *n += 1);
    }

    /// Replaces the view (after a List), persists it and reconciles.
    pub fn set_catalog(&self, view: CatalogView) -> Result<()> {
        self.update_catalog(|c| *c = view)
    }

    /// Changes the view in place, persists it and reconciles.
    fn update_catalog(&self, f: impl FnOnce(&mut CatalogView)) -> Result<()> {
        let snapshot = {
            let mut c = write(&self.catalog);
            f(&mut c);
            c.clone()
        };
        self.put_meta(meta::CATALOG, snapshot.encode())?;
        let r = self.reconcile(&snapshot);
        self.catalog_changed.send_modify(|n| *n += 1);
        r
    }

    /// Applies one catalogue watch event. A delete of a well or stream this node owns drops
    /// its data, so a later entity of the same name starts empty.
    pub fn apply_event(&self, ev: WatchEvent) -> Result<()> {
        if ev.r#type == EventType::Delete as i32 {
            let name = canonical(&ev.name);
            if ev.kind == EntityKind::Well as i32 && self.wells.get(&name).is_some() {
                self.wells.close_well(&name, true)?;
            }
            if ev.kind == EntityKind::Stream as i32 {
                self.drop_group(&name);
                if let Some(store) = self.streams.remove(&name) {
                    store.destroy()?;
                    self.mark_for_compaction(store.id)?;
                    self.ids.forget(&meta::stream_id(&name))?;
                }
            }
        }
        self.update_catalog(|c| c.apply(ev))
    }

    /// A dropped stream's range of the node's RocksDB, for background cleanup to compact.
    pub(crate) fn mark_for_compaction(&self, stream: u32) -> Result<()> {
        let start = crate::storage::keys::stream_key(stream, 0, &[]);
        let end = crate::storage::keys::stream_end(stream);
        self.put_meta(&meta::compaction(Space::Streams.name(), &start), end)?;
        Ok(())
    }

    /// The id of `tag`, creating it in the cluster (or locally with no control plane).
    pub async fn resolve_tag(&self, tag: &str) -> Result<u32> {
        if let Some(id) = self.with_catalog(|c| c.tags.get(tag).copied()) {
            return Ok(id);
        }
        tributary_common::names::validate_part(tag)
            .map_err(|r| Error::invalid("tag", format!("tag {tag:?} {r}")))?;
        let _guard = self.tag_lock.lock().await;
        if let Some(id) = self.with_catalog(|c| c.tags.get(tag).copied()) {
            return Ok(id);
        }
        let id = match &self.tag_creator {
            Some(c) => c.create_tag(tag).await?,
            None => self.with_catalog(|c| c.tags.values().max().map_or(1, |m| m + 1)),
        };
        self.update_catalog(|c| {
            c.tags.insert(tag.to_string(), id);
        })?;
        Ok(id)
    }

    /// Sets the storage engine's gauges (the sampling task's call).
    pub fn sample_metrics(&self) {
        self.main.sample_metrics();
    }

    /// Periodic upkeep: ageout, stream age limits and dedupe windows, old ingest batch ids.
    pub fn maintain(&self, now: i64, batch_id_window_ns: i64) -> Result<()> {
        let r = self.wells.ageout(now)?;
        if r != Default::default() {
            tracing::info!(
                moved_shards = r.moved_shards,
                moved_entries = r.moved_entries,
                deleted_shards = r.deleted_shards,
                "ageout"
            );
        }
        for s in self.streams.all() {
            self.expire_stream(&s, now)?;
        }
        self.wells.expire_batch_ids(now, batch_id_window_ns)?;
        self.drop_left_replicas()?;
        self.retry_unopened()
    }

    /// An open well (canonical name), if this node serves it.
    pub fn well(&self, name: &str) -> Option<Arc<StoredWell>> {
        self.wells.get(name)
    }

    /// An open stream (canonical name), if this node serves it.
    pub fn stream(&self, name: &str) -> Option<Arc<StreamStore>> {
        self.streams.get(name)
    }

    /// The well named `name` if this node owns it; the error says why not.
    pub fn owned_well(&self, field: &str, name: &str) -> Result<Arc<StoredWell>> {
        if name.is_empty() {
            return Err(Error::invalid(field, "is empty"));
        }
        let name = canonical(name);
        self.refuse_blocked(&name)?;
        if let Some(w) = self.wells.get(&name) {
            return Ok(w);
        }
        if let Some(why) = self.unopened_why("well", &name) {
            return Err(self.cannot_open("well", &name, &why));
        }
        Err(self.not_here(
            "well",
            &name,
            self.with_catalog(|c| c.wells.get(&name).map(|w| w.owner_node)),
        ))
    }

    pub fn owned_stream(&self, field: &str, name: &str) -> Result<Arc<StreamStore>> {
        if name.is_empty() {
            return Err(Error::invalid(field, "is empty"));
        }
        let name = canonical(name);
        self.refuse_blocked(&name)?;
        if let Some(s) = self.streams.get(&name) {
            return Ok(s);
        }
        if let Some(why) = self.unopened_why("stream", &name) {
            return Err(self.cannot_open("stream", &name, &why));
        }
        Err(self.not_here(
            "stream",
            &name,
            self.with_catalog(|c| c.streams.get(&name).map(|s| s.owner_node)),
        ))
    }

    /// Every request for an entity of a blocked namespace is refused (erasure, step 1).
    fn refuse_blocked(&self, name: &str) -> Result<()> {
        let ns = catalog::namespace_of(name);
        match self.with_catalog(|c| c.blocked(ns)) {
            true => Err(Error::FailedPrecondition(format!(
                "namespace {ns} is blocked"
            ))),
            false => Ok(()),
        }
    }

    fn cannot_open(&self, kind: &str, name: &str, why: &str) -> Error {
        Error::FailedPrecondition(format!(
            "{kind} {name} cannot be opened on data node {}: {why}",
            self.id
        ))
    }

    fn not_here(&self, kind: &'static str, name: &str, owner: Option<u64>) -> Error {
        match owner {
            None => Error::not_found(kind, name),
            Some(0) => {
                Error::FailedPrecondition(format!("{kind} {name} is not placed on a data node yet"))
            }
            Some(o) => Error::FailedPrecondition(format!(
                "{kind} {name} is owned by data node {o}, not {}",
                self.id
            )),
        }
    }

    /// The catalogue config of a stream as clients may see it (for `Info`): the external
    /// credentials of its origins redacted.
    pub fn stream_config(&self, name: &str) -> Option<Stream> {
        let mut s = self.with_catalog(|c| c.streams.get(name).cloned())?;
        tributary_common::secrets::redact_stream(&mut s);
        Some(s)
    }

    /// A stream's incarnation: this node and its node-local id. Local ids are never reused and
    /// a stream that moves to another node starts empty there, so a new value means a new
    /// stream. A memory stream keeps its local id across a restart but not its messages, so it
    /// is a new stream every time the process starts.
    /// A replicated stream's incarnation is its group's id, the same on every replica, so a
    /// mirror following it through a change of leader sees the same stream.
    pub fn incarnation_of(&self, store: &StreamStore) -> u64 {
        if let Some((group, _)) = self.replicated(&store.name) {
            return group;
        }
        static BOOT: OnceLock<u64> = OnceLock::new();
        let base = (self.id << 32) | u64::from(store.id);
        let memory = self.with_catalog(|c| {
            c.streams
                .get(&store.name)
                .is_some_and(|s| s.storage == StorageType::Memory as i32)
        });
        if memory {
            base ^ *BOOT.get_or_init(|| rand::random::<u64>() | 1)
        } else {
            base
        }
    }

    /// Stores checked entries all or nothing (see `Wells::write`).
    pub fn write_entries(
        &self,
        entries: Vec<(Arc<StoredWell>, u64, EntryValue)>,
        batch_id: Option<&str>,
        now_ns: i64,
    ) -> StorageResult<WriteOutcome> {
        self.wells.write(entries, batch_id, now_ns)
    }

    /// A page of a query (see `Wells::query`).
    pub fn query(
        &self,
        well: &StoredWell,
        spec: &QuerySpec,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<(Vec<StoredEntry>, Option<Vec<u8>>)> {
        self.wells.query(well, spec, cursor, limit)
    }

    /// Raw entries of `well` in `[start, end)` across tiers (ditto's reads).
    pub fn page_raw(
        &self,
        well: &StoredWell,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> StorageResult<RawPage> {
        self.wells.page_raw(well, start, end, limit)
    }

    /// The seq the next entry written to `well` gets: everything below it is stored.
    pub fn next_seq(&self, well: &StoredWell) -> u64 {
        self.wells.next_seq(well)
    }

    /// Node bookkeeping in the meta space (worker progress, ids of this node).
    pub fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.main.get(Space::Meta, key)
    }

    pub fn put_meta(&self, key: &[u8], value: Vec<u8>) -> StorageResult<()> {
        let mut b = Batch::default();
        b.put(Space::Meta, key.to_vec(), value);
        self.main.write(b)
    }

    /// Up to `limit` meta keys under `prefix` after `after` (a whole key), in order.
    pub fn meta_keys_after(
        &self,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<Vec<u8>>> {
        let start = crate::storage::successor(after).max(prefix.to_vec());
        let mut out = Vec::new();
        self.main.scan(
            Space::Meta,
            &start,
            &crate::storage::prefix_end(prefix),
            false,
            &mut |k, _| {
                out.push(k.to_vec());
                match out.len() < limit {
                    true => crate::storage::Scan::Continue,
                    false => crate::storage::Scan::Stop,
                }
            },
        )?;
        Ok(out)
    }

    pub fn delete_meta(&self, keys: Vec<Vec<u8>>) -> StorageResult<()> {
        let mut b = Batch::default();
        for k in keys {
            b.delete(Space::Meta, k);
        }
        self.main.write(b)
    }

    /// Every stream this node serves.
    pub fn open_streams(&self) -> Vec<Arc<StreamStore>> {
        self.streams.all()
    }

    /// What this node holds of each well and stream it serves, for the heartbeat.
    pub fn owned_stats(&self) -> Vec<OwnedStats> {
        let mut out = Vec::new();
        for name in self.wells.names() {
            if let Some(w) = self.wells.get(&name) {
                let t = w.totals();
                out.push(OwnedStats {
                    kind: EntityKind::Well as i32,
                    name,
                    entries: t.entries,
                    bytes: t.bytes,
                    ..Default::default()
                });
            }
        }
        for s in self.streams.all() {
            let st = s.state();
            out.push(OwnedStats {
                kind: EntityKind::Stream as i32,
                name: s.name.clone(),
                entries: st.messages,
                bytes: st.bytes,
                ..Default::default()
            });
        }
        out.extend(self.unopened_stats());
        out
    }

    /// Test hook: damages an entry as stored (see `Wells::overwrite_raw_for_test`).
    #[doc(hidden)]
    pub fn overwrite_raw_for_test(
        &self,
        well: &StoredWell,
        key: &[u8],
        value: Vec<u8>,
    ) -> StorageResult<()> {
        self.wells.overwrite_raw_for_test(well, key, value)
    }
}

#[cfg(test)]
mod tests;
