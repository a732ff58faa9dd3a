//! The data node's background cleanup (the coordinator is `tributary_common::cleanup`'s):
//! progress that no worker will read again. A pass goes over
//!
//! 1. `ditto-progress:WELL|TARGET`: a ditto worker's progress whose well is gone from the
//!    catalogue or no longer names the target (a target removed from a well, a well deleted
//!    on another node); a well that only moved keeps it;
//! 2. `source-progress:STREAM`: the progress a stream this node serves keeps for sources it
//!    no longer has;
//! 3. `deleted-range:…`: ranges deleted with a dropped well or stream (or a purged
//!    namespace), compacted so their records and range tombstones stop taking room.
//!
//! Nothing is cleaned before the node has its catalogue view, and what the view names is
//! live and kept. A stale record goes once it has been seen stale for `history_retention`
//! (this process remembers since when), so an origin removed and added back within it keeps
//! its progress.

use crate::mirror;
use crate::node::catalog::canonical;
use crate::node::Node;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_common::cleanup::{Cleaned, Cleaner, CleanupConfig};
use tributary_common::sync::lock;

const DITTO: &str = "ditto-progress:";
const SOURCES: &str = "source-progress:";
const RANGES: &str = "deleted-range:";
const PROGRESS_PREFIX: &[u8] = b"ditto/progress/";

pub struct NodeCleaner {
    node: Arc<Node>,
    /// Since when each stale record was seen stale (forgotten once it is live again).
    stale_since: Mutex<HashMap<Vec<u8>, Instant>>,
}

impl NodeCleaner {
    pub fn new(node: Arc<Node>) -> NodeCleaner {
        NodeCleaner {
            node,
            stale_since: Mutex::new(HashMap::new()),
        }
    }

    /// Of `records` (marker key, stale), at most `limit` stale for at least `retention`.
    fn due<T>(
        &self,
        records: Vec<(Vec<u8>, bool, T)>,
        retention: Duration,
        limit: usize,
    ) -> Vec<T> {
        let mut since = lock(&self.stale_since);
        let now = Instant::now();
        let mut out = Vec::new();
        for (marker, stale, record) in records {
            if !stale {
                since.remove(&marker);
                continue;
            }
            let first = *since.entry(marker.clone()).or_insert(now);
            if now.duration_since(first) >= retention && out.len() < limit {
                since.remove(&marker);
                out.push(record);
            }
        }
        out
    }
}

/// `WELL\0TARGET` (the key's rest) as an id, and back.
fn id_of(rest: &[u8]) -> String {
    String::from_utf8_lossy(rest).replace('\0', "|")
}

impl NodeCleaner {
    fn ditto_step(&self, from: &str, c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        let after = [PROGRESS_PREFIX, from.replace('|', "\0").as_bytes()].concat();
        let keys = self
            .node
            .meta_keys_after(PROGRESS_PREFIX, &after, c.reads_per_query as usize)
            .map_err(|e| e.to_string())?;
        let Some(last) = keys.last() else {
            return Ok(None);
        };
        let id = format!("{DITTO}{}", id_of(&last[PROGRESS_PREFIX.len()..]));
        let seen: Vec<(Vec<u8>, bool, Vec<u8>)> = self.node.with_catalog(|view| {
            keys.iter()
                .map(|k| {
                    let rest = &k[PROGRESS_PREFIX.len()..];
                    let mut parts = rest.splitn(2, |b| *b == 0);
                    let well = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    let target = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    let live = view
                        .wells
                        .get(well.as_ref())
                        .is_some_and(|w| w.ditto_targets.iter().any(|t| canonical(t) == target));
                    (k.clone(), !live, k.clone())
                })
                .collect()
        });
        let stale = self.due(seen, c.history_retention, c.writes_per_credit as usize);
        let n = stale.len() as u64;
        if n > 0 {
            self.node.delete_meta(stale).map_err(|e| e.to_string())?;
        }
        Ok(Some(Cleaned {
            id,
            removed: vec![("ditto_progress", n)],
        }))
    }

    fn sources_step(&self, from: &str, c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        let mut streams = self.node.open_streams();
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        let Some(store) = streams.into_iter().find(|s| s.name.as_str() > from) else {
            return Ok(None);
        };
        let id = format!("{SOURCES}{}", store.name);
        let Some(config) = self
            .node
            .with_catalog(|v| v.streams.get(&store.name).cloned())
        else {
            return Ok(Some(Cleaned {
                id,
                removed: vec![],
            }));
        };
        let wanted: HashSet<String> = mirror::specs(&config)
            .iter()
            .map(mirror::Spec::progress_key)
            .collect();
        let seen = store
            .source_progress_keys()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|k| {
                let marker = format!("{SOURCES}{}\0{k}", store.name).into_bytes();
                (marker, !wanted.contains(&k), k)
            })
            .collect();
        let stale = self.due(seen, c.history_retention, c.writes_per_credit as usize);
        let n = stale.len() as u64;
        if n > 0 {
            store
                .forget_source_progress(&stale)
                .map_err(|e| e.to_string())?;
        }
        Ok(Some(Cleaned {
            id,
            removed: vec![("source_progress", n)],
        }))
    }
}

impl NodeCleaner {
    fn ranges_step(&self, from: &str, c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        let after = hex_decode(from);
        let marks = self
            .node
            .compaction_marks(&after, c.writes_per_credit as usize)
            .map_err(|e| e.to_string())?;
        let Some(last) = marks.last() else {
            return Ok(None);
        };
        let id = format!("{RANGES}{}", hex_encode(last));
        for m in &marks {
            self.node.compact_marked(m).map_err(|e| e.to_string())?;
        }
        Ok(Some(Cleaned {
            id,
            removed: vec![("deleted_ranges", marks.len() as u64)],
        }))
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A mark key back from its id (what does not decode starts from the beginning).
fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map_while(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

impl Cleaner for NodeCleaner {
    fn clean_step(&self, after: &str, c: &CleanupConfig) -> Result<Option<Cleaned>, String> {
        if !self.node.catalog_loaded() {
            return Err("the catalogue view is not loaded yet: nothing is cleaned before".into());
        }
        if let Some(from) = after.strip_prefix(RANGES) {
            return self.ranges_step(from, c);
        }
        if let Some(from) = after.strip_prefix(SOURCES) {
            return match self.sources_step(from, c)? {
                Some(done) => Ok(Some(done)),
                None => self.ranges_step("", c),
            };
        }
        let from = after.strip_prefix(DITTO).unwrap_or("");
        if let Some(done) = self.ditto_step(from, c)? {
            return Ok(Some(done));
        }
        match self.sources_step("", c)? {
            Some(done) => Ok(Some(done)),
            None => self.ranges_step("", c),
        }
    }
}
