//! The Raft log, hard state and conf state in RocksDB, behind raft-rs's `Storage` trait.
//!
//! Entries live in column family `raft_log` keyed by big-endian index. `raft_meta` holds the
//! hard state, the conf state and the truncation point (index and term of the last entry
//! compacted away). Snapshots are not stored: they are built on demand from the catalogue,
//! which lives in the same database (see `catalog`).

use crate::catalog::Catalogue;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use rocksdb::{WriteBatch, WriteOptions, DB};
use std::sync::{Arc, Mutex};
use tributary_common::sync::lock;

pub const CF_LOG: &str = "raft_log";
pub const CF_META: &str = "raft_meta";
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_TRUNCATED: &[u8] = b"truncated";

#[derive(Debug, Default, Clone)]
struct Cache {
    hard_state: HardState,
    conf_state: ConfState,
    truncated_index: u64,
    truncated_term: u64,
    last_index: u64,
}

/// Raft storage on RocksDB. Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct RaftStore {
    db: Arc<DB>,
    catalogue: Catalogue,
    cache: Arc<Mutex<Cache>>,
}

fn store_err(e: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.to_string().into()))
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

impl RaftStore {
    /// Opens the store. A fresh store with `initial_voters` non-empty is bootstrapped at
    /// index 1 with those voters, so a member added later must be sent a snapshot (which
    /// carries the conf state) rather than a log it could not interpret.
    pub fn open(db: Arc<DB>, catalogue: Catalogue, initial_voters: &[u64]) -> raft::Result<Self> {
        let cf_log = db
            .cf_handle(CF_LOG)
            .ok_or_else(|| store_err("missing cf raft_log"))?;
        let cf_meta = db
            .cf_handle(CF_META)
            .ok_or_else(|| store_err("missing cf raft_meta"))?;
        let mut cache = Cache::default();
        if let Some(v) = db.get_cf(cf_meta, KEY_HARD_STATE).map_err(store_err)? {
            cache.hard_state = HardState::parse_from_bytes(&v).map_err(store_err)?;
        }
        if let Some(v) = db.get_cf(cf_meta, KEY_CONF_STATE).map_err(store_err)? {
            cache.conf_state = ConfState::parse_from_bytes(&v).map_err(store_err)?;
        }
        if let Some(v) = db.get_cf(cf_meta, KEY_TRUNCATED).map_err(store_err)? {
            let (i, t) = decode_pair(&v).ok_or_else(|| store_err("corrupt truncated key"))?;
            cache.truncated_index = i;
            cache.truncated_term = t;
        }
        let mut it = db.raw_iterator_cf(cf_log);
        it.seek_to_last();
        cache.last_index = match it.key() {
            Some(k) => decode_index(k).ok_or_else(|| store_err("corrupt log key"))?,
            None => cache.truncated_index,
        };
        drop(it);
        // Entries are applied before the hard state of the same ready is written: after a
        // power cut the applied index can be ahead of the stored commit, but what was applied
        // was committed.
        let applied = catalogue.applied_index();
        if cache.hard_state.commit < applied && applied <= cache.last_index {
            cache.hard_state.commit = applied;
        }
        let store = Self {
            db,
            catalogue,
            cache: Arc::new(Mutex::new(cache)),
        };
        let fresh = store.cache().hard_state == HardState::default()
            && store.cache().conf_state == ConfState::default();
        if fresh && !initial_voters.is_empty() {
            store.bootstrap(initial_voters)?;
        }
        Ok(store)
    }

    fn bootstrap(&self, voters: &[u64]) -> raft::Result<()> {
        let cs = ConfState {
            voters: voters.to_vec(),
            ..Default::default()
        };
        let hs = HardState {
            term: 1,
            commit: 1,
            ..Default::default()
        };
        let mut batch = WriteBatch::default();
        let meta = self.cf(CF_META)?;
        batch.put_cf(
            meta,
            KEY_CONF_STATE,
            cs.write_to_bytes().map_err(store_err)?,
        );
        batch.put_cf(
            meta,
            KEY_HARD_STATE,
            hs.write_to_bytes().map_err(store_err)?,
        );
        batch.put_cf(meta, KEY_TRUNCATED, encode_pair(1, 1));
        self.catalogue.mark_applied(&mut batch, 1);
        self.db.write_opt(batch, &synced()).map_err(store_err)?;
        let mut c = self.cache();
        c.conf_state = cs;
        c.hard_state = hs;
        c.truncated_index = 1;
        c.truncated_term = 1;
        c.last_index = 1;
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A poisoned lock means a panic mid-update elsewhere; the cache is still consistent
        // because every field is written after its RocksDB write succeeded.
        lock(&self.cache)
    }

    fn cf(&self, name: &str) -> raft::Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| store_err(format!("missing cf {name}")))
    }

    pub fn conf_state(&self) -> ConfState {
        self.cache().conf_state.clone()
    }

    pub fn hard_state(&self) -> HardState {
        self.cache().hard_state.clone()
    }

    /// Appends entries (replacing any conflicting suffix) and the hard state in one synced write.
    pub fn append(&self, entries: &[Entry], hs: Option<&HardState>) -> raft::Result<()> {
        if entries.is_empty() && hs.is_none() {
            return Ok(());
        }
        let log = self.cf(CF_LOG)?;
        let meta = self.cf(CF_META)?;
        let mut batch = WriteBatch::default();
        let last_index = self.cache().last_index;
        if let Some(first) = entries.first() {
            for e in entries {
                batch.put_cf(
                    log,
                    encode_index(e.index),
                    e.write_to_bytes().map_err(store_err)?,
                );
            }
            let new_last = entries[entries.len() - 1].index;
            if new_last < last_index {
                // A new leader overwrote our tail: drop what is past it.
                batch.delete_range_cf(
                    log,
                    encode_index(new_last + 1),
                    encode_index(last_index + 1),
                );
            }
            debug_assert!(first.index >= 1);
        }
        if let Some(hs) = hs {
            batch.put_cf(
                meta,
                KEY_HARD_STATE,
                hs.write_to_bytes().map_err(store_err)?,
            );
        }
        let started = std::time::Instant::now();
        self.db.write_opt(batch, &synced()).map_err(store_err)?;
        // Background cleanup gives no credits while the log's writes are slow.
        tributary_common::cleanup::record_write(started.elapsed());
        let mut c = self.cache();
        if let Some(last) = entries.last() {
            c.last_index = last.index;
        }
        if let Some(hs) = hs {
            c.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Records a commit index learned from a light ready. Not synced: a lost commit index is
    /// learned again from the leader, and WAL order keeps it ahead of the applies that follow.
    pub fn set_commit(&self, commit: u64) -> raft::Result<()> {
        let mut hs = self.hard_state();
        if hs.commit == commit {
            return Ok(());
        }
        hs.commit = commit;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_HARD_STATE,
            hs.write_to_bytes().map_err(store_err)?,
        );
        self.db.write(batch).map_err(store_err)?;
        self.cache().hard_state = hs;
        Ok(())
    }

    /// Records a conf state, in the batch that applies its conf-change entry.
    pub fn set_conf_state(&self, batch: &mut WriteBatch, cs: &ConfState) -> raft::Result<()> {
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_CONF_STATE,
            cs.write_to_bytes().map_err(store_err)?,
        );
        self.cache().conf_state = cs.clone();
        Ok(())
    }

    /// Drops log entries up to and including `index` (which must be applied).
    pub fn compact(&self, index: u64) -> raft::Result<()> {
        let (first, last) = {
            let c = self.cache();
            (c.truncated_index + 1, c.last_index)
        };
        if index < first || index > last {
            return Ok(());
        }
        let term = self.term_of(index)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOG)?,
            encode_index(first),
            encode_index(index + 1),
        );
        batch.put_cf(self.cf(CF_META)?, KEY_TRUNCATED, encode_pair(index, term));
        self.db.write(batch).map_err(store_err)?;
        let mut c = self.cache();
        c.truncated_index = index;
        c.truncated_term = term;
        Ok(())
    }

    /// Installs a snapshot received from the leader: the catalogue is replaced, the log
    /// emptied, and the hard and conf state advanced, in one synced write.
    pub fn apply_snapshot(&self, snap: &Snapshot) -> raft::Result<()> {
        let meta = snap.get_metadata();
        let mut batch = WriteBatch::default();
        self.catalogue
            .restore(&mut batch, snap.get_data(), meta.index)
            .map_err(store_err)?;
        let mut hs = self.hard_state();
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(meta.index);
        let cs = meta.get_conf_state().clone();
        let last = self.cache().last_index;
        let log = self.cf(CF_LOG)?;
        let cf_meta = self.cf(CF_META)?;
        batch.delete_range_cf(log, encode_index(0), encode_index(last.max(meta.index) + 1));
        batch.put_cf(
            cf_meta,
            KEY_HARD_STATE,
            hs.write_to_bytes().map_err(store_err)?,
        );
        batch.put_cf(
            cf_meta,
            KEY_CONF_STATE,
            cs.write_to_bytes().map_err(store_err)?,
        );
        batch.put_cf(cf_meta, KEY_TRUNCATED, encode_pair(meta.index, meta.term));
        self.db.write_opt(batch, &synced()).map_err(store_err)?;
        self.catalogue.after_restore(meta.index);
        let mut c = self.cache();
        c.hard_state = hs;
        c.conf_state = cs;
        c.truncated_index = meta.index;
        c.truncated_term = meta.term;
        c.last_index = meta.index;
        Ok(())
    }

    fn term_of(&self, idx: u64) -> raft::Result<u64> {
        let c = self.cache().clone();
        if idx == c.truncated_index {
            return Ok(c.truncated_term);
        }
        if idx < c.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > c.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entry(idx)?.term)
    }

    fn entry(&self, idx: u64) -> raft::Result<Entry> {
        let v = self
            .db
            .get_cf(self.cf(CF_LOG)?, encode_index(idx))
            .map_err(store_err)?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Entry::parse_from_bytes(&v).map_err(store_err)
    }
}

impl raft::Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.cache();
        Ok(RaftState::new(c.hard_state.clone(), c.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into().unwrap_or(u64::MAX);
        if low <= self.cache().truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let mut out = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        let mut it = self.db.raw_iterator_cf(self.cf(CF_LOG)?);
        it.seek(encode_index(low));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let idx = decode_index(k).ok_or_else(|| store_err("corrupt log key"))?;
            if idx >= high {
                break;
            }
            size += v.len() as u64;
            if !out.is_empty() && size > max_size {
                break;
            }
            out.push(Entry::parse_from_bytes(v).map_err(store_err)?);
            it.next();
        }
        it.status().map_err(store_err)?;
        if out.is_empty() && low < high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.cache().truncated_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.cache().last_index)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let applied = self.catalogue.applied_index();
        if applied < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snap = Snapshot::default();
        snap.set_data(self.catalogue.export().map_err(store_err)?.into());
        let meta = snap.mut_metadata();
        meta.index = applied;
        meta.term = self.term_of(applied)?;
        meta.set_conf_state(self.conf_state());
        Ok(snap)
    }
}

fn encode_index(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn decode_index(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

fn encode_pair(a: u64, b: u64) -> Vec<u8> {
    let mut v = a.to_be_bytes().to_vec();
    v.extend_from_slice(&b.to_be_bytes());
    v
}

fn decode_pair(v: &[u8]) -> Option<(u64, u64)> {
    if v.len() != 16 {
        return None;
    }
    Some((decode_index(&v[..8])?, decode_index(&v[8..])?))
}
