//! Ranges deleted with their data (a dropped well or stream, a purged namespace) are marked
//! in the meta space in the batch that deletes them; background cleanup compacts each marked
//! range, so the deleted records and their range tombstones stop taking room and slowing
//! scans, and then drops the mark.

use super::Node;
use crate::error::Result;
use crate::storage::keys::meta;
use crate::storage::{Scan, Space};

impl Node {
    /// The marks after `after` (a whole mark key), at most `limit`, as (mark, end).
    pub fn compaction_marks(&self, after: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.meta_keys_after(meta::COMPACT_PREFIX, after, limit)?)
    }

    /// Compacts the range of `mark` and drops the mark. A mark that does not parse is dropped.
    pub fn compact_marked(&self, mark: &[u8]) -> Result<()> {
        let rest = &mark[meta::COMPACT_PREFIX.len().min(mark.len())..];
        let mut parts = rest.splitn(2, |b| *b == b'/');
        let space = match parts.next() {
            Some(b"wells") => Some(Space::Wells),
            Some(b"streams") => Some(Space::Streams),
            _ => None,
        };
        let start = parts.next().unwrap_or_default();
        let mut end = None;
        self.main.scan(
            Space::Meta,
            mark,
            &crate::storage::successor(mark),
            false,
            &mut |_, v| {
                end = Some(v.to_vec());
                Scan::Stop
            },
        )?;
        if let (Some(space), Some(end)) = (space, end) {
            self.main.compact_range(space, start, &end)?;
        }
        self.delete_meta(vec![mark.to_vec()])?;
        Ok(())
    }
}
