//! Where a (well, target) worker is, saved in the node's meta space: each batch as pending
//! before it is sent, its result once it is acked.
//!
//! Progress is a *key*, never an offset: ageout moves entries between tiers with their keys
//! unchanged and compaction never changes keys, so a saved key stays meaningful.
//!
//! A key alone would miss entries that land later *behind* it (an old timestamp in a shard
//! already sent, which Gravwell misses). Every entry also has a per-well seq that only grows,
//! so the worker works in epochs: entries with `seq < floor` behind the cursor are done; entries
//! with `seq >= floor` behind the cursor are done iff their seq is in `sent`. At the end of a
//! forward pass, shards whose stored count exceeds the processed count are scanned again for
//! the rest, then `floor` moves up and `sent` empties. `sent` only ever holds entries written
//! while an epoch ran, so it stays small.
//!
//! Several batches may be in flight at once (`pending`, oldest first, consecutive batch
//! numbers from `next_batch`). Acks come in order and commit the oldest. A forward batch covers
//! a key range no other batch touches, so a batch rebuilt after later commits (a bigger `sent`)
//! holds exactly the entries it held when it was first sent.

use super::host::DittoHost;
use crate::storage::codec::{Reader, Writer};
use crate::storage::keys::meta;
use crate::storage::StorageResult;
use std::collections::{BTreeMap, BTreeSet};

/// A batch being sent, saved before it goes out: a resend after a crash rebuilds exactly
/// the same entries under the same batch id, so the target can drop it if it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pending {
    /// Its number in the batch id.
    pub batch: u64,
    /// Keys in `[from, to]`...
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    /// ...with `lo <= seq < hi` and seq not in `sent`.
    pub lo: u64,
    pub hi: u64,
    /// A late-entry batch (does not move the cursor).
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// The last key the forward pass processed; None = not started.
    pub cursor: Option<Vec<u8>>,
    pub floor: u64,
    pub sent: BTreeSet<u64>,
    /// Entries processed (sent, dropped or skipped as corrupt) per shard.
    pub processed: BTreeMap<u64, u64>,
    /// The number of the oldest batch not yet committed.
    pub next_batch: u64,
    /// Batches saved and maybe sent but not yet acked, oldest first.
    pub pending: Vec<Pending>,
}

/// 2: several pendings, each with its batch number. 1 (one optional pending, numbered
/// `next_batch`) still decodes, so a node upgraded mid-transfer resumes.
const VERSION: u8 = 2;

impl Progress {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.sent.len() * 8 + self.processed.len() * 16);
        w.u8(VERSION);
        w.bytes(self.cursor.as_deref().unwrap_or_default());
        w.u8(u8::from(self.cursor.is_some()));
        w.u64(self.floor).u64(self.next_batch);
        w.u32(self.sent.len() as u32);
        for s in &self.sent {
            w.u64(*s);
        }
        w.u32(self.processed.len() as u32);
        for (shard, n) in &self.processed {
            w.u64(*shard).u64(*n);
        }
        w.u32(self.pending.len() as u32);
        for p in &self.pending {
            w.u64(p.batch)
                .bytes(&p.from)
                .bytes(&p.to)
                .u64(p.lo)
                .u64(p.hi)
                .u8(u8::from(p.late));
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> StorageResult<Self> {
        let mut r = Reader::new(buf, "ditto progress");
        let v = r.u8()?;
        if v != 1 && v != VERSION {
            return Err(crate::storage::StorageError::Corrupt(format!(
                "ditto progress has unknown version {v}"
            )));
        }
        let cursor = r.bytes()?.to_vec();
        let cursor = (r.u8()? == 1).then_some(cursor);
        let floor = r.u64()?;
        let next_batch = r.u64()?;
        let mut sent = BTreeSet::new();
        for _ in 0..r.u32()? {
            sent.insert(r.u64()?);
        }
        let mut processed = BTreeMap::new();
        for _ in 0..r.u32()? {
            let shard = r.u64()?;
            processed.insert(shard, r.u64()?);
        }
        let (count, numbered) = if v == 1 {
            (u32::from(r.u8()? == 1), false)
        } else {
            (r.u32()?, true)
        };
        let mut pending = Vec::new();
        for i in 0..count {
            let batch = if numbered {
                r.u64()?
            } else {
                next_batch + u64::from(i)
            };
            pending.push(Pending {
                batch,
                from: r.bytes()?.to_vec(),
                to: r.bytes()?.to_vec(),
                lo: r.u64()?,
                hi: r.u64()?,
                late: r.u8()? == 1,
            });
        }
        Ok(Progress {
            cursor,
            floor,
            sent,
            processed,
            next_batch,
            pending,
        })
    }

    pub fn load(host: &dyn DittoHost, well: &str, target: &str) -> StorageResult<Option<Self>> {
        host.get_meta(&meta::ditto_progress(well, target))?
            .map(|v| Self::decode(&v))
            .transpose()
    }

    pub fn save(&self, host: &dyn DittoHost, well: &str, target: &str) -> StorageResult<()> {
        host.put_meta(&meta::ditto_progress(well, target), self.encode())
    }

    pub fn processed_total(&self) -> u64 {
        self.processed.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(batch: u64, from: u8, to: u8, late: bool) -> Pending {
        Pending {
            batch,
            from: vec![from],
            to: vec![to],
            lo: 7,
            hi: 20,
            late,
        }
    }

    #[test]
    fn round_trips() {
        let mut p = Progress {
            cursor: Some(vec![1, 2, 3]),
            floor: 7,
            next_batch: 9,
            ..Default::default()
        };
        p.sent.extend([7, 8, 12]);
        p.processed.insert(3, 100);
        p.pending = vec![pending(9, 0, 9, true)];
        assert_eq!(Progress::decode(&p.encode()).unwrap(), p);
        let empty = Progress::default();
        assert_eq!(Progress::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn several_pendings_round_trip_in_order() {
        let mut p = Progress {
            cursor: Some(vec![4]),
            next_batch: 40,
            ..Default::default()
        };
        p.processed.insert(1, 5);
        p.pending = (0..4)
            .map(|i| pending(40 + i, 5 + 2 * i as u8, 6 + 2 * i as u8, false))
            .collect();
        let back = Progress::decode(&p.encode()).unwrap();
        assert_eq!(back, p);
        let batches: Vec<u64> = back.pending.iter().map(|p| p.batch).collect();
        assert_eq!(batches, [40, 41, 42, 43]);
    }

    /// Version 1 as it was written before several batches could be in flight.
    fn encode_v1(p: &Progress, pending: Option<&Pending>) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(1);
        w.bytes(p.cursor.as_deref().unwrap_or_default());
        w.u8(u8::from(p.cursor.is_some()));
        w.u64(p.floor).u64(p.next_batch);
        w.u32(p.sent.len() as u32);
        for s in &p.sent {
            w.u64(*s);
        }
        w.u32(p.processed.len() as u32);
        for (shard, n) in &p.processed {
            w.u64(*shard).u64(*n);
        }
        match pending {
            None => {
                w.u8(0);
            }
            Some(q) => {
                w.u8(1)
                    .bytes(&q.from)
                    .bytes(&q.to)
                    .u64(q.lo)
                    .u64(q.hi)
                    .u8(u8::from(q.late));
            }
        }
        w.0
    }

    #[test]
    fn version_1_decodes() {
        let mut p = Progress {
            cursor: Some(vec![1, 2, 3]),
            floor: 7,
            next_batch: 12,
            ..Default::default()
        };
        p.sent.extend([7, 9]);
        p.processed.insert(3, 100);
        p.processed.insert(4, 2);
        // Without a pending...
        assert_eq!(Progress::decode(&encode_v1(&p, None)).unwrap(), p);
        // ...and with one: it is numbered `next_batch`, the id it was sent under.
        let q = pending(12, 1, 9, false);
        let back = Progress::decode(&encode_v1(&p, Some(&q))).unwrap();
        assert_eq!(back.pending, vec![q]);
        assert_eq!(back.encode()[0], VERSION);
        assert!(Progress::decode(&[3]).is_err());
    }
}
