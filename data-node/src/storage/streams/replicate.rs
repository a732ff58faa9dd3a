//! The write side of mirrors and sources. Each call stores the copied messages *and* the
//! origin progress in one engine write, so a crash leaves either both or neither: a restarted
//! worker resumes right after the last stored message, never copying one twice or skipping one.
//!
//! * A mirror stores messages at the origin's seqs; its own state record (last seq) is its
//!   progress, and seqs it skips (deleted or filtered out in the origin) are gaps that count
//!   as deleted, as in JetStream.
//! * A source appends with the destination's next seqs and keeps `(next origin seq, origin
//!   incarnation)` under a progress key of its own in the stream's key range, so deleting the
//!   stream drops it too.
//!
//! Replicated writes never refuse a message for a full stream (that would stall the copy
//! forever): limits drop the oldest messages instead, after the write.

use super::error::{StreamError, StreamResult};
use super::{state_key, state_value, Inner, RawMessage, StreamStore};
use crate::storage::codec::{Reader, Writer};
use crate::storage::engine::{Batch, Prepared, Space};
use crate::storage::error::StorageResult;
use crate::storage::keys;

/// Key kinds in a stream's range (next to `keys::STREAM_MSG` etc.).
const STREAM_SOURCE_PROGRESS: u8 = b'p';
const STREAM_MIRROR_ORIGIN: u8 = b'o';

/// Where a source stands in its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceProgress {
    /// The origin seq to copy next.
    pub next_seq: u64,
    /// The origin's incarnation the progress belongs to (0 = not known yet).
    pub incarnation: u64,
}

/// Mirror messages made ready for their write ([`StreamStore::prepare_mirrored`]).
pub struct PreparedMirror {
    batch: Prepared,
    /// (seq, subject, size, timestamp) of each message in `batch`.
    added: Vec<(u64, String, u64, i64)>,
    /// The first seq in the batch, counting refused ones (0: none).
    first_seq: u64,
    last_seq: u64,
    last_ts: Option<i64>,
    too_big: u64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    pub stored: u64,
    /// Messages the destination's `max_msg_size` refused (dropped, not retried).
    pub too_big: u64,
}

impl PreparedMirror {
    /// Bytes of the messages the batch stores.
    pub fn bytes(&self) -> u64 {
        self.added.iter().map(|(_, _, size, _)| *size).sum()
    }
}

impl StreamStore {
    fn progress_key(&self, source_key: &str) -> Vec<u8> {
        keys::stream_key(self.id, STREAM_SOURCE_PROGRESS, source_key.as_bytes())
    }

    /// Every source this stream holds progress for (background cleanup reads them).
    pub fn source_progress_keys(&self) -> StorageResult<Vec<String>> {
        let start = keys::stream_key(self.id, STREAM_SOURCE_PROGRESS, &[]);
        let end = keys::stream_key(self.id, STREAM_SOURCE_PROGRESS + 1, &[]);
        let mut out = Vec::new();
        self.engine
            .scan(Space::Streams, &start, &end, false, &mut |k, _| {
                out.push(String::from_utf8_lossy(&k[start.len()..]).into_owned());
                crate::storage::Scan::Continue
            })?;
        Ok(out)
    }

    /// Forgets the progress of sources no longer copied (background cleanup), under the
    /// stream's lock so no copy of this store writes meanwhile.
    pub fn forget_source_progress(&self, source_keys: &[String]) -> StreamResult<()> {
        let _st = self.lock_open()?;
        let mut batch = Batch::default();
        for k in source_keys {
            batch.delete(Space::Streams, self.progress_key(k));
        }
        self.engine.write(batch)?;
        Ok(())
    }

    pub fn source_progress(&self, source_key: &str) -> StorageResult<Option<SourceProgress>> {
        let Some(v) = self
            .engine
            .get(Space::Streams, &self.progress_key(source_key))?
        else {
            return Ok(None);
        };
        let mut r = Reader::new(&v, "source progress");
        Ok(Some(SourceProgress {
            next_seq: r.u64()?,
            incarnation: r.u64()?,
        }))
    }

    /// The incarnation of the origin this mirror copies (0 = none yet).
    pub fn mirror_origin(&self) -> StorageResult<u64> {
        let k = keys::stream_key(self.id, STREAM_MIRROR_ORIGIN, &[]);
        match self.engine.get(Space::Streams, &k)? {
            Some(v) => Ok(Reader::new(&v, "mirror origin").u64()?),
            None => Ok(0),
        }
    }

    /// Mirror: stores `msgs` at their origin seqs and moves the last seq to `through` (every
    /// origin seq up to it has been seen), with the origin's incarnation, in one write.
    /// Messages at or below the current last seq are repeats of a resend and are skipped.
    pub fn append_mirrored(
        &self,
        msgs: Vec<RawMessage>,
        through: u64,
        incarnation: u64,
    ) -> StreamResult<Appended> {
        let prepared = self.prepare_mirrored(msgs, self.state().last_seq)?;
        self.commit_mirrored(prepared, through, incarnation)
    }

    /// The costly half of [`Self::append_mirrored`], without the stream's lock: the engine
    /// batch of the messages above seq `after` (what the destination holds, or will once the
    /// writes before this one are committed).
    pub fn prepare_mirrored(
        &self,
        msgs: Vec<RawMessage>,
        after: u64,
    ) -> StreamResult<PreparedMirror> {
        let limits = self.limits();
        let mut batch = Batch::with_capacity(msgs.len());
        let mut added = Vec::with_capacity(msgs.len());
        let (mut first_seq, mut last_seq, mut last_ts, mut too_big) = (0, after, None, 0);
        for m in msgs {
            if m.seq <= last_seq {
                continue;
            }
            if first_seq == 0 {
                first_seq = m.seq;
            }
            let size = m.value.len() as u64;
            last_seq = m.seq;
            last_ts = Some(m.timestamp_ns);
            if limits.max_msg_size > 0 && size > limits.max_msg_size {
                too_big += 1;
                continue;
            }
            // The origin's stored bytes are the mirror's: no decode, no encode.
            batch.put_shared(Space::Streams, keys::msg_key(self.id, m.seq), m.value);
            added.push((m.seq, m.subject, size, m.timestamp_ns));
        }
        Ok(PreparedMirror {
            batch: self.engine.prepare(batch)?,
            added,
            first_seq,
            last_seq,
            last_ts,
            too_big,
        })
    }

    /// Writes a prepared mirror batch with the last seq moved to `through` and the origin's
    /// incarnation. Fails, storing nothing, if the stream has moved past the batch's first
    /// message meanwhile (another writer: the caller starts over from what is stored).
    pub fn commit_mirrored(
        &self,
        p: PreparedMirror,
        through: u64,
        incarnation: u64,
    ) -> StreamResult<Appended> {
        let limits = self.limits();
        let mut st = self.lock_open()?;
        if p.first_seq != 0 && p.first_seq <= st.last_seq {
            return Err(StreamError::Refused(format!(
                "stream {} already holds seq {} of this batch",
                self.name, p.first_seq
            )));
        }
        let mut out = Appended {
            too_big: p.too_big,
            ..Default::default()
        };
        let last_seq = p.last_seq.max(st.last_seq);
        let last_ts = p.last_ts.unwrap_or(st.last_ts);
        let through = through.max(last_seq);
        if through <= st.last_seq && p.added.is_empty() && self.mirror_origin()? == incarnation {
            return Ok(out);
        }
        let mut more = Batch::with_capacity(2);
        more.put(
            Space::Streams,
            state_key(self.id),
            state_value(through, last_ts, st.group_index),
        );
        let mut w = Writer::default();
        w.u64(incarnation);
        more.put(
            Space::Streams,
            keys::stream_key(self.id, STREAM_MIRROR_ORIGIN, &[]),
            w.0,
        );
        self.engine.write_prepared(p.batch, more)?;
        out.stored = p.added.len() as u64;
        self.remember(&mut st, p.added);
        st.last_seq = through;
        st.last_ts = last_ts;
        if st.msgs == 0 {
            st.first_seq = through + 1;
        }
        self.trim(&mut st, &limits)?;
        drop(st);
        self.notify(through);
        Ok(out)
    }

    /// Source: appends `msgs` with this stream's next seqs and records `progress` for
    /// `source_key`, in one write (an empty `msgs` just moves the progress).
    pub fn append_sourced(
        &self,
        msgs: Vec<RawMessage>,
        source_key: &str,
        progress: SourceProgress,
    ) -> StreamResult<Appended> {
        let limits = self.limits();
        let mut st = self.lock_open()?;
        let mut batch = Batch::with_capacity(msgs.len() + 2);
        let mut added = Vec::with_capacity(msgs.len());
        let mut out = Appended::default();
        let (mut last_seq, mut last_ts) = (st.last_seq, st.last_ts);
        // Encoded by the caller, outside the lock: origins copied concurrently only queue here
        // for the write itself. Their `seq` is the origin's; the destination numbers anew.
        for m in msgs {
            let size = m.value.len() as u64;
            if limits.max_msg_size > 0 && size > limits.max_msg_size {
                out.too_big += 1;
                continue;
            }
            last_seq += 1;
            last_ts = m.timestamp_ns;
            batch.put_shared(Space::Streams, keys::msg_key(self.id, last_seq), m.value);
            added.push((last_seq, m.subject, size, m.timestamp_ns));
        }
        if !added.is_empty() {
            batch.put(
                Space::Streams,
                state_key(self.id),
                state_value(last_seq, last_ts, st.group_index),
            );
        }
        let mut w = Writer::default();
        w.u64(progress.next_seq).u64(progress.incarnation);
        batch.put(Space::Streams, self.progress_key(source_key), w.0);
        self.engine.write(batch)?;
        out.stored = added.len() as u64;
        self.remember(&mut st, added);
        st.last_seq = last_seq;
        st.last_ts = last_ts;
        self.trim(&mut st, &limits)?;
        drop(st);
        if out.stored > 0 {
            self.notify(last_seq);
        }
        Ok(out)
    }

    /// Mirror of a new origin: drops every message and starts the sequence over, in one write.
    pub fn reset_mirror(&self) -> StreamResult<()> {
        let mut st = self.lock_open()?;
        let mut b = Batch::default();
        b.delete_range(
            Space::Streams,
            keys::msg_key(self.id, 0),
            keys::msg_end(self.id),
        );
        b.delete(
            Space::Streams,
            keys::stream_key(self.id, STREAM_MIRROR_ORIGIN, &[]),
        );
        b.put(
            Space::Streams,
            state_key(self.id),
            state_value(0, 0, st.group_index),
        );
        self.engine.write(b)?;
        st.msgs = 0;
        st.bytes = 0;
        st.subjects.clear();
        st.last_seq = 0;
        st.last_ts = 0;
        st.first_seq = 1;
        st.first_ts = 0;
        drop(st);
        self.notify(0);
        Ok(())
    }

    /// Memory bookkeeping for committed messages: (seq, subject, size, timestamp).
    fn remember(&self, st: &mut Inner, added: Vec<(u64, String, u64, i64)>) {
        for (seq, subject, size, ts) in added {
            if st.msgs == 0 {
                st.first_seq = seq;
                st.first_ts = ts;
            }
            st.msgs += 1;
            st.bytes += size;
            st.subjects.entry(subject).or_default().insert(seq, size);
        }
    }

    /// Drops the oldest messages while the stream is over its limits (replicated writes
    /// always discard old: refusing would stall the copy for good).
    fn trim(&self, st: &mut Inner, limits: &super::StreamLimits) -> StreamResult<()> {
        let mut doomed: super::write::Doomed = Vec::new();
        if limits.max_msgs_per_subject > 0 {
            for (subject, m) in &st.subjects {
                let excess = (m.len() as u64).saturating_sub(limits.max_msgs_per_subject);
                doomed.extend(
                    m.iter()
                        .take(excess as usize)
                        .map(|(s, z)| (*s, subject.clone(), *z)),
                );
            }
        }
        self.plan_discard_old(st, limits, 0, 0, &mut doomed)?;
        if doomed.is_empty() {
            return Ok(());
        }
        let mut b = Batch::with_capacity(doomed.len());
        for (s, _, _) in &doomed {
            b.delete(Space::Streams, keys::msg_key(self.id, *s));
        }
        self.engine.write(b)?;
        self.forget(st, &doomed)
    }
}
