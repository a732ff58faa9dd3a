//! Streams: sequence-numbered messages with JetStream's limits, over any [`KvEngine`]
//! (`file` = the node's RocksDB, `memory` = a `MemoryEngine`), so both
//! storage types share one implementation and one behaviour.
//!
//! Persisted per stream: messages (`m`+seq), Msg-Id dedupe records (`d`+id) and a state
//! record (`s`: last seq and time, which must survive a purge, and for a replicated stream
//! the Raft index of the last publish stored, see [`StreamStore::set_group_index`]). Counts,
//! bytes and the per-subject index are rebuilt from the messages at open.

mod batch;
mod error;
mod load;
mod raw;
pub mod replicate;
mod snapshot;
pub mod tail;
#[cfg(test)]
mod tests;
pub mod write;

use crate::storage::codec::{MessageValue, Writer};
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::keys::{self, STREAM_MSG_ID, STREAM_STATE};
pub use error::{StreamError, StreamResult};
pub use raw::RawMessage;
pub use snapshot::{check_records, Frozen, Records};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;
use tributary_common::sync::{lock, read, write};

/// JetStream's default duplicate window: two minutes.
pub const DEFAULT_DUPLICATE_WINDOW_NS: u64 = 120 * 1_000_000_000;
/// Headers that carry a publisher's message id (ours and the NATS spelling).
pub use tributary_common::grpc::MSG_ID_HEADERS;

/// A stream's limits and switches; 0 means unlimited throughout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamLimits {
    pub max_msgs: u64,
    pub max_bytes: u64,
    pub max_age_ns: u64,
    pub max_msg_size: u64,
    pub max_msgs_per_subject: u64,
    pub discard_new: bool,
    /// 0 = [`DEFAULT_DUPLICATE_WINDOW_NS`].
    pub duplicate_window_ns: u64,
    pub deny_delete: bool,
    pub deny_purge: bool,
}

impl StreamLimits {
    fn dup_window(&self) -> i64 {
        let w = if self.duplicate_window_ns == 0 {
            DEFAULT_DUPLICATE_WINDOW_NS
        } else {
            self.duplicate_window_ns
        };
        i64::try_from(w).unwrap_or(i64::MAX)
    }
}

/// A stream's state as `Streams.Info` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStateView {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    pub deleted: u64,
    pub subscribers: u64,
}

/// The result of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubResult {
    pub seq: u64,
    pub duplicate: bool,
}

struct Inner {
    /// Lowest stored seq; `last_seq + 1` when empty.
    first_seq: u64,
    first_ts: i64,
    last_seq: u64,
    last_ts: i64,
    msgs: u64,
    bytes: u64,
    /// subject → seq → stored size. Also gives purge-by-subject its sizes without reads.
    subjects: HashMap<String, BTreeMap<u64, u64>>,
    /// Msg-Id → (seq, time stored); `dedupe_order` is oldest first for expiry.
    dedupe: HashMap<String, (u64, i64)>,
    dedupe_order: VecDeque<(i64, String)>,
    /// Replicated streams: the Raft index of the entry being applied, written with every
    /// publish's state record (0 for a stream of one replica).
    group_index: u64,
}

pub struct StreamStore {
    pub id: u32,
    pub name: String,
    engine: Arc<dyn KvEngine>,
    limits: RwLock<StreamLimits>,
    inner: Mutex<Inner>,
    /// The last seq, published after every committed change: subscribers wait on it.
    last_seq_tx: watch::Sender<u64>,
    subscribers: AtomicU64,
    /// Set once the stream's records are dropped, so readers still holding it stop.
    destroyed: AtomicBool,
    /// Set (under the lock) once the node stops serving the stream through this store: writes
    /// through it fail and its readers stop, so nothing lands behind a store opened since.
    closed: AtomicBool,
}

impl StreamStore {
    pub fn open(
        id: u32,
        name: String,
        engine: Arc<dyn KvEngine>,
        limits: StreamLimits,
    ) -> StorageResult<Self> {
        let inner = Inner::load(id, engine.as_ref())?;
        let last_seq = inner.last_seq;
        Ok(StreamStore {
            id,
            name,
            engine,
            limits: RwLock::new(limits),
            last_seq_tx: watch::channel(last_seq).0,
            inner: Mutex::new(inner),
            subscribers: AtomicU64::new(0),
            destroyed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    pub fn limits(&self) -> StreamLimits {
        read(&self.limits).clone()
    }

    pub fn set_limits(&self, limits: StreamLimits) {
        *write(&self.limits) = limits;
    }

    /// Replicated streams: the Raft index of the entry about to be applied. Every publish
    /// stores it in the state record of its own write, so after a crash the group resumes
    /// applying right after the last publish stored, never storing one twice. The other
    /// operations (purge, delete, expiry) store no index: applied again they change nothing
    /// more, and an entry refused is refused again, the state being the same.
    pub fn set_group_index(&self, index: u64) {
        self.lock().group_index = index;
    }

    /// The Raft index of the last publish stored (0: none, or a stream of one replica).
    pub fn group_index(&self) -> u64 {
        self.lock().group_index
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The lock for a write: refused once the store is closed.
    fn lock_open(&self) -> StreamResult<std::sync::MutexGuard<'_, Inner>> {
        let st = self.lock();
        if self.is_closed() {
            return Err(StreamError::Closed(self.name.clone()));
        }
        Ok(st)
    }

    /// Stops this store for good (the node no longer serves the stream through it): a
    /// write in progress finishes first, later ones fail, and readers wake and stop.
    pub fn close(&self) {
        let st = self.lock();
        self.closed.store(true, Ordering::Release);
        let last = st.last_seq;
        drop(st);
        self.notify(last);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Wakes on every committed change; the value is the last seq.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.last_seq_tx.subscribe()
    }

    /// Counts a subscriber for `Info` while the guard lives.
    pub fn subscriber(self: &Arc<Self>) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.clone())
    }

    pub fn state(&self) -> StreamStateView {
        let st = self.lock();
        StreamStateView {
            messages: st.msgs,
            bytes: st.bytes,
            first_seq: st.first_seq,
            last_seq: st.last_seq,
            first_ts_ns: if st.msgs > 0 { st.first_ts } else { 0 },
            last_ts_ns: st.last_ts,
            deleted: if st.msgs > 0 {
                (st.last_seq - st.first_seq + 1).saturating_sub(st.msgs)
            } else {
                0
            },
            subscribers: self.subscribers.load(Ordering::Relaxed),
        }
    }

    pub fn get(&self, seq: u64) -> StreamResult<MessageValue> {
        match self
            .engine
            .get(Space::Streams, &keys::msg_key(self.id, seq))?
        {
            Some(v) => Ok(MessageValue::decode(&v)?),
            None => Err(StreamError::NoMessage {
                stream: self.name.clone(),
                seq,
            }),
        }
    }

    /// Messages from `from_seq` whose subject passes `filter`, at most `max` of them and
    /// scanning at most `max * 16` (so a rare filter cannot pin a reader); also the seq to
    /// continue from.
    pub fn read(
        &self,
        from_seq: u64,
        filter: &str,
        max: usize,
    ) -> StreamResult<(Vec<RawMessage>, u64)> {
        self.read_bounded(from_seq, filter, max, usize::MAX)
    }

    /// As [`read`](Self::read), stopping too once the messages hold `max_bytes` (at least one
    /// message is read): what a reader holds in memory is bounded in bytes, not only in count.
    pub fn read_bounded(
        &self,
        from_seq: u64,
        filter: &str,
        max: usize,
        max_bytes: usize,
    ) -> StreamResult<(Vec<RawMessage>, u64)> {
        let mut bytes = 0usize;
        let mut out = Vec::new();
        let mut chunks = raw::Chunks::new();
        let mut next = from_seq;
        let mut scanned = 0usize;
        let mut err = None;
        self.engine.scan(
            Space::Streams,
            &keys::msg_key(self.id, from_seq),
            &keys::msg_end(self.id),
            false,
            &mut |k, v| {
                let Some(seq) = keys::parse_msg_key(k) else {
                    err = Some(StorageError::Corrupt("stream message key".into()));
                    return Scan::Stop;
                };
                next = seq + 1;
                scanned += 1;
                match MessageValue::decode_head(v) {
                    Ok((_, subject))
                        if !tributary_common::subject::filter_accepts(filter, subject) => {}
                    Ok((timestamp_ns, subject)) => {
                        bytes = bytes.saturating_add(v.len());
                        out.push(RawMessage {
                            seq,
                            subject: subject.to_string(),
                            timestamp_ns,
                            value: chunks.copy(v),
                        })
                    }
                    Err(e) => err = Some(e),
                }
                if err.is_some()
                    || out.len() >= max
                    || bytes >= max_bytes
                    || scanned >= max.saturating_mul(16)
                {
                    Scan::Stop
                } else {
                    Scan::Continue
                }
            },
        )?;
        if let Some(e) = err {
            return Err(e.into());
        }
        Ok((out, next))
    }

    /// The first seq whose message is at or after `ts_ns` (last seq + 1 when none is).
    pub fn seq_at_time(&self, ts_ns: i64) -> StreamResult<u64> {
        let (first, last) = {
            let st = self.lock();
            (st.first_seq, st.last_seq)
        };
        let mut found = None;
        let mut err = None;
        self.engine.scan(
            Space::Streams,
            &keys::msg_key(self.id, first),
            &keys::msg_end(self.id),
            false,
            &mut |k, v| match (keys::parse_msg_key(k), MessageValue::decode_head(v)) {
                (Some(seq), Ok((ts, _))) if ts >= ts_ns => {
                    found = Some(seq);
                    Scan::Stop
                }
                (Some(_), Ok(_)) => Scan::Continue,
                (_, Err(e)) => {
                    err = Some(e);
                    Scan::Stop
                }
                (None, _) => {
                    err = Some(StorageError::Corrupt("stream message key".into()));
                    Scan::Stop
                }
            },
        )?;
        if let Some(e) = err {
            return Err(e.into());
        }
        Ok(found.unwrap_or(last + 1))
    }

    /// Deletes every stored record of this stream (the stream itself was deleted). The store
    /// is closed first, under its lock, so no write lands after the delete.
    pub fn destroy(&self) -> StorageResult<()> {
        let st = self.lock();
        self.destroyed.store(true, Ordering::Release);
        self.closed.store(true, Ordering::Release);
        let mut b = Batch::default();
        b.delete_range(
            Space::Streams,
            keys::stream_key(self.id, 0, &[]),
            keys::stream_end(self.id),
        );
        self.engine.write(b)?;
        let last = st.last_seq;
        drop(st);
        self.notify(last);
        Ok(())
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Re-reads the first stored message after the front moved.
    fn refresh_first(&self, st: &mut Inner) -> StorageResult<()> {
        if st.msgs == 0 {
            st.first_seq = st.last_seq + 1;
            st.first_ts = 0;
            return Ok(());
        }
        let found = self.engine.first(
            Space::Streams,
            &keys::msg_key(self.id, st.first_seq),
            &keys::msg_end(self.id),
            false,
        )?;
        if let Some((k, v)) = found {
            st.first_seq = keys::parse_msg_key(&k)
                .ok_or_else(|| StorageError::Corrupt("stream message key".into()))?;
            st.first_ts = MessageValue::decode_head(&v)?.0;
        }
        Ok(())
    }

    fn notify(&self, last_seq: u64) {
        self.last_seq_tx.send_replace(last_seq);
    }
}

pub struct SubscriberGuard(Arc<StreamStore>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn state_key(id: u32) -> Vec<u8> {
    keys::stream_key(id, STREAM_STATE, &[])
}

fn state_value(last_seq: u64, last_ts: i64, group_index: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(last_seq).i64(last_ts).u64(group_index);
    w.0
}

fn dedupe_key(id: u32, msg_id: &str) -> Vec<u8> {
    keys::stream_key(id, STREAM_MSG_ID, msg_id.as_bytes())
}

/// Every stream on this node, by name.
#[derive(Default)]
pub struct Streams {
    streams: RwLock<HashMap<String, Arc<StreamStore>>>,
}

impl Streams {
    pub fn get(&self, name: &str) -> Option<Arc<StreamStore>> {
        read(&self.streams).get(name).cloned()
    }

    pub fn insert(&self, store: Arc<StreamStore>) {
        write(&self.streams).insert(store.name.clone(), store);
    }

    pub fn remove(&self, name: &str) -> Option<Arc<StreamStore>> {
        write(&self.streams).remove(name)
    }

    pub fn all(&self) -> Vec<Arc<StreamStore>> {
        read(&self.streams).values().cloned().collect()
    }
}
