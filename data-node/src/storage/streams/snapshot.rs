//! A stream's records as one value, and replacing them with one: what a replicated stream's
//! snapshot carries from its leader to a replica too far behind for the log (`group::snapshot`).
//! The records are everything in the stream's key range — messages, Msg-Id dedupe records,
//! the state record (last seq and time), source progress and the mirror's origin — with the
//! node-local stream id left out, since each node numbers its streams its own way.

use super::error::StreamResult;
use super::{state_key, state_value, Inner, StreamStore};
use crate::storage::codec::{Reader, Writer};
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::keys;
use std::sync::Arc;

/// Bytes of the node-local stream id at the head of each key of a stream.
const ID_LEN: usize = 4;

/// Checks that `records` decode as [`StreamStore::records`] writes them.
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
    /// Every record of this stream, encoded: `[count u64]` then `(key, value)` pairs, each key
    /// without the stream's id. Read under the stream's lock, so no write lands halfway.
    pub fn records(&self) -> StreamResult<Vec<u8>> {
        let _st = self.lock();
        let mut body = Writer::default();
        let mut count = 0u64;
        self.engine.scan(
            Space::Streams,
            &keys::stream_key(self.id, 0, &[]),
            &keys::stream_end(self.id),
            false,
            &mut |k, v| {
                body.bytes(&k[ID_LEN.min(k.len())..]).bytes(v);
                count += 1;
                Scan::Continue
            },
        )?;
        let mut out = Writer::with_capacity(8 + body.0.len());
        out.u64(count);
        out.0.extend_from_slice(&body.0);
        Ok(out.0)
    }

    /// Whether this stream's records live in `engine` (a file stream in the node's engine),
    /// so a write there can hold them and other records at once.
    pub fn stored_in(&self, engine: &Arc<dyn KvEngine>) -> bool {
        Arc::ptr_eq(&self.engine, engine)
    }

    /// Replaces every record of this stream with `records` ([`records`](Self::records) of
    /// another replica) in one write together with `also`, and marks the state as holding the
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
