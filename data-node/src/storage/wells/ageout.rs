//! Ageout: hot shards older than `hot_secs` move to the cold engine (same keys), shards older
//! than `cold_secs` are deleted. A move goes page by page: copy to cold, then delete those
//! keys from hot and move their stats in one write. A crash between the two leaves the page
//! in both tiers with identical keys; the next ageout copies it again (an overwrite) and
//! finishes, so stats count every entry once.

use super::{ShardStat, Well, Wells, COLD, HOT, MOVE_PAGE};
use crate::storage::engine::{Batch, KvEngine, Space};
use crate::storage::error::StorageResult;
use crate::storage::keys::{self, meta};
use tributary_common::sync::{lock, read};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AgeoutReport {
    pub moved_shards: u64,
    pub moved_entries: u64,
    pub deleted_shards: u64,
}

impl Wells {
    /// Runs ageout for every well at time `now_ns`.
    pub fn ageout(&self, now_ns: i64) -> StorageResult<AgeoutReport> {
        let mut report = AgeoutReport::default();
        let wells: Vec<_> = read(&self.wells).values().cloned().collect();
        for w in wells {
            self.ageout_well(&w, now_ns.max(0) as u64, &mut report)?;
        }
        Ok(report)
    }

    fn ageout_well(&self, w: &Well, now: u64, report: &mut AgeoutReport) -> StorageResult<()> {
        let cfg = w.config();
        let shard_ns = w.shard_ns();
        let shards: Vec<(u64, u8)> = lock(&w.stats)
            .iter()
            .filter(|(_, s)| s.entries > 0)
            .map(|(k, _)| *k)
            .collect();
        let older_than = |secs: u64, shard: u64| {
            secs > 0
                && shard.saturating_add(1).saturating_mul(shard_ns)
                    <= now.saturating_sub(secs.saturating_mul(1_000_000_000))
        };
        let mut deleted = std::collections::BTreeSet::new();
        for &(shard, tier) in &shards {
            // Without a cold tier, hot_secs is the retention.
            let expired = older_than(cfg.cold_secs, shard)
                || (w.cold.is_none() && older_than(cfg.hot_secs, shard));
            if expired {
                self.delete_shard(w, shard, tier)?;
                deleted.insert(shard);
            }
        }
        report.deleted_shards += deleted.len() as u64;
        let Some(cold) = &w.cold else { return Ok(()) };
        for &(shard, tier) in &shards {
            if tier == HOT && !deleted.contains(&shard) && older_than(cfg.hot_secs, shard) {
                report.moved_entries += self.move_shard(w, cold.as_ref(), shard)?;
                report.moved_shards += 1;
            }
        }
        Ok(())
    }

    fn delete_shard(&self, w: &Well, shard: u64, tier: u8) -> StorageResult<()> {
        let (start, end) = (keys::shard_start(w.id, shard), keys::shard_end(w.id, shard));
        let _writer = lock(&self.writer);
        if tier == COLD {
            if let Some(cold) = &w.cold {
                let mut b = Batch::default();
                b.delete_range(Space::Wells, start.clone(), end.clone());
                cold.write(b)?;
            }
        }
        let mut b = Batch::default();
        if tier == HOT {
            b.delete_range(Space::Wells, start, end);
        }
        b.delete(Space::Meta, meta::shard_stat(w.id, shard, tier));
        self.main.write(b)?;
        lock(&w.stats).remove(&(shard, tier));
        Ok(())
    }

    fn move_shard(&self, w: &Well, cold: &dyn KvEngine, shard: u64) -> StorageResult<u64> {
        let (start, end) = (keys::shard_start(w.id, shard), keys::shard_end(w.id, shard));
        let mut moved = 0;
        loop {
            let page = self.main.page(Space::Wells, &start, &end, MOVE_PAGE)?;
            if page.is_empty() {
                return Ok(moved);
            }
            let mut to_cold = Batch::with_capacity(page.len());
            let mut delta = ShardStat::default();
            for (k, v) in &page {
                delta.entries += 1;
                delta.bytes += (k.len() + v.len()) as u64;
                to_cold.put(Space::Wells, k.clone(), v.clone());
            }
            cold.write(to_cold)?;
            // Under the writer lock so a concurrent ingest into this shard cannot interleave
            // its stat update with ours.
            let _writer = lock(&self.writer);
            let mut stats = lock(&w.stats);
            let hot = stats.get(&(shard, HOT)).copied().unwrap_or_default();
            let cold_stat = stats.get(&(shard, COLD)).copied().unwrap_or_default();
            let new_hot = ShardStat {
                entries: hot.entries.saturating_sub(delta.entries),
                bytes: hot.bytes.saturating_sub(delta.bytes),
            };
            let new_cold = ShardStat {
                entries: cold_stat.entries + delta.entries,
                bytes: cold_stat.bytes + delta.bytes,
            };
            let mut b = Batch::with_capacity(page.len() + 2);
            for (k, _) in page {
                b.delete(Space::Wells, k);
            }
            b.put(
                Space::Meta,
                meta::shard_stat(w.id, shard, HOT),
                new_hot.encode(),
            );
            b.put(
                Space::Meta,
                meta::shard_stat(w.id, shard, COLD),
                new_cold.encode(),
            );
            self.main.write(b)?;
            stats.insert((shard, HOT), new_hot);
            stats.insert((shard, COLD), new_cold);
            moved += delta.entries;
        }
    }
}
