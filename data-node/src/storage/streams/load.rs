//! A stream's in-memory state rebuilt from its records: at open, and after a snapshot
//! replaced them ([`StreamStore::replace_records`](super::StreamStore::replace_records)).
//! Counts, bytes and the per-subject index come from the messages; last seq and time (which
//! must survive a purge) and the group index from the state record; the dedupe window from
//! the Msg-Id records.

use super::{state_key, Inner};
use crate::storage::codec::{MessageValue, Reader};
use crate::storage::engine::{KvEngine, Scan, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::keys::{self, prefix_end, STREAM_MSG_ID};
use std::collections::{HashMap, VecDeque};

impl Inner {
    pub(super) fn load(id: u32, engine: &dyn KvEngine) -> StorageResult<Inner> {
        let (last_seq, last_ts, group_index) = match engine.get(Space::Streams, &state_key(id))? {
            Some(v) => {
                let mut r = Reader::new(&v, "stream state");
                let (seq, ts) = (r.u64()?, r.i64()?);
                // Written by earlier releases without it.
                let index = if v.len() >= 24 { r.u64()? } else { 0 };
                (seq, ts, index)
            }
            None => (0, 0, 0),
        };
        let mut inner = Inner {
            first_seq: last_seq + 1,
            first_ts: 0,
            last_seq,
            last_ts,
            msgs: 0,
            bytes: 0,
            subjects: HashMap::new(),
            dedupe: HashMap::new(),
            dedupe_order: VecDeque::new(),
            group_index,
        };
        let mut err = None;
        engine.scan(
            Space::Streams,
            &keys::msg_key(id, 0),
            &keys::msg_end(id),
            false,
            &mut |k, v| {
                let parsed = keys::parse_msg_key(k)
                    .ok_or_else(|| StorageError::Corrupt("stream message key".into()))
                    .and_then(|seq| Ok((seq, MessageValue::decode_head(v)?)));
                match parsed {
                    Ok((seq, (ts, subject))) => {
                        if inner.msgs == 0 {
                            inner.first_seq = seq;
                            inner.first_ts = ts;
                        }
                        inner.msgs += 1;
                        inner.bytes += v.len() as u64;
                        inner
                            .subjects
                            .entry(subject.to_string())
                            .or_default()
                            .insert(seq, v.len() as u64);
                        Scan::Continue
                    }
                    Err(e) => {
                        err = Some(e);
                        Scan::Stop
                    }
                }
            },
        )?;
        if let Some(e) = err {
            return Err(e);
        }
        let id_prefix = keys::stream_key(id, STREAM_MSG_ID, &[]);
        let mut order = Vec::new();
        for (k, v) in engine.page(
            Space::Streams,
            &id_prefix,
            &prefix_end(&id_prefix),
            usize::MAX,
        )? {
            let msg_id = String::from_utf8_lossy(&k[id_prefix.len()..]).into_owned();
            let mut r = Reader::new(&v, "stream dedupe record");
            let (seq, ts) = (r.u64()?, r.i64()?);
            inner.dedupe.insert(msg_id.clone(), (seq, ts));
            order.push((ts, msg_id));
        }
        order.sort();
        inner.dedupe_order = order.into();
        Ok(inner)
    }
}
