//! The Raft log compacted by age, for background cleanup's `history_retention`: besides the
//! size thresholds (`snapshot_entries`, `snapshot_bytes`), entries applied longer ago than
//! the retention go, except what a follower still needs (the leader keeps every entry above
//! the least index a follower has matched, so no follower needs a snapshot because of this).

use super::Loop;
use crate::error::CatalogError;
use raft::StateRole;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One mark a second at most; a day of them at most (older ones say nothing a newer does not).
const MARK_EVERY: Duration = Duration::from_secs(1);
const MAX_MARKS: usize = 86_400;

/// The applied index over time, so that "applied before T" has an answer.
#[derive(Default)]
pub(super) struct AppliedMarks {
    marks: VecDeque<(Instant, u64)>,
}

impl AppliedMarks {
    pub(super) fn note(&mut self, applied: u64) {
        let due = self
            .marks
            .back()
            .is_none_or(|(at, index)| at.elapsed() >= MARK_EVERY && *index < applied);
        if due {
            self.marks.push_back((Instant::now(), applied));
            if self.marks.len() > MAX_MARKS {
                self.marks.pop_front();
            }
        }
    }

    /// The last index known applied at or before `before` (a mark is taken after applying).
    fn applied_before(&self, before: Instant) -> Option<u64> {
        self.marks
            .iter()
            .rev()
            .find(|(at, _)| *at <= before)
            .map(|(_, index)| *index)
    }
}

impl Loop {
    /// Compacts the entries applied before `before` that no follower needs: (the index
    /// compacted to, entries removed), `(0, 0)` when there is nothing to remove.
    pub(super) fn compact_log_before(
        &mut self,
        before: Instant,
    ) -> Result<(u64, u64), CatalogError> {
        let Some(mut upto) = self.applied_marks.applied_before(before) else {
            return Ok((0, 0));
        };
        upto = upto.min(self.catalogue.applied_index());
        let group = &self.raw.raft;
        if group.state == StateRole::Leader {
            let least_matched = group
                .prs()
                .iter()
                .filter(|(id, _)| **id != self.id)
                .map(|(_, p)| p.matched)
                .min();
            if let Some(m) = least_matched {
                upto = upto.min(m);
            }
        }
        let first = raft::Storage::first_index(&self.store).map_err(super::raft_err)?;
        if upto < first {
            return Ok((0, 0));
        }
        self.store.compact(upto).map_err(super::raft_err)?;
        Ok((upto, upto - first + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_answer_what_was_applied_before_a_time() {
        let mut m = AppliedMarks::default();
        let before_any = Instant::now();
        m.note(10);
        // Within a second of the last mark: no new one.
        m.note(20);
        assert_eq!(m.marks.len(), 1);
        assert_eq!(m.applied_before(Instant::now()), Some(10));
        assert_eq!(m.applied_before(before_any), None);
    }
}
