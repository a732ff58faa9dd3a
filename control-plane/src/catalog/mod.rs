//! The catalogue state machine: entities in RocksDB, the applied Raft index written in the
//! same batch as each applied command, and a revision-keyed event log that `Watch` serves.

mod apply;
pub mod blocked;
pub mod entity;
mod events;
mod limits;
mod placement;
mod replica_changes;
mod subjects;
mod validate;

pub use apply::{apply_command, Txn};
pub use events::{Cursor, Feed, Page};
pub use limits::Limits;
pub use subjects::Overlap;
pub use validate::check_command as check_sizes;
pub use validate::credentials_as_written;
pub use validate::endpoint as validate_endpoint;

/// The canonical name of an entity of `kind` (`ns:name` for namespaced kinds).
pub fn canonical_name(kind: EntityKind, raw: &str) -> Result<String, CatalogError> {
    validate::name(kind, raw)
}

use crate::error::CatalogError;
use events::event_key;
use prost::Message;
use rocksdb::{IteratorMode, WriteBatch, DB};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use subjects::SubjectIndex;
use tributary_common::sync::{read, write};
use tributary_proto::v1::{entity::Kind, Entity, EntityKind, EventType, Namespace, WatchEvent};

pub const CF_CATALOG: &str = "catalog";
pub const CF_CATALOG_META: &str = "catalog_meta";
pub const CF_EVENTS: &str = "events";
const KEY_APPLIED: &[u8] = b"applied";
const KEY_REVISION: &[u8] = b"revision";
const KEY_NEXT_TAG: &[u8] = b"next_tag_id";
const KEY_EVENT_FLOOR: &[u8] = b"event_floor";
const KEY_PEERS: &[u8] = b"peers";

/// What a snapshot carries: the whole catalogue and the member addresses.
#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotData {
    #[prost(uint64, tag = "1")]
    revision: u64,
    #[prost(uint64, tag = "2")]
    next_tag_id: u64,
    #[prost(message, repeated, tag = "3")]
    entities: Vec<Entity>,
    #[prost(btree_map = "uint64, string", tag = "4")]
    peers: BTreeMap<u64, String>,
}

/// Whether `data` is a catalogue snapshot this member could install: what a peer's snapshot is
/// checked for before Raft takes it, since a payload that does not decode would stop the Raft
/// loop on installing it.
pub fn snapshot_decodes(data: &[u8]) -> Result<(), CatalogError> {
    SnapshotData::decode(data)
        .map(|_| ())
        .map_err(|e| CatalogError::invalid("snapshot", format!("not a catalogue: {e}")))
}

/// Handle on the catalogue; cheap to clone. Applies happen on the Raft loop only; reads may
/// come from any task.
#[derive(Clone)]
pub struct Catalogue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<DB>,
    /// Every entity by storage key: the catalogue is small, and scanning RocksDB on every
    /// validation would step over each superseded version still in the memtable.
    index: RwLock<BTreeMap<Vec<u8>, Entity>>,
    /// Every stream subject, by token: what makes the overlap check of a new stream cost
    /// about its own subjects, not every stored one. Only the Raft loop writes it.
    subjects: RwLock<SubjectIndex>,
    applied: AtomicU64,
    revision: AtomicU64,
    next_tag: AtomicU64,
    events: events::EventLog,
}

fn u64_at(db: &DB, cf: &rocksdb::ColumnFamily, key: &[u8]) -> Result<u64, CatalogError> {
    Ok(match db.get_cf(cf, key)? {
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| CatalogError::Storage(format!("corrupt meta key {key:?}")))?,
        ),
        None => 0,
    })
}

impl Catalogue {
    pub fn open(db: Arc<DB>, max_events: u64) -> Result<Self, CatalogError> {
        let (applied, revision, floor, next_tag) = {
            let meta = cf(&db, CF_CATALOG_META)?;
            (
                u64_at(&db, meta, KEY_APPLIED)?,
                u64_at(&db, meta, KEY_REVISION)?,
                u64_at(&db, meta, KEY_EVENT_FLOOR)?,
                u64_at(&db, meta, KEY_NEXT_TAG)?,
            )
        };
        let events = events::EventLog::open(&db, floor, revision, max_events)?;
        let index = load_index(&db)?;
        let subjects = RwLock::new(SubjectIndex::of(index.values()));
        Ok(Self {
            inner: Arc::new(Inner {
                index: RwLock::new(index),
                subjects,
                db,
                applied: AtomicU64::new(applied),
                revision: AtomicU64::new(revision),
                next_tag: AtomicU64::new(next_tag),
                events,
            }),
        })
    }

    /// Bounds the watch event log's bytes (`raft.max_watch_event_bytes`); unbounded until set.
    pub fn limit_event_log_bytes(&self, max: u64) {
        self.inner.events.set_max_bytes(max);
    }

    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    pub fn applied_index(&self) -> u64 {
        self.inner.applied.load(Ordering::Acquire)
    }

    pub fn revision(&self) -> u64 {
        self.inner.revision.load(Ordering::Acquire)
    }

    /// Writes the applied index into `batch` (the batch that applies that entry).
    pub fn mark_applied(&self, batch: &mut WriteBatch, index: u64) {
        if let Ok(meta) = cf(&self.inner.db, CF_CATALOG_META) {
            batch.put_cf(meta, KEY_APPLIED, index.to_be_bytes());
        }
    }

    /// Called after the batch holding `mark_applied(index)` is written.
    pub fn set_applied(&self, index: u64) {
        self.inner.applied.store(index, Ordering::Release);
    }

    /// Starts a transaction for applying one command at `index`.
    pub fn begin(&self, index: u64) -> Result<Txn<'_>, CatalogError> {
        Txn::new(self, index)
    }

    /// Publishes a committed transaction's effects to readers and watchers.
    pub(crate) fn committed(&self, index: u64, revision: u64, events: Vec<WatchEvent>) {
        {
            let mut idx = write(&self.inner.index);
            let mut subjects = write(&self.inner.subjects);
            for e in &events {
                let key = entity::key(
                    EntityKind::try_from(e.kind).unwrap_or(EntityKind::Unspecified),
                    &e.name,
                );
                let put = match (EventType::try_from(e.r#type), &e.entity) {
                    (Ok(EventType::Put), Some(ent)) => Some(ent),
                    _ => None,
                };
                let old = match put {
                    Some(ent) => idx.insert(key, ent.clone()),
                    None => idx.remove(&key),
                };
                if let Some(old) = &old {
                    subjects.remove(old);
                }
                if let Some(ent) = put {
                    subjects.add(ent);
                }
            }
        }
        self.inner.revision.store(revision, Ordering::Release);
        self.set_applied(index);
        self.inner.events.committed(revision);
    }

    pub(crate) fn next_tag_id(&self) -> Result<u64, CatalogError> {
        Ok(self.inner.next_tag.load(Ordering::Acquire).max(1))
    }

    pub(crate) fn put_next_tag_id(
        &self,
        batch: &mut WriteBatch,
        id: u64,
    ) -> Result<(), CatalogError> {
        batch.put_cf(
            cf(&self.inner.db, CF_CATALOG_META)?,
            KEY_NEXT_TAG,
            id.to_be_bytes(),
        );
        // Only the Raft loop applies, and a failed write stops it: the batch will land.
        self.inner.next_tag.store(id, Ordering::Release);
        Ok(())
    }

    pub(crate) fn put_revision(
        &self,
        batch: &mut WriteBatch,
        revision: u64,
    ) -> Result<(), CatalogError> {
        batch.put_cf(
            cf(&self.inner.db, CF_CATALOG_META)?,
            KEY_REVISION,
            revision.to_be_bytes(),
        );
        Ok(())
    }

    pub fn get(&self, kind: EntityKind, name: &str) -> Result<Option<Entity>, CatalogError> {
        let idx = read(&self.inner.index);
        Ok(idx.get(&entity::key(kind, name)).cloned())
    }

    /// Every entity of `kind`, in name order; `namespace` filters when non-empty.
    pub fn list(&self, kind: EntityKind, namespace: &str) -> Result<Vec<Entity>, CatalogError> {
        let prefix = entity::kind_prefix(kind);
        let ns_prefix = format!("{namespace}:");
        let idx = read(&self.inner.index);
        Ok(idx
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| namespace.is_empty() || k[1..].starts_with(ns_prefix.as_bytes()))
            .map(|(_, e)| e.clone())
            .collect())
    }

    /// Like `list`, but refuses (naming `limits.max_reply_bytes`) once the entities' encoded
    /// bytes pass `max_bytes`, without having copied more than that.
    pub fn list_within(
        &self,
        kind: EntityKind,
        namespace: &str,
        max_bytes: usize,
    ) -> Result<Vec<Entity>, CatalogError> {
        let ns_prefix = format!("{namespace}:");
        let mut out = Vec::new();
        let mut bytes = 0usize;
        self.visit(kind, |k, e| {
            if !namespace.is_empty() && !k[1..].starts_with(ns_prefix.as_bytes()) {
                return Ok(());
            }
            bytes += e.encoded_len();
            if bytes > max_bytes {
                let (scope, hint) = if namespace.is_empty() {
                    (String::new(), "; list one namespace at a time")
                } else {
                    (format!(" in namespace {namespace}"), "")
                };
                let label = entity::kind_label(kind);
                let plural = label
                    .strip_suffix('y')
                    .map_or_else(|| format!("{label}s"), |stem| format!("{stem}ies"));
                return Err(CatalogError::Exhausted(format!(
                    "the {plural}{scope} are more than {max_bytes} bytes, the most one reply carries (`limits.max_reply_bytes`){hint}"
                )));
            }
            out.push(e.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// How many entities of `kind` there are.
    pub fn count(&self, kind: EntityKind) -> usize {
        let prefix = entity::kind_prefix(kind);
        read(&self.inner.index)
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count()
    }

    /// Calls `f` with the key and entity of every entity of `kind`, by reference.
    pub(crate) fn visit(
        &self,
        kind: EntityKind,
        mut f: impl FnMut(&[u8], &Entity) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let prefix = entity::kind_prefix(kind);
        let idx = read(&self.inner.index);
        for (k, e) in idx
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            f(k, e)?;
        }
        Ok(())
    }

    /// The first of `subjects` that overlaps a subject of a stored stream other than
    /// `stream` (whose stored subjects are its own to keep).
    pub(crate) fn subject_overlap(
        &self,
        stream: &str,
        subjects: &[String],
    ) -> Result<Option<Overlap>, CatalogError> {
        let own = match self.get(EntityKind::Stream, stream)?.and_then(|e| e.kind) {
            Some(Kind::Stream(s)) => s.subjects,
            _ => Vec::new(),
        };
        Ok(read(&self.inner.subjects).first_overlap(stream, subjects, &own))
    }

    pub fn peers(&self) -> Result<HashMap<u64, String>, CatalogError> {
        let meta = cf(&self.inner.db, CF_CATALOG_META)?;
        match self.inner.db.get_cf(meta, KEY_PEERS)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| CatalogError::Storage(e.to_string())),
            None => Ok(HashMap::new()),
        }
    }

    pub fn put_peers(
        &self,
        batch: &mut WriteBatch,
        peers: &HashMap<u64, String>,
    ) -> Result<(), CatalogError> {
        let v = serde_json::to_vec(peers).map_err(|e| CatalogError::Storage(e.to_string()))?;
        batch.put_cf(cf(&self.inner.db, CF_CATALOG_META)?, KEY_PEERS, v);
        Ok(())
    }

    /// The whole catalogue, for a Raft snapshot.
    pub fn export(&self) -> Result<Vec<u8>, CatalogError> {
        let cf = cf(&self.inner.db, CF_CATALOG)?;
        let mut entities = Vec::new();
        for item in self.inner.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item?;
            entities.push(decode_entity(&v)?);
        }
        Ok(SnapshotData {
            revision: self.revision(),
            next_tag_id: self.next_tag_id()?,
            entities,
            peers: self.peers()?.into_iter().collect(),
        }
        .encode_to_vec())
    }

    /// Replaces the catalogue with a snapshot's, in `batch`. Watchers behind the snapshot's
    /// revision must list again: the event log restarts at it.
    pub fn restore(
        &self,
        batch: &mut WriteBatch,
        data: &[u8],
        index: u64,
    ) -> Result<(), CatalogError> {
        let snap = SnapshotData::decode(data).map_err(|e| CatalogError::Storage(e.to_string()))?;
        let db = &self.inner.db;
        let cat = cf(db, CF_CATALOG)?;
        batch.delete_range_cf(cat, [0u8].as_slice(), [0xffu8; 8].as_slice());
        for e in &snap.entities {
            batch.put_cf(
                cat,
                entity::key(entity::kind_of(e), &entity::name_of(e)),
                e.encode_to_vec(),
            );
        }
        let ev = cf(db, CF_EVENTS)?;
        batch.delete_range_cf(ev, event_key(0, 0), event_key(u64::MAX, u32::MAX));
        self.inner.events.restarting(snap.revision);
        let meta = cf(db, CF_CATALOG_META)?;
        batch.put_cf(meta, KEY_REVISION, snap.revision.to_be_bytes());
        batch.put_cf(meta, KEY_EVENT_FLOOR, snap.revision.to_be_bytes());
        batch.put_cf(meta, KEY_NEXT_TAG, snap.next_tag_id.to_be_bytes());
        self.inner
            .next_tag
            .store(snap.next_tag_id, Ordering::Release);
        self.put_peers(batch, &snap.peers.into_iter().collect())?;
        self.mark_applied(batch, index);
        self.inner.revision.store(snap.revision, Ordering::Release);
        Ok(())
    }

    /// After a snapshot replaced the catalogue: watchers cannot be sent the difference, so
    /// they are told to list again.
    pub fn after_restore(&self, index: u64) {
        match load_index(&self.inner.db) {
            Ok(fresh) => {
                *write(&self.inner.subjects) = SubjectIndex::of(fresh.values());
                *write(&self.inner.index) = fresh;
            }
            Err(e) => tracing::error!(error = %e, "reloading the catalogue index after a snapshot"),
        }
        self.set_applied(index);
        self.inner.events.restored(self.revision());
    }
}

impl Catalogue {
    /// The stored namespace record, if any.
    pub fn namespace(&self, ns: &str) -> Result<Option<Namespace>, CatalogError> {
        Ok(
            match self.get(EntityKind::Namespace, ns)?.and_then(|e| e.kind) {
                Some(Kind::Namespace(n)) => Some(n),
                _ => None,
            },
        )
    }

    /// Refuses a read of an entity of `kind` named `name` (canonical) in a blocked namespace.
    pub fn check_not_blocked(&self, kind: EntityKind, name: &str) -> Result<(), CatalogError> {
        if kind == EntityKind::Namespace {
            return Ok(());
        }
        match blocked::namespace_of(kind, name) {
            Some(ns) if self.namespace(&ns)?.is_some_and(|n| n.blocked) => {
                Err(blocked::refusal(&ns))
            }
            _ => Ok(()),
        }
    }
}

/// Every stored entity by key (one scan, at open and after a snapshot).
fn load_index(db: &DB) -> Result<BTreeMap<Vec<u8>, Entity>, CatalogError> {
    let cf = cf(db, CF_CATALOG)?;
    let mut idx = BTreeMap::new();
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item?;
        idx.insert(k.to_vec(), decode_entity(&v)?);
    }
    Ok(idx)
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, CatalogError> {
    db.cf_handle(name)
        .ok_or_else(|| CatalogError::Storage(format!("missing column family {name}")))
}

pub(crate) fn decode_entity(v: &[u8]) -> Result<Entity, CatalogError> {
    Entity::decode(v).map_err(|e| CatalogError::Storage(format!("corrupt entity: {e}")))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_blocked;
#[cfg(test)]
mod tests_owner_and_secrets;
#[cfg(test)]
mod tests_placement;
