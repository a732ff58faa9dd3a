//! The in-memory engine: `memory` stream storage and fast tests. Same semantics as RocksDB
//! except that nothing survives the process.

use super::engine::{Batch, KvEngine, Op, Scan, Space};
use super::error::StorageResult;
use std::collections::BTreeMap;
use std::sync::RwLock;
use tributary_common::sync::{read, write};

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Default)]
pub struct MemoryEngine {
    spaces: RwLock<BTreeMap<Space, Tree>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Space, Tree>> {
        // Nothing inside our critical sections panics short of OOM, so a poisoned lock
        // still guards a consistent map.
        read(&self.spaces)
    }
}

impl KvEngine for MemoryEngine {
    fn get(&self, space: Space, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.read().get(&space).and_then(|t| t.get(key).cloned()))
    }

    fn write(&self, batch: Batch) -> StorageResult<()> {
        let mut spaces = write(&self.spaces);
        for op in batch.ops {
            match op {
                Op::Put(s, k, v) => {
                    spaces.entry(s).or_default().insert(k, v);
                }
                Op::PutShared(s, k, v) => {
                    spaces.entry(s).or_default().insert(k, v.into());
                }
                Op::Delete(s, k) => {
                    if let Some(t) = spaces.get_mut(&s) {
                        t.remove(&k);
                    }
                }
                Op::DeleteRange(s, start, end) => {
                    if let Some(t) = spaces.get_mut(&s) {
                        if start < end {
                            let doomed: Vec<Vec<u8>> =
                                t.range(start..end).map(|(k, _)| k.clone()).collect();
                            for k in doomed {
                                t.remove(&k);
                            }
                        }
                    }
                }
            }
        }
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
        let spaces = self.read();
        let Some(tree) = spaces.get(&space) else {
            return Ok(());
        };
        let range = tree.range::<[u8], _>((
            std::ops::Bound::Included(start),
            std::ops::Bound::Excluded(end),
        ));
        if reverse {
            for (k, v) in range.rev() {
                if visit(k, v) == Scan::Stop {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if visit(k, v) == Scan::Stop {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The range is copied under the lock: the view is the copy.
    fn scan_pinned(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        pinned: &mut dyn FnMut(),
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Scan,
    ) -> StorageResult<()> {
        let mut copy = Vec::new();
        self.scan(space, start, end, false, &mut |k, v| {
            copy.push((k.to_vec(), v.to_vec()));
            Scan::Continue
        })?;
        pinned();
        for (k, v) in copy {
            if visit(&k, &v) == Scan::Stop {
                break;
            }
        }
        Ok(())
    }
}
