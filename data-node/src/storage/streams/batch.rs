//! Group commit for pipelined publishing: many messages sequenced under one lock and stored
//! in one engine write, so a publisher with acks in flight does not pay a write per message.
//! Only for streams whose limits never need to look at stored messages (no discard-old
//! eviction and no per-subject limit); those go one by one through `publish`.

use super::error::{StreamError, StreamResult};
use super::write::{NewMessage, Prepared};
use super::{dedupe_key, state_key, state_value, PubResult, StreamStore};
use crate::storage::codec::Writer;
use crate::storage::engine::{Batch, Space};
use crate::storage::error::StorageError;
use crate::storage::keys;
use std::collections::HashMap;

struct Accepted {
    index: usize,
    seq: u64,
    subject: String,
    size: u64,
    msg_id: Option<String>,
    now: i64,
}

impl StreamStore {
    /// Publishes `msgs` in order; one result per message, as `publish` would have given.
    pub fn publish_batch(
        &self,
        msgs: Vec<(NewMessage, Option<u64>)>,
    ) -> Vec<StreamResult<PubResult>> {
        let limits = self.limits();
        let evicts = (!limits.discard_new && (limits.max_msgs > 0 || limits.max_bytes > 0))
            || limits.max_msgs_per_subject > 0;
        if evicts || msgs.len() < 2 {
            return msgs
                .into_iter()
                .map(|(m, expected)| self.publish(m, expected))
                .collect();
        }
        let n = msgs.len();
        let mut results: Vec<StreamResult<PubResult>> = Vec::with_capacity(n);
        let mut st = match self.lock_open() {
            Ok(st) => st,
            Err(_) => {
                return (0..n)
                    .map(|_| Err(StreamError::Closed(self.name.clone())))
                    .collect()
            }
        };
        let now = msgs.first().map_or(0, |(m, _)| m.timestamp_ns);
        if let Err(e) = self.expire_dedupe(&mut st, now, limits.dup_window()) {
            let msg = e.to_string();
            return (0..n).map(|_| Err(engine_error(&msg))).collect();
        }
        let mut batch = Batch::with_capacity(n * 2 + 1);
        let mut accepted: Vec<Accepted> = Vec::with_capacity(n);
        let mut new_ids: HashMap<String, u64> = HashMap::new();
        let (mut last_seq, mut last_ts) = (st.last_seq, st.last_ts);
        let (mut count, mut bytes) = (st.msgs, st.bytes);
        for (index, (m, expected)) in msgs.into_iter().enumerate() {
            let p = match self.prepare(m, &limits) {
                Ok(p) => p,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let Prepared {
                subject,
                msg_id,
                value,
                size,
                now,
            } = p;
            if let Some(id) = &msg_id {
                let seen = st
                    .dedupe
                    .get(id)
                    .map(|d| d.0)
                    .or_else(|| new_ids.get(id).copied());
                if let Some(seq) = seen {
                    results.push(Ok(PubResult {
                        seq,
                        duplicate: true,
                    }));
                    continue;
                }
            }
            if let Some(expected) = expected {
                if expected != last_seq {
                    results.push(Err(StreamError::WrongLastSeq {
                        expected,
                        actual: last_seq,
                    }));
                    continue;
                }
            }
            if limits.max_msgs > 0 && count + 1 > limits.max_msgs {
                results.push(Err(self.full("max_msgs", limits.max_msgs)));
                continue;
            }
            if limits.max_bytes > 0 && bytes + size > limits.max_bytes {
                results.push(Err(self.full("max_bytes", limits.max_bytes)));
                continue;
            }
            last_seq += 1;
            last_ts = now;
            count += 1;
            bytes += size;
            batch.put(Space::Streams, keys::msg_key(self.id, last_seq), value);
            if let Some(id) = &msg_id {
                let mut w = Writer::default();
                w.u64(last_seq).i64(now);
                batch.put(Space::Streams, dedupe_key(self.id, id), w.0);
                new_ids.insert(id.clone(), last_seq);
            }
            results.push(Ok(PubResult {
                seq: last_seq,
                duplicate: false,
            }));
            accepted.push(Accepted {
                index,
                seq: last_seq,
                subject,
                size,
                msg_id,
                now,
            });
        }
        if accepted.is_empty() {
            return results;
        }
        batch.put(
            Space::Streams,
            state_key(self.id),
            state_value(last_seq, last_ts, st.group_index),
        );
        if let Err(e) = self.engine.write(batch) {
            // Nothing of the batch is stored: every message sequenced in it failed.
            let msg = e.to_string();
            for a in &accepted {
                if let Some(r) = results.get_mut(a.index) {
                    *r = Err(engine_error(&msg));
                }
            }
            return results;
        }
        for a in accepted {
            if st.msgs == 0 {
                st.first_seq = a.seq;
                st.first_ts = a.now;
            }
            st.msgs += 1;
            st.bytes += a.size;
            st.subjects
                .entry(a.subject)
                .or_default()
                .insert(a.seq, a.size);
            if let Some(id) = a.msg_id {
                st.dedupe.insert(id.clone(), (a.seq, a.now));
                st.dedupe_order.push_back((a.now, id));
            }
        }
        st.last_seq = last_seq;
        st.last_ts = last_ts;
        drop(st);
        self.notify(last_seq);
        results
    }

    fn full(&self, limit: &str, value: u64) -> StreamError {
        StreamError::Full(format!(
            "stream {} is full: {limit} {value} (discard new)",
            self.name
        ))
    }
}

fn engine_error(msg: &str) -> StreamError {
    StreamError::Storage(StorageError::Engine(msg.to_string()))
}
