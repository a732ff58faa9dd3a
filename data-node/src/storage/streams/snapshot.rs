//! A stream's records as one value, and replacing them with one: what a replicated stream's
//! snapshot carries from its leader to a replica too far behind for the log (`group::snapshot`).
//! The records are everything in the stream's key range — messages, Msg-Id dedupe records,
//! the state record (last seq and time), source progress and the mirror's origin — with the
//! node-local stream id left out, since each node numbers its streams its own way.
//!
//! A stream of gigabytes takes a while to read, and its writers must not wait that long: the
//! stream is held still ([`StreamStore::frozen`]) only until a reader on another thread has
//! pinned a view of the engine ([`Records::read`]), then the writers go on.

use super::error::{StreamError, StreamResult};
use super::{state_key, state_value, Inner, StreamLimits, StreamStore};
use crate::storage::codec::{Reader, Writer};
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::keys;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Bytes of the node-local stream id at the head of each key of a stream.
const ID_LEN: usize = 4;

/// A stream held still by [`StreamStore::frozen`]: what it holds at this moment.
pub struct Frozen {
    /// The Raft index of the last entry applied (see [`StreamStore::group_index`]).
    pub group_index: u64,
    pub limits: StreamLimits,
    /// Its records, for a reader that pins its view before the stream is let go.
    pub records: Records,
}

/// Reads a stream's records as of the moment it pins its view, without the stream's lock.
pub struct Records {
    store: Arc<StreamStore>,
}

impl Records {
    /// Appends every record of the stream to `out` as of the instant `pinned` is called
    /// (before the first is read; the stream may change after it): `[count u64]` then
    /// `(key, value)` pairs, each key without the stream's id. Stops with
    /// [`StreamError::Closed`] once `stop` is set or the store is closed.
    pub fn read(
        &self,
        out: &mut Writer,
        pinned: &mut dyn FnMut(),
        stop: &AtomicBool,
    ) -> StreamResult<()> {
        let s = &self.store;
        let at = out.0.len();
        out.u64(0);
        let mut count = 0u64;
        let mut stopped = false;
        s.engine.scan_pinned(
            Space::Streams,
            &keys::stream_key(s.id, 0, &[]),
            &keys::stream_end(s.id),
            pinned,
            &mut |k, v| {
                if stop.load(Ordering::Relaxed) || s.is_closed() {
                    stopped = true;
                    return Scan::Stop;
                }
                out.bytes(&k[ID_LEN.min(k.len())..]).bytes(v);
                count += 1;
                Scan::Continue
            },
        )?;
        if stopped {
            return Err(StreamError::Closed(s.name.clone()));
        }
        out.0[at..at + 8].copy_from_slice(&count.to_be_bytes());
        Ok(())
    }

    /// The stream's name, for logs.
    pub fn stream(&self) -> &str {
        &self.store.name
    }
}

/// Checks that `records` decode as [`Records::read`] writes them.
pub fn check_records(records: &[u8]) -> StorageResult<()> {
    let mut r = Reader::new(records, "stream snapshot");
    for _ in 0..r.u64()? {
        if r.bytes()?.is_empty() {
            return Err(StorageError::Corrupt(
                "stream snapshot key without a kind".into(),
            ));
        }
        r.bytes()?;
    }
    if !r.is_empty() {
        return Err(StorageError::Corrupt(
            "stream snapshot has bytes past its records".into(),
        ));
    }
    Ok(())
}

impl StreamStore {
    /// Runs `f` with the stream held still (no write lands meanwhile) and what it holds at
    /// this moment. `f` is to be short: a reader of the records it starts elsewhere is to
    /// pin its view before `f` returns.
    pub fn frozen<R>(self: &Arc<Self>, f: impl FnOnce(Frozen) -> R) -> R {
        let st = self.lock();
        let frozen = Frozen {
            group_index: st.group_index,
            limits: self.limits(),
            records: Records {
                store: self.clone(),
            },
        };
        let r = f(frozen);
        drop(st);
        r
    }

    /// Whether this stream's records live in `engine` (a file stream in the node's engine),
    /// so a write there can hold them and other records at once.
    pub fn stored_in(&self, engine: &Arc<dyn KvEngine>) -> bool {
        Arc::ptr_eq(&self.engine, engine)
    }

    /// Replaces every record of this stream with `records` ([`Records::read`] of another
    /// replica) in one write together with `also`, and marks the state as holding the
    /// group's log up to `group_index`. A reader sees the old stream or the new one.
    pub fn replace_records(
        &self,
        records: &[u8],
        group_index: u64,
        also: Batch,
    ) -> StreamResult<()> {
        let mut st = self.lock_open()?;
        let mut b = also;
        b.delete_range(
            Space::Streams,
            keys::stream_key(self.id, 0, &[]),
            keys::stream_end(self.id),
        );
        let mut r = Reader::new(records, "stream snapshot");
        let count = r.u64()?;
        let (mut last_seq, mut last_ts) = (0, 0);
        for _ in 0..count {
            let (rest, value) = (r.bytes()?, r.bytes()?);
            if rest.is_empty() {
                return Err(
                    StorageError::Corrupt("stream snapshot key without a kind".into()).into(),
                );
            }
            let key = keys::stream_key(self.id, rest[0], &rest[1..]);
            if key == state_key(self.id) {
                let mut s = Reader::new(value, "stream state in a snapshot");
                (last_seq, last_ts) = (s.u64()?, s.i64()?);
                continue;
            }
            b.put(Space::Streams, key, value.to_vec());
        }
        if !r.is_empty() {
            return Err(
                StorageError::Corrupt("stream snapshot has bytes past its records".into()).into(),
            );
        }
        b.put(
            Space::Streams,
            state_key(self.id),
            state_value(last_seq, last_ts, group_index),
        );
        self.engine.write(b)?;
        *st = Inner::load(self.id, self.engine.as_ref())?;
        let last = st.last_seq;
        drop(st);
        self.notify(last);
        Ok(())
    }
}
