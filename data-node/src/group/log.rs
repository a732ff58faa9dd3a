//! One group's Raft log, hard state and conf state in the node's engine (space `raft`), behind
//! raft-rs's `Storage` trait. Keys are `[group u64][kind u8][index u64]`, so one group's log
//! is one range and dropping a group is one range delete. Writes are staged into the batch the
//! ready loop writes for every group at once (one engine write per round, not per group).
//!
//! The log is not the stream: an entry is an operation (a publish of some messages, a purge,
//! a delete, an expiry), applied to the stream's own storage once committed, and dropped from
//! the log once the stream holds it and the replicas do or are too far behind
//! (`ready::housekeeping`). So the stream is the state machine and its records are the
//! snapshot: a replica behind the log's first entry gets the leader's stream records at the
//! index they hold (`group::snapshot`), and its log then starts right after that index.

use super::snapshot::{NotYet, Shelf};
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::streams::StreamStore;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::sync::{Arc, Mutex};
use tributary_common::sync::lock;

const ENTRY: u8 = b'e';
const HARD_STATE: u8 = b'h';
const CONF_STATE: u8 = b'c';
const TRUNCATED: u8 = b't';
/// This node's replica left the group once (moved off): if it comes back, it joins empty.
const LEFT: u8 = b'l';

fn key(group: u64, kind: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.extend_from_slice(&group.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn store_err(e: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.to_string().into()))
}

#[derive(Debug, Default, Clone)]
struct Cache {
    hard_state: HardState,
    conf_state: ConfState,
    truncated_index: u64,
    truncated_term: u64,
    last_index: u64,
}

/// What a staged append changes in the cache once its batch is written.
#[derive(Default)]
pub struct Staged {
    last_index: Option<u64>,
    hard_state: Option<HardState>,
    /// A snapshot's (index, term, configuration): the log starts after it.
    snapshot: Option<(u64, u64, ConfState)>,
}

/// Where the leader's snapshots of the group come from: its stream, built onto the shelf.
#[derive(Clone)]
struct SnapshotSource {
    shelf: Arc<Shelf>,
    store: Arc<Mutex<Arc<StreamStore>>>,
}

#[derive(Clone)]
pub struct GroupLog {
    group: u64,
    engine: Arc<dyn KvEngine>,
    cache: Arc<Mutex<Cache>>,
    source: SnapshotSource,
}

impl GroupLog {
    /// Opens a group's log; a fresh one starts with `voters` (every founding replica starts
    /// alike, so no snapshot is needed to begin; a replica joining later starts with none and
    /// gets its configuration with its first snapshot). What `store` already holds is
    /// applied: a commit index behind it (a commit recorded unsynced and lost) moves up to it.
    pub fn open(
        engine: Arc<dyn KvEngine>,
        group: u64,
        voters: &[u64],
        store: Arc<StreamStore>,
        shelf: Arc<Shelf>,
    ) -> raft::Result<Self> {
        let applied = store.group_index();
        let get = |kind| {
            engine
                .get(Space::Raft, &key(group, kind, 0))
                .map_err(store_err)
        };
        let mut c = Cache::default();
        if let Some(v) = get(HARD_STATE)? {
            c.hard_state = HardState::parse_from_bytes(&v).map_err(store_err)?;
        }
        // A founder that left the group and is placed here again is a new replica.
        let rejoining = get(LEFT)?.is_some();
        let fresh = match get(CONF_STATE)? {
            Some(v) => {
                c.conf_state = ConfState::parse_from_bytes(&v).map_err(store_err)?;
                false
            }
            None => true,
        };
        if let Some(v) = get(TRUNCATED)? {
            if v.len() != 16 {
                return Err(store_err("corrupt truncation record"));
            }
            let (i, t) = v.split_at(8);
            c.truncated_index = u64::from_be_bytes(i.try_into().map_err(store_err)?);
            c.truncated_term = u64::from_be_bytes(t.try_into().map_err(store_err)?);
        }
        c.last_index = c.truncated_index;
        engine
            .scan(
                Space::Raft,
                &key(group, ENTRY, 0),
                &key(group, ENTRY, u64::MAX),
                true,
                &mut |k, _| {
                    if let Some(i) = k.get(9..17).and_then(|b| b.try_into().ok()) {
                        c.last_index = u64::from_be_bytes(i);
                    }
                    Scan::Stop
                },
            )
            .map_err(store_err)?;
        if c.hard_state.commit < applied && applied <= c.last_index {
            c.hard_state.commit = applied;
        }
        let log = GroupLog {
            group,
            engine,
            cache: Arc::new(Mutex::new(c)),
            source: SnapshotSource {
                shelf,
                store: Arc::new(Mutex::new(store)),
            },
        };
        if fresh {
            let cs = ConfState {
                voters: if rejoining {
                    Vec::new()
                } else {
                    voters.to_vec()
                },
                ..Default::default()
            };
            let mut b = Batch::default();
            b.put(
                Space::Raft,
                key(group, CONF_STATE, 0),
                cs.write_to_bytes().map_err(store_err)?,
            );
            log.engine.write(b).map_err(store_err)?;
            log.cache().conf_state = cs;
        }
        Ok(log)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        lock(&self.cache)
    }

    pub fn last_index(&self) -> u64 {
        self.cache().last_index
    }

    /// The group's configuration as last applied.
    pub fn conf_state(&self) -> ConfState {
        self.cache().conf_state.clone()
    }

    /// Stores a configuration change applied (before the entries after it are applied).
    pub fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()> {
        let mut b = Batch::default();
        b.put(
            Space::Raft,
            key(self.group, CONF_STATE, 0),
            cs.write_to_bytes().map_err(store_err)?,
        );
        self.engine.write(b).map_err(store_err)?;
        self.cache().conf_state = cs.clone();
        Ok(())
    }

    /// The stream snapshots are built from (after the node reopened it).
    pub fn set_store(&self, store: Arc<StreamStore>) {
        *lock(&self.source.store) = store;
    }

    /// Stages new entries (replacing a conflicting tail) and the hard state into `b`.
    pub fn stage(
        &self,
        b: &mut Batch,
        entries: &[Entry],
        hs: Option<&HardState>,
    ) -> raft::Result<Staged> {
        let old_last = self.cache().last_index;
        let mut last_index = None;
        for e in entries {
            b.put(
                Space::Raft,
                key(self.group, ENTRY, e.index),
                e.write_to_bytes().map_err(store_err)?,
            );
        }
        if let Some(last) = entries.last() {
            if last.index < old_last {
                b.delete_range(
                    Space::Raft,
                    key(self.group, ENTRY, last.index + 1),
                    key(self.group, ENTRY, old_last + 1),
                );
            }
            last_index = Some(last.index);
        }
        if let Some(hs) = hs {
            b.put(
                Space::Raft,
                key(self.group, HARD_STATE, 0),
                hs.write_to_bytes().map_err(store_err)?,
            );
        }
        Ok(Staged {
            last_index,
            hard_state: hs.cloned(),
            snapshot: None,
        })
    }

    /// Stages a snapshot at `index` of `term`: every entry goes, the log starts after it.
    pub fn stage_snapshot(
        &self,
        b: &mut Batch,
        index: u64,
        term: u64,
        conf_state: &ConfState,
    ) -> raft::Result<Staged> {
        b.delete_range(
            Space::Raft,
            key(self.group, ENTRY, 0),
            key(self.group, ENTRY, u64::MAX),
        );
        let mut v = index.to_be_bytes().to_vec();
        v.extend_from_slice(&term.to_be_bytes());
        b.put(Space::Raft, key(self.group, TRUNCATED, 0), v);
        b.put(
            Space::Raft,
            key(self.group, CONF_STATE, 0),
            conf_state.write_to_bytes().map_err(store_err)?,
        );
        Ok(Staged {
            snapshot: Some((index, term, conf_state.clone())),
            ..Default::default()
        })
    }

    /// After the batch holding `s` was written.
    pub fn staged(&self, s: Staged) {
        let mut c = self.cache();
        if let Some((index, term, cs)) = s.snapshot {
            c.truncated_index = index;
            c.truncated_term = term;
            c.last_index = index;
            c.conf_state = cs;
        }
        if let Some(i) = s.last_index {
            c.last_index = i;
        }
        if let Some(hs) = s.hard_state {
            c.hard_state = hs;
        }
    }

    /// A commit index learned from a light ready, staged: lost in a crash, it is learned again.
    pub fn stage_commit(&self, b: &mut Batch, commit: u64) -> raft::Result<Staged> {
        let mut hs = self.cache().hard_state.clone();
        hs.commit = commit;
        self.stage(b, &[], Some(&hs))
    }

    /// Drops the entries up to and including `index` (which the stream holds).
    pub fn compact(&self, b: &mut Batch, index: u64) -> raft::Result<bool> {
        let (first, last) = {
            let c = self.cache();
            (c.truncated_index + 1, c.last_index)
        };
        if index < first || index > last {
            return Ok(false);
        }
        let term = self.term_of(index)?;
        b.delete_range(
            Space::Raft,
            key(self.group, ENTRY, first),
            key(self.group, ENTRY, index + 1),
        );
        let mut v = index.to_be_bytes().to_vec();
        v.extend_from_slice(&term.to_be_bytes());
        b.put(Space::Raft, key(self.group, TRUNCATED, 0), v);
        let mut c = self.cache();
        c.truncated_index = index;
        c.truncated_term = term;
        Ok(true)
    }

    /// Stages the removal of everything of this group (the stream left this node).
    /// Stages the removal of everything of this group, remembering that this replica left
    /// (it was moved off this node): placed here again, it joins empty.
    pub fn stage_leave(&self, b: &mut Batch) {
        self.stage_destroy(b);
        b.put(Space::Raft, key(self.group, LEFT, 0), Vec::new());
    }

    pub fn stage_destroy(&self, b: &mut Batch) {
        b.delete_range(
            Space::Raft,
            self.group.to_be_bytes().to_vec(),
            (self.group + 1).to_be_bytes().to_vec(),
        );
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
        let v = self
            .engine
            .get(Space::Raft, &key(self.group, ENTRY, idx))
            .map_err(store_err)?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Ok(Entry::parse_from_bytes(&v).map_err(store_err)?.term)
    }
}

impl raft::Storage for GroupLog {
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
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut err = None;
        self.engine
            .scan(
                Space::Raft,
                &key(self.group, ENTRY, low),
                &key(self.group, ENTRY, high),
                false,
                &mut |_, v| {
                    size += v.len() as u64;
                    if !out.is_empty() && size > max_size {
                        return Scan::Stop;
                    }
                    match Entry::parse_from_bytes(v) {
                        Ok(e) => {
                            out.push(e);
                            Scan::Continue
                        }
                        Err(e) => {
                            err = Some(store_err(e));
                            Scan::Stop
                        }
                    }
                },
            )
            .map_err(store_err)?;
        if let Some(e) = err {
            return Err(e);
        }
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

    /// The stream at the index it has applied, built off the ready loop (see
    /// `group::snapshot`): until it is built, and while it cannot be, the answer is
    /// "temporarily unavailable", the one failure raft-rs takes (anything else panics it),
    /// and it asks again on a later append or heartbeat response.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let unavailable = raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable);
        let store = lock(&self.source.store).clone();
        let index = store.group_index();
        let (truncated, conf_state) = {
            let c = self.cache();
            (c.truncated_index, c.conf_state.clone())
        };
        if index == 0 || index < request_index {
            return Err(unavailable);
        }
        let Ok(term) = self.term_of(index) else {
            return Err(unavailable);
        };
        let at_least = request_index.max(truncated);
        self.source
            .shelf
            .snapshot(self.group, &store, (index, term), conf_state, at_least)
            .map_err(|e| {
                match e {
                    NotYet::Started | NotYet::Building | NotYet::Busy(_) => {
                        tracing::debug!(stream = %store.name, to, index, "{e}")
                    }
                    _ => {
                        tracing::warn!(stream = %store.name, to, index, error = %e, "no snapshot for a replica behind the log")
                    }
                }
                unavailable
            })
    }
}
