//! The RocksDB engine: one database, one column family per [`Space`].
//!
//! Durability choice: every write goes through the WAL (`disable_wal(false)`) and, by default,
//! without fsync (`sync = false`). A write RocksDB has accepted is in the OS page cache, so it
//! survives `kill -9` of the process; only a power loss or kernel crash can lose the last
//! moments. `sync = true` (config `sync_writes`) fsyncs the WAL on every write for that case,
//! at a large throughput cost.

use super::engine::{Batch, KvEngine, Op, Prepared, Scan, Space};
use super::error::{StorageError, StorageResult};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, ReadOptions, WriteOptions, DB};
use std::path::{Path, PathBuf};

pub struct RocksEngine {
    db: DB,
    sync: bool,
    path: PathBuf,
}

fn engine_err(e: rocksdb::Error) -> StorageError {
    StorageError::Engine(e.into_string())
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, sync: bool) -> StorageResult<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| StorageError::Engine(format!("create {}: {e}", path.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Bigger memtables than the 64 MiB default cost little here and cut write stalls
        // under ingest bursts.
        opts.set_write_buffer_size(128 << 20);
        opts.increase_parallelism(2);
        // Compactions run at a lower CPU priority than the threads serving writes and reads:
        // on a small machine a burst of writes or a catch-up copy keeps its cores, and level 0
        // is merged in the gaps. Flushes keep theirs: a flush left behind would soon make
        // writers wait for a free memtable (up to four are kept while one is flushed).
        let mut env = rocksdb::Env::new().map_err(engine_err)?;
        env.lower_thread_pool_cpu_priority();
        opts.set_env(&env);
        opts.set_max_write_buffer_number(4);
        // WAL files are reused (overwriting pages already in the page cache is far cheaper
        // than growing new files), and the WAL is capped at 512 MiB: a column family with a
        // few small writes would otherwise pin every WAL file since its last flush.
        opts.set_recycle_log_file_num(4);
        opts.set_max_total_wal_size(512 << 20);
        // Reads are mostly long forward scans (subscriptions, mirrors, queries): 64 KiB blocks
        // cost one cache insert and one decompress call per ~60 messages of 1 KiB instead of
        // per ~4 with the 4 KiB default.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_size(64 << 10);
        let cfs = Space::ALL.iter().map(|s| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf_opts.set_write_buffer_size(128 << 20);
            cf_opts.set_max_write_buffer_number(4);
            cf_opts.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(s.name(), cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            let reason = e.into_string();
            // RocksDB reports its LOCK file held by another handle only in the message.
            if reason.contains("lock") || reason.contains("LOCK") {
                StorageError::Locked {
                    path: path.display().to_string(),
                    reason,
                }
            } else {
                StorageError::Engine(format!("open {}: {reason}", path.display()))
            }
        })?;
        Ok(RocksEngine {
            db,
            sync,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, space: Space) -> StorageResult<&ColumnFamily> {
        self.db
            .cf_handle(space.name())
            .ok_or_else(|| StorageError::Engine(format!("column family {} missing", space.name())))
    }
}

fn op_bytes(op: &Op) -> usize {
    match op {
        Op::Put(_, k, v) | Op::DeleteRange(_, k, v) => k.len() + v.len() + 16,
        Op::PutShared(_, k, v) => k.len() + v.len() + 16,
        Op::Delete(_, k) => k.len() + 16,
    }
}

impl RocksEngine {
    fn add(&self, wb: &mut rocksdb::WriteBatch, batch: Batch) -> StorageResult<()> {
        for op in &batch.ops {
            match op {
                Op::Put(s, k, v) => wb.put_cf(self.cf(*s)?, k, v),
                Op::PutShared(s, k, v) => wb.put_cf(self.cf(*s)?, k, v),
                Op::Delete(s, k) => wb.delete_cf(self.cf(*s)?, k),
                Op::DeleteRange(s, a, b) => wb.delete_range_cf(self.cf(*s)?, a, b),
            }
        }
        Ok(())
    }
}

impl KvEngine for RocksEngine {
    fn get(&self, space: Space, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(space)?, key).map_err(engine_err)
    }

    fn write(&self, batch: Batch) -> StorageResult<()> {
        self.write_prepared(self.prepare(batch)?, Batch::default())
    }

    fn prepare(&self, batch: Batch) -> StorageResult<Prepared> {
        // Sized up front (RocksDB's record is key, value and a few bytes of framing): a
        // growing batch would copy its megabytes again at every doubling.
        let bytes: usize = batch.ops.iter().map(op_bytes).sum();
        let mut wb = rocksdb::WriteBatch::with_capacity_bytes(bytes + 16);
        self.add(&mut wb, batch)?;
        Ok(Prepared::new(wb))
    }

    fn write_prepared(&self, prepared: Prepared, more: Batch) -> StorageResult<()> {
        let mut wb = prepared.take::<rocksdb::WriteBatch>()?;
        self.add(&mut wb, more)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        wo.disable_wal(false);
        let started = std::time::Instant::now();
        let r = self.db.write_opt(wb, &wo).map_err(engine_err);
        // Background cleanup gives no credits while writes are slow.
        tributary_common::cleanup::record_write(started.elapsed());
        r
    }

    fn sample_metrics(&self) {
        let names = Space::ALL.map(Space::name);
        tributary_common::telemetry::rocks::sample(&self.db, &names);
    }

    fn compact_range(&self, space: Space, start: &[u8], end: &[u8]) -> StorageResult<()> {
        self.db
            .compact_range_cf(self.cf(space)?, Some(start), Some(end));
        Ok(())
    }

    fn scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()> {
        if start >= end {
            return Ok(());
        }
        let it = self
            .db
            .raw_iterator_cf_opt(self.cf(space)?, bounds(start, end));
        iterate(it, reverse, visit)
    }

    /// An explicit RocksDB snapshot rather than the iterator's implicit one, so the view
    /// is fixed before `pinned` whatever the iterator does lazily.
    fn scan_pinned(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        pinned: &mut dyn FnMut(),
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()> {
        let cf = self.cf(space)?;
        let snapshot = self.db.snapshot();
        pinned();
        if start >= end {
            return Ok(());
        }
        let mut ro = bounds(start, end);
        // A whole stream read once: its blocks would push out what readers use.
        ro.fill_cache(false);
        iterate(snapshot.raw_iterator_cf_opt(cf, ro), false, visit)
    }
}

fn bounds(start: &[u8], end: &[u8]) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(start.to_vec());
    ro.set_iterate_upper_bound(end.to_vec());
    ro
}

fn iterate(
    mut it: rocksdb::DBRawIterator<'_>,
    reverse: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
) -> StorageResult<()> {
    if reverse {
        it.seek_to_last();
    } else {
        it.seek_to_first();
    }
    while it.valid() {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        if visit(k, v) == Scan::Stop {
            return Ok(());
        }
        if reverse {
            it.prev();
        } else {
            it.next();
        }
    }
    it.status().map_err(engine_err)
}
