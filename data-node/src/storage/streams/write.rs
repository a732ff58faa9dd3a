//! The write side of a stream: publish with dedupe, expected seq and limits (discard old or
//! new), delete one message, purge, and age expiry. Each change is planned under the stream
//! lock, committed in one engine write, and only then reflected in memory.

use super::error::{StreamError, StreamResult};
use super::{dedupe_key, state_key, state_value, Inner, PubResult, StreamStore, MSG_ID_HEADERS};
use crate::storage::codec::{MessageValue, Writer};
use crate::storage::engine::{Batch, Scan, Space};
use crate::storage::error::StorageError;
use crate::storage::keys;
use std::collections::BTreeMap;

/// A message to append (the store assigns seq; timestamp is the caller's clock).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub subject: String,
    pub headers: BTreeMap<String, String>,
    pub data: bytes::Bytes,
    pub timestamp_ns: i64,
}

/// A message encoded and size-checked, ready to be sequenced.
pub(super) struct Prepared {
    pub subject: String,
    pub msg_id: Option<String>,
    pub value: Vec<u8>,
    pub size: u64,
    pub now: i64,
}

/// Messages a change removes: (seq, subject, stored size).
pub(super) type Doomed = Vec<(u64, String, u64)>;

impl StreamStore {
    /// Encodes a message and checks what needs no stream state (sizes).
    pub(super) fn prepare(
        &self,
        msg: NewMessage,
        limits: &super::StreamLimits,
    ) -> StreamResult<Prepared> {
        let now = msg.timestamp_ns;
        let msg_id = MSG_ID_HEADERS
            .iter()
            .find_map(|h| msg.headers.get(*h))
            .filter(|v| !v.is_empty())
            .cloned();
        let subject = msg.subject.clone();
        let value = MessageValue {
            subject: msg.subject,
            headers: msg.headers,
            data: msg.data,
            timestamp_ns: now,
        }
        .encode();
        let size = value.len() as u64;
        if limits.max_msg_size > 0 && size > limits.max_msg_size {
            return Err(StreamError::invalid(
                "data",
                format!(
                    "message of {size} bytes exceeds stream {}'s max_msg_size {}",
                    self.name, limits.max_msg_size
                ),
            ));
        }
        if limits.max_bytes > 0 && size > limits.max_bytes {
            return Err(StreamError::invalid(
                "data",
                format!(
                    "message of {size} bytes can never fit stream {}'s max_bytes {}",
                    self.name, limits.max_bytes
                ),
            ));
        }
        Ok(Prepared {
            subject,
            msg_id,
            value,
            size,
            now,
        })
    }

    pub fn publish(
        &self,
        msg: NewMessage,
        expected_last_seq: Option<u64>,
    ) -> StreamResult<PubResult> {
        let limits = self.limits();
        let Prepared {
            subject,
            msg_id,
            value,
            size,
            now,
        } = self.prepare(msg, &limits)?;

        let mut st = self.lock_open()?;
        self.expire_dedupe(&mut st, now, limits.dup_window())?;
        if let Some(id) = &msg_id {
            if let Some(&(seq, _)) = st.dedupe.get(id) {
                return Ok(PubResult {
                    seq,
                    duplicate: true,
                });
            }
        }
        if let Some(expected) = expected_last_seq {
            if expected != st.last_seq {
                return Err(StreamError::WrongLastSeq {
                    expected,
                    actual: st.last_seq,
                });
            }
        }
        let subject_count = st.subjects.get(&subject).map_or(0, |m| m.len() as u64);
        if limits.discard_new {
            if limits.max_msgs > 0 && st.msgs + 1 > limits.max_msgs {
                return Err(StreamError::Full(format!(
                    "stream {} is full: max_msgs {} (discard new)",
                    self.name, limits.max_msgs
                )));
            }
            if limits.max_bytes > 0 && st.bytes + size > limits.max_bytes {
                return Err(StreamError::Full(format!(
                    "stream {} is full: max_bytes {} (discard new)",
                    self.name, limits.max_bytes
                )));
            }
        }
        let mut doomed: Doomed = Vec::new();
        // The per-subject limit always drops that subject's oldest, as JetStream does unless
        // discard-new-per-subject is asked for (which we do not offer).
        if limits.max_msgs_per_subject > 0 && subject_count + 1 > limits.max_msgs_per_subject {
            let excess = subject_count + 1 - limits.max_msgs_per_subject;
            if let Some(m) = st.subjects.get(&subject) {
                doomed.extend(
                    m.iter()
                        .take(excess as usize)
                        .map(|(s, z)| (*s, subject.clone(), *z)),
                );
            }
        }
        if !limits.discard_new {
            self.plan_discard_old(&st, &limits, 1, size, &mut doomed)?;
        }

        let seq = st.last_seq + 1;
        let mut batch = Batch::with_capacity(doomed.len() + 3);
        for (s, _, _) in &doomed {
            batch.delete(Space::Streams, keys::msg_key(self.id, *s));
        }
        batch.put(Space::Streams, keys::msg_key(self.id, seq), value);
        batch.put(
            Space::Streams,
            state_key(self.id),
            state_value(seq, now, st.group_index),
        );
        if let Some(id) = &msg_id {
            let mut w = Writer::default();
            w.u64(seq).i64(now);
            batch.put(Space::Streams, dedupe_key(self.id, id), w.0);
        }
        self.engine.write(batch)?;

        if let Some(id) = msg_id {
            st.dedupe.insert(id.clone(), (seq, now));
            st.dedupe_order.push_back((now, id));
        }
        if st.msgs == 0 {
            st.first_seq = seq;
            st.first_ts = now;
        }
        st.last_seq = seq;
        st.last_ts = now;
        st.msgs += 1;
        st.bytes += size;
        st.subjects.entry(subject).or_default().insert(seq, size);
        self.forget(&mut st, &doomed)?;
        drop(st);
        self.notify(seq);
        Ok(PubResult {
            seq,
            duplicate: false,
        })
    }

    /// With discard old: the oldest messages to add to `doomed` so that `incoming` more
    /// messages of `size` bytes in all fit max_msgs and max_bytes (0 and 0: trim to fit).
    pub(super) fn plan_discard_old(
        &self,
        st: &Inner,
        limits: &super::StreamLimits,
        incoming: u64,
        size: u64,
        doomed: &mut Doomed,
    ) -> StreamResult<()> {
        let already: u64 = doomed.iter().map(|d| d.2).sum();
        let mut msgs = st.msgs + incoming - doomed.len() as u64;
        let mut bytes = st.bytes + size - already;
        let over = |m: u64, b: u64| {
            (limits.max_msgs > 0 && m > limits.max_msgs)
                || (limits.max_bytes > 0 && b > limits.max_bytes)
        };
        if !over(msgs, bytes) {
            return Ok(());
        }
        let skip: std::collections::HashSet<u64> = doomed.iter().map(|d| d.0).collect();
        let mut err = None;
        let mut extra = Vec::new();
        self.engine.scan(
            Space::Streams,
            &keys::msg_key(self.id, st.first_seq),
            &keys::msg_end(self.id),
            false,
            &mut |k, v| {
                let (Some(seq), Ok((_, subject))) =
                    (keys::parse_msg_key(k), MessageValue::decode_head(v))
                else {
                    err = Some(StorageError::Corrupt("stream message".into()));
                    return Scan::Stop;
                };
                if !skip.contains(&seq) {
                    msgs -= 1;
                    bytes -= v.len() as u64;
                    extra.push((seq, subject.to_string(), v.len() as u64));
                }
                if over(msgs, bytes) {
                    Scan::Continue
                } else {
                    Scan::Stop
                }
            },
        )?;
        if let Some(e) = err {
            return Err(e.into());
        }
        doomed.extend(extra);
        Ok(())
    }

    /// Updates memory for committed deletions.
    pub(super) fn forget(&self, st: &mut Inner, doomed: &[(u64, String, u64)]) -> StreamResult<()> {
        let mut front_moved = false;
        for (seq, subject, size) in doomed {
            if let Some(m) = st.subjects.get_mut(subject) {
                if m.remove(seq).is_some() {
                    st.msgs -= 1;
                    st.bytes -= size;
                    front_moved |= *seq == st.first_seq;
                }
                if m.is_empty() {
                    st.subjects.remove(subject);
                }
            }
        }
        if front_moved || st.msgs == 0 {
            self.refresh_first(st)?;
        }
        Ok(())
    }

    pub fn delete_message(&self, seq: u64) -> StreamResult<()> {
        if self.limits().deny_delete {
            return Err(StreamError::Refused(format!(
                "stream {} denies message deletes",
                self.name
            )));
        }
        let mut st = self.lock_open()?;
        let found = st
            .subjects
            .iter()
            .find_map(|(subj, m)| m.get(&seq).map(|z| (subj.clone(), *z)));
        let Some((subject, size)) = found else {
            return Err(StreamError::NoMessage {
                stream: self.name.clone(),
                seq,
            });
        };
        let mut b = Batch::default();
        b.delete(Space::Streams, keys::msg_key(self.id, seq));
        self.engine.write(b)?;
        let last = st.last_seq;
        self.forget(&mut st, &[(seq, subject, size)])?;
        drop(st);
        self.notify(last);
        Ok(())
    }

    /// Removes every message, or those whose subject matches `subject` (wildcards allowed).
    /// The last seq stays, so new messages continue the sequence. Returns how many went.
    pub fn purge(&self, subject: Option<&str>) -> StreamResult<u64> {
        if self.limits().deny_purge {
            return Err(StreamError::Refused(format!(
                "stream {} denies purge",
                self.name
            )));
        }
        let mut st = self.lock_open()?;
        let mut b = Batch::default();
        let doomed: Doomed = match subject {
            None => {
                b.delete_range(
                    Space::Streams,
                    keys::msg_key(self.id, 0),
                    keys::msg_end(self.id),
                );
                st.subjects
                    .iter()
                    .flat_map(|(s, m)| m.iter().map(move |(q, z)| (*q, s.clone(), *z)))
                    .collect()
            }
            Some(filter) => {
                let d: Doomed = st
                    .subjects
                    .iter()
                    .filter(|(s, _)| tributary_common::subject::matches(filter, s))
                    .flat_map(|(s, m)| m.iter().map(move |(q, z)| (*q, s.clone(), *z)))
                    .collect();
                for (q, _, _) in &d {
                    b.delete(Space::Streams, keys::msg_key(self.id, *q));
                }
                d
            }
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        self.engine.write(b)?;
        self.forget(&mut st, &doomed)?;
        let last = st.last_seq;
        drop(st);
        self.notify(last);
        Ok(doomed.len() as u64)
    }

    /// Whether [`expire`](Self::expire) at `now_ns` would drop anything.
    pub fn expiry_due(&self, now_ns: i64) -> bool {
        let limits = self.limits();
        let st = self.lock();
        let aged = limits.max_age_ns > 0
            && st.msgs > 0
            && st.first_ts
                < now_ns.saturating_sub(i64::try_from(limits.max_age_ns).unwrap_or(i64::MAX));
        let forgotten = st
            .dedupe_order
            .front()
            .is_some_and(|(ts, _)| *ts <= now_ns.saturating_sub(limits.dup_window()));
        aged || forgotten
    }

    /// Drops messages older than `max_age` and Msg-Ids older than the duplicate window.
    pub fn expire(&self, now_ns: i64) -> StreamResult<u64> {
        let limits = self.limits();
        let mut st = self.lock_open()?;
        self.expire_dedupe(&mut st, now_ns, limits.dup_window())?;
        let mut b = Batch::default();
        let mut doomed: Doomed = Vec::new();
        if limits.max_age_ns > 0 && st.msgs > 0 {
            let cutoff =
                now_ns.saturating_sub(i64::try_from(limits.max_age_ns).unwrap_or(i64::MAX));
            let mut err = None;
            self.engine.scan(
                Space::Streams,
                &keys::msg_key(self.id, st.first_seq),
                &keys::msg_end(self.id),
                false,
                &mut |k, v| match (keys::parse_msg_key(k), MessageValue::decode_head(v)) {
                    (Some(seq), Ok((ts, subject))) if ts < cutoff => {
                        doomed.push((seq, subject.to_string(), v.len() as u64));
                        Scan::Continue
                    }
                    (Some(_), Ok(_)) => Scan::Stop,
                    _ => {
                        err = Some(StorageError::Corrupt("stream message".into()));
                        Scan::Stop
                    }
                },
            )?;
            if let Some(e) = err {
                return Err(e.into());
            }
            for (q, _, _) in &doomed {
                b.delete(Space::Streams, keys::msg_key(self.id, *q));
            }
        }
        if b.is_empty() {
            return Ok(0);
        }
        self.engine.write(b)?;
        self.forget(&mut st, &doomed)?;
        let last = st.last_seq;
        drop(st);
        self.notify(last);
        Ok(doomed.len() as u64)
    }
}

impl StreamStore {
    /// Forgets Msg-Ids older than the duplicate window, on disk and then in memory.
    pub(super) fn expire_dedupe(&self, st: &mut Inner, now: i64, window: i64) -> StreamResult<()> {
        let cutoff = now.saturating_sub(window);
        let n = st
            .dedupe_order
            .iter()
            .take_while(|(ts, _)| *ts <= cutoff)
            .count();
        if n == 0 {
            return Ok(());
        }
        let mut b = Batch::with_capacity(n);
        for (_, msg_id) in st.dedupe_order.iter().take(n) {
            b.delete(Space::Streams, dedupe_key(self.id, msg_id));
        }
        self.engine.write(b)?;
        for (ts, msg_id) in st.dedupe_order.drain(..n).collect::<Vec<_>>() {
            // A later publish may have reused an id whose record we must keep.
            if st.dedupe.get(&msg_id).is_some_and(|(_, t)| *t == ts) {
                st.dedupe.remove(&msg_id);
            }
        }
        Ok(())
    }
}
