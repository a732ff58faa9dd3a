//! Storage, in two layers. The bottom is [`KvEngine`] (`engine`), a small ordered key-value
//! trait of our own (as TiKV's `engine_traits`) with a RocksDB and an in-memory
//! implementation; nothing above this module sees a RocksDB type. On top of it: [`wells`]
//! (time-sharded entries, hot/cold ageout) and [`streams`] (sequence-numbered messages with
//! JetStream limits, and tails). Storage imports nothing above it and has its own errors.

pub mod codec;
pub mod engine;
pub mod error;
pub mod ids;
pub mod keys;
pub mod memory;
pub mod rocks;
pub mod streams;
pub mod wells;

pub use engine::{Batch, KvEngine, Op, Prepared, Scan, Space};
pub use error::{StorageError, StorageResult};
pub use keys::{prefix_end, successor};
pub use memory::MemoryEngine;
pub use rocks::RocksEngine;
pub use streams::write::NewMessage;

#[cfg(test)]
mod conformance;
