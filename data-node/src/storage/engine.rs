//! The engine trait: a small ordered key-value store of our own (as TiKV's `engine_traits`),
//! with keyspaces, atomic batches and scans. Nothing above storage sees a RocksDB type.

use super::error::{StorageError, StorageResult};
use bytes::Bytes;

/// A keyspace inside one engine (a column family in RocksDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Well entries, keyed by `keys::entry_key`.
    Wells,
    /// Stream messages and per-stream state, keyed by `keys::stream_key`.
    Streams,
    /// Node bookkeeping: local ids, sequence counters, shard stats, batch ids, catalogue copy.
    Meta,
    /// The Raft logs and hard states of the replicated streams' groups (`group::log`).
    Raft,
}

impl Space {
    pub const ALL: [Space; 4] = [Space::Wells, Space::Streams, Space::Meta, Space::Raft];

    pub fn name(self) -> &'static str {
        match self {
            Space::Wells => "wells",
            Space::Streams => "streams",
            Space::Meta => "meta",
            Space::Raft => "raft",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Space, Vec<u8>, Vec<u8>),
    /// A put whose value is a slice of a buffer shared with others (a message read from an
    /// origin's reply): the engine copies it in as it is, with no owned copy made first.
    PutShared(Space, Vec<u8>, Bytes),
    Delete(Space, Vec<u8>),
    /// Deletes `[start, end)`.
    DeleteRange(Space, Vec<u8>, Vec<u8>),
}

/// Writes applied all together or not at all.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn with_capacity(n: usize) -> Self {
        Batch {
            ops: Vec::with_capacity(n),
        }
    }
    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(space, key, value));
    }
    pub fn put_shared(&mut self, space: Space, key: Vec<u8>, value: Bytes) {
        self.ops.push(Op::PutShared(space, key, value));
    }
    pub fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.ops.push(Op::Delete(space, key));
    }
    pub fn delete_range(&mut self, space: Space, start: Vec<u8>, end: Vec<u8>) {
        self.ops.push(Op::DeleteRange(space, start, end));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// A batch in the form of the engine that prepared it ([`KvEngine::prepare`]).
pub struct Prepared(Box<dyn std::any::Any + Send>);

impl Prepared {
    pub fn new<T: Send + 'static>(form: T) -> Self {
        Prepared(Box::new(form))
    }

    /// The engine's form back; another engine's batch is an error, not a panic.
    pub fn take<T: 'static>(self) -> StorageResult<T> {
        self.0
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StorageError::Engine("a batch prepared by another engine".into()))
    }
}

/// What a scan visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    Continue,
    Stop,
}

/// An ordered key-value store. Keys compare as bytes. A write that returns `Ok` is durable
/// against a process crash (RocksDB: in the WAL).
pub trait KvEngine: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;

    /// Applies the batch atomically.
    fn write(&self, batch: Batch) -> StorageResult<()>;

    /// Puts `batch` into the engine's own form ahead of its write, so copying every key and
    /// value can happen before the caller takes its locks, or on another thread.
    fn prepare(&self, batch: Batch) -> StorageResult<Prepared> {
        Ok(Prepared(Box::new(batch)))
    }

    /// Applies a prepared batch and then `more` (ops known only at write time) atomically.
    fn write_prepared(&self, prepared: Prepared, more: Batch) -> StorageResult<()> {
        let mut batch = prepared.take::<Batch>()?;
        batch.ops.extend(more.ops);
        self.write(batch)
    }

    /// Visits the keys in `[start, end)` in ascending order, or descending when `reverse`.
    /// A callback rather than an iterator keeps the trait object-safe and RocksDB's
    /// iterator lifetimes inside the implementation.
    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()>;

    /// Visits the keys in `[start, end)` in ascending order as they were at one instant:
    /// `pinned` is called once that view is fixed, before the first key is visited, and
    /// nothing written after it is seen. So a long read on another thread than the writers'
    /// (a replicated stream's snapshot) pins its view while the writers are held still, lets
    /// them go on, and reads at its own pace. Such a read does not fill the engine's caches.
    fn scan_pinned(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        pinned: &mut dyn FnMut(),
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()>;

    /// Rewrites `[start, end)` of `space` so that what was deleted there (a range delete of a
    /// dropped well or stream) no longer takes room or slows reads. Engines that remove as
    /// they delete have nothing to do.
    fn compact_range(&self, _space: Space, _start: &[u8], _end: &[u8]) -> StorageResult<()> {
        Ok(())
    }

    /// Sets the engine's gauges (sizes, compaction debt, stalls) from what it knows of
    /// itself; the node's sampling task calls it every few seconds. Nothing by default.
    fn sample_metrics(&self) {}

    /// The first (or last, when `reverse`) key-value pair in `[start, end)`.
    fn first(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        let mut found = None;
        self.scan(space, start, end, reverse, &mut |k, v| {
            found = Some((k.to_vec(), v.to_vec()));
            Scan::Stop
        })?;
        Ok(found)
    }

    /// Up to `limit` pairs from `[start, end)` in ascending order.
    fn page(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(space, start, end, false, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            if out.len() >= limit {
                Scan::Stop
            } else {
                Scan::Continue
            }
        })?;
        Ok(out)
    }
}
