//! RocksDB's own numbers, read from its properties every few seconds by the server's sampling
//! task (never on a write path): per column family (label `cf`) the SST files' size, the live
//! data estimate, bytes waiting for compaction, memtables and block cache usage; for the
//! database the delayed write rate and whether writes are stopped (its write stalls).
//!
//! Block cache hits and misses need RocksDB's statistics, which cost every read and write a
//! few percent; the cache's usage is reported instead.

use rocksdb::DB;

/// Per column family: (property, metric).
const CF_PROPERTIES: [(&str, &str); 6] = [
    (
        "rocksdb.total-sst-files-size",
        "tributary_rocksdb_sst_files_bytes",
    ),
    (
        "rocksdb.estimate-live-data-size",
        "tributary_rocksdb_live_data_bytes",
    ),
    (
        "rocksdb.estimate-pending-compaction-bytes",
        "tributary_rocksdb_pending_compaction_bytes",
    ),
    (
        "rocksdb.cur-size-all-mem-tables",
        "tributary_rocksdb_memtable_bytes",
    ),
    (
        "rocksdb.block-cache-usage",
        "tributary_rocksdb_block_cache_usage_bytes",
    ),
    (
        "rocksdb.estimate-num-keys",
        "tributary_rocksdb_estimated_keys",
    ),
];

/// Sets the gauges from `db`'s properties, for each of `cfs` that it has.
pub fn sample(db: &DB, cfs: &[&str]) {
    for cf_name in cfs {
        let Some(cf) = db.cf_handle(cf_name) else {
            continue;
        };
        for (property, metric) in CF_PROPERTIES {
            if let Ok(Some(v)) = db.property_int_value_cf(&cf, property) {
                metrics::gauge!(metric, "cf" => cf_name.to_string()).set(v as f64);
            }
        }
    }
    if let Ok(Some(rate)) = db.property_int_value("rocksdb.actual-delayed-write-rate") {
        metrics::gauge!("tributary_rocksdb_delayed_write_rate_bytes").set(rate as f64);
    }
    if let Ok(Some(stopped)) = db.property_int_value("rocksdb.is-write-stopped") {
        metrics::gauge!("tributary_rocksdb_write_stopped").set(stopped as f64);
    }
}
