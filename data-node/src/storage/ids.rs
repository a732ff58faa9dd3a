//! Node-local u32 ids for well and stream names, so keys carry 4 bytes instead of a name.
//! Ids are never reused: a name deleted and created again gets a fresh, empty key range.

use super::engine::{Batch, KvEngine, Space};
use super::error::{StorageError, StorageResult};
use super::keys::meta;
use std::sync::{Arc, Mutex};
use tributary_common::sync::lock;

pub struct LocalIds {
    engine: Arc<dyn KvEngine>,
    // Serialises allocation so two names never read the same next id.
    lock: Mutex<()>,
}

impl LocalIds {
    pub fn new(engine: Arc<dyn KvEngine>) -> Self {
        LocalIds {
            engine,
            lock: Mutex::new(()),
        }
    }

    /// The id recorded under `key`, allocating and persisting one if there is none.
    pub fn id_for(&self, key: &[u8]) -> StorageResult<u32> {
        let _guard = lock(&self.lock);
        if let Some(v) = self.engine.get(Space::Meta, key)? {
            return decode_u32(&v);
        }
        let next = match self.engine.get(Space::Meta, meta::NEXT_LOCAL_ID)? {
            Some(v) => decode_u32(&v)?,
            None => 1,
        };
        let after = next
            .checked_add(1)
            .ok_or_else(|| StorageError::Engine("local ids exhausted".into()))?;
        let mut b = Batch::default();
        b.put(Space::Meta, key.to_vec(), next.to_be_bytes().to_vec());
        b.put(
            Space::Meta,
            meta::NEXT_LOCAL_ID.to_vec(),
            after.to_be_bytes().to_vec(),
        );
        self.engine.write(b)?;
        Ok(next)
    }

    /// Forgets `key` so the next `id_for` allocates a fresh id.
    pub fn forget(&self, key: &[u8]) -> StorageResult<()> {
        let mut b = Batch::default();
        b.delete(Space::Meta, key.to_vec());
        self.engine.write(b)
    }
}

pub fn decode_u32(v: &[u8]) -> StorageResult<u32> {
    v.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| StorageError::Corrupt("local id is not 4 bytes".into()))
}

pub fn decode_u64(v: &[u8]) -> StorageResult<u64> {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StorageError::Corrupt("counter is not 8 bytes".into()))
}
