//! The one read path of wells: pages of entries merged across the hot and cold tiers in key
//! order. Ditto reads them raw (stored bytes, so one undecodable value can be skipped and
//! counted instead of failing the whole page); a query decodes and filters them.

use super::{QuerySpec, StoredEntry, Well, Wells};
use crate::storage::codec::EntryValue;
use crate::storage::engine::{Batch, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::keys;
use crate::storage::keys::successor;
use std::collections::BTreeMap;
use tributary_common::sync::lock;

/// An entry as stored: its key and its encoded value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A page of raw entries and whether the range has more after it.
pub struct RawPage {
    pub entries: Vec<RawEntry>,
    pub more: bool,
}

impl Wells {
    /// Up to about `limit` (key, value) pairs of `well` in `[start, end)`, merged across
    /// tiers in key order (hot wins on a key in both, as in `query`).
    pub fn page_raw(
        &self,
        well: &Well,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> StorageResult<RawPage> {
        let limit = limit.max(1);
        let hot = self.main.page(Space::Wells, start, end, limit)?;
        let cold = match &well.cold {
            Some(c) => c.page(Space::Wells, start, end, limit)?,
            None => Vec::new(),
        };
        // A full page may hide keys of the other tier past its last key: only keys up to the
        // smaller last key of the full pages are final.
        let bound = [&hot, &cold]
            .iter()
            .filter(|p| p.len() >= limit)
            .filter_map(|p| p.last().map(|(k, _)| k.clone()))
            .min();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // Hot wins on a key present in both (an interrupted move): the entries are the same.
        for (k, v) in cold.into_iter().chain(hot) {
            if bound.as_ref().is_none_or(|b| &k <= b) {
                merged.insert(k, v);
            }
        }
        Ok(RawPage {
            entries: merged.into_iter().collect(),
            more: bound.is_some(),
        })
    }

    /// Up to `limit` entries matching `spec` from `cursor` (a key; None = the start), merged
    /// across tiers in key order; also the cursor to continue from (None = done).
    pub fn query(
        &self,
        well: &Well,
        spec: &QuerySpec,
        cursor: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<(Vec<StoredEntry>, Option<Vec<u8>>)> {
        let shard_ns = well.shard_ns();
        let start = match cursor {
            Some(c) => c.to_vec(),
            None => keys::time_start(well.id, shard_ns, spec.from_ns),
        };
        let end = match spec.to_ns {
            Some(to) => keys::time_start(well.id, shard_ns, to),
            None => keys::well_end(well.id),
        };
        let page = self.page_raw(well, &start, &end, limit)?;
        // The cursor follows the page's last key, whatever the tag filter keeps of it.
        let next = match (page.more, page.entries.last()) {
            (true, Some((k, _))) => Some(successor(k)),
            _ => None,
        };
        let mut out = Vec::with_capacity(page.entries.len());
        for (k, v) in page.entries {
            let (_, _, ts, _) = keys::parse_entry_key(&k)
                .ok_or_else(|| StorageError::Corrupt("well entry key has a bad length".into()))?;
            let value = EntryValue::decode(&v)?;
            if spec.tags.is_empty() || spec.tags.contains(&value.tag) {
                out.push(StoredEntry {
                    key: k,
                    timestamp_ns: ts,
                    value,
                });
            }
        }
        Ok((out, next))
    }

    /// The seq the next entry written to `well` gets: everything below it is already stored.
    pub fn next_seq(&self, well: &Well) -> u64 {
        lock(&self.writer).seqs.get(&well.id).copied().unwrap_or(0)
    }

    /// Test hook: overwrites the stored value of an entry (in whichever tier holds it) with
    /// `value`, to simulate damage on disk.
    #[doc(hidden)]
    pub fn overwrite_raw_for_test(
        &self,
        well: &Well,
        key: &[u8],
        value: Vec<u8>,
    ) -> StorageResult<()> {
        let engine = match &well.cold {
            Some(c) if c.get(Space::Wells, key)?.is_some() => c.clone(),
            _ => self.main.clone(),
        };
        let mut b = Batch::default();
        b.put(Space::Wells, key.to_vec(), value);
        engine.write(b)
    }

    /// The first entry key of `well` in shard `shard` or later.
    pub fn shard_start_key(well: &Well, shard: u64) -> Vec<u8> {
        keys::shard_start(well.id, shard)
    }

    /// The end (exclusive) of `well`'s keys.
    pub fn well_end_key(well: &Well) -> Vec<u8> {
        keys::well_end(well.id)
    }
}
