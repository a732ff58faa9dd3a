//! Wells: time-sharded entries with hot and cold tiers.
//!
//! Hot data lives in the node's main engine (so one ingest batch, its batch id and the shard
//! stats commit in one atomic write). A well with a cold location keeps older shards in a
//! second engine opened under that path; ageout copies a shard's entries there *with their
//! keys unchanged* (ditto progress is a key) and then deletes them from hot.

use crate::storage::codec::EntryValue;
use crate::storage::engine::{Batch, KvEngine, Scan, Space};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::ids::{decode_u64, LocalIds};
use crate::storage::keys::{self, meta};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub const HOT: u8 = 0;
pub const COLD: u8 = 1;
/// Gravwell's default shard width: 2^17 seconds (about 1.5 days).
use tributary_common::model::DEFAULT_SHARD_SECS;
use tributary_common::sync::{lock, read, write};
const MOVE_PAGE: usize = 4096;

/// Opens the engine for a cold location (RocksDB in the server, memory in tests).
pub type ColdOpener = Box<dyn Fn(&Path) -> StorageResult<Arc<dyn KvEngine>> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WellConfig {
    pub name: String,
    pub shard_secs: u64,
    pub cold_location: Option<PathBuf>,
    /// Shards whose end is older than this move to cold (or are deleted with no cold tier).
    pub hot_secs: u64,
    /// Shards whose end is older than this are deleted from every tier. 0 = keep.
    pub cold_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStat {
    pub entries: u64,
    pub bytes: u64,
}

impl ShardStat {
    fn encode(&self) -> Vec<u8> {
        [self.entries.to_be_bytes(), self.bytes.to_be_bytes()].concat()
    }
    fn decode(v: &[u8]) -> StorageResult<Self> {
        Ok(ShardStat {
            entries: decode_u64(v)?,
            bytes: decode_u64(v.get(8..).unwrap_or_default())?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub shard: u64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub tier: u8,
    pub stat: ShardStat,
}

/// One stored entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub key: Vec<u8>,
    pub timestamp_ns: u64,
    pub value: EntryValue,
}

pub struct Well {
    pub id: u32,
    /// Fixed when the well is first opened (keys depend on it), so the hot path reads a field.
    shard_ns: u64,
    config: RwLock<WellConfig>,
    cold: Option<Arc<dyn KvEngine>>,
    stats: Mutex<BTreeMap<(u64, u8), ShardStat>>,
    /// Bumped after every committed write: tailing readers (ditto) wait on it.
    appended: watch::Sender<u64>,
}

impl Well {
    pub fn config(&self) -> WellConfig {
        read(&self.config).clone()
    }

    pub fn shard_ns(&self) -> u64 {
        self.shard_ns
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Shards with their entry counts, bytes and tier, in shard order.
    pub fn shards(&self) -> Vec<ShardRow> {
        let shard_ns = self.shard_ns();
        let stats = lock(&self.stats);
        stats
            .iter()
            .filter(|(_, s)| s.entries > 0)
            .map(|(&(shard, tier), &stat)| ShardRow {
                shard,
                start_ns: i64::try_from(shard.saturating_mul(shard_ns)).unwrap_or(i64::MAX),
                // The last shard of a maximum width ends past i64: show it as the end of time.
                end_ns: i64::try_from(shard.saturating_add(1).saturating_mul(shard_ns))
                    .unwrap_or(i64::MAX),
                tier,
                stat,
            })
            .collect()
    }

    /// Total (entries, bytes) across shards and tiers.
    pub fn totals(&self) -> ShardStat {
        let stats = lock(&self.stats);
        stats.values().fold(ShardStat::default(), |a, s| ShardStat {
            entries: a.entries + s.entries,
            bytes: a.bytes + s.bytes,
        })
    }
}

/// A query: `[from_ns, to_ns)` (`to_ns` None = open), optional tag ids (empty = all).
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    pub from_ns: u64,
    pub to_ns: Option<u64>,
    pub tags: Vec<u32>,
}

struct WriterState {
    /// Next seq per well id.
    seqs: HashMap<u32, u64>,
    /// Recent ingest batch ids → when first stored (ns), oldest first in `order`.
    batch_ids: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
}

/// Every well on this node.
pub struct Wells {
    main: Arc<dyn KvEngine>,
    ids: Arc<LocalIds>,
    open_cold: ColdOpener,
    cold_engines: Mutex<HashMap<PathBuf, Arc<dyn KvEngine>>>,
    wells: RwLock<HashMap<String, Arc<Well>>>,
    // One writer at a time: seq assignment, stats and batch-id dedupe must match what the
    // single atomic engine write commits. RocksDB serialises WAL appends anyway.
    writer: Mutex<WriterState>,
}

/// What an ingest write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored(u64),
    Duplicate,
}

impl Wells {
    pub fn open(
        main: Arc<dyn KvEngine>,
        ids: Arc<LocalIds>,
        open_cold: ColdOpener,
    ) -> StorageResult<Self> {
        let mut batch_ids = HashMap::new();
        let mut order = Vec::new();
        let mut bad = None;
        main.scan(
            Space::Meta,
            meta::BATCH_PREFIX,
            &keys::prefix_end(meta::BATCH_PREFIX),
            false,
            &mut |k, v| {
                let id = String::from_utf8_lossy(&k[meta::BATCH_PREFIX.len()..]).into_owned();
                match decode_u64(v) {
                    Ok(ts) => {
                        batch_ids.insert(id.clone(), ts as i64);
                        order.push((ts as i64, id));
                        Scan::Continue
                    }
                    Err(e) => {
                        bad = Some(e);
                        Scan::Stop
                    }
                }
            },
        )?;
        if let Some(e) = bad {
            return Err(e);
        }
        order.sort();
        Ok(Wells {
            main,
            ids,
            open_cold,
            cold_engines: Mutex::new(HashMap::new()),
            wells: RwLock::new(HashMap::new()),
            writer: Mutex::new(WriterState {
                seqs: HashMap::new(),
                batch_ids,
                order: order.into(),
            }),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Well>> {
        read(&self.wells).get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.wells).keys().cloned().collect();
        v.sort();
        v
    }

    /// Opens (or updates the config of) a well. The shard width is fixed when the well is
    /// first opened: changing it later would reshuffle keys, so a new value is ignored.
    pub fn open_well(&self, mut config: WellConfig) -> StorageResult<Arc<Well>> {
        if config.shard_secs == 0 {
            config.shard_secs = DEFAULT_SHARD_SECS;
        }
        if let Some(w) = self.get(&config.name) {
            let mut cur = write(&w.config);
            if cur.shard_secs != config.shard_secs {
                tracing::warn!(well = %config.name, "shard duration changes apply to new wells only");
                config.shard_secs = cur.shard_secs;
            }
            if cur.cold_location != config.cold_location {
                tracing::warn!(well = %config.name, "cold location changes need a restart");
            }
            *cur = config;
            return Ok(w.clone());
        }
        let id = self.ids.id_for(&meta::well_id(&config.name))?;
        let cold = match &config.cold_location {
            Some(p) => Some(self.cold_engine(p)?),
            None => None,
        };
        let stats = load_stats(self.main.as_ref(), id)?;
        let next_seq = match self.main.get(Space::Meta, &meta::well_seq(id))? {
            Some(v) => decode_u64(&v)?,
            None => 0,
        };
        lock(&self.writer).seqs.insert(id, next_seq);
        let well = Arc::new(Well {
            id,
            shard_ns: config.shard_secs.max(1).saturating_mul(1_000_000_000),
            config: RwLock::new(config.clone()),
            cold,
            stats: Mutex::new(stats),
            appended: watch::channel(0).0,
        });
        write(&self.wells).insert(config.name, well.clone());
        Ok(well)
    }

    /// Stops serving a well; with `drop_data` its entries, stats and id are deleted too.
    pub fn close_well(&self, name: &str, drop_data: bool) -> StorageResult<()> {
        let Some(w) = write(&self.wells).remove(name) else {
            return Ok(());
        };
        if drop_data {
            let mut b = Batch::default();
            b.delete_range(Space::Wells, keys::well_start(w.id), keys::well_end(w.id));
            b.put(
                Space::Meta,
                meta::compaction(Space::Wells.name(), &keys::well_start(w.id)),
                keys::well_end(w.id),
            );
            let sp = meta::shard_stat_prefix(w.id);
            b.delete_range(Space::Meta, sp.clone(), keys::prefix_end(&sp));
            b.delete(Space::Meta, meta::well_seq(w.id));
            self.main.write(b)?;
            if let Some(cold) = &w.cold {
                let mut b = Batch::default();
                b.delete_range(Space::Wells, keys::well_start(w.id), keys::well_end(w.id));
                cold.write(b)?;
            }
            self.ids.forget(&meta::well_id(name))?;
        }
        Ok(())
    }

    fn cold_engine(&self, path: &Path) -> StorageResult<Arc<dyn KvEngine>> {
        let mut engines = lock(&self.cold_engines);
        if let Some(e) = engines.get(path) {
            return Ok(e.clone());
        }
        let e = (self.open_cold)(path)?;
        engines.insert(path.to_path_buf(), e.clone());
        Ok(e)
    }

    /// Stores `entries` (well, timestamp ns ≥ 0, value) all or nothing. With a `batch_id` seen
    /// in the last `dedupe_ns`, nothing is stored and the outcome is `Duplicate`.
    pub fn write(
        &self,
        entries: Vec<(Arc<Well>, u64, EntryValue)>,
        batch_id: Option<&str>,
        now_ns: i64,
    ) -> StorageResult<WriteOutcome> {
        let mut st = lock(&self.writer);
        if let Some(id) = batch_id {
            if st.batch_ids.contains_key(id) {
                return Ok(WriteOutcome::Duplicate);
            }
        }
        let n = entries.len() as u64;
        let mut batch = Batch::with_capacity(entries.len() + 8);
        // Per well touched: the well and its next seq. A batch names few wells, and runs of
        // one shard: a short list and a run counter beat a map lookup per entry.
        let mut touched: Vec<(Arc<Well>, u64)> = Vec::new();
        let mut deltas: BTreeMap<(u32, u64), ShardStat> = BTreeMap::new();
        let mut run: Option<((u32, u64), ShardStat)> = None;
        for (well, ts, value) in entries {
            let i = match touched.iter().position(|(w, _)| w.id == well.id) {
                Some(i) => i,
                None => {
                    let next = st.seqs.get(&well.id).copied().unwrap_or(0);
                    touched.push((well, next));
                    touched.len() - 1
                }
            };
            let (well, seq) = &mut touched[i];
            let shard = ts / well.shard_ns();
            let key = keys::entry_key(well.id, shard, ts, *seq);
            *seq += 1;
            let v = value.encode();
            let at = (well.id, shard);
            if run.as_ref().is_some_and(|(k, _)| *k != at) {
                if let Some((k, d)) = run.take() {
                    add_stat(deltas.entry(k).or_default(), d);
                }
            }
            let d = &mut run.get_or_insert_with(|| (at, ShardStat::default())).1;
            d.entries += 1;
            d.bytes += EntryValue::stored_size(v.len());
            batch.put(Space::Wells, key.to_vec(), v);
        }
        if let Some((k, d)) = run {
            add_stat(deltas.entry(k).or_default(), d);
        }
        for (well, next) in &touched {
            batch.put(
                Space::Meta,
                meta::well_seq(well.id),
                next.to_be_bytes().to_vec(),
            );
        }
        let mut new_stats = Vec::with_capacity(deltas.len());
        for ((id, shard), d) in &deltas {
            let Some((well, _)) = touched.iter().find(|(w, _)| w.id == *id) else {
                continue;
            };
            let cur = lock(&well.stats)
                .get(&(*shard, HOT))
                .copied()
                .unwrap_or_default();
            let s = ShardStat {
                entries: cur.entries + d.entries,
                bytes: cur.bytes + d.bytes,
            };
            batch.put(Space::Meta, meta::shard_stat(*id, *shard, HOT), s.encode());
            new_stats.push((well.clone(), *shard, s));
        }
        if let Some(id) = batch_id {
            batch.put(
                Space::Meta,
                meta::batch_id(id),
                (now_ns as u64).to_be_bytes().to_vec(),
            );
        }
        self.main.write(batch)?;
        // Committed: only now does memory follow, so a failed write leaves no trace.
        st.seqs
            .extend(touched.iter().map(|(w, next)| (w.id, *next)));
        if let Some(id) = batch_id {
            st.batch_ids.insert(id.to_string(), now_ns);
            st.order.push_back((now_ns, id.to_string()));
        }
        drop(st);
        for (well, shard, s) in new_stats {
            lock(&well.stats).insert((shard, HOT), s);
        }
        for (well, _) in &touched {
            well.appended.send_modify(|v| *v += 1);
        }
        Ok(WriteOutcome::Stored(n))
    }

    /// Forgets batch ids older than `window_ns`, so the dedupe set stays bounded.
    pub fn expire_batch_ids(&self, now_ns: i64, window_ns: i64) -> StorageResult<usize> {
        let mut st = lock(&self.writer);
        let mut b = Batch::default();
        let mut expired = Vec::new();
        while let Some((ts, _)) = st.order.front() {
            if *ts > now_ns.saturating_sub(window_ns) {
                break;
            }
            if let Some((_, id)) = st.order.pop_front() {
                b.delete(Space::Meta, meta::batch_id(&id));
                expired.push(id);
            }
        }
        if b.is_empty() {
            return Ok(0);
        }
        self.main.write(b)?;
        for id in &expired {
            st.batch_ids.remove(id);
        }
        Ok(expired.len())
    }
}

fn load_stats(main: &dyn KvEngine, id: u32) -> StorageResult<BTreeMap<(u64, u8), ShardStat>> {
    let prefix = meta::shard_stat_prefix(id);
    let mut stats = BTreeMap::new();
    for (k, v) in main.page(Space::Meta, &prefix, &keys::prefix_end(&prefix), usize::MAX)? {
        let rest = &k[prefix.len()..];
        let (Some(shard), Some(&tier)) = (rest.get(..8), rest.get(8)) else {
            return Err(StorageError::Corrupt("shard stat key".into()));
        };
        let shard = decode_u64(shard)?;
        stats.insert((shard, tier), ShardStat::decode(&v)?);
    }
    Ok(stats)
}

mod ageout;
pub use ageout::AgeoutReport;
mod read;
pub use read::{RawEntry, RawPage};

#[cfg(test)]
mod tests;

fn add_stat(into: &mut ShardStat, d: ShardStat) {
    into.entries += d.entries;
    into.bytes += d.bytes;
}
