//! What the target gets of stored entries: tag ids mapped to names (an unresolvable tag
//! re-tagged or dropped, as the target says), corrupt values skipped and counted, and what
//! committing the batch records.

use super::host::DittoHost;
use super::progress::Pending;
use crate::storage::codec::EntryValue;
use crate::storage::keys;
use crate::storage::wells::RawEntry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tributary_proto::v1::{Target, WellEntry};

/// A batch ready to send and what committing it records.
#[derive(Default)]
pub struct Built {
    pub(super) entries: Vec<WellEntry>,
    pub(super) bytes: u64,
    /// Entries processed per shard (sent, dropped or corrupt).
    pub(super) processed: BTreeMap<u64, u64>,
    pub(super) seqs: Vec<u64>,
    pub(super) retagged: u64,
    pub(super) dropped: u64,
    pub(super) corrupt: u64,
}

/// Maps stored entries to what the target gets: tag ids to names (unresolvable: re-tagged or
/// dropped), corrupt values skipped and counted.
pub struct Mapper {
    host: Arc<dyn DittoHost>,
    well: String,
    target: String,
    unresolvable: String,
    names: HashMap<u32, String>,
}

impl Mapper {
    pub fn new(host: Arc<dyn DittoHost>, well: &str, target: &Target) -> Self {
        let names = host.tag_names();
        Mapper {
            host,
            well: well.to_string(),
            target: target.name.clone(),
            unresolvable: target.unresolvable_tag_destination.clone(),
            names,
        }
    }

    fn refresh(&mut self) {
        self.names = self.host.tag_names();
    }

    /// Decodes and maps the raw entries of a batch (filtering by the pending's seq range and
    /// `sent`). A tag id not known yet reloads the names once per batch, so a tag created
    /// since is found just as a fresh read of the catalogue would find it.
    pub fn build(&mut self, raw: &[RawEntry], p: &Pending, sent: &BTreeSet<u64>) -> Built {
        let mut b = Built {
            entries: Vec::with_capacity(raw.len()),
            seqs: Vec::with_capacity(raw.len()),
            ..Default::default()
        };
        let mut refreshed = false;
        for (k, v) in raw {
            let Some((_, shard, ts, seq)) = keys::parse_entry_key(k) else {
                continue;
            };
            if seq < p.lo || seq >= p.hi || sent.contains(&seq) {
                continue;
            }
            *b.processed.entry(shard).or_default() += 1;
            b.seqs.push(seq);
            let value = match EntryValue::decode(v) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(well = %self.well, target = %self.target, shard, seq, error = %e, "ditto: corrupt entry skipped");
                    b.corrupt += 1;
                    continue;
                }
            };
            if !refreshed && !self.names.contains_key(&value.tag) {
                refreshed = true;
                self.refresh();
            }
            let tag = match self.names.get(&value.tag) {
                Some(n) => n.clone(),
                None if !self.unresolvable.is_empty() => {
                    b.retagged += 1;
                    self.unresolvable.clone()
                }
                None => {
                    b.dropped += 1;
                    continue;
                }
            };
            b.bytes += (value.data.len()
                + value
                    .values
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()) as u64;
            b.entries.push(WellEntry {
                timestamp_ns: i64::try_from(ts).unwrap_or(i64::MAX),
                tag,
                source: value.source.map(|s| s.to_string()).unwrap_or_default(),
                data: value.data,
                values: value.values.into_iter().collect(),
            });
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ditto::testing::FakeHost;

    fn raw(seq: u64, tag: u32) -> (Vec<u8>, Vec<u8>) {
        let v = EntryValue {
            tag,
            source: None,
            data: bytes::Bytes::from(format!("e{seq}")),
            values: Default::default(),
        };
        (keys::entry_key(7, 0, seq, seq).to_vec(), v.encode())
    }

    fn all() -> Pending {
        Pending {
            hi: u64::MAX,
            ..Default::default()
        }
    }

    fn target(unresolvable: &str) -> Target {
        Target {
            name: "default:t".into(),
            unresolvable_tag_destination: unresolvable.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_tags_and_drops_or_retags_what_it_cannot_name() {
        let host = FakeHost::with_tags(&[(1, "web")]);
        let entries = [
            raw(1, 1),
            raw(2, 9),
            (keys::entry_key(7, 0, 3, 3).to_vec(), vec![0xff]),
        ];
        let mut m = Mapper::new(host.clone(), "default:w", &target(""));
        let b = m.build(&entries, &all(), &BTreeSet::new());
        assert_eq!(
            b.entries.iter().map(|e| e.tag.as_str()).collect::<Vec<_>>(),
            ["web"]
        );
        assert_eq!((b.dropped, b.retagged, b.corrupt), (1, 0, 1));
        assert_eq!(b.seqs, [1, 2, 3], "every entry read counts as processed");
        assert_eq!(b.processed.get(&0), Some(&3));

        let mut m = Mapper::new(host.clone(), "default:w", &target("lost"));
        let b = m.build(&entries, &all(), &BTreeSet::new());
        let tags: Vec<&str> = b.entries.iter().map(|e| e.tag.as_str()).collect();
        assert_eq!(tags, ["web", "lost"]);
        assert_eq!((b.dropped, b.retagged), (0, 1));
    }

    #[test]
    fn a_tag_created_later_is_found_and_the_range_is_respected() {
        let host = FakeHost::with_tags(&[(1, "web")]);
        let mut m = Mapper::new(host.clone(), "default:w", &target(""));
        host.add_tag(9, "db");
        let p = Pending {
            lo: 2,
            hi: 4,
            ..Default::default()
        };
        let sent: BTreeSet<u64> = [3].into();
        let entries = [raw(1, 1), raw(2, 9), raw(3, 1), raw(4, 1)];
        let b = m.build(&entries, &p, &sent);
        // Only seq 2 is in [lo, hi) and not sent; its tag is new since the mapper started.
        assert_eq!(b.seqs, [2]);
        assert_eq!(b.entries.len(), 1);
        assert_eq!(b.entries[0].tag, "db");
    }
}
