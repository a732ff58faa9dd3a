//! Where a (well, target) worker is, saved in the node's meta space after every acked batch.
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

use crate::storage::codec::{Reader, Writer};
use crate::storage::{Batch, KvEngine, Space, StorageResult};
use std::collections::{BTreeMap, BTreeSet};

/// The batch being sent, saved before it goes out: a resend after a crash rebuilds exactly
/// the same entries under the same batch id, so the target can drop it if it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pending {
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
    /// The sequence number of the next batch id.
    pub next_batch: u64,
    pub pending: Option<Pending>,
}

const VERSION: u8 = 1;

pub fn key(well: &str, target: &str) -> Vec<u8> {
    [
        b"ditto/progress/",
        well.as_bytes(),
        b"\0",
        target.as_bytes(),
    ]
    .concat()
}

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
        match &self.pending {
            None => {
                w.u8(0);
            }
            Some(p) => {
                w.u8(1)
                    .bytes(&p.from)
                    .bytes(&p.to)
                    .u64(p.lo)
                    .u64(p.hi)
                    .u8(u8::from(p.late));
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> StorageResult<Self> {
        let mut r = Reader::new(buf, "ditto progress");
        let v = r.u8()?;
        if v != VERSION {
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
        let pending = if r.u8()? == 1 {
            Some(Pending {
                from: r.bytes()?.to_vec(),
                to: r.bytes()?.to_vec(),
                lo: r.u64()?,
                hi: r.u64()?,
                late: r.u8()? == 1,
            })
        } else {
            None
        };
        Ok(Progress {
            cursor,
            floor,
            sent,
            processed,
            next_batch,
            pending,
        })
    }

    pub fn load(engine: &dyn KvEngine, well: &str, target: &str) -> StorageResult<Option<Self>> {
        engine
            .get(Space::Meta, &key(well, target))?
            .map(|v| Self::decode(&v))
            .transpose()
    }

    pub fn save(&self, engine: &dyn KvEngine, well: &str, target: &str) -> StorageResult<()> {
        let mut b = Batch::default();
        b.put(Space::Meta, key(well, target), self.encode());
        engine.write(b)
    }

    pub fn processed_total(&self) -> u64 {
        self.processed.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        p.pending = Some(Pending {
            from: vec![0],
            to: vec![9],
            lo: 7,
            hi: 20,
            late: true,
        });
        assert_eq!(Progress::decode(&p.encode()).unwrap(), p);
        let empty = Progress::default();
        assert_eq!(Progress::decode(&empty.encode()).unwrap(), empty);
    }
}
